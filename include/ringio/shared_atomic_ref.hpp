#pragma once

/// shared_atomic_ref: atomic access to an integer shared between processes, and waiting on it.

#include <ringio/detail/chrono.hpp>
#include <ringio/detail/error.hpp>
#include <ringio/detail/futex.hpp>

#include <atomic>
#include <bit>
#include <cerrno>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <string>
#include <system_error>
#include <type_traits>

namespace ringio {

/// An integer type that `shared_atomic_ref` accepts: lock-free, hence address-free, so that it
/// works between processes ([atomics.lockfree]); `const` for read-only use.
template <class I>
concept shared_integer = std::integral<std::remove_const_t<I>> && !std::is_volatile_v<I> &&
                         std::atomic_ref<std::remove_const_t<I>>::is_always_lock_free;

/// Atomic access to an integer in memory shared between processes, and a wait/notify that works
/// across them. A reference: the integer must outlive it. `const I` can load and wait only.
template <shared_integer I>
class shared_atomic_ref {
    // Declared first: the requires-clauses below name it.
    static constexpr bool writable_ = !std::is_const_v<I>;

public:
    /// The integer type, without `const`.
    using value_type = std::remove_const_t<I>;

    /// Refers to `object`; throws `std::system_error` (EINVAL) if it is not aligned as
    /// `std::atomic_ref` requires, on every architecture.
    explicit shared_atomic_ref(I& object) : object_(&object) {
        // Checked even where required_alignment is alignof(I): the futex refuses a misaligned
        // word, and an access split across cache lines is not atomic. The compiler may assume a
        // reference is aligned and fold the test away: the empty asm hides the address from it.
        constexpr std::size_t alignment = std::atomic_ref<value_type>::required_alignment;
        auto address = reinterpret_cast<std::uintptr_t>(object_);
        __asm__("" : "+r"(address));
        if (address % alignment != 0) {
            detail::throw_error(detail::error_from_result(-EINVAL),
                                "shared_atomic_ref: the integer is not aligned to " +
                                    std::to_string(alignment) + " bytes");
        }
    }

    /// Reads the value.
    [[nodiscard]] value_type
    load(std::memory_order order = std::memory_order_seq_cst) const noexcept {
        return ref().load(order);
    }

    /// Writes `value`.
    void store(value_type value, std::memory_order order = std::memory_order_seq_cst) const noexcept
    requires writable_
    {
        ref().store(value, order);
    }

    /// Writes `value` and returns the previous value.
    value_type exchange(value_type value,
                        std::memory_order order = std::memory_order_seq_cst) const noexcept
    requires writable_
    {
        return ref().exchange(value, order);
    }

    /// Writes `desired` if the value equals `expected`, else loads the value into `expected`;
    /// returns whether it wrote.
    bool compare_exchange_strong(value_type& expected, value_type desired,
                                 std::memory_order order = std::memory_order_seq_cst) const noexcept
    requires writable_
    {
        return ref().compare_exchange_strong(expected, desired, order);
    }

    /// As `compare_exchange_strong`, but may fail spuriously: for use in a loop.
    bool compare_exchange_weak(value_type& expected, value_type desired,
                               std::memory_order order = std::memory_order_seq_cst) const noexcept
    requires writable_
    {
        return ref().compare_exchange_weak(expected, desired, order);
    }

    /// Adds `value` and returns the previous value.
    value_type fetch_add(value_type value,
                         std::memory_order order = std::memory_order_seq_cst) const noexcept
    requires writable_
    {
        return ref().fetch_add(value, order);
    }

    /// Subtracts `value` and returns the previous value.
    value_type fetch_sub(value_type value,
                         std::memory_order order = std::memory_order_seq_cst) const noexcept
    requires writable_
    {
        return ref().fetch_sub(value, order);
    }

    /// Blocks until the value, read with `order`, differs from `old`; woken by a `notify_*` from
    /// any process that maps the same memory. 32-bit integers only: a futex word is 32 bits.
    void wait(value_type old, std::memory_order order = std::memory_order_seq_cst) const
    requires(sizeof(value_type) == 4)
    {
        wait_on(old, order, nullptr);
    }

    /// As `wait`, but gives up at `deadline`: false when it passed with the value still `old`.
    bool wait_until(value_type old, std::chrono::steady_clock::time_point deadline,
                    std::memory_order order = std::memory_order_seq_cst) const
    requires(sizeof(value_type) == 4)
    {
        // steady_clock is CLOCK_MONOTONIC in libstdc++ and libc++, the futex's clock.
        const auto ns = std::chrono::nanoseconds(deadline.time_since_epoch()).count();
        const ::timespec ts{.tv_sec = ns / 1'000'000'000, .tv_nsec = ns % 1'000'000'000};
        return wait_on(old, order, &ts);
    }

    /// As `wait`, but gives up after `timeout`: false when it passed with the value still `old`.
    bool wait_for(value_type old, std::chrono::nanoseconds timeout,
                  std::memory_order order = std::memory_order_seq_cst) const
    requires(sizeof(value_type) == 4)
    {
        const auto now = std::chrono::steady_clock::now();
        if (timeout >= std::chrono::steady_clock::time_point::max() - now) {
            return wait_on(old, order, nullptr); // a deadline past the clock's range: none
        }
        return wait_until(old, now + timeout, order);
    }

    /// The integer it refers to (what a futex is keyed by).
    [[nodiscard]] I* address() const noexcept { return object_; }

    /// Wakes one process or thread waiting on this integer; call it after the store it waits for.
    void notify_one() const noexcept
    requires(sizeof(value_type) == 4)
    {
        detail::futex_wake(object_, 1);
    }

    /// Wakes every process and thread waiting on this integer.
    void notify_all() const noexcept
    requires(sizeof(value_type) == 4)
    {
        detail::futex_wake(object_, INT32_MAX);
    }

private:
    // Loads never write, so a read-only mapping may be read through atomic_ref<value_type>.
    std::atomic_ref<value_type> ref() const noexcept {
        return std::atomic_ref<value_type>(const_cast<value_type&>(*object_));
    }

    bool wait_on(value_type old, std::memory_order order, const ::timespec* deadline) const {
        while (load(order) == old) {
            const int rc = detail::futex_wait(object_, std::bit_cast<std::uint32_t>(old), deadline);
            if (rc == -ETIMEDOUT) {
                return load(order) != old;
            }
            // EAGAIN: the value had already changed; EINTR: a signal. Both re-check the value.
            if (rc != 0 && rc != -EAGAIN && rc != -EINTR) {
                detail::throw_error(detail::error_from_result(rc), "shared_atomic_ref: futex wait");
            }
        }
        return true;
    }

    I* object_;
};

} // namespace ringio
