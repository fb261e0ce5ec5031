// udp_echo PORT: a UDP echo server; every datagram goes back to its sender, whole.
//
// One multishot recvmsg fills buffers of a shared ring, and a few coroutines share it: while one
// waits for its answer to go out, the next datagram is already another's. The benchmarks compare
// it with a plain recvfrom/sendto loop in C. A busy port or any other error is one line and
// status 1; SIGINT or SIGTERM stops it (status 0).

#include <ringio/net.hpp>

#include <csignal>
#include <cstdio>

static ringio::task<> echo(ringio::udp_socket& socket, ringio::multishot<ringio::datagram>& in,
                           ringio::cancellation& stop) {
    for (std::error_code error; !stop.cancelled();) {
        const ringio::datagram got = co_await in.next().cancel_on(stop).into(error);
        if (!error) { // a failed answer (an unreachable sender) loses that answer only
            co_await socket.sendto(got.payload.bytes(), got.sender).cancel_on(stop).into(error);
        }
    }
}

int main(int argc, char* argv[]) {
    const auto port = argc == 2 ? ringio::parse_port(argv[1]) : std::nullopt;
    if (!port) {
        std::fputs("usage: udp_echo PORT\n", stderr);
        return 2;
    }
    try {
        ringio::io_context context;
        ringio::signal_set signals(context, {SIGINT, SIGTERM});
        ringio::cancellation stop;
        ringio::udp_socket socket(context, ringio::endpoint::any_v6(*port));
        // Room for the largest datagram, so that nothing is cut; the kernel fills only the pages
        // a datagram needs.
        ringio::buffer_ring buffers(context, 64, 65536 + 128);
        auto incoming = socket.receive_from(buffers);
        for (int i = 0; i < 8; ++i) { // enough to keep the socket busy while answers go out
            ringio::spawn(context, echo(socket, incoming, stop));
        }
        ringio::spawn(context, ringio::cancel_on_signal(signals, stop));
        context.run();
    } catch (const std::exception& error) {
        std::fprintf(stderr, "udp_echo: %s\n", error.what());
        return 1;
    }
}
