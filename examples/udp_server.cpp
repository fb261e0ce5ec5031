// udp_server PORT: prints each datagram it receives and who sent it, and thanks the sender.
//
//     $ udp_server 4950
//     message from 127.0.0.1 port 41234:
//     hello
//
// The classic C server as a coroutine: no getaddrinfo loop to write, no -1 to check after each
// call, and no buffer to overrun (the C version wrote one byte past its own when a datagram
// filled it): a datagram longer than the buffer is cut at the buffer's end and reported.
// IPv4 and IPv6 clients are both served (see examples::open_server). The sender is shown by
// address: the C version looked its name up, which stalls every client while DNS is slow, and
// failed when DNS could not answer.
//
// PORT is a number from 1 to 65535; anything else on the command line is a usage error
// (status 2). SIGINT or SIGTERM stops the server, which then exits 0, even while its output or
// error output is blocked. An output whose reader has gone ends it with one line and status 1,
// as does any other error.

#include "common.hpp"

#include <array>
#include <cstdio>
#include <exception>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace {

constexpr std::size_t buffer_size = 1024;

ringio::task<> serve(ringio::udp_socket& socket, examples::output& out) {
    std::array<char, buffer_size> buffer;
    for (;;) {
        std::error_code error;
        const ringio::received received =
            co_await socket.recvfrom(std::as_writable_bytes(std::span(buffer)), error);
        if (!socket.is_open()) {
            co_return; // closed by stop_on_signal, which cancelled the recvfrom
        }
        if (error) {
            throw std::system_error(error, "recvfrom");
        }
        const auto [host, port] = examples::name_of_peer(received.sender); // never looked up
        std::string text = "message from " + host + " port " + port + ":\n";
        text.append(buffer.data(), received.size);
        // Each message ends its line, whether or not it brought its own newline.
        if (received.size == 0 || buffer[received.size - 1] != '\n') {
            text += '\n';
        }
        co_await out.print(std::move(text));
        if (received.truncated) {
            co_await out.warn("udp_server: the message from " + host + " port " + port +
                              " was longer than " + std::to_string(buffer_size) +
                              " bytes; the rest was discarded\n");
        }

        const std::string_view reply = "thank you\n";
        co_await socket.sendto(std::as_bytes(std::span(reply)), received.sender, error);
        // A sender we cannot answer is not a reason to stop serving the others.
        if (error && socket.is_open()) {
            co_await out.warn("udp_server: sendto " + host + " port " + port + ": " +
                              error.message() + "\n");
        }
    }
}

ringio::task<> stop_on_signal(examples::stop_signals& signals, ringio::udp_socket& socket,
                              examples::output& out) {
    co_await signals.wait(socket.context());
    socket.close();
    out.stop();
}

} // namespace

int main(int argc, char* argv[]) {
    if (argc != 2 || !examples::is_port(argv[1])) {
        std::fputs("usage: udp_server PORT\n", stderr);
        return 2;
    }
    try {
        examples::require_open(STDOUT_FILENO, "standard output");
        examples::stop_signals signals;
        ringio::io_context context;
        examples::output out(context);
        auto socket = examples::open_server<ringio::udp_socket>(context, argv[1],
                                                                ringio::socket_type::datagram);
        ringio::spawn(context, serve(socket, out));
        ringio::spawn(context, stop_on_signal(signals, socket, out));
        // Returns once both coroutines have finished and the socket is closed.
        context.run();
    } catch (const std::exception& error) {
        std::fprintf(stderr, "udp_server: %s\n", error.what());
        return 1;
    }
}
