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
