#pragma once

// multishot: a stream of completions of one request (accept_all, receive, receive_from),
// consumed one `co_await next()` at a time.

#include <ringio/detail/slot.hpp>
#include <ringio/detail/tracked.hpp>

#include <coroutine>
#include <system_error>
#include <utility>

namespace ringio {

namespace detail {

/// What a stream of `T` adds to its slot: `kind` (how to arm and release), `state` (what its
/// errors name, and its end), `ready(state)` and `take(slot, state, entry, error)`.
template <class T>
struct multishot_policy;

} // namespace detail

/// A stream of `T`s from one io_uring request that completes many times (or is armed again
/// after each completion). Move-only; destroying it cancels the request.
template <class T, class Policy = detail::multishot_policy<T>>
class multishot {
public:
    multishot(multishot&& other) noexcept
        : slot_(std::exchange(other.slot_, nullptr)), state_(std::move(other.state_)) {}
    multishot& operator=(multishot&& other) noexcept {
        if (this != &other) {
            reset();
            slot_ = std::exchange(other.slot_, nullptr);
            state_ = std::move(other.state_);
        }
        return *this;
    }
    multishot(const multishot&) = delete;
    multishot& operator=(const multishot&) = delete;
    ~multishot() { reset(); }

    /// The awaitable of `next()`: `co_await` produces a `T`.
    class [[nodiscard]] next_operation {
    public:
        /// Stores an error in `error` instead of throwing it.
        next_operation into(std::error_code& error) && noexcept {
            error_ = &error;
            return *this;
        }

        bool await_ready() const noexcept {
            return owner_->slot_->ready() || Policy::ready(owner_->state_);
        }
        bool await_suspend(std::coroutine_handle<> waiter) noexcept {
            waiter_.handle = waiter;
            return owner_->slot_->wait(waiter_);
        }
        T await_resume() {
            return Policy::take(*owner_->slot_, owner_->state_, owner_->slot_->take(waiter_),
                                error_);
        }

    private:
        friend multishot;
        explicit next_operation(multishot& owner) noexcept : owner_(&owner) {}

        multishot* owner_;
        std::error_code* error_ = nullptr;
        detail::waiter waiter_;
    };

    /// The next `T`.
    next_operation next() noexcept { return next_operation{*this}; }

private:
    using state_type = typename Policy::state;
    friend Policy;

    // A stream on `socket`, holding at most `budget` entries at once (0: no bound).
    multishot(detail::descriptor_core& socket, void* owner, unsigned budget, state_type state)
        : slot_(detail::slot::create(socket, Policy::kind, owner, budget)),
          state_(std::move(state)) {}

    void reset() noexcept {
        if (slot_ != nullptr) {
            std::exchange(slot_, nullptr)->orphan();
        }
    }

    detail::slot* slot_;
    state_type state_;
};

} // namespace ringio
