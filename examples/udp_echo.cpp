// udp_echo PORT
//
// A UDP echo server: every datagram goes back to its sender, whole. The benchmarks compare it
// with a plain recvfrom/sendto loop in C. SIGINT or SIGTERM stops it.
//
// One multishot recvmsg fills shared buffers, and a few coroutines share it: while one waits
// for its answer to go out, the next datagram is already another's.

#include <ringio/ringio.hpp>

#include <signal.h>
#include <sys/signalfd.h>

#include <charconv>
#include <cstdio>
#include <string_view>
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

ringio::task<> stop_on_signal(ringio::io_context& context, int signals,
                              ringio::udp_socket& socket) {
    signalfd_siginfo info;
    co_await ringio::read(context, signals, std::as_writable_bytes(std::span{&info, 1}));
    socket.close();
}

} // namespace

int main(int argc, char** argv) {
    unsigned port = 0;
    const std::string_view text = argc == 2 ? argv[1] : "";
    const auto [end, parse_error] = std::from_chars(text.data(), text.data() + text.size(), port);
    if (argc != 2 || parse_error != std::errc{} || end != text.data() + text.size() ||
        port > 65535) {
        std::fprintf(stderr, "usage: udp_echo PORT\n");
        return 2;
    }
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sigprocmask(SIG_BLOCK, &stop, nullptr);
    try {
        ringio::io_context context;
        ringio::detail::unique_fd signals{::signalfd(-1, &stop, SFD_CLOEXEC)};
        ringio::udp_socket socket(context,
                                  ringio::endpoint::any_v6(static_cast<std::uint16_t>(port)));
        // Room for the largest datagram, so that nothing is ever truncated; the kernel fills
        // only the pages a datagram needs.
        ringio::buffer_ring buffers(context, 64, 65536 + ringio::datagram_receiver::overhead);
        ringio::datagram_receiver incoming(socket, buffers);
        for (int i = 0; i < workers; ++i) {
            ringio::spawn(context, echo(socket, incoming));
        }
        ringio::spawn(context, stop_on_signal(context, signals.get(), socket));
        context.run();
        return 0;
    } catch (const std::exception& error) {
        std::fprintf(stderr, "udp_echo: %s\n", error.what());
        return 1;
    }
}
