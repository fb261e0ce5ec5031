#pragma once

#include <ringio/detail/operation.hpp>
#include <ringio/detail/socket_base.hpp>
#include <ringio/detail/stream_ops.hpp>
#include <ringio/endpoint.hpp>
#include <ringio/io_context.hpp>
#include <ringio/resolve.hpp>
#include <ringio/task.hpp>

#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cstddef>
#include <span>
#include <string>
#include <system_error>
#include <utility>

namespace ringio {

namespace detail {

/// IORING_OP_CONNECT; `error` (set when the socket could not even be opened) completes it
/// with that error through a NOP, so both forms report it the same way.
struct connect_op {
    int fd;
    endpoint target;
    int error = 0;

    void prepare(io_uring_sqe* sqe) noexcept {
        if (error != 0) {
            io_uring_prep_nop(sqe);
        } else {
            io_uring_prep_connect(sqe, fd, target.data(), target.size());
        }
    }

    int translate(int result) const noexcept { return error != 0 ? -error : result; }

    void complete(int /*result*/) const noexcept {}

    [[nodiscard]] std::string describe() const { return "connect " + describe_endpoint(target); }
};

} // namespace detail

/// The awaitable of `tcp_stream::connect`.
using connect_operation = detail::operation<detail::connect_op>;

/// How `tcp_stream::shutdown` ends the connection.
enum class shutdown_how {
    send = SHUT_WR,    ///< No more writes: the peer reads end of stream.
    receive = SHUT_RD, ///< No more reads.
    both = SHUT_RDWR,  ///< Both.
};

/// A TCP connection whose `read`, `write` and `connect` are io_uring operations. Move-only;
/// closing (or destroying) it cancels its pending operations first.
class tcp_stream : public detail::socket_base {
public:
    /// A stream that is not connected yet: `connect` opens its socket.
    explicit tcp_stream(io_context& context) noexcept : socket_base(context, {}) {}

    /// Adopts `fd`, a connected TCP socket, whose peer is `peer`.
    tcp_stream(io_context& context, detail::unique_fd fd, const endpoint& peer) noexcept
        : socket_base(context, std::move(fd)), peer_(peer) {}

    /// The peer's address: the one accepted from, or the one given to `connect`.
    [[nodiscard]] const endpoint& remote_endpoint() const noexcept { return peer_; }

    /// Connects to `target`, opening a socket of its family first.
    /// Completes with: nothing. Errors: e.g. `ECONNREFUSED`, `ENETUNREACH`, `ETIME` from
    /// `with_timeout`; the message names the address. Kernel: 5.5. See: connect(2).
    connect_operation connect(const endpoint& target) { return start_connect(target, nullptr); }

    /// As `connect` above; an error is stored in `error` instead of thrown.
    connect_operation connect(const endpoint& target, std::error_code& error) {
        return start_connect(target, &error);
    }

    /// Receives up to `buffer.size()` bytes.
    /// Completes with: the byte count; 0 means the peer closed its side. Errors: `EINVAL` for
    /// an empty buffer, `ECONNRESET`, ...; the message names the peer. Lifetime: `buffer` until
    /// completion; destroying the stream cancels the read (`ECANCELED`). Kernel: 5.6.
    /// See: recv(2).
    read_operation read(std::span<std::byte> buffer) { return reader(buffer, nullptr, false); }

    /// As `read` above; an error is stored in `error` instead of thrown.
    read_operation read(std::span<std::byte> buffer, std::error_code& error) {
        return reader(buffer, &error, false);
    }

    /// Receives until `buffer` is full. Errors: `ENODATA` if the peer closes first (the
    /// message says after how many bytes), or as `read`.
    read_operation read_exact(std::span<std::byte> buffer) { return reader(buffer, nullptr, true); }

    /// As `read_exact` above; an error is stored in `error` instead of thrown.
    read_operation read_exact(std::span<std::byte> buffer, std::error_code& error) {
        return reader(buffer, &error, true);
    }

    /// Sends up to `buffer.size()` bytes; the count may be short.
    /// Completes with: the byte count. Errors: `EPIPE` or `ECONNRESET` when the peer has gone
    /// (never SIGPIPE: MSG_NOSIGNAL). Lifetime: `buffer` until completion; destroying the stream
    /// cancels the write. Kernel: 5.6. See: send(2).
    write_operation write(std::span<const std::byte> buffer) {
        return writer(buffer, nullptr, false);
    }

    /// As `write` above; an error is stored in `error` instead of thrown.
    write_operation write(std::span<const std::byte> buffer, std::error_code& error) {
        return writer(buffer, &error, false);
    }

    /// Sends all of `buffer`, submitting the rest after each short send.
    /// Completes with: `buffer.size()`. Errors: as `write`.
    write_operation write_all(std::span<const std::byte> buffer) {
        return writer(buffer, nullptr, true);
    }

    /// As `write_all` above; an error is stored in `error` instead of thrown.
    write_operation write_all(std::span<const std::byte> buffer, std::error_code& error) {
        return writer(buffer, &error, true);
    }

    /// Ends one or both directions at once (a synchronous `shutdown(2)`): after `send`, the
    /// peer reads end of stream. Errors: `std::system_error`, e.g. `ENOTCONN`.
    void shutdown(shutdown_how how = shutdown_how::send) {
        std::error_code error;
        shutdown(how, error);
        if (error) {
            detail::throw_error(error, "shutdown " + describe_self());
        }
    }

    /// As `shutdown` above; an error is stored in `error` instead of thrown.
    void shutdown(shutdown_how how, std::error_code& error) noexcept {
        error.clear();
        if (::shutdown(native_handle(), static_cast<int>(how)) != 0) {
            error = detail::last_error();
        }
    }

    /// Turns Nagle's algorithm off (`TCP_NODELAY`) or on.
    void set_no_delay(bool on) {
        std::error_code error;
        set_no_delay(on, error);
        if (error) {
            detail::throw_error(error, "setsockopt TCP_NODELAY " + describe_self());
        }
    }

    /// As `set_no_delay` above; an error is stored in `error` instead of thrown.
    void set_no_delay(bool on, std::error_code& error) noexcept {
        error.clear();
        const int value = on ? 1 : 0;
        if (::setsockopt(native_handle(), IPPROTO_TCP, TCP_NODELAY, &value, sizeof value) != 0) {
            error = detail::last_error();
        }
    }

private:
    // The peer, or the descriptor of a stream that has none.
    std::string describe_self() const {
        return !peer_.empty() ? peer_.to_string() : "fd " + std::to_string(native_handle());
    }

    connect_operation start_connect(const endpoint& target, std::error_code* error) {
        peer_ = target;
        int failure = 0;
        if (!is_open() || local_family() != target.family()) {
            const int fd = ::socket(target.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
            failure = fd < 0 ? errno : 0;
            adopt(detail::unique_fd{fd});
        }
        return connect_operation{context(), error, native_handle(), target, failure};
    }

    int local_family() const noexcept {
        sockaddr_storage local{};
        socklen_t size = sizeof local;
        return ::getsockname(native_handle(), reinterpret_cast<sockaddr*>(&local), &size) == 0
                   ? local.ss_family
                   : AF_UNSPEC;
    }

    read_operation reader(std::span<std::byte> buffer, std::error_code* error, bool exact) {
        return read_operation{context(),
                              error,
                              native_handle(),
                              buffer,
                              detail::current_position,
                              true,
                              exact,
                              detail::endpoint_copy::for_errors(peer_, error)};
    }

    write_operation writer(std::span<const std::byte> buffer, std::error_code* error, bool all) {
        return write_operation{context(),
                               error,
                               native_handle(),
                               buffer,
                               detail::current_position,
                               true,
                               all,
                               detail::endpoint_copy::for_errors(peer_, error)};
    }

    endpoint peer_;
};

/// Connects to `host` and `service`, trying each address `resolve` gives in turn (as the
/// classic clients do), and returns the first stream that connects. Resolution blocks (see
/// resolve.hpp). Errors: the resolver's, or the last connect error, whose message names the
/// host, the service and every address tried.
inline task<tcp_stream> connect(io_context& context, std::string host, std::string service) {
    const auto targets = resolve(host, service, {.type = socket_type::stream});
    std::error_code error;
    std::string tried;
    for (const endpoint& target : targets) {
        tcp_stream stream(context);
        co_await stream.connect(target, error);
        if (!error) {
            co_return stream;
        }
        tried += (tried.empty() ? "" : ", ") + target.to_string();
    }
    detail::throw_error(error,
                        "connect \"" + host + "\" port \"" + service + "\" (tried " + tried + ")");
}

} // namespace ringio
