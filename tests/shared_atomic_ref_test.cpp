#include <ringio/shared_atomic_ref.hpp>

#include <ringio/mapped.hpp>

#include <catch2/catch.hpp>

#include "child_process.hpp"
#include "temp_dir.hpp"

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <system_error>
#include <thread>

using namespace std::chrono_literals;
using namespace ringio::testing;

namespace {

struct state {
    std::uint32_t ready;
    std::int32_t answer;
    std::uint64_t counter;
};

template <class Ref>
concept can_write = requires(const Ref& ref, typename Ref::value_type value) {
    ref.store(value);
    ref.fetch_add(value);
};

template <class Ref>
concept can_wait = requires(const Ref& ref, typename Ref::value_type value) {
    ref.wait(value);
    ref.notify_all();
};

// Refers to the `I` at `offset` bytes into `storage`, misaligned on purpose; the sanitizer's
// alignment check is off for the reference this makes, which is what the test is about.
template <class I>
__attribute__((no_sanitize("alignment"))) std::string error_for_misaligned(std::byte* storage,
                                                                           std::size_t offset) {
    try {
        ringio::shared_atomic_ref<I> ref(*reinterpret_cast<I*>(storage + offset));
    } catch (const std::system_error& e) {
        return e.code() == std::errc::invalid_argument ? e.what() : "another error";
    }
    return "no error";
}

} // namespace

TEST_CASE("shared_atomic_ref: reads and writes the integer it refers to", "[shared_atomic_ref]") {
    state s{};
    ringio::shared_atomic_ref ready{s.ready};
    STATIC_REQUIRE(std::is_same_v<decltype(ready)::value_type, std::uint32_t>);
    ready.store(3);
    CHECK(s.ready == 3);
    CHECK(ready.load() == 3);
    CHECK(ready.exchange(4) == 3);
    std::uint32_t expected = 5;
    CHECK_FALSE(ready.compare_exchange_strong(expected, 6));
    CHECK(expected == 4);
    CHECK(ready.compare_exchange_strong(expected, 6));
    while (!ready.compare_exchange_weak(expected, 7)) {
    }
    CHECK(ready.fetch_add(2) == 7);
    CHECK(ready.fetch_sub(1) == 9);
    CHECK(ready.load(std::memory_order_acquire) == 8);

    ringio::shared_atomic_ref counter{s.counter}; // 64 bits: atomic, but no futex wait
    counter.fetch_add(1);
    CHECK(counter.load() == 1);
}

TEST_CASE("shared_atomic_ref: a const integer can be read and waited on, not written",
          "[shared_atomic_ref]") {
    const std::uint32_t word = 1;
    ringio::shared_atomic_ref ref{word};
    STATIC_REQUIRE(std::is_same_v<decltype(ref), ringio::shared_atomic_ref<const std::uint32_t>>);
    CHECK(ref.load() == 1);
    CHECK(ref.wait_for(0, 1s)); // already different: returns at once
    STATIC_REQUIRE(can_wait<decltype(ref)>);
    STATIC_REQUIRE_FALSE(can_write<decltype(ref)>);
    STATIC_REQUIRE(can_write<ringio::shared_atomic_ref<std::uint32_t>>);
}

TEST_CASE("shared_atomic_ref: only lock-free integers are accepted, and only 32 bits wait",
          "[shared_atomic_ref]") {
    STATIC_REQUIRE(ringio::shared_integer<std::int32_t>);
    STATIC_REQUIRE(ringio::shared_integer<const std::uint64_t>);
    STATIC_REQUIRE_FALSE(ringio::shared_integer<float>);
    STATIC_REQUIRE_FALSE(ringio::shared_integer<volatile int>);
    STATIC_REQUIRE(can_wait<ringio::shared_atomic_ref<std::int32_t>>);
    STATIC_REQUIRE_FALSE(can_wait<ringio::shared_atomic_ref<std::uint64_t>>);
    STATIC_REQUIRE_FALSE(can_wait<ringio::shared_atomic_ref<std::uint16_t>>);
}

TEST_CASE("shared_atomic_ref: wait_for times out when nobody writes", "[shared_atomic_ref]") {
    auto view = ringio::mapped<state>::anonymous();
    ringio::shared_atomic_ref ready{view->ready};
    const auto start = std::chrono::steady_clock::now();
    CHECK_FALSE(ready.wait_for(0, 50ms));
    CHECK(std::chrono::steady_clock::now() - start >= 50ms);
    CHECK_FALSE(ready.wait_until(0, std::chrono::steady_clock::now() - 1s)); // already past
    CHECK_FALSE(ready.wait_for(0, -1s));
}

TEST_CASE("shared_atomic_ref: a timeout too long for the clock waits without one",
          "[shared_atomic_ref]") {
    std::uint32_t word = 0;
    ringio::shared_atomic_ref ready{word};
    // A thread, not a process: it cannot die before it notifies, so the untimed wait ends.
    std::jthread notifier([&] {
        std::this_thread::sleep_for(20ms);
        ready.store(1);
        ready.notify_all();
    });
    CHECK(ready.wait_for(0, std::chrono::nanoseconds::max()));
}

TEST_CASE("shared_atomic_ref: a notify wakes a waiter in a forked process", "[shared_atomic_ref]") {
    auto view = ringio::mapped<state>::anonymous();
    ringio::shared_atomic_ref ready{view->ready};
    // The child waits; a timeout turns a lost wake-up into a failure, not a hang.
    const pid_t child = fork_child([&] {
        if (!ready.wait_for(0, 10s, std::memory_order_acquire)) {
            return 1;
        }
        return view->answer == 42 ? 0 : 2;
    });
    std::this_thread::sleep_for(50ms); // let the child reach the futex
    view->answer = 42;
    ready.store(1, std::memory_order_release);
    ready.notify_all();
    CHECK(wait_child(child) == 0);
}

TEST_CASE("shared_atomic_ref: a waiter wakes when another process that mapped the file itself "
          "notifies",
          "[shared_atomic_ref]") {
    temp_dir dir;
    ringio::mapped<state>::create(dir / "s");
    auto view = ringio::mapped<const state>::open(dir / "s");
    ringio::shared_atomic_ref ready{view->ready}; // a read-only view can wait
    const pid_t child = fork_child([&] {
        auto own = ringio::mapped<state>::open(dir / "s"); // a mapping of its own
        std::this_thread::sleep_for(50ms);
        own->answer = 7;
        ringio::shared_atomic_ref flag{own->ready};
        flag.store(1, std::memory_order_release);
        flag.notify_one();
        return 0;
    });
    CHECK(ready.wait_for(0, 10s, std::memory_order_acquire));
    CHECK(view->answer == 7);
    CHECK(wait_child(child) == 0);
}

TEST_CASE("shared_atomic_ref: notify_all wakes every waiting process", "[shared_atomic_ref]") {
    auto view = ringio::mapped<state>::anonymous();
    ringio::shared_atomic_ref ready{view->ready};
    ringio::shared_atomic_ref waiting{view->answer};
    auto waiter = [&] {
        waiting.fetch_add(1);
        return ready.wait_for(0, 10s) ? 0 : 1;
    };
    const pid_t first = fork_child(waiter);
    const pid_t second = fork_child(waiter);
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (waiting.load() < 2 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(1ms);
    }
    std::this_thread::sleep_for(50ms);
    ready.store(1);
    ready.notify_all();
    CHECK(wait_child(first) == 0);
    CHECK(wait_child(second) == 0);
}

TEST_CASE("shared_atomic_ref: a misaligned integer is EINVAL at construction, on every "
          "architecture",
          "[shared_atomic_ref]") {
    // Not only where atomic_ref requires more than alignof: on x86-64 the futex would refuse
    // the address (EINVAL at the first wait, and a notify that wakes nobody).
    alignas(8) std::array<std::byte, 16> storage{};
    using Catch::Matchers::Contains;
    CHECK_THAT(error_for_misaligned<std::uint32_t>(storage.data(), 1),
               Contains("shared_atomic_ref: the integer is not aligned to 4 bytes"));
    CHECK_THAT(error_for_misaligned<const std::uint32_t>(storage.data(), 2),
               Contains("aligned to 4"));
    CHECK_THAT(error_for_misaligned<std::uint64_t>(storage.data(), 4), Contains("aligned to 8"));
    CHECK_THAT(error_for_misaligned<std::uint16_t>(storage.data(), 3), Contains("aligned to 2"));
    CHECK(error_for_misaligned<std::uint32_t>(storage.data(), 4) == "no error");
    CHECK(error_for_misaligned<std::uint8_t>(storage.data(), 3) == "no error");
}
