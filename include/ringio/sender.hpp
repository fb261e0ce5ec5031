#pragma once

#include <ringio/buffer_ring.hpp>
#include <ringio/detail/error.hpp>
#include <ringio/detail/fifo.hpp>
#include <ringio/detail/socket_base.hpp>
#include <ringio/detail/storage.hpp>
#include <ringio/detail/stream_ops.hpp>
#include <ringio/io_context.hpp>
#include <ringio/tcp_stream.hpp>

#include <liburing.h>
#include <sys/socket.h>

#include <cerrno>
#include <coroutine>
#include <cstddef>
#include <new>
#include <system_error>
#include <utility>

namespace ringio {

namespace detail {

/// A coroutine waiting for a sender to have nothing left to send; it lives in the `flush()`
/// awaitable, so waiting allocates nothing.
struct flush_waiter {
    std::coroutine_handle<> handle;
    flush_waiter* next = nullptr;
};

/// The state of a `sender`: the lease being sent, the leases queued behind it, the first error.
/// It lives in the context's storage, not in a coroutine frame, because the send's completion
/// may arrive after the sender is gone: the sender then "orphans" the slot, which frees itself
/// at that completion.
///
/// One send is in flight at a time. Two sends on one TCP socket may both be waiting for room
/// in the socket's buffer, and the kernel does not promise to serve them in order; one at a
/// time keeps the bytes in the order they were given.
class send_slot : private completion {
public:
    /// Creates a slot in `context`'s storage for `socket`, which stays open while it is used.
    static send_slot* create(io_context& context, const socket_base& socket) {
        static_assert(sizeof(send_slot) <= context_storage::slot_size);
        return ::new (context.storage().allocate_slot()) send_slot(context, socket);
    }

    send_slot(const send_slot&) = delete;
    send_slot& operator=(const send_slot&) = delete;

    /// The owner is going away: drops what is queued; frees the slot now if nothing is in
    /// flight, else at its completion.
    void orphan() noexcept {
        orphaned_ = true;
        socket_ = nullptr;
        waiters_ = nullptr;
        drop_queue();
        if (pending_ == 0 && !waking_) {
            destroy(); // else the wake-up loop that runs the owner's destructor frees the slot
        }
    }

    /// True when nothing is in flight and no error is kept: a send can start at once.
    [[nodiscard]] bool idle() const noexcept {
        return (pending_ | static_cast<unsigned>(error_)) == 0;
    }

    /// Starts sending `chunk` (not empty), taking its buffer; the slot must be idle.
    void start(buffer_lease& chunk) noexcept {
        // The lease's fields are taken directly: a move assignment would check for a buffer to
        // give back first, which an idle slot never holds.
        ring_ = std::exchange(chunk.ring_, nullptr);
        id_ = chunk.id_;
        next_ = ring_->buffer(id_) + chunk.offset_;
        remaining_ = chunk.size_;
        pending_ = 1;
        submit();
    }

    /// Queues `chunk` (not empty) behind the send in flight, moving from it; false, with
    /// `chunk` untouched, when it cannot be queued (out of memory).
    bool enqueue(buffer_lease& chunk) noexcept {
        if (!queue_.try_push(chunk)) {
            return false;
        }
        ++pending_;
        return true;
    }

    /// Keeps `result` (negative) as the error every later call reports, and drops the queue:
    /// nothing after a failed send could arrive in order.
    void fail(int result) noexcept {
        error_ = result;
        drop_queue();
    }

    /// Suspends `waiter` (its handle set) until nothing is left to send.
    void wait(flush_waiter& waiter) noexcept {
        waiter.next = waiters_;
        waiters_ = &waiter;
    }

    /// The leases not yet sent whole: the one in flight and those queued.
    [[nodiscard]] std::size_t pending() const noexcept { return pending_; }

    /// The first error (a negative errno), or 0.
    [[nodiscard]] int error() const noexcept { return error_; }

    /// The descriptor the slot sends on.
    [[nodiscard]] int fd() const noexcept { return fd_; }

private:
    send_slot(io_context& context, const socket_base& socket) noexcept
        : completion{&on_completion}, context_(&context), socket_(&socket),
          fd_(socket.native_handle()) {}

    ~send_slot() = default;

    void destroy() noexcept {
        io_context* context = context_;
        this->~send_slot();
        context->storage().free_slot(this);
    }

    void drop_queue() noexcept {
        while (!queue_.empty()) {
            queue_.pop().release();
            --pending_;
        }
    }

    void submit() noexcept {
        io_uring_sqe* sqe = context_->get_sqe();
        // A peer that has gone answers EPIPE, never SIGPIPE.
        io_uring_prep_send(sqe, fd_, next_, clamp_size(remaining_), MSG_NOSIGNAL);
        io_uring_sqe_set_data64(sqe, reinterpret_cast<std::uintptr_t>(as_completion()));
    }

    completion* as_completion() noexcept { return this; }

    static void on_completion(completion* self, const io_uring_cqe& cqe) noexcept {
        auto& slot = *static_cast<send_slot*>(self);
        // The common case touches nothing else: all of it went, and nothing waits behind it.
        if (static_cast<std::size_t>(cqe.res) == slot.remaining_ && slot.pending_ == 1 &&
            slot.waiters_ == nullptr && !slot.orphaned_) [[likely]] {
            slot.pending_ = 0;
            slot.ring_->give_back(slot.id_);
            return;
        }
        slot.complete(cqe.res);
    }

    [[gnu::noinline]] void complete(int result) noexcept {
        if (result > 0 && static_cast<std::size_t>(result) < remaining_ && !orphaned_ &&
            !context_->draining()) {
            // The socket took part of it (its buffer filled up): send the rest.
            next_ += result;
            remaining_ -= static_cast<std::size_t>(result);
            submit();
            return;
        }
        --pending_;
        ring_->give_back(id_);
        if (orphaned_) {
            if (!waking_) {
                destroy();
            }
            return;
        }
        if (context_->draining()) {
            // Shutdown: the waiting frames are about to be destroyed, never resumed.
            drop_queue();
            return;
        }
        if (result <= 0) {
            // No progress on a non-empty send would repeat forever.
            fail(result < 0 ? result : -EIO);
        } else if (!queue_.empty()) {
            if (socket_->native_handle() == fd_) [[likely]] {
                buffer_lease next = queue_.pop();
                --pending_;
                start_queued(next);
                return;
            }
            // Closed since: its number may belong to another file by now.
            fail(-EBADF);
        }
        if (waiters_ != nullptr) {
            wake_all();
        }
    }

    // As `start`, keeping the count of those still queued.
    void start_queued(buffer_lease& chunk) noexcept {
        const unsigned queued = pending_;
        start(chunk);
        pending_ += queued;
    }

    // A waiter may destroy the owner meanwhile; the slot then outlives the loop, and the rest
    // stay asleep, as any waiter does when its owner goes.
    void wake_all() noexcept {
        flush_waiter* waiter = std::exchange(waiters_, nullptr);
        waking_ = true;
        while (waiter != nullptr && !orphaned_) {
            flush_waiter* next = waiter->next;
            waiter->handle.resume();
            waiter = next;
        }
        waking_ = false;
        if (orphaned_ && pending_ == 0) {
            destroy();
        }
    }

    io_context* context_;
    const socket_base* socket_;
    flush_waiter* waiters_ = nullptr;
    // The buffer being sent, while pending_ > 0.
    buffer_ring_state* ring_ = nullptr;
    unsigned id_ = 0;
    unsigned pending_ = 0;            // the buffer being sent and the queue
    const std::byte* next_ = nullptr; // the first byte the socket has not taken
    std::size_t remaining_ = 0;       // from next_ on
    int fd_;
    int error_ = 0;
    bool orphaned_ = false;
    bool waking_ = false;
    fifo<buffer_lease, 4> queue_;
};

} // namespace detail

/// Sends received buffers on a stream without waiting for each: `send(lease)` hands the lease
/// over and returns at once; the buffer goes back to its ring when the kernel has taken its
/// bytes. Sends go out one after another, in the order given. An echo sends each chunk back
/// this way and goes on receiving, with no coroutine resumption per write.
///
/// Errors come at a later call: a send that fails keeps its error, drops what is queued behind
/// it, and every later `send` and `flush` reports it. `co_await flush()` waits until nothing is
/// left to send: call it before the stream closes, to learn how the last sends ended.
/// `pending()` bounds what one stream holds: leases queued here are buffers its ring cannot
/// lend to other connections.
///
/// Lifetime: the stream outlives the sender; leases come from a `buffer_ring` of the stream's
/// context. Destroying a sender drops the leases it still queues (their bytes are never sent);
/// the send in flight runs to its end, unless the stream is closed first, which cancels it.
/// Kernel: 5.6. See: io_uring_prep_send(3).
class sender {
public:
    /// Prepares to send on `stream`; nothing is submitted until `send`.
    explicit sender(tcp_stream& stream)
        : slot_(detail::send_slot::create(stream.context(), stream)), socket_(&stream),
          peer_(&stream.remote_endpoint()) {}

    sender(const sender&) = delete;
    sender& operator=(const sender&) = delete;

    ~sender() { slot_->orphan(); }

    /// The awaitable of `flush()`: `co_await` produces nothing.
    class [[nodiscard]] flush_operation {
    public:
        /// Ready at once when nothing is in flight.
        bool await_ready() const noexcept { return owner_->slot_->pending() == 0; }

        /// Waits until the last send has completed.
        void await_suspend(std::coroutine_handle<> waiter) noexcept {
            waiter_.handle = waiter;
            owner_->slot_->wait(waiter_);
        }

        /// Reports the sender's error, if any.
        void await_resume() const { owner_->check(error_); }

    private:
        friend sender;
        flush_operation(const sender& owner, std::error_code* error) noexcept
            : owner_(&owner), error_(error) {}

        const sender* owner_;
        std::error_code* error_;
        detail::flush_waiter waiter_;
    };

    /// Sends `chunk`'s bytes after those given before, moving from it; the lease is given back
    /// when the kernel has taken them all. An empty lease sends nothing.
    /// Errors: the error of an earlier send (e.g. `EPIPE`, `ECONNRESET`, `ECANCELED` when the
    /// stream was closed meanwhile), `EBADF` once the stream is closed; the message names the
    /// peer. On error `chunk` is left as it was.
    void send(buffer_lease&& chunk) {
        if (fast_path(chunk)) [[likely]] {
            return;
        }
        send_queued(chunk, nullptr);
    }

    /// As `send` above; an error is stored in `error` instead of thrown.
    void send(buffer_lease&& chunk, std::error_code& error) {
        if (fast_path(chunk)) [[likely]] {
            detail::clear(&error);
            return;
        }
        send_queued(chunk, &error);
    }

    /// Waits until nothing is left to send.
    /// Completes with: nothing. Errors: as `send`.
    flush_operation flush() const noexcept { return {*this, nullptr}; }

    /// As `flush` above; an error is stored in `error` instead of thrown.
    flush_operation flush(std::error_code& error) const noexcept { return {*this, &error}; }

    /// The leases given to `send` whose bytes the kernel has not taken whole yet.
    [[nodiscard]] std::size_t pending() const noexcept { return slot_->pending(); }

private:
    // Nothing in flight, no error, the stream still open: send at once.
    bool fast_path(buffer_lease& chunk) noexcept {
        if (slot_->idle() && socket_->native_handle() == slot_->fd() && !chunk.empty()) {
            slot_->start(chunk);
            return true;
        }
        return false;
    }

    // Everything else: queue behind the send in flight, or report why not.
    [[gnu::noinline]] void send_queued(buffer_lease& chunk, std::error_code* error) {
        if (slot_->error() == 0 && slot_->pending() == 0 &&
            socket_->native_handle() != slot_->fd()) {
            // Closed or moved from since the sender was made: never send on a reused number.
            slot_->fail(-EBADF);
        }
        if (slot_->error() != 0) {
            check(error);
            return;
        }
        if (!chunk.empty() && !slot_->enqueue(chunk)) {
            detail::report(std::make_error_code(std::errc::not_enough_memory), error,
                           "send to " + detail::describe_endpoint(*peer_));
            return;
        }
        detail::clear(error);
    }

    void check(std::error_code* error) const {
        if (slot_->error() != 0) [[unlikely]] {
            detail::report(detail::error_from_result(slot_->error()), error,
                           "send to " + detail::describe_endpoint(*peer_));
            return;
        }
        detail::clear(error);
    }

    detail::send_slot* slot_;
    const detail::socket_base* socket_;
    const endpoint* peer_;
};

} // namespace ringio
