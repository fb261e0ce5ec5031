#pragma once

// operation: the one awaitable of every single-shot io_uring request, and the concept its
// policies satisfy.

#include <ringio/cancellation.hpp>
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

/// An absolute CLOCK_MONOTONIC time, as a link timeout wants it.
inline __kernel_timespec monotonic_after(std::chrono::nanoseconds limit) noexcept {
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    auto end = std::chrono::seconds(now.tv_sec) + std::chrono::nanoseconds(now.tv_nsec) + limit;
    end = end.count() > 0 ? end : std::chrono::nanoseconds{0}; // the kernel refuses negative
    const auto seconds = std::chrono::floor<std::chrono::seconds>(end);
    return {seconds.count(), (end - seconds).count()};
}

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
    template <class Limit>
    awaiting with_timeout(Limit limit) noexcept {
        (void)target_->with_timeout(limit);
        return *this;
    }
    template <class Deadline>
    awaiting with_deadline(Deadline deadline) noexcept {
        (void)target_->with_deadline(deadline);
        return *this;
    }
    awaiting cancel_on(cancellation& signal) noexcept {
        (void)target_->cancel_on(signal);
        return *this;
    }

private:
    Awaitable* target_;
};

} // namespace detail

/// What one kind of request contributes: its SQE, the value of a non-negative result, and the
/// words an error names it by.
template <class Op>
concept io_operation = requires(Op& op, const Op& cop, io_uring_sqe* sqe, int result) {
    { op.prepare(sqe) } noexcept -> std::same_as<void>;
    op.complete(result);
    { cop.describe() } -> std::convertible_to<std::string>;
};

/// The awaitable of one io_uring request: submitted when awaited, resumed once after its last
/// completion, its result mapped to a value or an error. Pinned once awaited.
template <io_operation Op>
class [[nodiscard]] operation : private detail::tracked, private detail::timeout_completion {
public:
    /// What `co_await` produces.
    using value_type = decltype(std::declval<Op&>().complete(0));

    /// A request on `context`'s ring, built from `args`.
    template <class... Args>
    explicit operation(io_context& context, Args&&... args)
        : ring_(&detail::ring_of(context)), op_{std::forward<Args>(args)...} {}

    /// A request on `owner`, which cancels it when closed or destroyed.
    template <class... Args>
    explicit operation(descriptor& owner, Args&&... args)
        : ring_(&detail::core_of(owner).owner()), owner_(&detail::core_of(owner)),
          fd_(owner_->fd()), generation_(owner_->generation()), op_{std::forward<Args>(args)...} {}

    operation(const operation&) = delete;
    operation& operator=(const operation&) = delete;
    operation& operator=(operation&&) = delete;
    [[gnu::always_inline]] ~operation() {
        detail::cancellation_list::unlink(link_);
        if (pending_ != 0) [[unlikely]] {
            destroyed_in_flight();
        }
    }

    /// Fails with `ETIME` unless it completes within `limit` of being awaited.
    template <class Rep, class Period>
    [[nodiscard]] operation with_timeout(std::chrono::duration<Rep, Period> limit) && noexcept {
        return std::move(time(limit, timing::relative));
    }
    template <class Rep, class Period>
    auto with_timeout(std::chrono::duration<Rep, Period> limit) & noexcept {
        return detail::awaiting<operation>{time(limit, timing::relative)};
    }

    /// Fails with `ETIME` unless it completes by `deadline`.
    template <class Duration>
    [[nodiscard]] operation with_deadline(
        std::chrono::time_point<std::chrono::steady_clock, Duration> deadline) && noexcept {
        return std::move(time(deadline.time_since_epoch(), timing::absolute));
    }
    template <class Duration>
    auto with_deadline(
        std::chrono::time_point<std::chrono::steady_clock, Duration> deadline) & noexcept {
        return detail::awaiting<operation>{time(deadline.time_since_epoch(), timing::absolute)};
    }

    /// Stores an error in `error` instead of throwing it (and clears it on success).
    [[nodiscard]] operation into(std::error_code& error) && noexcept {
        error_ = &error;
        return std::move(*this);
    }
    auto into(std::error_code& error) & noexcept {
        error_ = &error;
        return detail::awaiting<operation>{*this};
    }

    /// Cancelled (`ECANCELED`) when `signal` is, even before it is awaited.
    [[nodiscard]] operation cancel_on(cancellation& signal) && noexcept {
        signal_ = &signal;
        return std::move(*this);
    }
    auto cancel_on(cancellation& signal) & noexcept {
        signal_ = &signal;
        return detail::awaiting<operation>{*this};
    }

    /// Asks the kernel to cancel the request while pending; it still completes once.
    void cancel() noexcept {
        if (pending_ != 0 && (state_ & cancel_requested) == 0) {
            state_ |= cancel_requested;
            ring_->cancel(tracked::user_data()); // queued behind the request's own SQE
        }
    }

    /// True while submitted and not yet completed.
    [[nodiscard]] bool pending() const noexcept { return pending_ != 0; }

    bool await_ready() noexcept {
        if constexpr (requires { op_.ready(); }) {
            if (op_.ready()) { // the value is there without a request
                result_ = 0;
                state_ = 0;
                return true;
            }
        }
        return false;
    }

    /// Submits the request; false, with the error set, when it fails before any request.
    bool await_suspend(std::coroutine_handle<> waiter) noexcept {
        state_ = 0;
        if (owner_ != nullptr &&
            (owner_->fd() != fd_ || owner_->generation() != generation_ || fd_ < 0)) [[unlikely]] {
            // Closed since it was made: the number may name another file now. The descriptor
            // is still there (it is awaited through it) to be named.
            subject_ = owner_->subject();
            result_ = -EBADF;
            return false;
        }
        if (signal_ != nullptr) [[unlikely]] {
            link_.cancel = &on_cancel;
            link_.target = this;
            if (!detail::watch(*signal_, link_)) {
                subject_ = nullptr;
                result_ = -ECANCELED;
                return false;
            }
        }
        // What only a request in flight needs is written now, not at each move before.
        waiter_ = waiter.address();
        tracked::complete = &on_completion;
        if (owner_ != nullptr) { // open, as checked above
            on_close = nullptr;
            owner_->link(*this);
        } else {
            core = nullptr;
        }
        if (timing_ != timing::none) [[unlikely]] {
            start_clock();
        }
        submit();
        return true;
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
    // Only the adaptors move, and only before the request is submitted: once awaited, its
    // address is the request's user_data.
    operation(operation&& other) noexcept
        : ring_(other.ring_), owner_(other.owner_), fd_(other.fd_), generation_(other.generation_),
          error_(other.error_), signal_(other.signal_), limit_(other.limit_),
          timing_(other.timing_), op_(std::move(other.op_)) {}
    enum class timing : std::uint8_t { none, relative, absolute };

    // Out of line, so that the destructor of each moved-from temporary stays two tests.
    [[gnu::cold, gnu::noinline]] void destroyed_in_flight() const noexcept {
        if (!ring_->draining()) {
            std::fputs("ringio: operation destroyed while in flight\n", stderr);
            std::terminate(); // the kernel would write into freed memory
        }
    }

    // Out of line: every co_await would otherwise carry its own copy of the message building.
    [[gnu::cold, gnu::noinline]] void fail() {
        // A linked timeout that fired cancels its request: report why it was cancelled.
        const int code = result_ == -ECANCELED && (state_ & timed_out) != 0 ? ETIME : -result_;
        const std::error_code ec(code, std::system_category());
        if (error_ == nullptr) {
            if constexpr (requires { op_.describe(subject_); }) {
                detail::throw_error(ec, op_.describe(subject_));
            } else {
                detail::throw_error(ec, op_.describe());
            }
        }
        *error_ = ec;
    }

    template <class Rep, class Period>
    operation& time(std::chrono::duration<Rep, Period> limit, timing how) noexcept {
        limit_ = std::chrono::duration_cast<std::chrono::nanoseconds>(limit);
        timing_ = how;
        return *this;
    }

    void submit() noexcept {
        if (timing_ != timing::none) [[unlikely]] {
            submit_linked();
            return;
        }
        io_uring_sqe* sqe = ring_->get_sqe();
        op_.prepare(sqe);
        io_uring_sqe_set_data64(sqe, tracked::user_data());
        pending_ = 1;
    }

    // Once, when awaited, not for each repeated step: one deadline covers every step.
    [[gnu::noinline]] void start_clock() noexcept {
        if (timing_ == timing::relative) {
            deadline_ = detail::monotonic_after(limit_);
            return;
        }
        // Before the clock's start (boot) is past too; the kernel refuses a negative time.
        const auto at = limit_.count() > 0 ? limit_ : std::chrono::nanoseconds{0};
        const auto seconds = std::chrono::floor<std::chrono::seconds>(at);
        deadline_ = {seconds.count(), (at - seconds).count()};
    }

    // Out of line, so that the common submission stays a handful of stores.
    [[gnu::noinline]] void submit_linked() noexcept {
        ring_->reserve(2); // a linked timeout is submitted with its request, never alone
        io_uring_sqe* sqe = ring_->get_sqe();
        op_.prepare(sqe);
        io_uring_sqe_set_data64(sqe, tracked::user_data());
        sqe->flags |= IOSQE_IO_LINK;
        io_uring_sqe* timer = ring_->get_sqe();
        io_uring_prep_link_timeout(timer, &deadline_, IORING_TIMEOUT_ABS);
        timeout_completion::complete = &on_timeout;
        io_uring_sqe_set_data64(timer, timeout_completion::user_data());
        pending_ = 2;
    }

    static void on_cancel(void* self) noexcept { static_cast<operation*>(self)->cancel(); }

    static void on_timeout(detail::completion* self, const io_uring_cqe& cqe) noexcept {
        auto& op = *static_cast<operation*>(static_cast<detail::timeout_completion*>(self));
        // A timeout that cancelled a futex wait reports how many it cancelled (Linux 6.7+).
        op.state_ |= cqe.res == -ETIME || cqe.res > 0 ? timed_out : 0U;
        completed(op);
    }

    static void on_completion(detail::completion* self, const io_uring_cqe& cqe) noexcept {
        auto& op = *static_cast<operation*>(static_cast<detail::tracked*>(self));
        if constexpr (requires { op.op_.translate(cqe.res); }) {
            op.result_ = op.op_.translate(cqe.res);
        } else {
            op.result_ = cqe.res;
        }
        completed(op);
    }

    // One of its SQEs completed: the last one resumes the awaiting coroutine.
    [[gnu::always_inline]] static void completed(operation& op) noexcept {
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
            op.finish();
            return;
        }
        if constexpr (requires { op.op_.again(op.result_); }) {
            if (op.result_ >= 0 && op.op_.again(op.result_)) {
                const bool closed = op.owner_ != nullptr && op.core == nullptr;
                if ((op.state_ & (cancel_requested | timed_out)) == 0 && !closed) {
                    op.owner_ = op.owner_ != nullptr ? op.core : nullptr; // it may have moved
                    op.submit();
                    return;
                }
                // Stopped part-way: reporting the partial count as success would be a
                // silent truncation.
                op.result_ = (op.state_ & timed_out) != 0 ? -ETIME : closed ? -EBADF : -ECANCELED;
            }
        }
        op.finish();
        std::coroutine_handle<>::from_address(op.waiter_).resume();
    }

    void finish() noexcept {
        // Still linked, the descriptor is open, and it outlives the resumption that may read it;
        // closed (or destroyed) meanwhile, it is named by number.
        subject_ = core != nullptr ? core->subject() : nullptr;
        detail::descriptor_core::unlink(*this);
        detail::cancellation_list::unlink(link_);
    }

    // Made by the constructors and carried by each move before the request is submitted.
    detail::ring* ring_;
    detail::descriptor_core* owner_ = nullptr;
    int fd_ = -1;
    unsigned generation_ = 0;
    std::error_code* error_ = nullptr;
    cancellation* signal_ = nullptr;
    std::chrono::nanoseconds limit_{};
    timing timing_ = timing::none;
    std::uint8_t pending_ = 0;
    // Written when awaited (the tracked links too), so that the moves leave them alone.
    static constexpr unsigned timed_out = 1;        // the linked timeout fired
    static constexpr unsigned cancel_requested = 2; // cancel() was asked
    unsigned state_;
    int result_;
    const void* subject_; // what the descriptor's errors name it by, when known
    void* waiter_;        // the awaiting coroutine's address
    detail::cancel_link link_;
    __kernel_timespec deadline_; // written when the request is submitted with a time limit
    Op op_;
};

} // namespace ringio
