#pragma once

// multishot: a stream of completions of one request (accept_all, receive, receive_from),
// consumed one `co_await next()` at a time.

#include <ringio/cancellation.hpp>
#include <ringio/detail/slot.hpp>
#include <ringio/detail/tracked.hpp>

#include <cerrno>
#include <coroutine>
#include <system_error>
#include <utility>

namespace ringio {

namespace detail {

/// What a stream of `T` adds to its slot: `kind` (how to arm and release), `state` (what its
/// errors name, and its end), `take(slot, state, entry, error)`, and optionally `ready(state)`.
// `ready` is true when a wait finds a value without an entry; a stream that ended says so to its
// slot instead.
template <class T>
struct multishot_policy;

} // namespace detail

/// A stream of `T`s from one io_uring request that completes many times (or is armed again
/// after each completion). Move-only; destroying it cancels the request.
template <class T, class Policy = detail::multishot_policy<T>>
class multishot {
public:
    multishot(multishot&& other) noexcept
        : slot_(std::exchange(other.slot_, nullptr)), state_(std::move(other.state_)) {
        take_watch(other);
    }
    multishot& operator=(multishot&& other) noexcept {
        if (this != &other) {
            reset();
            slot_ = std::exchange(other.slot_, nullptr);
            state_ = std::move(other.state_);
            take_watch(other);
        }
        return *this;
    }
    multishot(const multishot&) = delete;
    multishot& operator=(const multishot&) = delete;
    ~multishot() { reset(); }

    /// The awaitable of `next()`: `co_await` produces a `T`. A few pointers until awaited.
    class [[nodiscard]] next_operation : public detail::adaptors<next_operation> {
        // A consumer waiting in `next()`: its place in the slot's list, and under its signal
        // (through the multishot's link, else its own).
        class [[nodiscard]] waiting : private detail::completion, private detail::waiter {
        public:
            explicit waiting(const next_operation& from) noexcept
                : owner_(from.owner_), wait_(from.error_, from.signal_) {}

            // What it finds ready it takes now: every way to the end of the co_await then hands
            // over `got`, which `await_resume` reads without a test.
            bool await_ready() noexcept {
                if (owner_->slot_->ready() || policy_ready()) [[unlikely]] {
                    got = owner_->slot_->take();
                    return true;
                }
                return false;
            }
            bool await_suspend(std::coroutine_handle<> consumer) noexcept {
                frame = consumer.address();
                under = wait_.signal;
                // A loop of waits under one signal finds the multishot linked under it already.
                if (wait_.signal != owner_->watching_ && wait_.signal != nullptr) [[unlikely]] {
                    if (!watch()) {
                        got = {-ECANCELED, detail::wait_cancelled};
                        return false;
                    }
                }
                return owner_->slot_->wait(*this);
            }
            T await_resume() {
                return Policy::take(*owner_->slot_, owner_->state_, got, wait_.error);
            }

        private:
            bool policy_ready() const noexcept {
                if constexpr (requires { Policy::ready(owner_->state_); }) {
                    return Policy::ready(owner_->state_);
                } else {
                    return false;
                }
            }

            // Links the multishot under the wait's signal, unless waits under its current
            // signal need it there: this wait then links itself. False when it is cancelled.
            [[gnu::noinline]] bool watch() noexcept {
                multishot& owner = *owner_;
                const detail::waiter* w =
                    owner.watching_ != nullptr ? owner.slot_->waiters() : nullptr;
                for (; w != nullptr; w = w->next) {
                    if (w->under == owner.watching_) {
                        under = nullptr;
                        wait_.link.cancel = &on_cancel;
                        wait_.link.target = this;
                        return detail::watch(*wait_.signal, wait_.link);
                    }
                }
                detail::cancellation_list::unlink(owner.watch_);
                owner.watching_ = nullptr;
                owner.watch_.cancel = &on_signal;
                owner.watch_.target = &owner;
                if (!detail::watch(*wait_.signal, owner.watch_)) {
                    return false;
                }
                owner.watching_ = wait_.signal;
                return true;
            }

            // The multishot's signal was cancelled: every wait under it stops.
            static void on_signal(void* target) noexcept {
                auto& owner = *static_cast<multishot*>(target);
                const cancellation* fired = std::exchange(owner.watching_, nullptr);
                for (detail::waiter* w = owner.slot_->waiters(); w != nullptr;) {
                    detail::waiter* following = w->next;
                    if (w->under == fired) {
                        on_cancel(static_cast<waiting*>(w));
                    }
                    w = following;
                }
            }

            // Cancelled while waiting: leaves the slot's waiters, and resumes through the ring (a
            // NOP), not inside the canceller's call.
            static void on_cancel(void* target) noexcept {
                auto& self = *static_cast<waiting*>(target);
                if (self.owner_->slot_->forget_waiter(self)) {
                    self.complete = &on_completion; // set only now: the NOP is its one request
                    io_uring_sqe* sqe = self.owner_->slot_->owner_ring().get_sqe();
                    io_uring_prep_nop(sqe);
                    io_uring_sqe_set_data64(sqe, self.user_data());
                }
            }
            static void on_completion(detail::completion* done,
                                      const io_uring_cqe& /*cqe*/) noexcept {
                auto& self = *static_cast<waiting*>(done);
                if (!self.owner_->slot_->owner_ring().draining()) {
                    self.got = {-ECANCELED, detail::wait_cancelled};
                    self.resume();
                }
            }

            multishot* owner_;
            detail::adapted_wait wait_; // its link is taken only when the multishot's is
        };

    public:
        /// What `co_await` suspends in, in the coroutine frame.
        waiting operator co_await() const noexcept { return waiting{*this}; }

    private:
        friend multishot;
        explicit next_operation(multishot& owner) noexcept : owner_(&owner) {}

        multishot* owner_;
    };

    /// The next `T`.
    next_operation next() noexcept { return next_operation{*this}; }

private:
    using state_type = typename Policy::state;
    friend Policy;

    // A stream on `socket`, holding at most `budget` entries at once (0: no bound).
    multishot(detail::descriptor_core& socket, void* owner, unsigned budget, state_type state,
              int param = 0)
        : slot_(detail::slot::create(socket, Policy::kind, owner, budget, param)),
          state_(std::move(state)) {}

    void reset() noexcept {
        detail::cancellation_list::unlink(watch_);
        watching_ = nullptr;
        if (slot_ != nullptr) {
            std::exchange(slot_, nullptr)->orphan();
        }
    }

    // Moves `other`'s place under its signal here (nobody waits on a multishot that moves).
    void take_watch(multishot& other) noexcept {
        cancellation* signal = std::exchange(other.watching_, nullptr);
        detail::cancellation_list::unlink(other.watch_);
        if (signal != nullptr) {
            watch_.cancel = other.watch_.cancel;
            watch_.target = this;
            watching_ = detail::watch(*signal, watch_) ? signal : nullptr;
        }
    }

    detail::slot* slot_;
    state_type state_;
    // Linked under the signal of its waits, and left there between them, until a wait under
    // another signal, its destruction, or the signal's cancel (which stops the waits under it).
    detail::cancel_link watch_;
    cancellation* watching_ = nullptr;
};

} // namespace ringio
