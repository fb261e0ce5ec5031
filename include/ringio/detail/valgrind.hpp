#pragma once

// valgrind: what io_uring hides from valgrind, told to it when RINGIO_VALGRIND is set.

// Running under valgrind (memcheck): opt in by defining RINGIO_VALGRIND=1 where
// <valgrind/memcheck.h> exists (Debian's valgrind package ships it). Without the macro this
// compiles to nothing.
//
// Valgrind follows the system calls it knows, but io_uring moves data behind its back:
// - memcheck cannot see the kernel write a buffer through the ring, so every byte received
//   would count as uninitialised; the operations that receive mark what arrived as defined.
// - valgrind 3.19 and older run one thread at a time and keep their scheduler lock across
//   io_uring_enter, which they do not treat as blocking: a thread waiting for completions
//   would keep every other thread of the process from running. Under valgrind the loop
//   waits in short slices instead and yields between them.

#include <liburing.h>
#include <sched.h>

#include <cerrno>
#include <cstddef>

#if defined(RINGIO_VALGRIND) && RINGIO_VALGRIND
#include <valgrind/memcheck.h>
#include <valgrind/valgrind.h>
#endif

namespace ringio::detail {

/// True when the program runs under valgrind and ringio was built to know it.
inline bool running_on_valgrind() noexcept {
#if defined(RINGIO_VALGRIND) && RINGIO_VALGRIND
    static const bool running = RUNNING_ON_VALGRIND != 0;
    return running;
#else
    return false;
#endif
}

/// Submits, and waits for a completion for a short slice at most, then lets the other threads
/// run: valgrind would keep them all stopped while this one waits in io_uring_enter.
inline int submit_and_wait_in_slice(io_uring& ring) noexcept {
    __kernel_timespec slice{0, 10'000'000};
    io_uring_cqe* ready = nullptr;
    const int result = io_uring_submit_and_wait_timeout(&ring, &ready, 1, &slice, nullptr);
    if (result == -ETIME) {
        ::sched_yield();
        return 0;
    }
    return result;
}

/// Tells memcheck that the kernel has written `size` bytes at `data` (through the ring).
inline void mark_received(const void* data, std::size_t size) noexcept {
#if defined(RINGIO_VALGRIND) && RINGIO_VALGRIND
    if (size > 0) {
        (void)VALGRIND_MAKE_MEM_DEFINED(data, size);
    }
#else
    (void)data;
    (void)size;
#endif
}

} // namespace ringio::detail
