// udp_server PORT: prints each datagram it receives and who sent it, and thanks the sender.
//
//     $ udp_server 4950
//     message from 127.0.0.1 port 41234:
//     hello
//
// A datagram longer than the buffer is cut and said to be (the C version overran its buffer);
// senders are named by address, never looked up (a slow DNS would stall every client). SIGINT
// or SIGTERM stops it (status 0) even while its output is blocked; an error is status 1.

#include <ringio/net.hpp>

#include <csignal>
#include <cstdio>
#include <fcntl.h>

static ringio::task<> serve(ringio::udp_socket& socket, ringio::cancellation& stop) {
    std::array<char, 1024> buffer;
    for (;;) { // until the stop cancels what it awaits (ECANCELED)
        const auto got = co_await socket.recvfrom(buffer).cancel_on(stop);
        const auto [host, port] =
            ringio::name_of(got.sender.unmapped(), {.numeric_host = true, .numeric_service = true});
        std::string text = "message from " + host + " port " + port + ":\n";
        text.append(buffer.data(), got.size);
        text += got.size > 0 && buffer[got.size - 1] == '\n' ? "" : "\n"; // a message ends a line
        co_await ringio::write_all(socket.context(), STDOUT_FILENO, text).cancel_on(stop);
        std::error_code error; // a sender we cannot answer, or a blocked stderr, stops nobody
        if (got.truncated) {   // said through the ring too: a blocked stderr must not stall us
            text = "udp_server: the message from " + host + " port " + port +
                   " was cut at 1024 bytes\n";
            co_await ringio::write_all(socket.context(), STDERR_FILENO, text)
                .cancel_on(stop)
                .into(error);
        }
        co_await socket.sendto("thank you\n", got.sender).cancel_on(stop).into(error);
    }
}

int main(int argc, char* argv[]) {
    const auto port = argc == 2 ? ringio::parse_port(argv[1]) : std::nullopt;
    if (!port) {
        std::fputs("usage: udp_server PORT\n", stderr);
        return 2;
    }
    std::signal(SIGPIPE, SIG_IGN); // a write to a pipe whose reader has gone: EPIPE instead
    try {
        if (::fcntl(STDOUT_FILENO, F_GETFD) < 0) { // else the ring could take its number
            throw std::system_error(errno, std::system_category(), "standard output");
        }
        ringio::io_context context;
        ringio::signal_set signals(context, {SIGINT, SIGTERM});
        ringio::cancellation stop; // ends every pending recvfrom and write, and every later one
        context.on_error([&stop](std::exception_ptr error) { // ECANCELED when stopping is no error
            if (!stop.cancelled()) {
                std::rethrow_exception(error);
            }
        });
        ringio::udp_socket socket(context, ringio::endpoint::any_v6(*port));
        ringio::spawn(context, serve(socket, stop));
        ringio::spawn(context, ringio::cancel_on_signal(signals, stop));
        context.run();
    } catch (const std::exception& error) {
        std::fprintf(stderr, "udp_server: %s\n", error.what());
        return 1;
    }
}
