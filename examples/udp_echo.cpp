// udp_echo PORT
//
// A UDP echo server: every datagram goes back to its sender, whole. The benchmarks compare it
// with a plain recvfrom/sendto loop in C.
//
// One multishot recvmsg fills shared buffers, and a few coroutines share it: while one waits
// for its answer to go out, the next datagram is already another's. The socket shares its port
// with nobody (no SO_REUSEPORT): another server on the port fails to start.
//
// PORT is a number from 1 to 65535; anything else on the command line is a usage error
// (status 2). A port that is taken, or any other error, ends the server with one line and
// status 1. SIGINT or SIGTERM stops it, and it exits 0.

#include "common.hpp"

#include <cstdio>
#include <exception>
#include <system_error>

namespace {

// Enough to keep the socket busy while answers are in flight; each idle one costs a frame.
constexpr int workers = 8;

ringio::task<> echo(ringio::udp_socket& socket, ringio::datagram_receiver& incoming) {
    std::error_code error;
    for (;;) {
        const ringio::datagram got = co_await incoming.next(error);
        // Closed by stop_on_signal: every waiting coroutine hears it, and so does one whose
        // sendto was in flight, at its next call.
        if (!socket.is_open()) {
            co_return;
        }
        if (!error) {
            // A failed send (an unreachable sender) loses that answer only.
            co_await socket.sendto(got.payload.bytes(), got.sender, error);
        }
    }
}

ringio::task<> stop_on_signal(examples::stop_signals& signals, ringio::udp_socket& socket) {
    co_await signals.wait(socket.context());
    socket.close();
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 2 || !examples::is_port(argv[1])) {
        std::fputs("usage: udp_echo PORT\n", stderr);
        return 2;
    }
    try {
        examples::stop_signals signals;
        ringio::io_context context;
        auto socket = examples::open_server<ringio::udp_socket>(context, argv[1],
                                                                ringio::socket_type::datagram);
        // Room for the largest datagram, so that nothing is ever truncated; the kernel fills
        // only the pages a datagram needs.
        ringio::buffer_ring buffers(context, 64, 65536 + ringio::datagram_receiver::overhead);
        ringio::datagram_receiver incoming(socket, buffers);
        for (int i = 0; i < workers; ++i) {
            ringio::spawn(context, echo(socket, incoming));
        }
        ringio::spawn(context, stop_on_signal(signals, socket));
        context.run();
        return 0;
    } catch (const std::exception& error) {
        std::fprintf(stderr, "udp_echo: %s\n", error.what());
        return 1;
    }
}
