#pragma once

// What the socket examples share: the port argument, the standard streams, binding a server the
// way the C originals do, naming a peer, printing through the ring, and stopping on SIGINT or
// SIGTERM.

#include <ringio/ringio.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <exception>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace examples {

// A port argument is a number from 1 to 65535 in decimal digits; service names, signs and port 0
// (which would listen on a port nobody is told) are usage errors. Every example takes its port
// this way.
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

// Throws unless `fd`, a standard stream the program uses, is open. A closed one would have its
// number taken by the first descriptor the program opens (the signalfd, the ring, a socket),
// which would then be read or printed to instead. Call it before opening anything.
inline void require_open(int fd, const char* name) {
    if (::fcntl(fd, F_GETFD) < 0) {
        throw std::system_error(errno, std::system_category(), name);
    }
}

// Names a peer by its address and port number, never by a name looked up: getnameinfo would
// ask DNS for an address /etc/hosts does not list, holding up the loop (and every other
// client) for as long as the resolver takes, and fail when it cannot answer. A dual-stack socket
// sees an IPv4 peer as ::ffff:a.b.c.d: the IPv4 address inside it is named instead.
inline ringio::host_and_service name_of_peer(const ringio::endpoint& peer) {
    return ringio::name_of(peer.unmapped(), {.numeric_host = true, .numeric_service = true});
}

// Standard output and standard error, written through the ring so that a slow terminal or
// pipe never stalls the other coroutines. One write of up to PIPE_BUF (4096) bytes to a pipe is
// never split by another writer's.
//
// An output whose reader has gone ends the program: SIGPIPE is ignored, so the write fails with
// EPIPE instead of killing the process, and print throws (`standard output: Broken pipe`). A
// reader that stops reading must not keep the program from stopping: stop() cancels the writes
// waiting for it, and from then on a write that cannot finish within half a second is dropped.
class output {
public:
    explicit output(ringio::io_context& context) : context_(&context) {
        ::signal(SIGPIPE, SIG_IGN);
    }

    // Writes `text` to standard output.
    ringio::task<> print(std::string text) {
        const std::error_code error = co_await write(STDOUT_FILENO, std::move(text));
        if (error && !stopping_) {
            throw std::system_error(error, "standard output");
        }
    }

    // Writes `text` to standard error; a failure there is dropped, having nowhere to be told.
    ringio::task<> warn(std::string text) { co_await write(STDERR_FILENO, std::move(text)); }

    void stop() noexcept {
        stopping_ = true;
        context_->cancel_fd(STDOUT_FILENO);
        context_->cancel_fd(STDERR_FILENO);
    }

private:
    ringio::task<std::error_code> write(int fd, std::string text) {
        std::error_code error;
        auto all = ringio::write_all(*context_, fd, std::as_bytes(std::span(text)), error);
        if (stopping_) {
            all.with_timeout(std::chrono::milliseconds(500));
        }
        co_await all;
        co_return error;
    }

    ringio::io_context* context_;
    bool stopping_ = false;
};

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
