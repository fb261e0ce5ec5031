#pragma once

#include <ringio/detail/endpoint_copy.hpp>
#include <ringio/detail/operation.hpp>
#include <ringio/detail/socket_base.hpp>
#include <ringio/detail/valgrind.hpp>
#include <ringio/endpoint.hpp>
#include <ringio/io_context.hpp>
#include <ringio/resolve.hpp>

#include <liburing.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cstddef>
#include <span>
#include <string>
#include <system_error>

namespace ringio {

/// What `udp_socket::recvfrom` completes with.
struct received {
    std::size_t size = 0;   ///< Bytes placed in the buffer.
    endpoint sender;        ///< Who sent the datagram.
    bool truncated = false; ///< The datagram was larger than the buffer; the rest is lost.
};

namespace detail {

/// IORING_OP_RECVMSG: one datagram and its sender.
struct recvfrom_op {
    int fd;
    std::span<std::byte> buffer;
    endpoint_copy local; // named by errors; a copy, since the socket may be destroyed first
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
        // MSG_TRUNC makes the result the datagram's real length, so truncation is visible.
        io_uring_prep_recvmsg(sqe, fd, &message, MSG_TRUNC);
    }

    received complete(int result) noexcept {
        const auto length = static_cast<std::size_t>(result);
        const std::size_t stored = length < buffer.size() ? length : buffer.size();
        mark_received(buffer.data(), stored);
        std::error_code ignored; // the kernel wrote an AF_INET or AF_INET6 address
        sender.resize(message.msg_namelen, ignored);
        return {stored, sender, length > buffer.size()};
    }

    [[nodiscard]] std::string describe() const {
        return local.empty() ? "recvfrom fd " + std::to_string(fd)
                             : "recvfrom on " + describe_endpoint(local.get());
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
        // The kernel only reads through iov_base here.
        vector = {const_cast<std::byte*>(buffer.data()), buffer.size()};
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

} // namespace detail

/// The awaitable of `udp_socket::recvfrom`.
using recvfrom_operation = detail::operation<detail::recvfrom_op>;
/// The awaitable of `udp_socket::sendto`.
using sendto_operation = detail::operation<detail::sendto_op>;

/// How `udp_socket` sets up a bound socket.
struct udp_options {
    /// `SO_REUSEPORT`: several sockets (one per thread) share the port, and the kernel spreads
    /// datagrams among them by sender.
    bool reuse_port = false;
    /// `IPV6_V6ONLY` for an IPv6 address; off means a `[::]` socket receives IPv4 too,
    /// whatever sysctl net.ipv6.bindv6only says.
    bool v6_only = false;
};

/// A UDP socket whose `recvfrom` and `sendto` are io_uring operations. Move-only; closing (or
/// destroying) it cancels its pending operations first.
class udp_socket : public detail::socket_base {
public:
    /// Opens a socket bound to `local` (port 0 picks a free port; see `local_endpoint()`).
    /// Errors: `std::system_error` naming the address, e.g. `EADDRINUSE`.
    udp_socket(io_context& context, const endpoint& local, udp_options options = {})
        : socket_base(context,
                      detail::open_socket(local.family(), SOCK_DGRAM,
                                          "udp_socket " + detail::describe_endpoint(local))),
          local_(local) {
        const std::string where = "udp_socket " + detail::describe_endpoint(local);
        if (options.reuse_port) {
            detail::set_socket_option(native_handle(), SOL_SOCKET, SO_REUSEPORT, 1,
                                      where + ": SO_REUSEPORT");
        }
        if (local.is_v6()) {
            detail::set_socket_option(native_handle(), IPPROTO_IPV6, IPV6_V6ONLY,
                                      options.v6_only ? 1 : 0, where + ": IPV6_V6ONLY");
        }
        detail::bind_socket(native_handle(), local, "udp_socket");
        local_ = local_endpoint();
    }

    /// Opens an unbound socket of `family` (v4 or v6); the first `sendto` binds it to a free
    /// port. Errors: `std::system_error`, `EAFNOSUPPORT` for `ip_family::any`.
    udp_socket(io_context& context, ip_family family)
        : socket_base(context, detail::open_socket(family == ip_family::v4   ? AF_INET
                                                   : family == ip_family::v6 ? AF_INET6
                                                                             : AF_UNSPEC,
                                                   SOCK_DGRAM, "udp_socket")) {}

    /// Receives one datagram into `buffer`.
    /// Completes with: `received`: the bytes stored, the sender, and whether the datagram was
    /// larger than the buffer (the excess is discarded by the kernel, never written past it).
    /// Errors: the kernel's. Lifetime: `buffer` until completion; destroying the socket cancels
    /// the recvfrom (`ECANCELED`).
    /// Cancellation: `cancel()`, `close()`, `with_timeout`. Kernel: 5.3. See: recvmsg(2).
    recvfrom_operation recvfrom(std::span<std::byte> buffer) {
        return recvfrom_operation{context(), nullptr, native_handle(), buffer,
                                  detail::endpoint_copy{local_}};
    }

    /// As `recvfrom` above; an error is stored in `error` instead of thrown.
    recvfrom_operation recvfrom(std::span<std::byte> buffer, std::error_code& error) {
        return recvfrom_operation{context(), &error, native_handle(), buffer,
                                  detail::endpoint_copy::for_errors(local_, &error)};
    }

    /// Sends `buffer` as one datagram to `destination` (copied: it need not outlive the call).
    /// Completes with: the bytes sent. Errors: the kernel's, e.g. `EMSGSIZE`. Lifetime:
    /// `buffer` until completion. Kernel: 5.3. See: sendmsg(2).
    sendto_operation sendto(std::span<const std::byte> buffer, const endpoint& destination) {
        return sendto_operation{context(), nullptr, native_handle(), buffer, destination};
    }

    /// As `sendto` above; an error is stored in `error` instead of thrown.
    sendto_operation sendto(std::span<const std::byte> buffer, const endpoint& destination,
                            std::error_code& error) {
        return sendto_operation{context(), &error, native_handle(), buffer, destination};
    }

private:
    endpoint local_;
};

} // namespace ringio
