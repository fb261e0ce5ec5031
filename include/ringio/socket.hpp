#pragma once

// socket: how a socket is set up (socket_options), and what opening and binding one share.

#include <ringio/detail/error.hpp>
#include <ringio/endpoint.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

namespace ringio {

/// How a listener or a bound UDP socket is set up.
struct socket_options {
    /// `SO_REUSEPORT`: several sockets of this program (one per thread) share the port.
    bool reuse_port = false;
    /// `IPV6_V6ONLY` on an IPv6 address; off means `[::]` also serves IPv4.
    bool v6_only = false;
    /// The accept queue's length (`listen(2)`), for a listener.
    int backlog = SOMAXCONN;
};

namespace detail {

/// Sets an integer socket option; errors name `what`.
inline void set_option(int fd, int level, int name, int value, const std::string& what) {
    if (::setsockopt(fd, level, name, &value, sizeof value) != 0) {
        throw_error(last_error(), what);
    }
}

/// A close-on-exec socket of `local`'s family and `type`, with `options`, bound to `local`;
/// errors name `kind` and the address. The caller owns the descriptor.
inline int open_bound(const endpoint& local, int type, const socket_options& options,
                      const char* kind) {
    const std::string where = std::string(kind) + ' ' + describe_endpoint(local);
    const int fd = ::socket(local.family(), type | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        throw_error(last_error(), where);
    }
    try {
        if (type == SOCK_STREAM) {
            set_option(fd, SOL_SOCKET, SO_REUSEADDR, 1, where + ": SO_REUSEADDR");
        }
        if (options.reuse_port) {
            set_option(fd, SOL_SOCKET, SO_REUSEPORT, 1, where + ": SO_REUSEPORT");
        }
        if (local.is_v6()) {
            set_option(fd, IPPROTO_IPV6, IPV6_V6ONLY, options.v6_only ? 1 : 0,
                       where + ": IPV6_V6ONLY");
        }
        if (::bind(fd, local.data(), local.size()) != 0) {
            throw_error(last_error(), where + ": bind");
        }
    } catch (...) {
        ::close(fd);
        throw;
    }
    return fd;
}

/// The address `fd` is bound to (`getsockname`).
inline endpoint local_endpoint_of(int fd) {
    endpoint local;
    socklen_t size = endpoint::capacity();
    if (::getsockname(fd, local.mutable_data(), &size) != 0) {
        throw_error(last_error(), "getsockname fd " + std::to_string(fd));
    }
    local.resize(size);
    return local;
}

} // namespace detail

} // namespace ringio
