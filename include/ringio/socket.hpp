#pragma once

// socket: how a socket is set up (socket_options), and what opening and binding one share.

#include <ringio/detail/error.hpp>
#include <ringio/endpoint.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <string_view>

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

/// True when `path` holds a Unix socket that nobody listens on any more (a server that ended
/// without removing it): connecting is refused.
inline bool stale_unix_socket(const endpoint& local) noexcept {
    const std::string_view name = local.unix_name();
    struct stat info {};
    if (name.empty() || name[0] == '\0' || ::lstat(std::string(name).c_str(), &info) != 0 ||
        !S_ISSOCK(info.st_mode)) {
        return false;
    }
    // Non-blocking: a live listener whose queue is full answers EAGAIN, never a wait.
    const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    const bool refused =
        probe >= 0 && ::connect(probe, local.data(), local.size()) != 0 && errno == ECONNREFUSED;
    if (probe >= 0) {
        ::close(probe);
    }
    return refused;
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
        if (type == SOCK_STREAM && !local.is_unix()) {
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
            // A stale Unix socket in the way is replaced, as a restarted server expects. The
            // error is bind's, kept before the probe's own calls change errno.
            std::error_code error = last_error();
            if (error == std::errc::address_in_use && stale_unix_socket(local)) {
                error = ::unlink(std::string(local.unix_name()).c_str()) == 0 &&
                                ::bind(fd, local.data(), local.size()) == 0
                            ? std::error_code{}
                            : last_error();
            }
            if (error) {
                throw_error(error, where + ": bind");
            }
        }
    } catch (...) {
        ::close(fd);
        throw;
    }
    return fd;
}

/// The address family of socket `fd`, `AF_UNSPEC` if it has none.
inline int family_of(int fd) noexcept {
    sockaddr_storage local{};
    socklen_t size = sizeof local;
    return ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &size) == 0 ? local.ss_family
                                                                              : AF_UNSPEC;
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
