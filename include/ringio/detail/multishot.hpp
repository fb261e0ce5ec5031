#pragma once

#include <ringio/detail/fifo.hpp>
#include <ringio/detail/socket_base.hpp>
#include <ringio/detail/storage.hpp>
#include <ringio/io_context.hpp>

#include <liburing.h>

#include <cerrno>
#include <coroutine>
#include <cstdint>
#include <new>
#include <system_error>
#include <utility>

namespace ringio::detail {

/// One CQE of a multishot operation, kept until its consumer takes it.
struct multishot_entry {
    int result;
    std::uint32_t flags;
};

class multishot_slot;

/// A consumer suspended on a slot; it lives in the consumer's awaitable (in its coroutine
/// frame), so waiting allocates nothing and any number of consumers may wait at once.
struct multishot_waiter {
    std::coroutine_handle<> handle;
    multishot_waiter* next = nullptr;
    /// The entry handed over at wake-up, valid when `filled`.
    multishot_entry entry{};
    bool filled = false;

    /// The entry handed over, else the oldest one queued (which must exist).
    multishot_entry take(multishot_slot& slot) noexcept;
};

/// The state of one multishot operation (accept, or recv or recvmsg into provided buffers).
/// It lives in the context's storage, not in a coroutine frame, because the kernel may post
/// CQEs after the coroutine that armed it is gone: the owner then "orphans" the slot, which
/// cancels the operation and frees itself at the final CQE, releasing whatever those CQEs
/// carried.
///
/// A completion goes straight to a waiting consumer; with none waiting, completions queue up in
/// order until one comes: a small inline ring, then a vector for bursts (its capacity is kept,
/// so steady state allocates nothing). Several consumers may wait on one slot (coroutines
/// sharing a UDP socket's receiver): each entry wakes one of them, a failure wakes them all.
class multishot_slot : private completion {
public:
    /// Fills the SQE that arms the operation (user_data is set by the slot).
    using arm_fn = void (*)(multishot_slot& slot, io_uring_sqe* sqe) noexcept;
    /// Frees what an entry holds (a descriptor, a buffer) when no one will take it.
    using release_fn = void (*)(multishot_slot& slot, const multishot_entry& entry) noexcept;
    /// Called on -ENOBUFS: the operation stopped because its buffers ran out.
    using starved_fn = void (*)(multishot_slot& slot) noexcept;

    /// Creates a slot in `context`'s storage for `socket`'s descriptor. With a `limit`, the
    /// operation pauses once that many entries wait untaken, and arms again when a consumer waits.
    static multishot_slot* create(io_context& context, const socket_base& socket, arm_fn prepare,
                                  release_fn release, starved_fn starved, void* owner,
                                  unsigned limit = 0) {
        static_assert(sizeof(multishot_slot) <= context_storage::slot_size);
        return ::new (context.storage().allocate_slot())
            multishot_slot(context, socket, prepare, release, starved, owner, limit);
    }

    multishot_slot(const multishot_slot&) = delete;
    multishot_slot& operator=(const multishot_slot&) = delete;

    /// The owner is going away: releases queued entries and cancels the operation; the slot
    /// frees itself now if nothing is in flight, else at its final CQE.
    void orphan() noexcept {
        orphaned_ = true;
        socket_ = nullptr;
        waiters_ = nullptr;
        while (!empty()) {
            release_(*this, pop());
        }
        if (armed_) {
            io_uring_sqe* sqe = context_->get_sqe();
            io_uring_prep_cancel64(sqe, reinterpret_cast<std::uintptr_t>(as_completion()), 0);
            io_uring_sqe_set_data64(sqe, 0);
        } else if (!waking_) {
            destroy(); // else the wake-up loop that runs the owner's destructor frees the slot
        }
    }

    /// Arms the operation (again) unless it is armed or its owner is gone. If the socket was
    /// closed or moved from since the slot was made, its number may belong to another file by
    /// now: a NOP goes in its place, whose completion reports EBADF (through the ring, since
    /// this may run inside another consumer's code, which must not resume a waiter).
    void arm() noexcept {
        if (armed_ || orphaned_) {
            return;
        }
        io_uring_sqe* sqe = context_->get_sqe();
        if (socket_->native_handle() != fd_) [[unlikely]] {
            io_uring_prep_nop(sqe);
            closed_ = true;
        } else {
            arm_(*this, sqe);
        }
        io_uring_sqe_set_data64(sqe, reinterpret_cast<std::uintptr_t>(as_completion()));
        armed_ = true;
    }

    /// True when no entry is queued.
    [[nodiscard]] bool empty() const noexcept { return queue_.empty(); }

    /// Takes the oldest entry; the queue must not be empty.
    multishot_entry pop() noexcept { return queue_.pop(); }

    /// Suspends `waiter` (its handle set) until the next entry arrives, arming the operation
    /// if it is idle. Returns false, with EBADF handed to the waiter to take at once, when the
    /// socket was closed or moved from since the slot was made: the number may belong to
    /// another file by now, so it is never armed on again.
    bool wait(multishot_waiter& waiter) noexcept {
        // Armed, the operation already works on the slot's own descriptor: nothing to check.
        if (!armed_) [[unlikely]] {
            if (socket_->native_handle() != fd_) {
                waiter.entry = {-EBADF, 0};
                waiter.filled = true;
                return false;
            }
            if (!starved_) {
                arm();
            }
        }
        waiter.next = waiters_;
        waiters_ = &waiter;
        return true;
    }

    /// Stops waiting for buffers (they came back): arms again unless the queue is at its
    /// limit, in which case the next consumer to wait arms it. Returns whether it armed.
    bool feed() noexcept {
        starved_ = false;
        if (limit_ != 0 && queue_.size() >= limit_) {
            return false;
        }
        arm();
        return true;
    }

    /// True when the socket was closed or moved from since the slot was made.
    [[nodiscard]] bool closed() const noexcept {
        return socket_ == nullptr || socket_->native_handle() != fd_;
    }

    /// The descriptor the operation works on.
    [[nodiscard]] int fd() const noexcept { return fd_; }

    /// What created the slot (a buffer ring, for recv).
    [[nodiscard]] void* owner() const noexcept { return owner_; }

    /// Use the single-shot form (kernels without the multishot flag).
    [[nodiscard]] bool single_shot() const noexcept { return single_shot_; }

    /// Links for the list of slots waiting for buffers (kept by the buffer ring).
    multishot_slot* starved_prev = nullptr;
    /// See `starved_prev`.
    multishot_slot* starved_next = nullptr;

private:
    static constexpr unsigned inline_capacity = 8;

    multishot_slot(io_context& context, const socket_base& socket, arm_fn prepare,
                   release_fn release, starved_fn starved, void* owner, unsigned limit) noexcept
        : completion{&on_completion}, context_(&context), arm_(prepare), release_(release),
          starved_fn_(starved), owner_(owner), socket_(&socket), fd_(socket.native_handle()),
          limit_(limit) {}

    ~multishot_slot() = default;

    completion* as_completion() noexcept { return this; }

    void destroy() noexcept {
        io_context* context = context_;
        this->~multishot_slot();
        context->storage().free_slot(this);
    }

    void push(multishot_entry entry) noexcept {
        if (!queue_.try_push(entry)) [[unlikely]] {
            release_(*this, entry); // out of memory with completions arriving: nothing can hold it
        }
    }

    static void on_completion(completion* self, const io_uring_cqe& cqe) noexcept {
        auto& slot = *static_cast<multishot_slot*>(self);
        multishot_waiter* waiter = slot.waiters_;
        // The common case first, kept small enough that the resumption is a tail call: an
        // entry that is not the last, for a consumer that waits.
        if ((cqe.flags & IORING_CQE_F_MORE) != 0 && cqe.res >= 0 && waiter != nullptr &&
            !slot.context_->draining()) [[likely]] {
            slot.delivered_ = true;
            slot.waiters_ = waiter->next;
            waiter->entry = {cqe.res, cqe.flags};
            waiter->filled = true;
            waiter->handle.resume(); // last: the consumer may destroy the owner, and so the slot
            return;
        }
        slot.complete(cqe);
    }

    // Everything else: the last entry, an error, nobody waiting, an orphaned slot, shutdown.
    [[gnu::noinline]] void complete(const io_uring_cqe& cqe) noexcept {
        const bool final = (cqe.flags & IORING_CQE_F_MORE) == 0;
        multishot_entry entry{cqe.res, cqe.flags};
        if (final) {
            armed_ = false;
            if (closed_) [[unlikely]] {
                entry.result = -EBADF; // the NOP armed in place of a stale descriptor
            }
        }
        if (orphaned_) [[unlikely]] {
            release_(*this, entry);
            if (final) {
                destroy();
            }
            return;
        }
        if (final && pausing_) [[unlikely]] {
            pausing_ = false;
            // Unless the socket was closed meanwhile: then this ECANCELED is the close's, and
            // its consumer hears it.
            if (entry.result == -ECANCELED && socket_->native_handle() == fd_) {
                // The pause asked for: the data waits in the socket. A consumer that emptied
                // the queue and began waiting meanwhile found the operation still armed.
                if (waiters_ != nullptr && !starved_) {
                    arm();
                }
                return;
            }
        }
        if (entry.result < 0 && absorb_failure(entry.result)) [[unlikely]] {
            return;
        }
        delivered_ = true;
        multishot_waiter* waiter = waiters_;
        // During shutdown entries stay queued, to be released when the owner is destroyed.
        // A waiter exists only while the queue is empty, so handing over keeps the order.
        if (waiter == nullptr || context_->draining()) {
            push(entry);
            if (armed_ && limit_ != 0 && queue_.size() >= limit_) {
                pause();
            }
            return;
        }
        if (final && entry.result < 0) [[unlikely]] {
            wake_all(entry);
            return;
        }
        waiters_ = waiter->next;
        if (final && waiters_ != nullptr) [[unlikely]] {
            arm(); // the others still wait: keep the operation going for them
        }
        waiter->entry = entry;
        waiter->filled = true;
        waiter->handle.resume(); // last: the consumer may destroy the owner, and so the slot
    }

    // A consumer that does not keep up would otherwise let the operation take every buffer of
    // a shared ring: cancel it; the final CQE (ECANCELED) is absorbed, and the next consumer to
    // wait arms it again.
    [[gnu::noinline]] void pause() noexcept {
        if (pausing_) {
            return;
        }
        pausing_ = true;
        io_uring_sqe* sqe = context_->get_sqe();
        io_uring_prep_cancel64(sqe, reinterpret_cast<std::uintptr_t>(as_completion()), 0);
        io_uring_sqe_set_data64(sqe, 0);
    }

    // A failure ends the operation for every consumer: each waiter hears it. A consumer may
    // destroy the owner meanwhile; the slot then outlives the loop, and the rest stay asleep,
    // as any waiter does when its owner goes.
    [[gnu::noinline]] void wake_all(const multishot_entry& entry) noexcept {
        multishot_waiter* waiter = std::exchange(waiters_, nullptr);
        waking_ = true;
        while (waiter != nullptr && !orphaned_) {
            multishot_waiter* next = waiter->next;
            waiter->entry = entry;
            waiter->filled = true;
            waiter->handle.resume();
            waiter = next;
        }
        waking_ = false;
        if (orphaned_ && !armed_) {
            destroy();
        }
    }

    // Handles the failures that are not the consumer's business; true when absorbed.
    bool absorb_failure(int result) noexcept {
        if (result == -EINVAL && !single_shot_ && !delivered_) {
            // The kernel lacks this multishot operation (accept: 5.19, recv: 6.0): carry on
            // one submission at a time. A real EINVAL comes back from that submission.
            single_shot_ = true;
            arm();
            return true;
        }
        if (result == -ENOBUFS && starved_fn_ != nullptr) {
            // Not an error: the shared buffers ran dry and the data waits in the socket.
            starved_ = true;
            starved_fn_(*this);
            return true;
        }
        return false;
    }

    io_context* context_;
    arm_fn arm_;
    release_fn release_;
    starved_fn starved_fn_;
    void* owner_;
    multishot_waiter* waiters_ = nullptr; // the latest first: the warmest frame runs next
    const socket_base* socket_; // the owner's socket, to tell whether fd_ is still its own
    int fd_;
    unsigned limit_; // entries queued untaken before the operation pauses; 0: no limit
    bool armed_ = false;
    bool pausing_ = false;
    bool closed_ = false; // armed with a NOP: the socket was closed
    bool orphaned_ = false;
    bool waking_ = false;
    bool starved_ = false;
    bool single_shot_ = false;
    bool delivered_ = false;
    fifo<multishot_entry, inline_capacity> queue_;
};

inline multishot_entry multishot_waiter::take(multishot_slot& slot) noexcept {
    return filled ? entry : slot.pop();
}

/// The awaitable of a multishot consumer's `next()` (`acceptor`, `receiver`,
/// `datagram_receiver`). `Owner` befriends it and provides `ready()` (something to take at
/// once), `slot()` and `take(waiter, error)`.
template <class Owner>
class [[nodiscard]] multishot_next {
public:
    /// Ready at once when an entry (or the end) is already there.
    bool await_ready() const noexcept { return owner_->ready(); }

    /// Waits for the next entry, arming the operation if it is idle; fails at once with EBADF
    /// if the socket was closed, rather than arm on a number now reused.
    bool await_suspend(std::coroutine_handle<> waiter) noexcept {
        waiter_.handle = waiter;
        return owner_->slot().wait(waiter_);
    }

    /// What the owner makes of the entry; or the error.
    auto await_resume() { return owner_->take(waiter_, error_); }

private:
    friend Owner;
    multishot_next(Owner& owner, std::error_code* error) noexcept : owner_(&owner), error_(error) {}

    Owner* owner_;
    std::error_code* error_;
    multishot_waiter waiter_;
};

} // namespace ringio::detail
