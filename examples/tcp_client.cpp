// tcp_client HOST PORT (or unix:PATH): connects to the server and sends it standard input.
//
//     $ echo hello | tcp_client localhost 3490
//
// ringio::connect tries each address HOST resolves to in turn, as the C original's getaddrinfo
// loop did, and names every address it tried when none accepts. At the end of the input the
// sending side is shut down, so the server reads the end of the stream after the last byte.
// A refused connection, a server that goes away, or any other error: one line and status 1.

#include <ringio/net.hpp>

#include <cstdio>
#include <fcntl.h>

static ringio::task<> send_input(ringio::io_context& context, std::string host, std::string port) {
    ringio::tcp_stream stream(context);
    if (port.empty()) { // unix:PATH: the address itself, nothing to look up
        const ringio::endpoint server = ringio::endpoint::parse(host);
        co_await stream.connect(server);
    } else {
        stream = co_await ringio::connect(context, host, port);
    }
    ringio::descriptor input(context, STDIN_FILENO);
    std::array<char, 65536> buffer;
    while (const std::size_t size = co_await input.read(buffer)) {
        co_await stream.write_all(std::span(buffer).first(size));
    }
    stream.shutdown(); // the server reads the end of the stream
}

int main(int argc, char* argv[]) {
    const bool local = argc == 2 && std::string_view(argv[1]).starts_with("unix:");
    if (!local && (argc != 3 || !ringio::parse_port(argv[2]))) {
        std::fputs("usage: tcp_client HOST PORT | tcp_client unix:PATH\n", stderr);
        return 2;
    }
    try {
        if (::fcntl(STDIN_FILENO, F_GETFD) < 0) { // else the ring could take its number
            throw std::system_error(errno, std::system_category(), "standard input");
        }
        ringio::io_context context;
        ringio::sync_wait(context, send_input(context, argv[1], local ? "" : argv[2]));
    } catch (const std::exception& error) {
        std::fprintf(stderr, "tcp_client: %s\n", error.what());
        return 1;
    }
}
