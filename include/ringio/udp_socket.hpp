#pragma once

// udp_socket: a UDP socket whose recvfrom and sendto are io_uring requests, with a stream of
// datagrams received into a shared buffer_ring.

#include <ringio/buffer_ring.hpp>
#include <ringio/descriptor.hpp>
#include <ringio/endpoint.hpp>
#include <ringio/multishot.hpp>
#include <ringio/operation.hpp>
#include <ringio/socket.hpp>

#include <liburing.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstring>
#include <span>
#include <string>
#include <system_error>

namespace ringio {

/// What `recvfrom` produces.
struct received {
    std::size_t size = 0;   ///< Bytes stored in the buffer.
    endpoint sender;        ///< Who sent the datagram.
    bool truncated = false; ///< It was larger than the buffer; the rest is lost.
};

/// What `receive_from` produces: one datagram in a leased buffer.
struct datagram {
    buffer_lease payload;   ///< The datagram's bytes.
    endpoint sender;        ///< Who sent it.
    bool truncated = false; ///< It was larger than the buffer had room for.
};

namespace detail {

/// IORING_OP_RECVMSG: one datagram and its sender.
struct recvfrom_op {
    int fd;
    std::span<std::byte> buffer;
    endpoint sender{};
    iovec vector{};
    msghdr message{};

    void prepare(io_uring_sqe* sqe) noexcept {
        vector = {buffer.data(), buffer.size()};
        message = {};
        message.msg_name = sender.mutable_data();
        message.msg_namelen = endpoint::capacity();
        message.msg_iov = &vector;
        message.msg_iovlen = 1;
        // MSG_TRUNC makes the result the datagram's real length, so truncation shows.
        io_uring_prep_recvmsg(sqe, fd, &message, MSG_TRUNC);
    }
    received complete(int result) noexcept {
        const auto length = static_cast<std::size_t>(result);
        const std::size_t stored = length < buffer.size() ? length : buffer.size();
        mark_received(buffer.data(), stored);
        std::error_code ignored; // the kernel wrote an address of the socket's own family
        sender.resize(message.msg_namelen, ignored);
        return {stored, sender, length > buffer.size()};
    }
    [[nodiscard]] std::string describe(const void* subject = nullptr) const {
        return request_name("recvfrom", "on", fd, current_position, subject);
    }
};

/// IORING_OP_SENDMSG: one datagram to one destination.
struct sendto_op {
    int fd;
    std::span<const std::byte> buffer;
    endpoint destination;
    iovec vector{};
    msghdr message{};

    void prepare(io_uring_sqe* sqe) noexcept {
        vector = {const_cast<std::byte*>(buffer.data()), buffer.size()}; // only read from
        message = {};
        message.msg_name = const_cast<sockaddr*>(destination.data());
        message.msg_namelen = destination.size();
        message.msg_iov = &vector;
        message.msg_iovlen = 1;
        io_uring_prep_sendmsg(sqe, fd, &message, MSG_NOSIGNAL);
    }
    std::size_t complete(int result) const noexcept { return static_cast<std::size_t>(result); }
    [[nodiscard]] std::string describe() const {
        return "sendto " + describe_endpoint(destination);
    }
};

/// The bytes of a multishot recvmsg's buffer before the payload: the kernel's header, and room
/// for a sender of the socket's `family`.
constexpr std::size_t recvmsg_overhead(int family) noexcept {
    return sizeof(io_uring_recvmsg_out) +
           (family == AF_UNIX ? sizeof(sockaddr_un) : sizeof(sockaddr_in6));
}

// What the kernel reads when it takes the SQE: room for a sender of the socket's family. A
// multishot recvmsg writes its results into the buffer, never back here, so one serves all.
inline msghdr* recvmsg_layout(int family) noexcept {
    static msghdr inet = [] {
        msghdr m{};
        m.msg_namelen = sizeof(sockaddr_in6);
        return m;
    }();
    static msghdr local = [] {
        msghdr m{};
        m.msg_namelen = sizeof(sockaddr_un);
        return m;
    }();
    return family == AF_UNIX ? &local : &inet;
}

/// Reads the kernel's layout of the `length` bytes of a recvmsg buffer (header, sender, payload)
/// into `d`; false if they are not that layout.
inline bool parse_recvmsg(lent_buffer& lent, std::size_t overhead, int length,
                          datagram& d) noexcept {
    const auto& pool = *static_cast<buffer_pool*>(lent.from->owner());
    if (length < 0 || static_cast<std::size_t>(length) < overhead ||
        static_cast<std::size_t>(length) > pool.size()) [[unlikely]] {
        return false;
    }
    const std::byte* start = lent.data - overhead;
    io_uring_recvmsg_out header;
    std::memcpy(&header, start, sizeof header);
    std::error_code bad;
    if (header.namelen > overhead - sizeof header) [[unlikely]] {
        return false;
    }
    std::memcpy(d.sender.mutable_data(), start + sizeof header, header.namelen);
    d.sender.resize(header.namelen, bad);
    const std::size_t stored = static_cast<std::size_t>(length) - overhead;
    lent.size = static_cast<std::uint32_t>(header.payloadlen < stored ? header.payloadlen : stored);
    mark_received(lent.data, lent.size);
    d.truncated = (header.flags & MSG_TRUNC) != 0 || header.payloadlen > stored;
    return !bad;
}

/// A socket's stream of datagrams: one multishot recvmsg, each datagram in a buffer behind the
/// kernel's header and the sender's address. Kernel: 6.0.
template <>
struct multishot_policy<datagram> {
    struct state {};
    static void arm(slot& self, io_uring_sqe* sqe) noexcept {
        io_uring_prep_recvmsg_multishot(sqe, self.fd(), recvmsg_layout(self.param()), MSG_TRUNC);
        buffer_pool::select(self, sqe);
    }
    static constexpr slot_kind kind = buffer_pool::kind(&arm, true);

    static multishot<datagram> open(descriptor_core& socket, buffer_pool& pool, unsigned budget,
                                    int family) {
        return {socket, &pool, budget, {}, family};
    }
    static datagram take(slot& self, state& /*s*/, const entry& got, std::error_code* error) {
        int result = got.result;
        if ((got.flags & IORING_CQE_F_BUFFER) != 0) {
            datagram d;
            lent_buffer& lent = lent_of(d.payload);
            const auto room = static_cast<std::uint32_t>(recvmsg_overhead(self.param()));
            lent = lent_buffer::of(self, got.flags >> IORING_CQE_BUFFER_SHIFT, room, 0);
            if (parse_recvmsg(lent, room, result, d)) [[likely]] {
                clear(error);
                return d;
            }
            lent.give_back();
            result = -EBADMSG; // not the layout asked for: never hand out a misread datagram
        }
        report_request(result, error, "recvfrom", "on", self.fd(), self.subject());
        return {};
    }
};

} // namespace detail

/// A UDP socket. Move-only; closing or destroying it cancels what is in flight on it.
class udp_socket : public descriptor {
public:
    /// A socket bound to `local` (port 0 picks a free port).
    udp_socket(io_context& context, const endpoint& local, socket_options options = {})
        : descriptor(context, detail::open_bound(local, SOCK_DGRAM, options, "udp_socket"), local) {
        rename(detail::local_endpoint_of(fd()));
    }

    /// An unbound socket of `family` (`AF_INET`, `AF_INET6` or `AF_UNIX`).
    udp_socket(io_context& context, int family)
        : descriptor(context, ::socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0), endpoint{}) {
        if (!is_open()) {
            detail::throw_error(detail::last_error(),
                                "udp_socket of family " + std::to_string(family));
        }
    }

    /// Takes datagrams from `peer` alone, and sends to it by default (`connect(2)`, which does no
    /// I/O); a peer that does not listen is then reported by the next recvfrom (ECONNREFUSED).
    void connect(const endpoint& peer) {
        if (::connect(fd(), peer.data(), peer.size()) != 0) {
            detail::throw_error(detail::last_error(), "connect " + detail::describe_endpoint(peer));
        }
    }

    /// The local address (`getsockname`): the real port after binding port 0.
    [[nodiscard]] endpoint local_endpoint() const { return detail::local_endpoint_of(fd()); }

    /// Receives one datagram into `buffer`; produces `received`.
    template <detail::mutable_byte_range R>
    auto recvfrom(R&& buffer) {
        return operation<detail::recvfrom_op>(*this, fd(), detail::writable_bytes_of(buffer));
    }

    /// Sends `buffer` as one datagram to `destination`; produces the bytes sent.
    template <detail::byte_range R>
    auto sendto(R&& buffer, const endpoint& destination) {
        return operation<detail::sendto_op>(*this, fd(), detail::bytes_of(buffer), destination);
    }

    /// Datagrams as they arrive, each in a buffer of `buffers`; at most `budget` held at once.
    multishot<datagram> receive_from(buffer_ring& buffers, unsigned budget = 64) {
        using policy = detail::multishot_policy<datagram>;
        const int family = detail::family_of(fd());
        if (buffers.buffer_size() <= detail::recvmsg_overhead(family)) {
            detail::throw_error(
                std::make_error_code(std::errc::invalid_argument),
                "receive_from on " + detail::describe_endpoint(name()) + ": buffers of " +
                    std::to_string(buffers.buffer_size()) + " bytes leave no room past the " +
                    std::to_string(detail::recvmsg_overhead(family)) + " bytes of the header");
        }
        return policy::open(detail::core_of(*this), detail::pool_of(buffers), budget, family);
    }
};

} // namespace ringio
