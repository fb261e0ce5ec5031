#pragma once

// futex: the futex system calls, and the SQEs of the ring's futex wait and wake, on words shared
// between processes.

#include <liburing.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <ctime>

namespace ringio::detail {

// FUTEX_WAIT_BITSET without FUTEX_PRIVATE_FLAG: the kernel keys a shared futex by the page behind
// the address, so a waker in any process that maps the page finds the waiter. The deadline is
// absolute (CLOCK_MONOTONIC), so a retry needs no recomputation; null waits forever. 0 or -errno.
inline int futex_wait(const void* word, std::uint32_t expected,
                      const ::timespec* deadline) noexcept {
    const long rc = ::syscall(SYS_futex, word, FUTEX_WAIT_BITSET, expected, deadline, nullptr,
                              FUTEX_BITSET_MATCH_ANY);
    return rc == 0 ? 0 : -errno;
}

// FUTEX_WAKE, shared: wakes up to `count` waiters on `word` in any process.
inline void futex_wake(const void* word, int count) noexcept {
    ::syscall(SYS_futex, word, FUTEX_WAKE, count, nullptr, nullptr, 0);
}

// The kernel's ABI for IORING_OP_FUTEX_WAIT and _WAKE (Linux 6.7, io_uring/futex.c), which
// liburing 2.3 has no helper for: `fd` holds the futex2 flags, `addr` the word, `addr2` the
// expected value (or how many to wake), `addr3` the bitset; `len` and the op flags stay 0.
inline constexpr int futex_wait_opcode = 51;
inline constexpr int futex_wake_opcode = 52;
// FUTEX2_SIZE_U32 without FUTEX2_PRIVATE: keyed by the page behind the address, so that a waker in
// any process that maps the page finds the waiter, as the blocking wait's futex does.
inline constexpr int futex2_shared_u32 = 0x02;

inline void prep_futex_wait(io_uring_sqe* sqe, const void* word, std::uint32_t expected) noexcept {
    io_uring_prep_rw(futex_wait_opcode, sqe, futex2_shared_u32, word, 0, expected);
    sqe->addr3 = FUTEX_BITSET_MATCH_ANY;
}

inline void prep_futex_wake(io_uring_sqe* sqe, const void* word, std::uint32_t count) noexcept {
    io_uring_prep_rw(futex_wake_opcode, sqe, futex2_shared_u32, word, 0, count);
    sqe->addr3 = FUTEX_BITSET_MATCH_ANY;
}

/// FUTEX_WAKE without FUTEX_PRIVATE_FLAG, as a system call: how many it woke (0 on error).
inline int futex_wake_count(const void* word, int count) noexcept {
    const long woken = ::syscall(SYS_futex, word, FUTEX_WAKE, count, nullptr, nullptr, 0);
    return woken > 0 ? static_cast<int>(woken) : 0;
}

/// Whether the ring can wait on and wake futexes: the running kernel is probed once per process.
class futex_support {
public:
    /// True when the kernel has both opcodes and the fallback is not forced.
    static bool available() noexcept {
        // One load on every call after the first: the probe's answer and the forcing share it.
        const int known = state().load(std::memory_order_acquire);
        return known == usable || (known == unknown && probe_once());
    }

    /// Makes `available()` false from now on, for the tests of the fallback; false undoes it.
    static void force_fallback(bool on) noexcept {
        if (on) {
            state().fetch_or(forced, std::memory_order_relaxed);
        } else {
            state().fetch_and(~forced, std::memory_order_relaxed);
        }
    }

private:
    // The probe's answer in the low bits, `forced` above them.
    static constexpr int unknown = 0;
    static constexpr int usable = 1;
    static constexpr int missing = 2;
    static constexpr int forced = 4;

    [[gnu::cold, gnu::noinline]] static bool probe_once() noexcept {
        const int answer = probe() ? usable : missing;
        const int now = state().fetch_or(answer, std::memory_order_acq_rel) | answer;
        return now == usable;
    }
    // The running kernel, not the headers: a probe ring of its own, so that no context's ring
    // (perhaps not yet enabled on its thread) is involved.
    static bool probe() noexcept {
        io_uring_probe* probe = io_uring_get_probe();
        if (probe == nullptr) {
            return false;
        }
        const bool both = io_uring_opcode_supported(probe, futex_wait_opcode) != 0 &&
                          io_uring_opcode_supported(probe, futex_wake_opcode) != 0;
        io_uring_free_probe(probe);
        return both;
    }
    static std::atomic<int>& state() noexcept {
        static std::atomic<int> known{unknown};
        return known;
    }
};

/// The fallback's timer: an interval that starts short and doubles up to a ceiling, so that a
/// change soon after the wait starts is seen soon, and a long wait costs few loop turns.
struct poll_tick {
    static constexpr long long first_ns = 20'000;
    static constexpr long long ceiling_ns = 1'000'000;
    __kernel_timespec interval{0, first_ns};

    void prepare(io_uring_sqe* sqe) noexcept { io_uring_prep_timeout(sqe, &interval, 0, 0); }
    void next() noexcept { interval.tv_nsec = std::min(interval.tv_nsec * 2, ceiling_ns); }
};

/// A sleep until a shared word may differ from `expected`: a futex wait through the ring, or on a
/// kernel without it the fallback's timer, at each tick of which the waiter looks again.
struct futex_sleep {
    const void* word;
    std::uint32_t expected;
    bool native;
    poll_tick tick{};

    void prepare(io_uring_sqe* sqe) noexcept {
        if (native) {
            prep_futex_wait(sqe, word, expected);
        } else {
            tick.prepare(sqe);
        }
    }
    // EAGAIN: the word differed already when the kernel compared it; ETIME: a tick ended.
    [[nodiscard]] int translate(int result) const noexcept {
        return result == (native ? -EAGAIN : -ETIME) ? 0 : result;
    }
    // After a wake-up that changed nothing it waits again; the timer waits a little longer.
    void again() noexcept {
        if (!native) {
            tick.next();
        }
    }
};

} // namespace ringio::detail
