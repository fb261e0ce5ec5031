#pragma once

// tcp_listener: a listening TCP socket whose accepts are io_uring requests, one at a time or as
// a stream from one multishot accept.

#include <ringio/descriptor.hpp>
#include <ringio/endpoint.hpp>
#include <ringio/multishot.hpp>
#include <ringio/operation.hpp>
#include <ringio/socket.hpp>
#include <ringio/tcp_stream.hpp>

#include <fcntl.h>
#include <liburing.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <system_error>

namespace ringio {

namespace detail {

/// The stream a connection's descriptor becomes, with its peer (`getpeername`: a multishot
/// accept shares one address buffer among all its completions, so none is asked for).
inline tcp_stream accepted(io_context& context, int fd) {
    endpoint peer;
    socklen_t size = endpoint::capacity();
    std::error_code ignored; // a peer that already left has no name; its first read says so
    if (::getpeername(fd, peer.mutable_data(), &size) == 0) {
        peer.resize(size, ignored);
    }
    return {context, fd, peer};
}

/// IORING_OP_ACCEPT: one connection.
struct accept_op {
    io_context* context;
    int fd;

    void prepare(io_uring_sqe* sqe) noexcept {
        io_uring_prep_accept(sqe, fd, nullptr, nullptr, SOCK_CLOEXEC);
    }
    tcp_stream complete(int result) const { return accepted(*context, result); }
    static void discard(int result) noexcept { ::close(result); } // accepted during shutdown
    tcp_stream failed() const { return tcp_stream{*context}; }
    [[nodiscard]] std::string describe(const void* subject = nullptr) const {
        return request_name("accept", "on", fd, current_position, subject);
    }
};

/// A listener's stream of connections: one multishot accept. An error (EMFILE...) ends the
/// request and the next `next()` arms it again, so a server out of descriptors goes on.
template <>
struct multishot_policy<tcp_stream> {
    struct state {
        io_context* context;
    };
    static void arm(slot& self, io_uring_sqe* sqe) noexcept {
        if (self.multishot()) {
            io_uring_prep_multishot_accept(sqe, self.fd(), nullptr, nullptr, SOCK_CLOEXEC);
        } else {
            io_uring_prep_accept(sqe, self.fd(), nullptr, nullptr, SOCK_CLOEXEC);
        }
    }
    static void release(slot& /*self*/, const entry& got) noexcept {
        if (got.result >= 0) {
            ::close(got.result);
        }
    }
    static constexpr slot_kind kind{&arm, &release, nullptr, nullptr, true};

    static multishot<tcp_stream> open(descriptor_core& socket, state initial) {
        return {socket, nullptr, 0, initial};
    }
    static tcp_stream take(slot& self, state& s, const entry& got, std::error_code* error) {
        if (got.result < 0) {
            report_request(got.result, error, "accept", "on", self.fd(), self.subject());
            return tcp_stream{*s.context};
        }
        clear(error);
        return accepted(*s.context, got.result);
    }
};

} // namespace detail

/// A listening TCP socket. Move-only; closing or destroying it cancels its accepts.
class tcp_listener : public descriptor {
public:
    /// Binds to `local` (`SO_REUSEADDR`; port 0 picks a free port) and listens.
    tcp_listener(io_context& context, const endpoint& local, socket_options options = {})
        : descriptor(context, detail::open_bound(local, SOCK_STREAM, options, "tcp_listener"),
                     local) {
        if (::listen(fd(), options.backlog) != 0) {
            detail::throw_error(detail::last_error(),
                                "tcp_listener " + detail::describe_endpoint(local) + ": listen");
        }
        rename(detail::local_endpoint_of(fd()));
    }

    /// Accepts on `shared`'s socket through `context` (another thread's): the listeners of one
    /// socket share its connections, and no other program can join them as with SO_REUSEPORT.
    tcp_listener(io_context& context, const tcp_listener& shared)
        : descriptor(context, ::fcntl(shared.fd(), F_DUPFD_CLOEXEC, 0), shared.name()) {
        if (!is_open()) {
            detail::throw_error(detail::last_error(),
                                "tcp_listener " + detail::describe_endpoint(name()) + ": dup");
        }
    }

    /// The address listened on, with the real port.
    [[nodiscard]] endpoint local_endpoint() const noexcept { return name(); }

    /// Accepts one connection (close-on-exec); produces the `tcp_stream`.
    auto accept() { return operation<detail::accept_op>(*this, &context(), fd()); }

    /// Every connection, from one multishot accept.
    multishot<tcp_stream> accept_all() {
        return detail::multishot_policy<tcp_stream>::open(detail::core_of(*this), {&context()});
    }
};

} // namespace ringio
