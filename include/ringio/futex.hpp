#pragma once

// futex: a coroutine's wait on a shared_atomic_ref, and the wake-up of its waiters, through the
// ring (IORING_OP_FUTEX_WAIT and _WAKE), with a fallback for kernels without them.

#include <ringio/detail/chrono.hpp>
#include <ringio/detail/futex.hpp>
#include <ringio/io_context.hpp>
#include <ringio/operation.hpp>
#include <ringio/shared_atomic_ref.hpp>

#include <liburing.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

namespace ringio {

namespace detail {

/// IORING_OP_FUTEX_WAIT on a shared integer until it differs from `old`; on a kernel without it,
/// a timer that re-reads the integer at each expiry.
template <class I>
struct futex_wait_op {
    shared_atomic_ref<I> ref;
    std::remove_const_t<I> old;
    std::memory_order order;
    futex_sleep sleep{ref.address(), std::bit_cast<std::uint32_t>(old), futex_support::available()};
    std::remove_const_t<I> seen{};

    bool ready() noexcept {
        seen = ref.load(order);
        return seen != old;
    }
    void prepare(io_uring_sqe* sqe) noexcept { sleep.prepare(sqe); }
    [[nodiscard]] int translate(int result) const noexcept { return sleep.translate(result); }
    // A wake-up without a change (a notify for another value, a spurious one) waits again.
    bool again(int& /*result*/) noexcept {
        if (ready()) {
            return false;
        }
        sleep.again();
        return true;
    }
    auto complete(int /*result*/) const noexcept { return seen; }
    [[nodiscard]] std::string describe() const {
        return "wait on a shared integer holding " + std::to_string(old);
    }
};

/// IORING_OP_FUTEX_WAKE of up to `count` waiters; on a kernel without it, the system call, made
/// when awaited, with no request.
struct futex_wake_op {
    const void* word;
    std::uint32_t count;
    bool native = futex_support::available();
    int woken = 0;

    bool ready() noexcept {
        if (native) {
            return false;
        }
        woken = futex_wake_count(word, static_cast<int>(count));
        return true;
    }
    void prepare(io_uring_sqe* sqe) noexcept { prep_futex_wake(sqe, word, count); }
    [[nodiscard]] std::size_t complete(int result) const noexcept {
        return static_cast<std::size_t>(native ? result : woken);
    }
    [[nodiscard]] static std::string describe() { return "wake the waiters on a shared integer"; }
};

} // namespace detail

/// Suspends the awaiting coroutine until `ref`'s value, read with `order`, differs from `old`;
/// produces that value. Woken by a notify from any process that maps the same memory.
template <shared_integer I>
requires(sizeof(I) == 4)
auto wait(io_context& context, shared_atomic_ref<I> ref, std::remove_const_t<I> old,
          std::memory_order order = std::memory_order_seq_cst) {
    return operation<detail::futex_wait_op<I>>(context, ref, old, order);
}

/// Wakes one process, thread or coroutine waiting on `ref`, through the ring; produces how many
/// it woke (0 or 1).
template <shared_integer I>
requires(sizeof(I) == 4 && !std::is_const_v<I>)
auto notify_one(io_context& context, shared_atomic_ref<I> ref) {
    return operation<detail::futex_wake_op>(context, ref.address(), 1U);
}

/// Wakes every process, thread and coroutine waiting on `ref`, through the ring; produces how
/// many it woke.
template <shared_integer I>
requires(sizeof(I) == 4 && !std::is_const_v<I>)
auto notify_all(io_context& context, shared_atomic_ref<I> ref) {
    return operation<detail::futex_wake_op>(context, ref.address(),
                                            static_cast<std::uint32_t>(INT32_MAX));
}

} // namespace ringio
