#pragma once

#include <ringio/buffer_ring.hpp>
#include <ringio/detail/error.hpp>
#include <ringio/detail/multishot.hpp>
#include <ringio/endpoint.hpp>
#include <ringio/udp_socket.hpp>

#include <liburing.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <coroutine>
#include <cstdint>
#include <cstring>
#include <string>
#include <system_error>

namespace ringio {

/// What `datagram_receiver::next` completes with.
struct datagram {
    buffer_lease payload;   ///< The datagram's bytes, in a leased buffer of the ring.
    endpoint sender;        ///< Who sent it.
    bool truncated = false; ///< It was larger than the buffer had room for; the rest is lost.
};

/// A stream of received datagrams: one multishot recvmsg into a shared `buffer_ring`, armed
/// once and delivering every datagram with its sender, without a submission per datagram.
///
/// Several coroutines may wait on one receiver at once (a pool serving one socket): each
/// datagram wakes one of them, so while one answers, the others take the next datagrams. A
/// failure ends the recvmsg and reaches every waiting coroutine; the next `next()` starts it
/// again. When the ring runs dry the kernel stops the recvmsg (-ENOBUFS); datagrams wait in the
/// socket and the receiver starts again as soon as a lease is given back.
///
/// Each buffer holds the kernel's header and the sender's address before the payload, so the
/// largest payload is `buffer_size() - overhead`. Lifetime: the socket and the ring outlive the
/// receiver, and the receiver outlives the coroutines waiting on it; leases may outlive all of
/// them. Destroying a receiver while its recvmsg is armed cancels it safely.
/// Kernel: 6.0 (before, `next()` fails with `EINVAL`). See: io_uring_prep_recvmsg_multishot(3).
class datagram_receiver {
public:
    /// The bytes of each buffer that are not payload: the kernel's header and the sender.
    static constexpr std::size_t overhead = sizeof(io_uring_recvmsg_out) + sizeof(sockaddr_in6);

    /// Prepares to receive from `socket` into `buffers`; nothing is submitted until `next()`.
    /// Errors: `std::system_error` `EINVAL` when a buffer has no room past `overhead`.
    datagram_receiver(udp_socket& socket, buffer_ring& buffers)
        : slot_(nullptr), local_(socket.local_endpoint()) {
        if (buffers.buffer_size() <= overhead) {
            detail::throw_error(std::make_error_code(std::errc::invalid_argument),
                                "datagram_receiver on " + detail::describe_endpoint(local_) +
                                    ": buffers of " + std::to_string(buffers.buffer_size()) +
                                    " bytes leave no room for a payload past the " +
                                    std::to_string(overhead) + " bytes of the header");
        }
        slot_ = detail::multishot_slot::create(
            socket.context(), socket, &arm, &detail::buffer_ring_state::release_entry,
            &detail::buffer_ring_state::starve_slot, &buffers.state());
    }

    datagram_receiver(const datagram_receiver&) = delete;
    datagram_receiver& operator=(const datagram_receiver&) = delete;

    ~datagram_receiver() {
        ring().unlink(*slot_);
        slot_->orphan();
    }

    /// The awaitable of `next()`: `co_await` produces `datagram`.
    using next_operation = detail::multishot_next<datagram_receiver>;

    /// The next datagram.
    /// Completes with: `datagram`; an empty one (size 0) is a datagram too. Errors: e.g.
    /// `ECANCELED` when the socket is closed or cancelled; the message names the local address.
    next_operation next() noexcept { return {*this, nullptr}; }

    /// As `next` above; an error is stored in `error` instead of thrown, and the datagram
    /// produced holds no lease.
    next_operation next(std::error_code& error) noexcept { return {*this, &error}; }

private:
    friend next_operation;

    bool ready() const noexcept { return !slot_->empty(); }
    detail::multishot_slot& slot() const noexcept { return *slot_; }

    // What the kernel reads when it takes the SQE: room for an IPv4 or IPv6 sender, no control
    // data. A multishot recvmsg writes its results into the buffer, never back here, so one
    // shape serves every receiver of every thread.
    static msghdr* layout() noexcept {
        static msghdr shape = [] {
            msghdr m{};
            m.msg_namelen = sizeof(sockaddr_in6);
            return m;
        }();
        return &shape;
    }

    detail::buffer_ring_state& ring() const noexcept {
        return *static_cast<detail::buffer_ring_state*>(slot_->owner());
    }

    static void arm(detail::multishot_slot& slot, io_uring_sqe* sqe) noexcept {
        auto& ring = *static_cast<detail::buffer_ring_state*>(slot.owner());
        // MSG_TRUNC makes the header report the datagram's real length, so truncation shows.
        io_uring_prep_recvmsg_multishot(sqe, slot.fd(), layout(), MSG_TRUNC);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = ring.group();
    }

    datagram take(detail::multishot_waiter& waiter, std::error_code* error) {
        const detail::multishot_entry entry = waiter.take(*slot_);
        int result = entry.result;
        if ((entry.flags & IORING_CQE_F_BUFFER) != 0) {
            const unsigned id = entry.flags >> IORING_CQE_BUFFER_SHIFT;
            datagram got;
            std::size_t size = 0;
            if (parse(ring().buffer(id), result, got, size)) [[likely]] {
                got.payload = buffer_lease{ring(), id, size, overhead};
                detail::clear(error);
                return got;
            }
            ring().give_back(id);
            result = -EBADMSG; // not the layout asked for: never hand out a misread datagram
        }
        const std::error_code ec = detail::error_from_result(result);
        if (error == nullptr) {
            detail::throw_error(ec, "recvfrom on " + detail::describe_endpoint(local_));
        }
        *error = ec;
        return {};
    }

    // Reads the kernel's layout of the `length` bytes at `start`: header, sender, payload.
    bool parse(const std::byte* start, int length, datagram& got,
               std::size_t& size) const noexcept {
        if (length < 0 || static_cast<std::size_t>(length) < overhead ||
            static_cast<std::size_t>(length) > ring().size()) [[unlikely]] {
            return false;
        }
        io_uring_recvmsg_out header;
        std::memcpy(&header, start, sizeof header);
        if (header.namelen > sizeof(sockaddr_in6)) [[unlikely]] {
            return false;
        }
        std::memcpy(got.sender.mutable_data(), start + sizeof header, header.namelen);
        std::error_code bad;
        got.sender.resize(header.namelen, bad);
        if (bad) [[unlikely]] {
            return false;
        }
        const std::size_t stored = static_cast<std::size_t>(length) - overhead;
        size = header.payloadlen < stored ? header.payloadlen : stored;
        got.truncated = (header.flags & MSG_TRUNC) != 0 || header.payloadlen > stored;
        return true;
    }

    detail::multishot_slot* slot_;
    endpoint local_;
};

} // namespace ringio
