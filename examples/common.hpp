#pragma once

// What the socket examples share: the port argument, binding a server the way the C originals
// do, printing through the ring, and stopping on SIGINT or SIGTERM.

#include <ringio/ringio.hpp>

#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <exception>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace examples {

// A port argument is a number from 1 to 65535; service names and port 0 are usage errors.
inline bool is_port(std::string_view text) {
    unsigned port = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), port);
    return !text.empty() && error == std::errc{} && end == text.data() + text.size() && port >= 1 &&
           port <= 65535;
}

// Opens the server's socket on `port`, on the first address getaddrinfo gives with AI_PASSIVE
// that binds, like the C originals, except that the IPv6 wildcard is tried first: glibc lists
// 0.0.0.0 first, which would leave IPv6 clients out, while [::] on Linux also receives IPv4
// (unless the sysctl net.ipv6.bindv6only is set). If none binds, the last error is thrown.
template <class Socket>
Socket open_server(ringio::io_context& context, const std::string& port, ringio::socket_type type) {
    auto addresses = ringio::resolve("", port, {.type = type, .passive = true});
    std::stable_partition(addresses.begin(), addresses.end(),
                          [](const ringio::endpoint& address) { return address.is_v6(); });
    std::exception_ptr last_error;
    for (const ringio::endpoint& address : addresses) {
        try {
            return Socket(context, address);
        } catch (const std::system_error&) {
            last_error = std::current_exception();
        }
    }
    std::rethrow_exception(last_error);
}

// Names a peer as getnameinfo does: a host name where one is known (localhost), else the
// address; the port as a number, since a client's port is not a service. A dual-stack socket
// sees an IPv4 peer as ::ffff:a.b.c.d, which glibc does not look up: the IPv4 address inside it
// is named instead, as the C original on an IPv4 socket would.
inline ringio::host_and_service name_of_peer(const ringio::endpoint& peer) {
    return ringio::name_of(peer.unmapped(), {.numeric_service = true});
}

// Writes `text` to standard output through the ring, so a slow terminal or pipe never stalls
// the other coroutines. One write of up to PIPE_BUF (4096) bytes to a pipe is never split by
// another writer's.
inline ringio::task<> print(ringio::io_context& context, std::string text) {
    co_await ringio::write_all(context, STDOUT_FILENO, std::as_bytes(std::span(text)));
}

// SIGINT and SIGTERM stop a server cleanly: blocked, they no longer kill the process, and
// arrive instead as something to read from a signalfd, through the ring like any descriptor.
// Construct it before opening sockets, so that a signal never finds them half set up.
class stop_signals {
public:
    stop_signals() {
        sigset_t signals;
        sigemptyset(&signals);
        sigaddset(&signals, SIGINT);
        sigaddset(&signals, SIGTERM);
        if (sigprocmask(SIG_BLOCK, &signals, nullptr) != 0) {
            throw std::system_error(errno, std::system_category(), "sigprocmask");
        }
        fd_ = signalfd(-1, &signals, SFD_CLOEXEC);
        if (fd_ < 0) {
            throw std::system_error(errno, std::system_category(), "signalfd");
        }
    }

    stop_signals(const stop_signals&) = delete;
    stop_signals& operator=(const stop_signals&) = delete;
    ~stop_signals() { ::close(fd_); }

    // Completes when SIGINT or SIGTERM arrives.
    ringio::task<> wait(ringio::io_context& context) {
        signalfd_siginfo info{};
        co_await ringio::read_exact(context, fd_, std::as_writable_bytes(std::span(&info, 1)));
    }

private:
    int fd_ = -1;
};

} // namespace examples
