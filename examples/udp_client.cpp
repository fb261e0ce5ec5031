// udp_client HOST PORT: sends each line of standard input to the server as one datagram and
// prints the server's answer to each.
//
//     $ echo hello | udp_client localhost 4950
//     Server says: thank you
//
// Standard input is read through the ring like any descriptor, so lines arrive in pieces of
// whatever size the pipe or terminal gives: they are put back together here. A line is sent
// without its newline (the datagram keeps it whole); a last line without one is sent too.
// Only the server's answers count: the socket is connected to it, so the kernel drops datagrams
// from anyone else, and reports at once that nothing listens on the port.
//
// PORT is a number from 1 to 65535; anything else on the command line is a usage error
// (status 2). A server that does not answer within two seconds, an output whose reader has
// gone, or any other error ends the program with one line and status 1.

#include "common.hpp"

#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <exception>
#include <span>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

using namespace std::chrono_literals;

namespace {

constexpr auto answer_timeout = 2s;

ringio::task<> send_line(ringio::udp_socket& socket, examples::output& out, ringio::endpoint server,
                         std::string line) {
    co_await socket.sendto(std::as_bytes(std::span(line)), server);

    std::array<char, 65536> answer; // the largest datagram
    std::error_code error;
    const ringio::received received =
        co_await socket.recvfrom(std::as_writable_bytes(std::span(answer)), error)
            .with_timeout(answer_timeout);
    if (error == std::errc::stream_timeout) {
        throw std::runtime_error("no answer from " + server.to_string() + " within 2 seconds");
    }
    if (error) {
        throw std::system_error(error, "recvfrom " + server.to_string()); // ECONNREFUSED
    }
    std::string text = "Server says: ";
    text.append(answer.data(), received.size);
    if (!text.ends_with('\n')) {
        text += '\n';
    }
    co_await out.print(std::move(text));
}

ringio::task<> send_lines(ringio::udp_socket& socket, examples::output& out,
                          ringio::endpoint server) {
    std::array<char, 4096> input;
    std::string line; // what has been read of the current line
    for (;;) {
        const std::size_t size = co_await ringio::read(socket.context(), STDIN_FILENO,
                                                       std::as_writable_bytes(std::span(input)));
        if (size == 0) {
            break; // end of input
        }
        line.append(input.data(), size);
        for (auto end = line.find('\n'); end != std::string::npos; end = line.find('\n')) {
            co_await send_line(socket, out, server, line.substr(0, end));
            line.erase(0, end + 1);
        }
    }
    if (!line.empty()) {
        co_await send_line(socket, out, server, line);
    }
}

} // namespace

int main(int argc, char* argv[]) {
    if (argc != 3 || !examples::is_port(argv[2])) {
        std::fputs("usage: udp_client HOST PORT\n", stderr);
        return 2;
    }
    try {
        examples::require_open(STDIN_FILENO, "standard input");
        examples::require_open(STDOUT_FILENO, "standard output");
        // The first address getaddrinfo gives: without a connection, there is nothing to try.
        const ringio::endpoint server =
            ringio::resolve(argv[1], argv[2], {.type = ringio::socket_type::datagram}).front();
        ringio::io_context context;
        examples::output out(context);
        ringio::udp_socket socket(context,
                                  server.is_v6() ? ringio::ip_family::v6 : ringio::ip_family::v4);
        // Connected, the socket takes datagrams from the server alone (and is bound to a free
        // port). udp_socket has no connect of its own yet: the system call, on its descriptor.
        if (::connect(socket.native_handle(), server.data(), server.size()) != 0) {
            throw std::system_error(errno, std::system_category(), "connect " + server.to_string());
        }
        ringio::sync_wait(context, send_lines(socket, out, server));
    } catch (const std::exception& error) {
        std::fprintf(stderr, "udp_client: %s\n", error.what());
        return 1;
    }
}
