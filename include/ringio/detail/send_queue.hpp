#pragma once

// send_queue: leased buffers sent on a stream in order, without the sender awaiting each.

#include <ringio/detail/buffer_pool.hpp>
#include <ringio/detail/fifo.hpp>
#include <ringio/detail/ring.hpp>
#include <ringio/detail/tracked.hpp>

#include <liburing.h>
#include <sys/socket.h>

#include <cerrno>
#include <coroutine>
#include <cstddef>
#include <new>
#include <utility>

namespace ringio::detail {

/// The leases a stream sends: one send in flight (two sends waiting for room in one socket may
/// be served out of order), the rest queued, and the first error. Kept in the context's storage,
/// since the send's completion may come after the stream is gone; tracked by the stream, whose
/// close cancels the send in flight.
class send_queue : private tracked {
public:
    static send_queue* create(descriptor_core& socket) {
        static_assert(sizeof(send_queue) <= context_storage::slot_size);
        return ::new (socket.owner().storage().allocate_slot()) send_queue(socket);
    }

    send_queue(const send_queue&) = delete;
    send_queue& operator=(const send_queue&) = delete;

    /// The stream is going away: drops the queue, cancels the send in flight, and frees itself
    /// once nothing is in flight.
    void orphan() noexcept {
        orphaned_ = true;
        descriptor_core::unlink(*this);
        drop_queue();
        if (pending_ == 0) {
            destroy();
        } else {
            ring_->cancel(user_data()); // as closing the stream would
        }
    }

    /// True when a send can start at once: nothing in flight, no error, the stream open.
    [[nodiscard]] bool idle() const noexcept {
        return (pending_ | static_cast<unsigned>(error_)) == 0 && core != nullptr;
    }

    /// Starts sending `chunk` (not empty), taking it; the queue must be idle.
    [[gnu::always_inline]] void start(lent_buffer& chunk) noexcept {
        current_ = chunk;
        chunk.from = nullptr; // all that says that it lends nothing now
        next_ = current_.data;
        remaining_ = current_.size;
        ++pending_;
        submit();
    }

    /// Sends `chunk` after what was given before, taking it; false, with nothing taken, when
    /// it cannot (an earlier error, a closed stream, no memory: see `error()`).
    [[gnu::noinline]] bool send(lent_buffer& chunk) noexcept {
        if (idle()) {
            start(chunk);
            return true;
        }
        return enqueue(chunk);
    }

    /// The leases not yet sent whole.
    [[nodiscard]] std::size_t pending() const noexcept { return pending_; }
    /// The descriptor it sends on, as it was when the queue was made.
    [[nodiscard]] int fd() const noexcept { return fd_; }
    /// The first error (a negative errno), or 0.
    [[nodiscard]] int error() const noexcept { return error_; }
    /// Cancels the send in flight; it fails with ECANCELED, and the queue with it.
    void cancel() noexcept {
        if (pending_ != 0) {
            ring_->cancel(user_data());
        }
    }

    /// Waits for `pending()` to reach 0 (one waiter at a time).
    void on_drained(std::coroutine_handle<> waiter) noexcept { flush_waiter_ = waiter; }

private:
    explicit send_queue(descriptor_core& socket) noexcept
        : tracked(), ring_(&socket.owner()), fd_(socket.fd()) {
        completion::complete = &on_completion;
        socket.link(*this);
    }
    ~send_queue() = default;

    void destroy() noexcept {
        ring* r = ring_;
        this->~send_queue();
        r->storage().free_slot(this);
    }

    bool enqueue(lent_buffer& chunk) noexcept {
        if (error_ == 0 && core == nullptr) {
            error_ = -EBADF; // closed: never send on a number that may name another file now
        }
        if (error_ != 0) {
            return false;
        }
        if (pending_ == 0) {
            start(chunk);
            return true;
        }
        if (!queue_.try_push(chunk)) {
            error_ = -ENOMEM;
            return false;
        }
        chunk = {};
        ++pending_;
        return true;
    }

    [[gnu::always_inline]] void submit() noexcept {
        io_uring_sqe* sqe = ring_->get_sqe();
        io_uring_prep_send(sqe, fd_, next_, static_cast<unsigned>(remaining_), MSG_NOSIGNAL);
        io_uring_sqe_set_data64(sqe, user_data());
    }

    void drop_queue() noexcept {
        while (!queue_.empty()) {
            queue_.pop().give_back();
            --pending_;
        }
    }

    static void on_completion(completion* self, const io_uring_cqe& cqe) noexcept {
        auto& q = *static_cast<send_queue*>(static_cast<tracked*>(self));
        // The common case touches nothing else: all of it went, and nothing waits behind it.
        if (static_cast<std::size_t>(cqe.res) == q.remaining_ && q.pending_ == 1 &&
            !q.flush_waiter_ && !q.orphaned_) [[likely]] {
            q.pending_ = 0;
            q.current_.give_back_lent(); // a lease being sent is never empty
            return;
        }
        q.complete(cqe.res);
    }

    [[gnu::noinline]] void complete(int result) noexcept {
        if (result > 0 && static_cast<std::size_t>(result) < remaining_ && !orphaned_ &&
            core != nullptr && !ring_->draining()) {
            next_ += result; // the socket took part of it (its buffer filled): send the rest
            remaining_ -= static_cast<std::size_t>(result);
            submit();
            return;
        }
        --pending_;
        current_.give_back();
        if (orphaned_) {
            destroy();
            return;
        }
        if (result <= 0 || core == nullptr || ring_->draining()) {
            error_ = error_ != 0 ? error_ : result < 0 ? result : core == nullptr ? -EBADF : -EIO;
            drop_queue(); // nothing after a failed send could arrive in order
        } else if (!queue_.empty()) {
            lent_buffer following = queue_.pop();
            --pending_;
            start(following);
            return;
        }
        if (flush_waiter_ && pending_ == 0 && !ring_->draining()) {
            std::exchange(flush_waiter_, {}).resume(); // last: it may destroy the stream
        }
    }

    ring* ring_;
    int fd_;
    int error_ = 0;
    bool orphaned_ = false;
    unsigned pending_ = 0; // the lease being sent and those queued
    std::coroutine_handle<> flush_waiter_;
    lent_buffer current_;
    const std::byte* next_ = nullptr; // the first byte the socket has not taken
    std::size_t remaining_ = 0;
    fifo<lent_buffer, 4> queue_;
};

} // namespace ringio::detail
