// The program of asio_echo.cpp, written with ringio: one io_context on one thread, an accepting
// coroutine, one echo coroutine per connection reading into a 4 KiB buffer of its own, and
// SIGINT or SIGTERM to stop. examples/echo_server.cpp does more (threads, shared buffers, a
// choice of paths); this file exists so that compile times can also be compared between
// programs of the same scope.
//
// Usage: ringio_echo PORT
#include <ringio/net.hpp>

#include <csignal>
#include <cstdio>

namespace {

ringio::task<> echo(ringio::tcp_stream stream, ringio::cancellation& stop) {
    std::error_code error;
    stream.set_no_delay(true, error);
    // The same 4 KiB the C peers read with.
    std::array<std::byte, 4096> data;
    for (;;) {
        const std::size_t n = co_await stream.read(data).cancel_on(stop).into(error);
        if (n == 0 || error) {
            co_return; // end of stream, a reset or the stop: the connection is over
        }
        co_await stream.write_all(std::span{data}.first(n)).cancel_on(stop).into(error);
        if (error) {
            co_return;
        }
    }
}

ringio::task<> listen(ringio::tcp_listener& listener, ringio::cancellation& stop) {
    for (std::error_code error; !stop.cancelled();) {
        ringio::tcp_stream stream = co_await listener.accept().cancel_on(stop).into(error);
        if (stream.is_open()) {
            ringio::spawn(listener.context(), echo(std::move(stream), stop));
        }
    }
}

} // namespace

int main(int argc, char** argv) {
    const auto port = argc == 2 ? ringio::parse_port(argv[1]) : std::nullopt;
    if (!port) {
        std::fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    try {
        ringio::io_context context;
        ringio::signal_set signals(context, {SIGINT, SIGTERM});
        ringio::cancellation stop;
        ringio::tcp_listener listener(context, ringio::endpoint::loopback_v4(*port));
        ringio::spawn(context, listen(listener, stop));
        ringio::spawn(context, ringio::cancel_on_signal(signals, stop));
        context.run();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ringio_echo: %s\n", e.what());
        return 1;
    }
    return 0;
}
