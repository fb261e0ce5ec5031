#pragma once

// operation: the one awaitable of every single-shot io_uring request, and the concept its
// policies satisfy.

#include <ringio/detail/chrono.hpp>
#include <ringio/detail/error.hpp>
#include <ringio/detail/tracked.hpp>
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

namespace ringio {

class descriptor;

namespace detail {
descriptor_core& core_of(descriptor& owner) noexcept;
} // namespace detail

/// What one kind of request contributes: its SQE, the value of a non-negative result, and the
/// words an error names it by.
template <class Op>
concept io_operation = requires(Op& op, const Op& cop, io_uring_sqe* sqe, int result) {
    { op.prepare(sqe) } noexcept -> std::same_as<void>;
    op.complete(result);
    { cop.describe() } -> std::convertible_to<std::string>;
};

/// Awaits `Awaitable` through a pointer: what the adaptors of a named awaitable return.
template <class Awaitable>
class awaiting {
public:
    explicit awaiting(Awaitable& target) noexcept : target_(&target) {}
    bool await_ready() const noexcept { return target_->await_ready(); }
    auto await_suspend(std::coroutine_handle<> waiter) noexcept {
        return target_->await_suspend(waiter);
    }
    decltype(auto) await_resume() { return target_->await_resume(); }

    /// The adaptors, applied to the awaitable itself.
    awaiting into(std::error_code& error) noexcept {
        (void)target_->into(error);
        return *this;
    }
    template <class Rep, class Period>
    awaiting with_timeout(std::chrono::duration<Rep, Period> limit) noexcept {
        (void)target_->with_timeout(limit);
        return *this;
    }

private:
    Awaitable* target_;
};

/// The awaitable of one io_uring request: submitted when awaited, resumed once after its last
/// completion, its result mapped to a value or an error. Pinned: its address is the request's.
template <io_operation Op>
class [[nodiscard]] operation : private detail::tracked {
public:
    /// What `co_await` produces.
    using value_type = decltype(std::declval<Op&>().complete(0));

    /// A request on `context`'s ring, built from `args`.
    template <class... Args>
    explicit operation(io_context& context, Args&&... args)
        : tracked{{&on_completion}}, ring_(&detail::ring_of(context)),
          op_{std::forward<Args>(args)...} {}

    /// A request on `owner`, which cancels it when closed or destroyed.
    template <class... Args>
    explicit operation(descriptor& owner, Args&&... args)
        : tracked{{&on_completion}}, ring_(&detail::core_of(owner).owner()),
          owner_(&detail::core_of(owner)), fd_(owner_->fd()), op_{std::forward<Args>(args)...} {}

    operation(const operation&) = delete;
    operation& operator=(const operation&) = delete;
    operation& operator=(operation&&) = delete;
    ~operation() {
        if (pending_ != 0 && !ring_->draining()) {
            std::fputs("ringio: operation destroyed while in flight\n", stderr);
            std::terminate(); // the kernel would write into freed memory
        }
    }

    /// Fails with `ETIME` unless it completes within `limit`.
    template <class Rep, class Period>
    [[nodiscard]] operation with_timeout(std::chrono::duration<Rep, Period> limit) && noexcept {
        set_timeout(limit);
        return operation{std::move(*this)};
    }
    /// As above, on a named operation.
    template <class Rep, class Period>
    awaiting<operation> with_timeout(std::chrono::duration<Rep, Period> limit) & noexcept {
        set_timeout(limit);
        return awaiting<operation>{*this};
    }

    /// Stores an error in `error` instead of throwing it (and clears it on success).
    [[nodiscard]] operation into(std::error_code& error) && noexcept {
        error_ = &error;
        return operation{std::move(*this)};
    }
    /// As above, on a named operation.
    awaiting<operation> into(std::error_code& error) & noexcept {
        error_ = &error;
        return awaiting<operation>{*this};
    }

    /// Asks the kernel to cancel the request while pending; it still completes once.
    void cancel() noexcept {
        if (pending_ != 0 && !cancel_requested_) {
            cancel_requested_ = true;
            ring_->cancel(user_data()); // queued behind the request's own SQE
        }
    }

    /// True while submitted and not yet completed.
    [[nodiscard]] bool pending() const noexcept { return pending_ != 0; }

    bool await_ready() const noexcept { return false; }

    void await_suspend(std::coroutine_handle<> waiter) noexcept {
        waiter_ = waiter;
        if (has_timeout_) {
            timespec now{};
            ::clock_gettime(CLOCK_MONOTONIC, &now);
            const auto end =
                std::chrono::seconds(now.tv_sec) + std::chrono::nanoseconds(now.tv_nsec) + timeout_;
            const auto seconds = std::chrono::floor<std::chrono::seconds>(end);
            deadline_ = {seconds.count(), (end - seconds).count()};
        }
        // Only a request on an open descriptor joins its list: a closed one's list is never
        // emptied, and it may be destroyed before such a request completes (with EBADF).
        if (owner_ != nullptr && fd_ >= 0 && owner_->fd() == fd_) {
            owner_->link(*this);
        }
        submit();
    }

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
        detail::clear(error_);
        return op_.complete(result_);
    }

private:
    // Out of line: every co_await would otherwise carry its own copy of the message building.
    [[gnu::cold, gnu::noinline]] void fail() {
        // A linked timeout that fired cancels its request: report why it was cancelled.
        const int code = result_ == -ECANCELED && timed_out_ ? ETIME : -result_;
        const std::error_code ec(code, std::system_category());
        if (error_ == nullptr) {
            detail::throw_error(ec, op_.describe());
        }
        *error_ = ec;
    }

    // Moves only from the adaptors, before the request is submitted.
    operation(operation&& other) noexcept
        : tracked{{&on_completion}}, ring_(other.ring_), owner_(other.owner_), fd_(other.fd_),
          error_(other.error_), has_timeout_(other.has_timeout_), timeout_(other.timeout_),
          op_(std::move(other.op_)) {}

    template <class Rep, class Period>
    void set_timeout(std::chrono::duration<Rep, Period> limit) noexcept {
        timeout_ = std::chrono::duration_cast<std::chrono::nanoseconds>(limit);
        has_timeout_ = true;
    }

    void submit() noexcept {
        if (has_timeout_ || (owner_ != nullptr && owner_->fd() != fd_)) [[unlikely]] {
            submit_unusual();
            return;
        }
        io_uring_sqe* sqe = ring_->get_sqe();
        op_.prepare(sqe);
        io_uring_sqe_set_data64(sqe, user_data());
        pending_ = 1;
    }

    [[gnu::noinline]] void submit_unusual() noexcept {
        if (owner_ != nullptr && owner_->fd() != fd_) {
            // Closed (or replaced) since the operation was made: never use the old number,
            // which may name another file by now. A NOP completes it with EBADF.
            closed_ = true;
            io_uring_sqe* sqe = ring_->get_sqe();
            io_uring_prep_nop(sqe);
            io_uring_sqe_set_data64(sqe, user_data());
            pending_ = 1;
            return;
        }
        ring_->reserve(2); // a linked timeout is submitted with its request, never alone
        io_uring_sqe* sqe = ring_->get_sqe();
        op_.prepare(sqe);
        io_uring_sqe_set_data64(sqe, user_data());
        sqe->flags |= IOSQE_IO_LINK;
        io_uring_sqe* timer = ring_->get_sqe();
        io_uring_prep_link_timeout(timer, &deadline_, IORING_TIMEOUT_ABS);
        io_uring_sqe_set_data64(timer, user_data() | 1U);
        pending_ = 2;
    }

    static void on_completion(detail::completion* self, const io_uring_cqe& cqe) noexcept {
        auto& op = *static_cast<operation*>(static_cast<detail::tracked*>(self));
        if ((cqe.user_data & 1U) != 0) {
            op.timed_out_ = op.timed_out_ || cqe.res == -ETIME;
        } else if (op.closed_) [[unlikely]] {
            op.result_ = -EBADF;
        } else if constexpr (requires { op.op_.translate(cqe.res); }) {
            op.result_ = op.op_.translate(cqe.res);
        } else {
            op.result_ = cqe.res;
        }
        if (--op.pending_ != 0) {
            return;
        }
        if (op.ring_->draining()) [[unlikely]] {
            // Shutdown: the waiting frame is about to be destroyed, never resumed.
            if constexpr (requires { op.op_.discard(op.result_); }) {
                if (op.result_ >= 0) {
                    op.op_.discard(op.result_);
                }
            }
            detail::descriptor_core::unlink(op);
            return;
        }
        if constexpr (requires { op.op_.again(op.result_); }) {
            if (op.result_ >= 0 && op.op_.again(op.result_)) {
                const bool closed = op.owner_ != nullptr && op.core == nullptr;
                if (!op.cancel_requested_ && !op.timed_out_ && !closed) {
                    if (op.owner_ != nullptr) {
                        op.owner_ = op.core; // the descriptor may have moved meanwhile
                    }
                    op.submit();
                    return;
                }
                // Stopped part-way: reporting the partial count as success would be a
                // silent truncation.
                op.result_ = op.timed_out_ ? -ETIME : closed ? -EBADF : -ECANCELED;
            }
        }
        detail::descriptor_core::unlink(op);
        op.waiter_.resume();
    }

    detail::ring* ring_;
    detail::descriptor_core* owner_ = nullptr;
    int fd_ = -1;
    std::error_code* error_ = nullptr;
    std::coroutine_handle<> waiter_;
    int result_ = 0;
    std::uint8_t pending_ = 0;
    bool has_timeout_ = false;
    bool timed_out_ = false;
    bool cancel_requested_ = false;
    bool closed_ = false;
    std::chrono::nanoseconds timeout_{};
    __kernel_timespec deadline_; // written in await_suspend when a timeout is set
    Op op_;
};

} // namespace ringio
