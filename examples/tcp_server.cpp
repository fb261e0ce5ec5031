// tcp_server PORT: prints what each client sends, and `connection terminated` when one leaves.
//
// The C original forked a process per client; here each client is a coroutine on one ring.
// Lines are printed whole, so clients never share one (a line past 4096 bytes goes in pieces).
// A reset or a lack of descriptors stops nobody. SIGINT or SIGTERM stops it (status 0) even while
// its output is blocked; an error is one line and status 1.

#include <ringio/ringio.hpp>

#include <csignal>
#include <cstdio>
#include <fcntl.h>

using namespace std::chrono_literals;

static ringio::task<> session(ringio::tcp_stream stream, ringio::cancellation& stop) {
    ringio::io_context& context = stream.context();
    // A line, or a piece of one as long as the buffer (PIPE_BUF: a write that long is never split).
    auto line = [](std::string_view data) -> std::size_t {
        const std::size_t end = data.find('\n');
        return end != data.npos ? end + 1 : data.size() == 4096 ? data.size() : 0;
    };
    std::array<char, 4096> storage;
    ringio::input_buffer in(storage);
    bool mid_line = false;
    std::error_code error; // a reset ends this client only
    while (const auto piece = co_await stream.read_until(in, line).cancel_on(stop).into(error)) {
        co_await ringio::write_all(context, STDOUT_FILENO, *piece).cancel_on(stop);
        mid_line = !piece->ends_with('\n');
    }
    const std::string end = std::string(in.data()) + (mid_line || !in.data().empty() ? "\n" : "") +
                            "connection terminated\n"; // bounded: a stop must not wait for it
    co_await ringio::write_all(context, STDOUT_FILENO, end).with_timeout(500ms).into(error);
}

static ringio::task<> serve(ringio::tcp_listener& listener, ringio::cancellation& stop) {
    auto incoming = listener.accept_all();
    for (std::error_code error; !stop.cancelled();) {
        ringio::tcp_stream client = co_await incoming.next().cancel_on(stop).into(error);
        if (client.is_open()) {
            ringio::spawn(listener.context(), session(std::move(client), stop));
        } else if (!stop.cancelled()) { // out of descriptors (EMFILE), or a dead connection: wait
            co_await ringio::sleep_for(listener.context(), 100ms).cancel_on(stop).into(error);
        }
    }
}

int main(int argc, char* argv[]) {
    const auto port = argc == 2 ? ringio::parse_port(argv[1]) : std::nullopt;
    if (!port) {
        std::fputs("usage: tcp_server PORT\n", stderr);
        return 2;
    }
    std::signal(SIGPIPE, SIG_IGN); // an output whose reader has gone: EPIPE, and one line
    try {
        if (::fcntl(STDOUT_FILENO, F_GETFD) < 0) { // else the ring could take its number
            throw std::system_error(errno, std::system_category(), "standard output");
        }
        ringio::io_context context;
        ringio::signal_set signals(context, {SIGINT, SIGTERM});
        ringio::cancellation stop; // ends every read, accept and blocked write, and later ones
        ringio::tcp_listener listener(context, ringio::endpoint::any_v6(*port));
        ringio::spawn(context, serve(listener, stop));
        ringio::spawn(context, ringio::cancel_on_signal(signals, stop));
        context.run();
    } catch (const std::exception& error) {
        std::fprintf(stderr, "tcp_server: %s\n", error.what());
        return 1;
    }
}
