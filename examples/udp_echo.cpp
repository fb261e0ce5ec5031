// udp_echo PORT
//
// A UDP echo server: every datagram goes back to its sender, whole. The benchmarks compare it
// with a plain recvfrom/sendto loop in C. SIGINT or SIGTERM stops it.

#include <ringio/ringio.hpp>

#include <signal.h>
#include <sys/signalfd.h>

#include <array>
#include <charconv>
#include <cstdio>
#include <string_view>
#include <system_error>

namespace {

ringio::task<> echo(ringio::udp_socket& socket) {
    std::array<std::byte, 65536> buffer; // the largest datagram: nothing is ever truncated
    std::error_code error;
    for (;;) {
        const ringio::received datagram = co_await socket.recvfrom(buffer, error);
        // Closed by stop_on_signal: the recvfrom was cancelled, or the close came while the
        // sendto was in flight and this recvfrom found no socket. Either way, done.
        if (!socket.is_open()) {
            co_return;
        }
        if (!error) {
            // A failed send (an unreachable sender) loses that answer only.
            co_await socket.sendto(std::span{buffer}.first(datagram.size), datagram.sender, error);
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
        ringio::spawn(context, echo(socket));
        ringio::spawn(context, stop_on_signal(context, signals.get(), socket));
        context.run();
        return 0;
    } catch (const std::exception& error) {
        std::fprintf(stderr, "udp_echo: %s\n", error.what());
        return 1;
    }
}
