#pragma once

#include <ringio/detail/endpoint_copy.hpp>
#include <ringio/detail/fd.hpp>
#include <ringio/detail/operation.hpp>
#include <ringio/detail/socket_base.hpp>
#include <ringio/endpoint.hpp>
#include <ringio/io_context.hpp>
#include <ringio/tcp_stream.hpp>

#include <liburing.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <system_error>

namespace ringio {

/// What `tcp_listener::accept` completes with.
struct accepted {
    tcp_stream stream; ///< The new connection.
    endpoint peer;     ///< Who connected (also `stream.remote_endpoint()`).
};

/// How `tcp_listener` sets up its socket.
struct listen_options {
    /// The accept queue's length (`listen(2)`); the kernel caps it at net.core.somaxconn.
    int backlog = SOMAXCONN;
    /// `SO_REUSEPORT`: several listeners (one per thread) share the port, and the kernel
    /// spreads new connections among them.
    bool reuse_port = false;
    /// `IPV6_V6ONLY` for an IPv6 address; off means a `[::]` listener accepts IPv4 too.
    bool v6_only = false;
};

namespace detail {

/// IORING_OP_ACCEPT: one connection and its peer's address.
struct accept_op {
    io_context* context;
    int fd;
    endpoint_copy local; // named by errors; a copy, since the listener may be destroyed first
    endpoint peer{};
    socklen_t peer_size = 0;

    void prepare(io_uring_sqe* sqe) noexcept {
        peer_size = endpoint::capacity();
        io_uring_prep_accept(sqe, fd, peer.mutable_data(), &peer_size, SOCK_CLOEXEC);
    }

    accepted complete(int result) {
        std::error_code ignored; // the kernel wrote an AF_INET or AF_INET6 address
        peer.resize(peer_size, ignored);
        return {tcp_stream{*context, unique_fd{result}, peer}, peer};
    }

    // A connection accepted while the context shuts down must not leak its descriptor.
    static void discard(int result) noexcept { ::close(result); }

    accepted failed() const { return {tcp_stream{*context}, endpoint{}}; }

    [[nodiscard]] std::string describe() const {
        return "accept on " + describe_endpoint(local.get());
    }
};

} // namespace detail

/// The awaitable of `tcp_listener::accept`.
using accept_operation = detail::operation<detail::accept_op>;

/// A listening TCP socket whose `accept` is an io_uring operation. Move-only; closing (or
/// destroying) it cancels a pending accept first.
class tcp_listener : public detail::socket_base {
public:
    /// Binds to `local` with `SO_REUSEADDR` (port 0 picks a free port: see
    /// `local_endpoint()`) and listens.
    /// Errors: `std::system_error` naming the address, e.g. `EADDRINUSE`, `EACCES`.
    tcp_listener(io_context& context, const endpoint& local, listen_options options = {})
        : socket_base(context,
                      detail::open_socket(local.family(), SOCK_STREAM,
                                          "tcp_listener " + detail::describe_endpoint(local))),
          local_(local) {
        const int fd = native_handle();
        const std::string where = "tcp_listener " + detail::describe_endpoint(local);
        detail::set_socket_option(fd, SOL_SOCKET, SO_REUSEADDR, 1, where + ": SO_REUSEADDR");
        if (options.reuse_port) {
            detail::set_socket_option(fd, SOL_SOCKET, SO_REUSEPORT, 1, where + ": SO_REUSEPORT");
        }
        if (local.is_v6()) {
            detail::set_socket_option(fd, IPPROTO_IPV6, IPV6_V6ONLY, options.v6_only ? 1 : 0,
                                      where + ": IPV6_V6ONLY");
        }
        detail::bind_socket(fd, local, "tcp_listener");
        if (::listen(fd, options.backlog) != 0) {
            detail::throw_error(detail::last_error(), where + ": listen");
        }
        local_ = local_endpoint();
    }

    /// The address listened on, with the real port (cached at construction).
    [[nodiscard]] const endpoint& address() const noexcept { return local_; }

    /// Accepts one connection (close-on-exec).
    /// Completes with: `accepted`, the stream and its peer. Errors: `EMFILE`/`ENFILE` when
    /// descriptors run out (the listener stays usable: catch, wait, accept again),
    /// `ECONNABORTED`, `ECANCELED`. A connection accepted just as a cancel arrives is still
    /// delivered, never leaked. Lifetime: destroying the listener cancels the accept.
    /// Kernel: 5.5. See: accept4(2).
    accept_operation accept() {
        return accept_operation{context(), nullptr, &context(), native_handle(),
                                detail::endpoint_copy{local_}};
    }

    /// As `accept` above; an error is stored in `error` instead of thrown, and the stream
    /// produced is not open.
    accept_operation accept(std::error_code& error) {
        return accept_operation{context(), &error, &context(), native_handle(),
                                detail::endpoint_copy::for_errors(local_, &error)};
    }

private:
    endpoint local_;
};

} // namespace ringio
