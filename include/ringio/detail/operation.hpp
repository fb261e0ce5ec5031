#pragma once

#include <ringio/detail/chrono.hpp>
#include <ringio/detail/error.hpp>
#include <ringio/io_context.hpp>

#include <liburing.h>

#include <concepts>
#include <coroutine>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <exception>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

namespace ringio::detail {

/// What one kind of operation contributes: how to prepare its SQE and how to turn a
/// non-negative result into its value. The struct lives inside the awaitable, so whatever the
/// kernel reads from it (a `msghdr`, a `sockaddr_storage`) has a stable address.
///
/// Optional members, found by `requires`:
/// - `int translate(int result) noexcept`: adjusts the raw result first (a timer's `-ETIME`
///   is its success).
/// - `bool again(int result) noexcept`: true asks for another submission with the state the
///   result updated (the rest of a partial write).
/// - `void discard(int result) noexcept`: releases what a result carries when nobody will
///   receive it (a descriptor from accept, completing during shutdown).
/// - `value_type failed()`: the value the non-throwing form produces on error, for a value
///   type that has no default constructor.
template <class Op>
concept io_op = requires(Op& op, const Op& cop, io_uring_sqe* sqe, int result) {
    { op.prepare(sqe) } noexcept -> std::same_as<void>;
    op.complete(result);
    { cop.describe() } -> std::convertible_to<std::string>;
};

/// Awaits `Awaitable` through a pointer. g++ 12 copies the operand of `co_await` when it is a
/// reference returned by a call, which a pinned awaitable cannot survive; this small handle is
/// what such calls return instead.
template <class Awaitable>
class awaiting {
public:
    explicit awaiting(Awaitable& target) noexcept : target_(&target) {}

    bool await_ready() const noexcept { return target_->await_ready(); }
    auto await_suspend(std::coroutine_handle<> waiter) noexcept {
        return target_->await_suspend(waiter);
    }
    decltype(auto) await_resume() { return target_->await_resume(); }

private:
    Awaitable* target_;
};

/// The one awaitable every operation shares: takes its SQE when awaited (never before), keeps
/// the suspended coroutine's handle, resumes it once after the last CQE the submission
/// produces, and maps the result to a value or an error.
///
/// Not movable: its address is the SQE's `user_data`, and the kernel reads from it until the
/// completion arrives.
template <io_op Op>
class [[nodiscard]] operation : private completion {
public:
    /// The value `co_await` produces.
    using value_type = decltype(std::declval<Op&>().complete(0));

    /// Builds the operation for `context`; errors are thrown unless `error` is not null, in
    /// which case they are stored there and `co_await` produces a default value.
    template <class... Args>
    explicit operation(io_context& context, std::error_code* error, Args&&... args)
        : completion{&on_completion}, context_(&context), error_(error),
          op_{std::forward<Args>(args)...} {}

    operation(const operation&) = delete;
    operation& operator=(const operation&) = delete;
    operation& operator=(operation&&) = delete;
    ~operation() {
        // Only reachable by destroying a suspended frame outside the context's shutdown (which
        // has drained, or dropped SQEs the kernel never saw), which the public API does not
        // allow: the kernel would write into freed memory.
        if (pending_ != 0 && !context_->draining()) {
            std::fputs("ringio: operation destroyed while in flight\n", stderr);
            std::terminate();
        }
    }

    /// Limits the operation to `limit`: when it runs out, the operation is cancelled and
    /// completes with `ETIME` (an `std::error_code` equal to `std::errc::stream_timeout`).
    /// For operations that submit several steps, the limit covers all of them.
    /// Set it before awaiting.
    template <class Rep, class Period>
    [[nodiscard]] operation with_timeout(std::chrono::duration<Rep, Period> limit) && noexcept {
        set_timeout(limit);
        // A new prvalue rather than a reference: g++ 12 copies an awaitable reached through
        // a reference to a temporary, which a non-copyable type cannot survive.
        return operation{std::move(*this)};
    }

    /// As above, for an operation held in a variable (to `cancel()` it from elsewhere); awaiting
    /// the result awaits the operation itself.
    template <class Rep, class Period>
    awaiting<operation> with_timeout(std::chrono::duration<Rep, Period> limit) & noexcept {
        set_timeout(limit);
        return awaiting<operation>{*this};
    }

    /// Asks the kernel to cancel this operation while it is pending. It still completes exactly
    /// once: with `ECANCELED`, or with its own result if that arrived first. Does nothing when
    /// the operation is not pending.
    void cancel() noexcept {
        if (pending_ == 0 || cancel_requested_) {
            return;
        }
        cancel_requested_ = true;
        // The cancel SQE is queued behind this operation's own, and the kernel issues SQEs in
        // order, so it can never find a later operation that reuses this address.
        io_uring_sqe* sqe = context_->get_sqe();
        io_uring_prep_cancel64(sqe, user_data(), 0);
        io_uring_sqe_set_data64(sqe, 0);
    }

    /// True while submitted and not yet completed.
    [[nodiscard]] bool pending() const noexcept { return pending_ != 0; }

    /// Always false: an operation completes through the ring.
    bool await_ready() const noexcept { return false; }

    /// Prepares the SQE (and its linked timeout) for the next loop turn to submit.
    void await_suspend(std::coroutine_handle<> waiter) noexcept {
        waiter_ = waiter;
        if (has_timeout_) {
            timespec now{};
            ::clock_gettime(CLOCK_MONOTONIC, &now);
            const auto end =
                std::chrono::seconds(now.tv_sec) + std::chrono::nanoseconds(now.tv_nsec) + timeout_;
            const auto seconds = std::chrono::floor<std::chrono::seconds>(end);
            deadline_.tv_sec = seconds.count();
            deadline_.tv_nsec = (end - seconds).count();
        }
        submit();
    }

    /// The operation's value; throws `std::system_error` naming the operation on failure
    /// (or stores the error, for the non-throwing form).
    value_type await_resume() {
        if (result_ < 0) [[unlikely]] {
            fail();
            if constexpr (requires { op_.failed(); }) {
                return op_.failed();
            } else if constexpr (!std::is_void_v<value_type>) {
                return value_type{};
            } else {
                return;
            }
        }
        clear(error_);
        return op_.complete(result_);
    }

private:
    // The error path, out of line: every co_await would otherwise carry its own copy of the
    // message building, which costs compile time and code size for nothing.
    [[gnu::cold, gnu::noinline]] void fail() {
        // A linked timeout that fired cancels its operation: report why it was cancelled.
        const int code = result_ == -ECANCELED && timed_out_ ? ETIME : -result_;
        const std::error_code ec(code, std::system_category());
        if (error_ == nullptr) {
            throw_error(ec, op_.describe());
        }
        *error_ = ec;
    }

    // Only `with_timeout` moves, and only before the operation is awaited: once submitted its
    // address is the SQE's user_data.
    operation(operation&& other) noexcept
        : completion{&on_completion}, context_(other.context_), error_(other.error_),
          has_timeout_(other.has_timeout_), timeout_(other.timeout_), op_(std::move(other.op_)) {}

    template <class Rep, class Period>
    void set_timeout(std::chrono::duration<Rep, Period> limit) noexcept {
        timeout_ = std::chrono::duration_cast<std::chrono::nanoseconds>(limit);
        has_timeout_ = true;
    }

    std::uint64_t user_data() const noexcept {
        return reinterpret_cast<std::uintptr_t>(static_cast<const completion*>(this));
    }

    void submit() noexcept {
        if (has_timeout_) [[unlikely]] {
            submit_with_timeout();
            return;
        }
        io_uring_sqe* sqe = context_->get_sqe();
        op_.prepare(sqe);
        io_uring_sqe_set_data64(sqe, user_data());
        pending_ = 1;
    }

    // Out of line, so that the common submission stays a handful of stores.
    [[gnu::noinline]] void submit_with_timeout() noexcept {
        // A linked timeout must be submitted with its operation, never alone.
        context_->reserve(2);
        io_uring_sqe* sqe = context_->get_sqe();
        op_.prepare(sqe);
        io_uring_sqe_set_data64(sqe, user_data());
        sqe->flags |= IOSQE_IO_LINK;
        io_uring_sqe* timer = context_->get_sqe();
        io_uring_prep_link_timeout(timer, &deadline_, IORING_TIMEOUT_ABS);
        io_uring_sqe_set_data64(timer, user_data() | 1U);
        pending_ = 2;
    }

    static void on_completion(completion* self, const io_uring_cqe& cqe) noexcept {
        auto& op = *static_cast<operation*>(self);
        if ((cqe.user_data & 1U) != 0) {
            op.timed_out_ = op.timed_out_ || cqe.res == -ETIME;
        } else if constexpr (requires { op.op_.translate(cqe.res); }) {
            op.result_ = op.op_.translate(cqe.res);
        } else {
            op.result_ = cqe.res;
        }
        if (--op.pending_ != 0) {
            return;
        }
        if (op.context_->draining()) [[unlikely]] {
            // Shutdown: the waiting frame is about to be destroyed, never resumed.
            if constexpr (requires { op.op_.discard(op.result_); }) {
                if (op.result_ >= 0) {
                    op.op_.discard(op.result_);
                }
            }
            return;
        }
        if constexpr (requires { op.op_.again(op.result_); }) {
            if (op.result_ >= 0 && op.op_.again(op.result_)) {
                if (!op.cancel_requested_ && !op.timed_out_) {
                    op.submit();
                    return;
                }
                // Stopped part-way: reporting the partial count as success would be a
                // silent truncation.
                op.result_ = op.timed_out_ ? -ETIME : -ECANCELED;
            }
        }
        op.waiter_.resume();
    }

    io_context* context_;
    std::error_code* error_;
    std::coroutine_handle<> waiter_;
    int result_ = 0;
    std::uint8_t pending_ = 0;
    bool has_timeout_ = false;
    bool timed_out_ = false;
    bool cancel_requested_ = false;
    std::chrono::nanoseconds timeout_;
    // Written in await_suspend when a timeout is set; left alone (and unread) otherwise, so
    // that building an operation stays a handful of stores.
    __kernel_timespec deadline_;
    Op op_;
};

} // namespace ringio::detail
