#pragma once

// Replaces the global operator new to count allocations, so that a test can prove a loop of
// operations allocates nothing. Include it in exactly one translation unit per test program.
// The sanitizers own operator new in their builds, where counting is off.

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define RINGIO_TEST_COUNTS_ALLOCATIONS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define RINGIO_TEST_COUNTS_ALLOCATIONS 0
#endif
#endif
#ifndef RINGIO_TEST_COUNTS_ALLOCATIONS
#define RINGIO_TEST_COUNTS_ALLOCATIONS 1
#endif

namespace ringio::testing {

/// Every allocation this program has made (while counting is on).
inline std::atomic<long> allocations{0};

} // namespace ringio::testing

#if RINGIO_TEST_COUNTS_ALLOCATIONS
// The sanitizers own operator new in their builds; the other builds count here. None of these
// is inlined: g++ 12 at -O2 and -O3 would otherwise see malloc() or free() behind a
// new-expression and call the pair mismatched (-Wmismatched-new-delete), though it is not.
[[gnu::noinline]] void* operator new(std::size_t size) {
    ringio::testing::allocations.fetch_add(1, std::memory_order_relaxed);
    if (void* memory = std::malloc(size == 0 ? 1 : size)) {
        return memory;
    }
    throw std::bad_alloc{};
}

[[gnu::noinline]] void operator delete(void* memory) noexcept {
    std::free(memory);
}

[[gnu::noinline]] void operator delete(void* memory, std::size_t /*size*/) noexcept {
    std::free(memory);
}
#endif
