#pragma once

#include <ringio/detail/chrono.hpp>
#include <ringio/detail/error.hpp>

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

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

namespace detail {

// FUTEX_WAIT_BITSET without FUTEX_PRIVATE_FLAG: the kernel keys a shared futex by the page
// behind the address (the file or shmem object and the offset), so a waiter in one process is
// found by a waker in another that maps the same page at any address. The deadline is absolute,
// on CLOCK_MONOTONIC, so retries after a spurious wake-up need no recomputation; null waits
// forever. Returns 0 or -errno.
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

} // namespace detail

/// An integer type that `shared_atomic_ref` accepts: lock-free as `std::atomic_ref`, hence
/// address-free, so it works between processes ([atomics.lockfree]). `const` for read-only use.
template <class I>
concept shared_integer = std::integral<std::remove_const_t<I>> && !std::is_volatile_v<I> &&
                         std::atomic_ref<std::remove_const_t<I>>::is_always_lock_free;

/// Atomic access to an integer in memory shared between processes (a field of a `mapped<T>`),
/// and a wait/notify that works across processes. A reference: it owns nothing, and the integer
/// must outlive it. `shared_atomic_ref<const I>` (from a read-only view) can load and wait.
///
/// Why not a plain loop or `volatile`: the optimiser may hoist a plain load out of a loop and
/// never see another process's store, and `volatile` orders nothing. Why not
/// `std::atomic::wait`: libstdc++ and libc++ wait on process-private futexes, which a notify
/// from another process never wakes. See docs/design.md, "Waiting across processes".
template <shared_integer I>
class shared_atomic_ref {
    // Declared first: the requires-clauses below name it.
    static constexpr bool writable_ = !std::is_const_v<I>;

public:
    /// The integer type, without `const`.
    using value_type = std::remove_const_t<I>;

    /// Refers to `object`. Throws `std::system_error` (EINVAL), on every architecture, if it is
    /// not aligned as `std::atomic_ref` requires.
    explicit shared_atomic_ref(I& object) : object_(&object) {
        // Checked even where required_alignment is alignof(I), as on x86-64: a misaligned
        // integer (in a packed struct, or cast from bytes) would make every futex call EINVAL,
        // and an access split across cache lines is not atomic. Binding a reference to it is
        // undefined, so the compiler may assume the alignment and fold the test away (clang
        // does at -O1): the empty asm hides from it what it knows about the address.
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

    /// Blocks until the value differs from `old`, as read with `order` (use acquire or
    /// seq_cst to see what the other process wrote before its store). Wakes on a `notify_*`
    /// from any process that maps the same memory; spurious wake-ups and signals are absorbed.
    /// 32-bit integers only: a futex word is 32 bits.
    /// Errors: throws `std::system_error` for an unexpected futex error (none is known).
    void wait(value_type old, std::memory_order order = std::memory_order_seq_cst) const
    requires(sizeof(value_type) == 4)
    {
        wait_on(old, order, nullptr);
    }

    /// As `wait`, but gives up at `deadline`. Returns true when the value differs from `old`,
    /// false when the deadline passed with the value still `old`.
    bool wait_until(value_type old, std::chrono::steady_clock::time_point deadline,
                    std::memory_order order = std::memory_order_seq_cst) const
    requires(sizeof(value_type) == 4)
    {
        // steady_clock is CLOCK_MONOTONIC in libstdc++ and libc++, the futex's clock.
        const auto since_epoch = deadline.time_since_epoch();
        const auto seconds = std::chrono::floor<std::chrono::seconds>(since_epoch);
        ::timespec ts{};
        ts.tv_sec = static_cast<std::time_t>(seconds.count());
        ts.tv_nsec = static_cast<long>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(since_epoch - seconds).count());
        return wait_on(old, order, &ts);
    }

    /// As `wait`, but gives up after `timeout`. Returns true when the value differs from `old`,
    /// false on timeout.
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

    /// Wakes one process or thread waiting on this integer. Call it after the store the waiter
    /// waits for: the futex compares the value under its own lock, so no wake-up is lost.
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
