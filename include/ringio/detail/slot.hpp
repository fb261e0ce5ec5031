#pragma once

// slot: the state of one stream of completions (a multishot request, or a request re-armed
// after each completion), kept in the context's storage so that it outlives its owner.

#include <ringio/detail/fifo.hpp>
#include <ringio/detail/ring.hpp>
#include <ringio/detail/tracked.hpp>

#include <liburing.h>

#include <cerrno>
#include <coroutine>
#include <cstdint>
#include <new>
#include <utility>

namespace ringio::detail {

/// One CQE, kept until its consumer takes it.
struct entry {
    int result;
    std::uint32_t flags;
};

/// The flag of the entry a cancelled wait gets: an error of that wait, not of the stream.
inline constexpr std::uint32_t wait_cancelled = 1U << 15;

/// A consumer suspended on a slot; it lives in its awaitable, in the coroutine frame.
struct waiter {
    std::coroutine_handle<> handle;
    waiter* next = nullptr;
    entry got{};
    bool filled = false; ///< `got` was handed over at wake-up
};

class slot;

/// What one kind of stream contributes; plain function pointers, so that slots are not templates.
struct slot_kind {
    void (*arm)(slot& self, io_uring_sqe* sqe) noexcept;    ///< fills the arming SQE
    void (*release)(slot& self, const entry& got) noexcept; ///< frees what nobody took
    void (*starve)(slot& self) noexcept;                    ///< ENOBUFS: wait for buffers
    void (*forget)(slot& self) noexcept;                    ///< stop waiting for buffers
    bool multishot;                                         ///< else re-armed per completion
};

/// The state of one stream of completions. An entry goes straight to a waiting consumer, else
/// queues in order. `budget` bounds the entries held (queued, or lent out until `returned()`):
/// at the budget the request is not armed again (and a multishot one is cancelled), so one
/// owner never holds more than its share of a shared buffer ring.
class slot : private tracked {
public:
    static slot* create(descriptor_core& socket, const slot_kind& kind, void* owner,
                        unsigned budget) {
        static_assert(sizeof(slot) <= context_storage::slot_size);
        ring& r = socket.owner();
        return ::new (r.storage().allocate_slot()) slot(r, socket, kind, owner, budget);
    }

    slot(const slot&) = delete;
    slot& operator=(const slot&) = delete;

    /// The owner is going away: releases the queue, cancels the request, and frees the slot
    /// once nothing is armed and nothing lent out remains.
    void orphan() noexcept {
        orphaned_ = true;
        waiters_ = nullptr;
        descriptor_core::unlink(*this);
        while (!queue_.empty()) {
            drop(queue_.pop());
        }
        if (armed_) {
            ring_->cancel(user_data());
        }
        free_if_done();
    }

    /// True when an entry waits to be taken.
    [[nodiscard]] bool ready() const noexcept { return !queue_.empty(); }

    /// Suspends `w` until the next entry, arming the request if allowed. False, with EBADF
    /// handed over, once the descriptor is closed: its number may name another file by now.
    bool wait(waiter& w) noexcept {
        if (core == nullptr) {
            w.got = {-EBADF, 0};
            w.filled = true;
            return false;
        }
        w.next = waiters_;
        waiters_ = &w;
        arm_if_allowed();
        return true;
    }

    /// Stops `w` waiting (a cancellation); false when it was no longer waiting. The last
    /// waiter gone, the request is paused: nobody would take what it delivers.
    bool forget_waiter(waiter& w) noexcept {
        for (waiter** at = &waiters_; *at != nullptr; at = &(*at)->next) {
            if (*at == &w) {
                *at = w.next;
                if (waiters_ == nullptr && armed_) {
                    pause();
                }
                return true;
            }
        }
        return false;
    }

    /// The ring the slot's requests go through.
    [[nodiscard]] ring& owner_ring() const noexcept { return *ring_; }

    /// The entry handed to `w`, else the oldest queued, else none: a stream that has ended is
    /// ready with nothing queued, and its end is the policy's to report.
    entry take(waiter& w) noexcept {
        if (w.filled) {
            return w.got;
        }
        return queue_.empty() ? entry{0, 0} : queue_.pop();
    }

    /// An entry's buffer came back: below the budget, a waiting consumer gets the request armed.
    void returned() noexcept {
        --held_;
        if (armed_ && !orphaned_) [[likely]] {
            return;
        }
        if (orphaned_) {
            free_if_done();
        } else {
            arm_if_allowed();
        }
    }

    /// The buffers this slot starved for came back; true when that armed it.
    bool fed() noexcept {
        starved_ = false;
        return arm_if_allowed();
    }

    /// True while it starves for buffers (and so sits in its pool's list).
    [[nodiscard]] bool starved() const noexcept { return starved_; }
    [[nodiscard]] int fd() const noexcept { return fd_; }
    [[nodiscard]] void* owner() const noexcept { return owner_; }
    [[nodiscard]] bool multishot() const noexcept { return multishot_; }
    /// A value of the kind's own, fixed at creation (a datagram socket's family).
    [[nodiscard]] int param() const noexcept { return param_; }
    void set_param(int value) noexcept { param_ = value; }
    /// What errors name the descriptor by, while it is open.
    [[nodiscard]] const void* subject() const noexcept {
        return core != nullptr ? core->subject() : nullptr;
    }
    /// True once the descriptor was closed (or the slot orphaned).
    [[nodiscard]] bool closed() const noexcept { return core == nullptr; }

    /// Links for the pool's list of starving slots.
    slot* starved_prev = nullptr;
    slot* starved_next = nullptr;

private:
    slot(ring& r, descriptor_core& socket, const slot_kind& kind, void* owner,
         unsigned budget) noexcept
        : tracked{{&on_completion}}, ring_(&r), kind_(&kind), owner_(owner), fd_(socket.fd()),
          budget_(budget), multishot_(kind.multishot) {
        on_close = &wake_when_closed;
        socket.link(*this);
    }
    ~slot() = default;

    bool arm_if_allowed() noexcept {
        if (armed_ || starved_ || orphaned_ || waiters_ == nullptr || core == nullptr ||
            (budget_ != 0 && held_ >= budget_)) {
            return false;
        }
        armed_ = true;
        io_uring_sqe* sqe = ring_->get_sqe();
        kind_->arm(*this, sqe);
        io_uring_sqe_set_data64(sqe, user_data());
        return true;
    }

    void free_if_done() noexcept {
        if (orphaned_ && !armed_ && held_ == 0 && !waking_) {
            if (starved_) {
                kind_->forget(*this);
            }
            ring* r = ring_;
            this->~slot();
            r->storage().free_slot(this);
        }
    }

    static void on_completion(completion* self, const io_uring_cqe& cqe) noexcept {
        auto& s = *static_cast<slot*>(static_cast<tracked*>(self));
        waiter* w = s.waiters_;
        // The common case, small enough that the resumption is a tail call: an entry for a
        // waiting consumer, with the request still armed (or re-armed by the consumer).
        if (cqe.res > 0 && w != nullptr && !s.ring_->draining() && !s.orphaned_) [[likely]] {
            const bool more = (cqe.flags & IORING_CQE_F_MORE) != 0;
            s.armed_ = more;
            s.pausing_ = s.pausing_ && more; // a request that ended by itself has no pause due
            s.held_ += (cqe.flags & IORING_CQE_F_BUFFER) != 0 ? 1 : 0;
            s.delivered_ = true;
            s.waiters_ = w->next;
            w->got = {cqe.res, cqe.flags};
            w->filled = true;
            if (more && s.budget_ != 0 && s.held_ >= s.budget_) [[unlikely]] {
                s.pause();
            } else if (!more && s.waiters_ != nullptr) [[unlikely]] {
                s.arm_if_allowed(); // others still wait
            }
            w->handle.resume(); // last: the consumer may destroy the owner, and so orphan us
            return;
        }
        s.complete(cqe);
    }

    // The descriptor closed while consumers wait and nothing is armed (the ring ran dry, or
    // the budget is spent), so no completion would come to wake them. A read of descriptor -1
    // completes with EBADF and wakes them from the loop, as any completion does, rather than
    // from inside close().
    static void wake_when_closed(tracked& self) noexcept {
        auto& s = static_cast<slot&>(self);
        if (s.armed_ || s.waiters_ == nullptr || s.orphaned_ || s.ring_->draining()) {
            return;
        }
        s.armed_ = true;
        io_uring_sqe* sqe = s.ring_->get_sqe();
        io_uring_prep_read(sqe, -1, nullptr, 0, 0);
        io_uring_sqe_set_data64(sqe, s.user_data());
    }

    // Everything else: an error, the end, nobody waiting, an orphaned slot, shutdown.
    [[gnu::noinline]] void complete(const io_uring_cqe& cqe) noexcept {
        entry got{cqe.res, cqe.flags};
        if ((cqe.flags & IORING_CQE_F_MORE) == 0) {
            armed_ = false;
        }
        held_ += (cqe.flags & IORING_CQE_F_BUFFER) != 0 ? 1 : 0;
        if (orphaned_ || ring_->draining()) {
            drop(got); // during shutdown the waiting frames are never resumed
            free_if_done();
            return;
        }
        if (got.result < 0 && absorb(got.result)) {
            return;
        }
        pausing_ = pausing_ && armed_; // ended by itself: the pause asked for found nothing
        delivered_ = true;
        waiter* w = waiters_;
        if (w == nullptr) {
            if (!queue_.try_push(got)) {
                drop(got); // out of memory with completions arriving
            }
            if (armed_ && budget_ != 0 && held_ >= budget_) {
                pause();
            }
            return;
        }
        if (got.result < 0 && !armed_) {
            wake_all(got); // the request ended in an error: every consumer hears it
            return;
        }
        waiters_ = w->next;
        w->got = got;
        w->filled = true;
        arm_if_allowed(); // others still wait: keep the request going for them
        w->handle.resume();
    }

    // Frees what an entry nobody will take carries.
    void drop(const entry& got) noexcept {
        kind_->release(*this, got);
        held_ -= (got.flags & IORING_CQE_F_BUFFER) != 0 ? 1 : 0;
    }

    // Failures that are not the consumer's business; true when absorbed.
    bool absorb(int result) noexcept {
        if (pausing_ && result == -ECANCELED && !armed_) {
            pausing_ = false; // the pause asked for: the data waits in the socket
            arm_if_allowed();
            return true;
        }
        if (result == -EINVAL && multishot_ && !delivered_) {
            multishot_ = false; // a kernel without this multishot request: one at a time
            arm_if_allowed();
            return true;
        }
        if (result == -ENOBUFS && kind_->starve != nullptr && !armed_) {
            starved_ = true; // the shared buffers ran dry; the data waits in the socket
            kind_->starve(*this);
            return true;
        }
        return false;
    }

    // Cancels the armed multishot request: its final ECANCELED is absorbed, and a consumer
    // below the budget arms it again.
    void pause() noexcept {
        if (!pausing_) {
            pausing_ = true;
            ring_->cancel(user_data());
        }
    }

    // A consumer may destroy the owner meanwhile; the rest then stay asleep, as any waiter
    // does when its owner goes.
    void wake_all(const entry& got) noexcept {
        waiter* w = std::exchange(waiters_, nullptr);
        waking_ = true;
        while (w != nullptr && !orphaned_) {
            waiter* following = w->next;
            w->got = got;
            w->filled = true;
            w->handle.resume();
            w = following;
        }
        waking_ = false;
        free_if_done();
    }

    ring* ring_;
    const slot_kind* kind_;
    void* owner_;               // what the kind's functions need (the buffer pool), or null
    waiter* waiters_ = nullptr; // the latest first: the warmest frame runs next
    int fd_;
    unsigned budget_; // entries held at most (queued or lent out); 0: no bound
    unsigned held_ = 0;
    int param_ = 0;
    bool multishot_;
    bool armed_ = false;
    bool pausing_ = false;
    bool orphaned_ = false;
    bool waking_ = false;
    bool starved_ = false;
    bool delivered_ = false;
    fifo<entry, 4> queue_;
};

} // namespace ringio::detail
