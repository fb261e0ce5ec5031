// tcp_client HOST PORT: connects to the server and sends it standard input.
//
//     $ echo hello | tcp_client localhost 3490
//
// ringio::connect tries each address HOST resolves to in turn, as the C original's getaddrinfo
// loop did, and reports every address it tried when none accepts. At the end of the input the
// sending side is shut down, so the server reads end of stream after the last byte.
//
// PORT is a number from 1 to 65535; anything else on the command line is a usage error
// (status 2). A refused connection, a server that goes away, or any other error ends the
// program with one line and status 1.

#include "common.hpp"

#include <array>
#include <cstddef>
#include <cstdio>
#include <exception>
#include <span>
#include <string>

namespace {

ringio::task<> send_input(ringio::io_context& context, std::string host, std::string port) {
    ringio::tcp_stream stream = co_await ringio::connect(context, host, port);
    std::array<std::byte, 65536> buffer;
    for (;;) {
        const std::size_t size = co_await ringio::read(context, STDIN_FILENO, buffer);
        if (size == 0) {
            break; // end of input
        }
        co_await stream.write_all(std::span(buffer).first(size));
    }
    stream.shutdown(ringio::shutdown_how::send);
}

} // namespace

int main(int argc, char* argv[]) {
    if (argc != 3 || !examples::is_port(argv[2])) {
        std::fputs("usage: tcp_client HOST PORT\n", stderr);
        return 2;
    }
    try {
        examples::require_open(STDIN_FILENO, "standard input");
        ringio::io_context context;
        ringio::sync_wait(context, send_input(context, argv[1], argv[2]));
    } catch (const std::exception& error) {
        std::fprintf(stderr, "tcp_client: %s\n", error.what());
        return 1;
    }
}
