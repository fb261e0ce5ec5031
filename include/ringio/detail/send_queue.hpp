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
#include <cstdint>
#include <new>
#include <utility>

namespace ringio::detail {

/// The leases a stream sends: one send in flight, the rest queued, and the first error.
// One in flight: two sends waiting for room in one socket may be served out of order. Kept in
// the context's storage, since the send's completion may come after the stream is gone; tracked
// by the stream, whose close cancels the send in flight.
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
        state_ |= orphaned;
        descriptor_core::unlink(*this);
        drop_queue();
        if (pending() == 0) {
            destroy();
        } else {
            ring_->cancel(user_data()); // as closing the stream would
        }
    }

    /// True when a send can start at once: nothing in flight, no error, the stream open.
    [[nodiscard]] bool idle() const noexcept { return state_ == 0; }

    /// Starts sending `chunk` (not empty), taking it; nothing may be in flight.
    [[gnu::always_inline]] void start(lent_buffer& chunk) noexcept {
        current_ = chunk;
        remaining_ = chunk.size;
        ++state_;
        submit(chunk.data, chunk.size);
        chunk.from = nullptr; // all that says that it lends nothing now; last, so that the
                              // caller's next test of it is known without a load
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
    [[nodiscard]] std::size_t pending() const noexcept {
        return static_cast<std::uint32_t>(state_);
    }
    /// The descriptor it sends on, as it was when the queue was made.
    [[nodiscard]] int fd() const noexcept { return fd_; }
    /// The first error (a negative errno), or 0.
    [[nodiscard]] int error() const noexcept { return error_; }
    /// Cancels the send in flight; it fails with ECANCELED, and the queue with it.
    void cancel() noexcept {
        if (pending() != 0) {
            ring_->cancel(user_data());
        }
    }

    /// Waits for `pending()` to reach 0 (one waiter at a time).
    void on_drained(std::coroutine_handle<> waiter) noexcept {
        flush_waiter_ = waiter;
        state_ |= flushing;
    }

private:
    // `state_` holds the count of leases not sent whole in its low half, and these above it:
    // one test finds an idle queue, and one the common completion.
    static constexpr std::uint64_t failed = std::uint64_t{1} << 32;   // `error_` is set
    static constexpr std::uint64_t closed = std::uint64_t{1} << 33;   // the stream was closed
    static constexpr std::uint64_t orphaned = std::uint64_t{1} << 34; // the stream has gone
    static constexpr std::uint64_t flushing = std::uint64_t{1} << 35; // a flush waits

    explicit send_queue(descriptor_core& socket) noexcept
        : tracked(), ring_(&socket.owner()), fd_(socket.fd()) {
        completion::complete = &on_completion;
        on_close = &on_closed;
        socket.link(*this);
        state_ = core != nullptr ? 0 : closed;
    }
    ~send_queue() = default;

    static void on_closed(tracked& self) noexcept {
        static_cast<send_queue&>(self).state_ |= closed;
    }

    void destroy() noexcept {
        ring* r = ring_;
        this->~send_queue();
        r->storage().free_slot(this);
    }

    void fail(int code) noexcept {
        error_ = error_ != 0 ? error_ : code;
        state_ |= failed;
    }

    bool enqueue(lent_buffer& chunk) noexcept {
        if ((state_ & (failed | closed)) == closed) {
            fail(-EBADF); // closed: never send on a number that may name another file now
        }
        if ((state_ & failed) != 0) {
            return false;
        }
        if (pending() == 0) {
            start(chunk);
            return true;
        }
        if (!queue_.try_push(chunk)) {
            fail(-ENOMEM);
            return false;
        }
        chunk = {};
        ++state_;
        return true;
    }

    [[gnu::always_inline]] void submit(const std::byte* data, std::uint32_t size) noexcept {
        io_uring_sqe* sqe = ring_->get_sqe();
        io_uring_prep_send(sqe, fd_, data, size, MSG_NOSIGNAL);
        io_uring_sqe_set_data64(sqe, user_data());
    }

    void drop_queue() noexcept {
        while (!queue_.empty()) {
            queue_.pop().give_back();
            --state_;
        }
    }

    static void on_completion(completion* self, const io_uring_cqe& cqe) noexcept {
        auto& q = *static_cast<send_queue*>(static_cast<tracked*>(self));
        // The common case touches nothing else: all of it went, one lease was pending, and no
        // flag is set.
        if (static_cast<std::uint32_t>(cqe.res) == q.remaining_ && q.state_ == 1) [[likely]] {
            q.state_ = 0; // so `current_` is spent, and left as it is
            static_cast<buffer_pool*>(q.current_.from->owner())
                ->give_back(q.current_.id, *q.current_.from);
            return;
        }
        q.complete(cqe.res);
    }

    [[gnu::noinline]] void complete(int result) noexcept {
        if (result > 0 && static_cast<std::uint32_t>(result) < remaining_ &&
            (state_ & (closed | orphaned)) == 0 && !ring_->draining()) {
            remaining_ -= static_cast<std::uint32_t>(result); // the socket took part of it (its
            submit(current_.data + current_.size - remaining_, remaining_); // buffer filled)
            return;
        }
        --state_;
        current_.give_back();
        if ((state_ & orphaned) != 0) {
            destroy();
            return;
        }
        if (result <= 0 || (state_ & closed) != 0 || ring_->draining()) {
            fail(result < 0 ? result : (state_ & closed) != 0 ? -EBADF : -EIO);
            drop_queue(); // nothing after a failed send could arrive in order
        } else if (!queue_.empty()) {
            lent_buffer following = queue_.pop();
            --state_;
            start(following);
            return;
        }
        if ((state_ & flushing) != 0 && pending() == 0 && !ring_->draining()) {
            state_ &= ~flushing;
            std::exchange(flush_waiter_, {}).resume(); // last: it may destroy the stream
        }
    }

    ring* ring_;
    int fd_;
    int error_ = 0;
    std::uint64_t state_;
    std::coroutine_handle<> flush_waiter_;
    lent_buffer current_;
    std::uint32_t remaining_ = 0; // the bytes of `current_` the socket has not taken
    fifo<lent_buffer, 3> queue_;
};

} // namespace ringio::detail
