#pragma once

// slot: the state of one stream of completions (a multishot request, or a request re-armed
// after each completion), kept in the context's storage so that it outlives its owner.

#include <ringio/detail/fifo.hpp>
#include <ringio/detail/ring.hpp>
#include <ringio/detail/tracked.hpp>
#include <ringio/detail/waiter.hpp>

#include <liburing.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <new>
#include <utility>

namespace ringio::detail {

/// The state of one stream of completions: an entry goes straight to a waiting consumer, else
/// queues in order; `budget` bounds the entries held (queued, or lent out until `returned()`).
// At the budget the request is not armed again (and a multishot one is cancelled), so one owner
// never holds more than its share of a shared buffer ring.
class slot : private tracked {
public:
    static slot* create(descriptor_core& socket, const slot_kind& kind, void* owner,
                        unsigned budget, int param) {
        static_assert(sizeof(slot) <= context_storage::slot_size);
        ring& r = socket.owner();
        return ::new (r.storage().allocate_slot()) slot(r, socket, kind, owner, budget, param);
    }

    slot(const slot&) = delete;
    slot& operator=(const slot&) = delete;

    /// The owner is going away: releases the queue, cancels the request, and frees the slot
    /// once nothing is armed and nothing lent out remains.
    void orphan() noexcept {
        flags_ = (flags_ | orphaned) & ~queued;
        waiters_ = nullptr;
        descriptor_core::unlink(*this);
        while (!queue_.empty()) {
            drop(queue_.pop());
        }
        if ((flags_ & (armed | pausing)) == armed) { // a second cancel would walk for nothing
            ring_->cancel(user_data());
        }
        free_if_done();
    }

    /// The consumers waiting, the latest first.
    [[nodiscard]] waiter* waiters() const noexcept { return waiters_; }

    /// True when an entry waits to be taken, or the stream has ended.
    [[nodiscard]] bool ready() const noexcept { return (flags_ & (queued | ended)) != 0; }

    /// The stream has ended for good: from now on it is ready with nothing queued.
    void end() noexcept { flags_ |= ended; }

    /// Suspends `w` until the next entry, arming the request if allowed. False, with EBADF
    /// handed over, once the descriptor is closed: its number may name another file by now.
    bool wait(waiter& w) noexcept {
        if ((flags_ & unarmable) != 0 || held_ >= limit_) [[unlikely]] {
            return wait_unarmed(w);
        }
        w.next = waiters_;
        waiters_ = &w;
        arm();
        return true;
    }

    /// Stops `w` waiting (a cancellation); false when it was no longer waiting. The last
    /// waiter gone, the request is paused: nobody would take what it delivers.
    bool forget_waiter(waiter& w) noexcept {
        for (waiter** at = &waiters_; *at != nullptr; at = &(*at)->next) {
            if (*at == &w) {
                *at = w.next;
                if (waiters_ == nullptr && (flags_ & armed) != 0) {
                    pause();
                }
                return true;
            }
        }
        return false;
    }

    /// The ring the slot's requests go through.
    [[nodiscard]] ring& owner_ring() const noexcept { return *ring_; }

    /// The oldest entry queued, else none: a stream that has ended is ready with nothing
    /// queued, and its end is the policy's to report.
    entry take() noexcept {
        const entry got = queue_.empty() ? entry{0, 0} : queue_.pop();
        flags_ &= queue_.empty() ? ~queued : ~0U;
        return got;
    }

    /// An entry's buffer came back: below the budget, a waiting consumer gets the request armed.
    void returned() noexcept {
        --held_;
        if ((flags_ & (armed | orphaned)) != armed) [[unlikely]] {
            returned_unarmed(); // a jump: the common path keeps no register across a call
        }
    }

    /// The buffers this slot starved for came back; true when that armed it.
    bool fed() noexcept {
        flags_ &= ~starved;
        return arm_if_allowed();
    }

    [[nodiscard]] int fd() const noexcept {
        int fd = -1; // kept in the arming SQE alone, where it is written first
        std::memcpy(&fd, arming_.sqe + offsetof(io_uring_sqe, fd), sizeof fd);
        return fd;
    }
    [[nodiscard]] void* owner() const noexcept { return owner_; }
    [[nodiscard]] bool multishot() const noexcept { return (flags_ & multishot_request) != 0; }
    /// A value of the kind's own, fixed at creation (a datagram socket's family).
    [[nodiscard]] int param() const noexcept { return param_; }
    /// What errors name the descriptor by, while it is open.
    [[nodiscard]] const void* subject() const noexcept {
        return core != nullptr ? core->subject() : nullptr;
    }
    /// True once the descriptor was closed (or the slot orphaned).
    [[nodiscard]] bool closed() const noexcept { return core == nullptr; }

    /// Links in its pool's starving slots.
    slot* starved_prev = nullptr;
    slot* starved_next = nullptr;

private:
    // The state, as bits of `flags_`: one test covers what stops an arming.
    static constexpr unsigned armed = 1;              // a request is in flight
    static constexpr unsigned starved = 2;            // waiting for buffers, in its pool's list
    static constexpr unsigned orphaned = 4;           // the owner has gone
    static constexpr unsigned pausing = 8;            // a cancel of the armed request is on its way
    static constexpr unsigned waking = 16;            // waking every waiter: not to be freed yet
    static constexpr unsigned unproven = 32;          // a multishot request nothing came from yet
    static constexpr unsigned multishot_request = 64; // else armed again per completion
    static constexpr unsigned closed_fd = 128;        // the descriptor was closed
    static constexpr unsigned queued = 256;           // `queue_` holds an entry
    static constexpr unsigned ended = 512;            // ready for good, with nothing queued
    static constexpr unsigned unarmable = armed | starved | orphaned | closed_fd;

    slot(ring& r, descriptor_core& socket, const slot_kind& kind, void* owner, unsigned budget,
         int param) noexcept
        : tracked(), ring_(&r), kind_(&kind), owner_(owner), limit_(budget != 0 ? budget : ~0U),
          param_(param), flags_(kind.multishot ? multishot_request | unproven : 0U) {
        completion::complete = &on_completion;
        on_close = &wake_when_closed;
        const int fd = socket.fd();
        std::memcpy(arming_.sqe + offsetof(io_uring_sqe, fd), &fd, sizeof fd);
        socket.link(*this);
        flags_ |= core != nullptr ? 0U : closed_fd;
        prepare_arming();
    }
    ~slot() = default;

    // The arming SQE, made once and copied at each arming: the same request every time. Its
    // last 16 bytes (addr3 and padding) are zero for every kind, and not kept.
    void prepare_arming() noexcept {
        io_uring_sqe sqe{};
        kind_->arm(*this, &sqe);
        io_uring_sqe_set_data64(&sqe, user_data());
        std::memcpy(arming_.sqe, &sqe, sizeof arming_.sqe);
    }

    // The request waits for the ring's next submission, at the end of a dispatch (see
    // ring::reap), or for a cancel, which the ring makes follow it.
    void arm() noexcept {
        flags_ |= armed;
        ring_->later().push(arming_);
    }

    [[gnu::noinline]] void returned_unarmed() noexcept {
        arm_if_allowed(); // not for an orphaned slot
        free_if_done();   // only once orphaned
    }

    // Closed, the number may name another file by now: EBADF is handed over at once.
    bool wait_unarmed(waiter& w) noexcept {
        if ((flags_ & closed_fd) != 0) {
            w.got = {-EBADF, 0};
            return false;
        }
        w.next = waiters_;
        waiters_ = &w;
        return true;
    }

    bool arm_if_allowed() noexcept {
        if ((flags_ & unarmable) != 0 || waiters_ == nullptr || held_ >= limit_) {
            return false;
        }
        arm();
        return true;
    }

    void free_if_done() noexcept {
        if ((flags_ & (orphaned | armed | waking)) == orphaned && held_ == 0) {
            if ((flags_ & starved) != 0) {
                kind_->forget(*this);
            }
            ring* r = ring_;
            this->~slot();
            r->storage().free_slot(this);
        }
    }

    static void on_completion(completion* self, const io_uring_cqe& cqe) {
        auto& s = *static_cast<slot*>(static_cast<tracked*>(self));
        waiter* w = s.waiters_;
        // The common case: an entry for a waiting consumer (an orphaned slot has none). Only
        // tail calls, so no register is saved; flags are read before stores that may alias them.
        if (cqe.res > 0 && w != nullptr && !s.ring_->draining()) [[likely]] {
            const bool more = (cqe.flags & IORING_CQE_F_MORE) != 0;
            const unsigned lent = (cqe.flags & IORING_CQE_F_BUFFER) != 0 ? 1 : 0;
            if (more) {
                s.ring_->more_to_come();
                s.flags_ &= ~unproven;
            } else {
                s.flags_ &= ~(armed | pausing | unproven); // ended by itself: no pause due
            }
            s.held_ += lent;
            s.waiters_ = w->next;
            w->got = {cqe.res, cqe.flags};
            if (more ? s.held_ >= s.limit_ : s.waiters_ != nullptr) [[unlikely]] {
                s.go_on(*w, more);
                return;
            }
            w->resume(); // last: the consumer may destroy the owner, and so orphan us
            return;
        }
        s.complete(cqe);
    }

    // Pauses a multishot request at the budget, else arms the request for the others waiting.
    [[gnu::noinline]] void go_on(const waiter& w, bool more) noexcept {
        more ? pause() : void(arm_if_allowed());
        w.resume();
    }

    // The descriptor closed while consumers wait and nothing is armed (the ring ran dry, or the
    // budget is spent): a read of descriptor -1 completes with EBADF and wakes them from the
    // loop, as any completion does, rather than from inside close().
    static void wake_when_closed(tracked& self) noexcept {
        auto& s = static_cast<slot&>(self);
        s.flags_ |= closed_fd;
        if ((s.flags_ & (armed | orphaned)) != 0 || s.waiters_ == nullptr || s.ring_->draining()) {
            return;
        }
        s.flags_ |= armed;
        io_uring_sqe* sqe = s.ring_->get_sqe();
        io_uring_prep_read(sqe, -1, nullptr, 0, 0);
        io_uring_sqe_set_data64(sqe, s.user_data());
    }

    // Everything else: an error, the end, nobody waiting, an orphaned slot, shutdown.
    [[gnu::noinline]] void complete(const io_uring_cqe& cqe) noexcept {
        entry got{cqe.res, cqe.flags};
        if ((cqe.flags & IORING_CQE_F_MORE) == 0) {
            flags_ &= ~armed;
        } else {
            ring_->more_to_come();
        }
        held_ += (cqe.flags & IORING_CQE_F_BUFFER) != 0 ? 1 : 0;
        if ((flags_ & orphaned) != 0 || ring_->draining()) {
            drop(got); // during shutdown the waiting frames are never resumed
            free_if_done();
            return;
        }
        if (got.result < 0 && absorb(got.result)) {
            return;
        }
        if ((flags_ & armed) == 0) {
            flags_ &= ~pausing; // ended by itself: the pause asked for found nothing
        }
        flags_ &= ~unproven;
        waiter* w = waiters_;
        if (w == nullptr) {
            if (queue_.try_push(got)) {
                flags_ |= queued;
            } else {
                drop(got); // out of memory with completions arriving
            }
            if ((flags_ & armed) != 0 && held_ >= limit_) {
                pause();
            }
            return;
        }
        if (got.result < 0 && (flags_ & armed) == 0) {
            wake_all(got); // the request ended in an error: every consumer hears it
            return;
        }
        waiters_ = w->next;
        w->got = got;
        arm_if_allowed(); // others still wait: keep the request going for them
        w->resume();
    }

    // Frees what an entry nobody will take carries.
    void drop(const entry& got) noexcept {
        kind_->release(*this, got);
        held_ -= (got.flags & IORING_CQE_F_BUFFER) != 0 ? 1 : 0;
    }

    // Failures that are not the consumer's business; true when absorbed.
    bool absorb(int result) noexcept {
        if ((flags_ & (pausing | armed)) == pausing && result == -ECANCELED) {
            flags_ &= ~pausing; // the pause asked for: the data waits in the socket
            arm_if_allowed();
            return true;
        }
        if (result == -EINVAL && (flags_ & unproven) != 0) {
            flags_ &= ~(multishot_request | unproven); // a kernel without it: one at a time
            prepare_arming();
            arm_if_allowed();
            return true;
        }
        if (result == -ENOBUFS && kind_->starve != nullptr && (flags_ & armed) == 0) {
            flags_ |= starved; // the shared buffers ran dry; the data waits in the socket
            kind_->starve(*this);
            return true;
        }
        return false;
    }

    // Cancels the armed multishot request: its final ECANCELED is absorbed, and a consumer
    // below the budget arms it again.
    void pause() noexcept {
        if ((flags_ & pausing) == 0) {
            flags_ |= pausing;
            ring_->cancel(user_data());
        }
    }

    // A consumer may destroy the owner meanwhile; the rest then stay asleep, as any waiter
    // does when its owner goes.
    void wake_all(const entry& got) noexcept {
        waiter* w = std::exchange(waiters_, nullptr);
        flags_ |= waking;
        while (w != nullptr && (flags_ & orphaned) == 0) {
            waiter* following = w->next;
            w->got = got;
            w->resume();
            w = following;
        }
        flags_ &= ~waking;
        free_if_done();
    }

    ring* ring_;
    const slot_kind* kind_;
    void* owner_;               // what the kind's functions need (the buffer pool), or null
    waiter* waiters_ = nullptr; // the latest first: the warmest frame runs next
    unsigned limit_;            // entries held at most (queued or lent out): the budget, or all
    unsigned held_ = 0;
    int param_;
    unsigned flags_;
    arming arming_;        // the request, and the descriptor it is on
    fifo<entry, 2> queue_; // a receive queues one at most; bursts of others spill
};

} // namespace ringio::detail
