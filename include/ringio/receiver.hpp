#pragma once

#include <ringio/buffer_ring.hpp>
#include <ringio/detail/error.hpp>
#include <ringio/detail/multishot.hpp>
#include <ringio/tcp_stream.hpp>

#include <liburing.h>

#include <coroutine>
#include <string>
#include <system_error>
#include <utility>

namespace ringio {

/// A stream of received buffers: one multishot recv into a shared `buffer_ring`, armed once
/// and delivering every chunk of data as it arrives, without a submission per read.
///
/// `co_await next()` produces a `buffer_lease`; an empty lease means the peer closed its side.
/// When the ring runs dry the kernel stops the recv (-ENOBUFS); the data waits in the socket
/// and the receiver starts again as soon as a lease is given back, so nothing is lost. It also
/// stops while `hold_limit` chunks wait untaken, and starts again when `next()` asks.
/// One `next()` at a time: a stream's chunks only make sense in order.
///
/// Lifetime: the stream and the ring outlive the receiver; leases may outlive both the
/// receiver and the stream. Destroying a receiver while its recv is armed cancels it safely.
/// Kernel: 6.0 for multishot (older kernels get one recv per `next()`). See:
/// io_uring_prep_recv_multishot(3).
class receiver {
public:
    /// Prepares to receive from `stream` into `buffers`; nothing is submitted until `next()`.
    receiver(tcp_stream& stream, buffer_ring& buffers)
        : slot_(detail::multishot_slot::create(
              stream.context(), stream, &arm, &detail::buffer_ring_state::release_entry,
              &detail::buffer_ring_state::starve_slot, &buffers.state(), hold_limit)),
          peer_(&stream.remote_endpoint()) {}

    receiver(const receiver&) = delete;
    receiver& operator=(const receiver&) = delete;

    ~receiver() {
        if (slot_ != nullptr) {
            ring().unlink(*slot_);
            slot_->orphan();
        }
    }

    /// The most chunks a receiver holds that its consumer has not taken: past that it stops
    /// receiving until `next()` asks again, so that a connection whose consumer stalls (a
    /// peer that does not read its replies) cannot take every buffer of a shared ring.
    static constexpr unsigned hold_limit = 8;

    /// The awaitable of `next()`: `co_await` produces `buffer_lease`.
    using next_operation = detail::multishot_next<receiver>;

    /// The next chunk of data.
    /// Completes with: a `buffer_lease` of at most `buffer_size()` bytes; empty at the end of
    /// the stream, and at every call after it. Errors: e.g. `ECONNRESET`, `ECANCELED` when the
    /// stream is closed; the message names the peer.
    next_operation next() noexcept { return {*this, nullptr}; }

    /// As `next` above; an error is stored in `error` instead of thrown.
    next_operation next(std::error_code& error) noexcept { return {*this, &error}; }

private:
    friend next_operation;

    bool ready() const noexcept { return !slot_->empty() || ended(); }
    detail::multishot_slot& slot() const noexcept { return *slot_; }

    detail::buffer_ring_state& ring() const noexcept {
        return *static_cast<detail::buffer_ring_state*>(slot_->owner());
    }

    static void arm(detail::multishot_slot& slot, io_uring_sqe* sqe) noexcept {
        auto& ring = *static_cast<detail::buffer_ring_state*>(slot.owner());
        if (slot.single_shot()) {
            io_uring_prep_recv(sqe, slot.fd(), nullptr, 0, 0);
        } else {
            io_uring_prep_recv_multishot(sqe, slot.fd(), nullptr, 0, 0);
        }
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = ring.group();
    }

    bool ended() const noexcept { return end_ <= 0; }

    // A chunk (the kernel never selects a buffer for 0 bytes or an error).
    static bool is_chunk(const detail::multishot_entry& entry) noexcept {
        return (entry.flags & IORING_CQE_F_BUFFER) != 0;
    }

    buffer_lease chunk(const detail::multishot_entry& entry, std::error_code* error) noexcept {
        detail::clear(error);
        return {ring(), entry.flags >> IORING_CQE_BUFFER_SHIFT,
                static_cast<std::size_t>(entry.result)};
    }

    buffer_lease take(detail::multishot_waiter& waiter, std::error_code* error) {
        // The common case inline: a chunk handed over as the consumer woke.
        if (waiter.filled && is_chunk(waiter.entry)) [[likely]] {
            return chunk(waiter.entry, error);
        }
        return take_queued(waiter, error);
    }

    // A chunk that was queued, the end of the stream, or an error. Out of line: with all of
    // `take` inline, the compiler kept it as a function of its own, and every chunk paid for
    // the call (22 instructions per echo round trip, measured with callgrind).
    [[gnu::noinline]] buffer_lease take_queued(detail::multishot_waiter& waiter,
                                               std::error_code* error) {
        if (end_ > 0 && (waiter.filled || !slot_->empty())) {
            const detail::multishot_entry entry = waiter.take(*slot_);
            if (is_chunk(entry)) {
                return chunk(entry, error);
            }
            end_ = entry.result; // 0: end of stream; negative: an error, for good
        }
        if (end_ < 0) {
            const std::error_code ec = detail::error_from_result(end_);
            if (slot_->closed()) {
                end_ = -EBADF; // the error is reported once; then the closed stream is EBADF
            }
            if (error == nullptr) {
                detail::throw_error(ec, "recv from " + detail::describe_endpoint(*peer_));
            }
            *error = ec;
        } else {
            detail::clear(error);
        }
        return {};
    }

    detail::multishot_slot* slot_;
    const endpoint* peer_;
    int end_ = 1; // 1 while data may still come
};

} // namespace ringio
