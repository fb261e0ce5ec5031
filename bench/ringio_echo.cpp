// The program of asio_echo.cpp, written with ringio: one io_context on one thread, an accepting
// coroutine, one echo coroutine per connection reading into a 4 KiB buffer of its own, and
// SIGINT or SIGTERM to stop. examples/echo_server.cpp does more (threads, shared buffers, a
// choice of paths); this file exists so that compile times can also be compared between
// programs of the same scope.
//
// Usage: ringio_echo PORT
#include <ringio/descriptor.hpp>
#include <ringio/tcp_listener.hpp>

#include <signal.h>
#include <sys/signalfd.h>

#include <array>
#include <cstdio>
#include <cstdlib>

namespace {

ringio::task<> echo(ringio::tcp_stream stream) {
    std::error_code error;
    stream.set_no_delay(true, error);
    // The same 4 KiB the C peers read with.
    std::array<std::byte, 4096> data;
    for (;;) {
        const std::size_t n = co_await stream.read(data, error);
        if (n == 0 || error) {
            co_return; // end of stream or a reset: the connection is over
        }
        co_await stream.write_all(std::span{data}.first(n), error);
        if (error) {
            co_return;
        }
    }
}

ringio::task<> listen(ringio::io_context& context, ringio::tcp_listener& listener) {
    for (;;) {
        std::error_code error;
        auto [stream, peer] = co_await listener.accept(error);
        if (error == std::errc::operation_canceled) {
            co_return;
        }
        if (!error) {
            ringio::spawn(context, echo(std::move(stream)));
        }
    }
}

// Reads the signal through a descriptor, as Asio's signal_set does, then stops the loop.
ringio::task<> stop_on(ringio::io_context& context, int signals, ringio::tcp_listener& listener) {
    std::array<std::byte, sizeof(signalfd_siginfo)> info;
    co_await ringio::read(context, signals, info);
    listener.close();
    context.stop();
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    auto port = static_cast<std::uint16_t>(std::atoi(argv[1]));
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigprocmask(SIG_BLOCK, &mask, nullptr);
    const int signals = ::signalfd(-1, &mask, SFD_CLOEXEC);
    if (signals < 0) {
        std::perror("ringio_echo: signalfd");
        return 1;
    }
    try {
        ringio::io_context context;
        ringio::tcp_listener listener(context, ringio::endpoint::loopback_v4(port));
        ringio::spawn(context, listen(context, listener));
        ringio::spawn(context, stop_on(context, signals, listener));
        context.run();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ringio_echo: %s\n", e.what());
        return 1;
    }
    return 0;
}
