// udp_client HOST PORT: sends each line of standard input to the server as one datagram, and
// prints the server's answer to each.
//
//     $ echo hello | udp_client localhost 4950
//     Server says: thank you
//
// The socket is connected to the server: only its answers count, and a port nobody listens on
// is reported at once. No answer within two seconds, or any error, is one line and status 1.

#include <ringio/net.hpp>

#include <csignal>
#include <cstdio>
#include <fcntl.h>

using namespace std::chrono_literals;

static ringio::task<> send_lines(ringio::udp_socket& socket, ringio::endpoint server) {
    ringio::descriptor input(socket.context(), STDIN_FILENO);
    std::array<char, 4096> line_storage;
    ringio::input_buffer lines(line_storage);
    std::array<char, 65536> answer; // the largest datagram
    while (const auto line = co_await input.read_until(lines, '\n')) {
        co_await socket.sendto(*line, server);
        std::error_code error;
        const auto got = co_await socket.recvfrom(answer).with_timeout(2s).into(error);
        if (error == std::errc::stream_timeout) {
            throw std::runtime_error("no answer from " + server.to_string() + " within 2 seconds");
        }
        if (error) {
            throw std::system_error(error, "recvfrom " + server.to_string()); // ECONNREFUSED
        }
        std::string text = "Server says: " + std::string(answer.data(), got.size);
        text += text.ends_with('\n') ? "" : "\n";
        co_await ringio::write_all(socket.context(), STDOUT_FILENO, text);
    }
}

int main(int argc, char* argv[]) {
    if (argc != 3 || !ringio::parse_port(argv[2])) {
        std::fputs("usage: udp_client HOST PORT\n", stderr);
        return 2;
    }
    std::signal(SIGPIPE, SIG_IGN); // an output whose reader has gone: EPIPE, and one line
    try {
        for (int fd : {STDIN_FILENO, STDOUT_FILENO}) { // else the ring could take the number
            if (::fcntl(fd, F_GETFD) < 0) {
                throw std::system_error(errno, std::system_category(),
                                        fd == 0 ? "standard input" : "standard output");
            }
        }
        const auto server = ringio::resolve(argv[1], argv[2], {.type = SOCK_DGRAM}).front();
        ringio::io_context context;
        ringio::udp_socket socket(context, server.family());
        socket.connect(server);
        ringio::sync_wait(context, send_lines(socket, server));
    } catch (const std::exception& error) {
        std::fprintf(stderr, "udp_client: %s\n", error.what());
        return 1;
    }
}
