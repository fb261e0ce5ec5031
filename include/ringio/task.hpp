#pragma once

// task: lazy coroutines, and how they start: awaited, spawned on a context, or waited for.

#include <ringio/io_context.hpp>

#include <atomic>
#include <coroutine>
#include <exception>
#include <optional>
#include <system_error>
#include <type_traits>
#include <utility>

namespace ringio {

template <class T = void>
class task;

namespace detail {

/// What every task's promise shares: where to go when the body finishes, its exception, and,
/// for a detached task, the context that owns its frame.
class promise_base {
public:
    /// A task is lazy: its body starts when it is awaited, spawned or waited for.
    std::suspend_always initial_suspend() const noexcept { return {}; }

    /// Resumes the awaiting coroutine by symmetric transfer (so chains of tasks that finish at once
    /// do not grow the stack), or, for a detached task, reports to its context and frees the frame.
    struct final_awaiter {
        bool await_ready() const noexcept { return false; }

        template <class Promise>
        std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> self) noexcept {
            promise_base& promise = self.promise();
            if (promise.continuation_) {
                return promise.continuation_;
            }
            if (promise.owner_ != nullptr) {
                roots_of(*promise.owner_).release(promise.hook_, std::move(promise.exception_));
                self.destroy();
            }
            return std::noop_coroutine();
        }

        void await_resume() const noexcept {}
    };

    /// See `final_awaiter`.
    final_awaiter final_suspend() const noexcept { return {}; }

    /// Keeps the exception for the awaiter (or the context, for a detached task).
    void unhandled_exception() noexcept { exception_ = std::current_exception(); }

    /// Hands the frame to `owner`, which frees it when the body finishes, or at shutdown.
    void detach(io_context& owner, std::coroutine_handle<> frame) noexcept {
        owner_ = &owner;
        hook_.frame = frame;
        roots_of(owner).adopt(hook_);
    }

    std::coroutine_handle<> continuation_;
    std::exception_ptr exception_;

private:
    io_context* owner_ = nullptr;
    root_hook hook_;
};

/// The promise of a `task<T>` that produces a value.
template <class T>
class promise : public promise_base {
public:
    task<T> get_return_object() noexcept;

    /// Stores the value of `co_return`.
    template <class U>
    requires std::is_convertible_v<U&&, T>
    void return_value(U&& value) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
        value_.emplace(std::forward<U>(value));
    }

    /// The value, or the exception the body ended with.
    T take() {
        if (exception_) {
            std::rethrow_exception(exception_);
        }
        return std::move(*value_);
    }

private:
    std::optional<T> value_;
};

/// The promise of a `task<void>`.
template <>
class promise<void> : public promise_base {
public:
    task<void> get_return_object() noexcept;

    /// Ends the body.
    void return_void() const noexcept {}

    /// Rethrows the exception the body ended with, if any.
    void take() const {
        if (exception_) {
            std::rethrow_exception(exception_);
        }
    }
};

} // namespace detail

/// A lazy coroutine producing a `T` (or nothing).
template <class T>
class [[nodiscard]] task {
public:
    /// The coroutine's promise type.
    using promise_type = detail::promise<T>;

    /// Owns `frame`.
    explicit task(std::coroutine_handle<promise_type> frame) noexcept : frame_(frame) {}

    task(task&& other) noexcept : frame_(std::exchange(other.frame_, {})) {}
    /// Destroys the frame it held (when `other`, which holds it by then, goes).
    task& operator=(task other) noexcept {
        std::swap(frame_, other.frame_);
        return *this;
    }
    ~task() { reset(); }

    /// Awaiting starts the task by symmetric transfer and produces its value, or rethrows its
    /// exception.
    struct awaiter {
        std::coroutine_handle<promise_type> frame;

        bool await_ready() const noexcept { return false; }

        std::coroutine_handle<> await_suspend(std::coroutine_handle<> waiter) const noexcept {
            frame.promise().continuation_ = waiter;
            return frame;
        }

        T await_resume() const { return frame.promise().take(); }
    };

    /// See `awaiter`.
    awaiter operator co_await() const& noexcept { return awaiter{frame_}; }

    /// Has the body run to its end?
    [[nodiscard]] bool done() const noexcept { return frame_ && frame_.done(); }

    /// Gives up ownership of the frame.
    std::coroutine_handle<promise_type> release() noexcept { return std::exchange(frame_, {}); }

private:
    void reset() noexcept {
        if (frame_) {
            std::exchange(frame_, {}).destroy();
        }
    }

    std::coroutine_handle<promise_type> frame_;
};

template <class T>
task<T> detail::promise<T>::get_return_object() noexcept {
    return task<T>{std::coroutine_handle<promise<T>>::from_promise(*this)};
}

inline task<void> detail::promise<void>::get_return_object() noexcept {
    return task<void>{std::coroutine_handle<promise<void>>::from_promise(*this)};
}

/// Starts `work` on `context` at once, detached.
inline void spawn(io_context& context, task<void> work) {
    const auto frame = work.release();
    frame.promise().detach(context, frame);
    frame.resume();
}

namespace detail {

// The two CQEs of the message that carries a frame: one in each ring.
struct hop_arrival : completion {};
struct hop_departure : completion {};

/// Carries a task's frame to a context that another thread runs (see `spawn_on`). Each end's
/// CQE names its own half; the second end done with it frees it.
struct hop : hop_arrival, hop_departure {
    hop(io_context& source, io_context& target, std::coroutine_handle<promise<void>> carried)
        : from(&source), to(&target), frame(carried) {
        hop_arrival::complete = &on_arrival;
        hop_departure::complete = &on_departure;
    }

    io_context* from;
    io_context* to;
    std::coroutine_handle<promise<void>> frame;
    std::atomic<int> ends{2};

    void leave() noexcept {
        if (ends.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            delete this;
        }
    }

    // On the target's thread: it owns the frame from here on.
    static void on_arrival(completion* self, const io_uring_cqe& /*cqe*/) {
        auto& carried = static_cast<hop&>(static_cast<hop_arrival&>(*self));
        io_context& target = *carried.to;
        const std::coroutine_handle<promise<void>> frame = carried.frame;
        carried.leave();
        ring_of(target).message_arrived();
        frame.promise().detach(target, frame);
        frame.resume();
    }

    // On the sender's thread: delivered, the frame is the target's; else it never left.
    static void on_departure(completion* self, const io_uring_cqe& cqe) noexcept {
        auto& carried = static_cast<hop&>(static_cast<hop_departure&>(*self));
        if (cqe.res >= 0) {
            carried.leave();
            return;
        }
        const std::coroutine_handle<promise<void>> frame = carried.frame;
        io_context& source = *carried.from;
        io_context& target = *carried.to;
        delete &carried; // the target never saw it
        ring_of(target).message_lost();
        frame.destroy();
        roots_of(source).report(std::make_exception_ptr(
            std::system_error(error_from_result(cqe.res), "spawn_on: IORING_OP_MSG_RING")));
    }
};

} // namespace detail

/// Starts `work` on `target`, a context that another thread runs, and returns at once.
inline void spawn_on(io_context& from, io_context& target, task<void> work) {
    if (&from == &target) {
        spawn(target, std::move(work));
        return;
    }
    auto* carried = new detail::hop(from, target, work.release());
    try {
        detail::ring_of(from).send_message(
            detail::ring_of(target), static_cast<detail::hop_arrival&>(*carried),
            static_cast<detail::hop_departure&>(*carried), "spawn_on");
    } catch (...) {
        work = task<void>{carried->frame};
        delete carried;
        throw;
    }
}

/// Runs `context` until `work` finishes, and returns its value or rethrows its exception.
template <class T>
T sync_wait(io_context& context, task<T> work) {
    const auto frame = work.release();
    frame.resume();
    try {
        detail::ring& ring = detail::ring_of(context);
        if (!frame.done()) {
            ring.check_thread(); // once: the loop stays on this thread
        }
        while (!frame.done()) {
            if (context.stopped()) {
                context.restart();
                throw std::system_error(std::make_error_code(std::errc::operation_canceled),
                                        "sync_wait: the io_context was stopped first");
            }
            if (ring.in_flight() == 0) {
                throw std::system_error(
                    std::make_error_code(std::errc::resource_deadlock_would_occur),
                    "sync_wait: the task is suspended but no operation could resume it");
            }
            // As run_once, which would check the thread and count what is in flight again.
            ring.turn_on_own_thread(true);
            detail::roots_of(context).deliver();
        }
    } catch (...) {
        if (!frame.done()) {
            frame.promise().detach(context, frame);
        } else {
            frame.destroy();
        }
        throw;
    }
    const task<T> owner{frame};
    return frame.promise().take();
}

} // namespace ringio
