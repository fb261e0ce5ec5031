// Asio's C++20 coroutine TCP echo server, as its own examples write it: one io_context on one
// thread, an acceptor coroutine, one echo coroutine per connection. Built twice from this file:
// on Asio's default epoll reactor, and with ASIO_HAS_IO_URING and ASIO_DISABLE_EPOLL so that
// sockets go through Asio's io_uring service.
//
// Usage: asio_echo PORT
#include <asio.hpp>

#include <cstdio>
#include <cstdlib>

namespace {

asio::awaitable<void> echo(asio::ip::tcp::socket socket) {
    socket.set_option(asio::ip::tcp::no_delay(true));
    // The same 4 KiB the C peers read with.
    char data[4096];
    try {
        for (;;) {
            std::size_t n =
                co_await socket.async_read_some(asio::buffer(data), asio::use_awaitable);
            co_await asio::async_write(socket, asio::buffer(data, n), asio::use_awaitable);
        }
    } catch (const std::exception&) {
        // End of stream or a reset: the connection is over.
    }
}

asio::awaitable<void> listen(asio::ip::tcp::acceptor& acceptor) {
    for (;;) {
        asio::ip::tcp::socket socket = co_await acceptor.async_accept(asio::use_awaitable);
        asio::co_spawn(acceptor.get_executor(), echo(std::move(socket)), asio::detached);
    }
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    auto port = static_cast<unsigned short>(std::atoi(argv[1]));
    try {
        asio::io_context context(1);
        asio::ip::tcp::acceptor acceptor(
            context, asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), port));
        asio::signal_set signals(context, SIGINT, SIGTERM);
        signals.async_wait([&](auto, auto) { context.stop(); });
        asio::co_spawn(context, listen(acceptor), asio::detached);
        context.run();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "asio_echo: %s\n", e.what());
        return 1;
    }
    return 0;
}
