// tcp_server PORT (or unix:PATH): prints what each client sends, and `connection terminated`
// when one leaves. The C original forked a process per client; here each is a coroutine.
// Lines are printed whole (one past 4096 bytes is cut there and ends its client); a reset or a
// lack of descriptors stops nobody. SIGINT or SIGTERM stops it (status 0), errors: status 1.

#include <ringio/net.hpp>

#include <csignal>
#include <cstdio>
#include <fcntl.h>

using namespace std::chrono_literals;

static ringio::task<> session(ringio::tcp_stream stream, ringio::cancellation& stop,
                              std::string& farewells) {
    ringio::io_context& context = stream.context();
    ringio::input_buffer in(4096); // PIPE_BUF: one write of a line this long is never split
    std::error_code error; // a reset ends this client only, as does a longer line (EMSGSIZE)
    while (const auto line = co_await stream.read_until(in, '\n').cancel_on(stop).into(error)) {
        const std::string text = std::string(*line) + '\n';
        co_await ringio::write_all(context, STDOUT_FILENO, text).cancel_on(stop).into(error);
        if (error && !stop.cancelled()) {
            throw std::system_error(error, "standard output"); // its reader has gone: EPIPE
        }
    }
    const std::string end = std::string(in.data()) + (in.data().empty() ? "" : "\n") +
                            (error == std::errc::message_size ? "(cut)\n" : "") +
                            "connection terminated\n";
    if (stop.cancelled()) { // main writes them all once the stop has ended every session
        farewells += end;
    } else { // bounded, here as in main: a stop waits for nobody
        co_await ringio::write_all(context, STDOUT_FILENO, end).with_timeout(500ms).into(error);
    }
}

static ringio::task<> serve(ringio::tcp_listener& listener, ringio::cancellation& stop,
                            std::string& farewells) {
    ringio::io_context& context = listener.context();
    for (std::error_code error; !stop.cancelled();) {
        ringio::tcp_stream client = co_await listener.accept().cancel_on(stop).into(error);
        if (client.is_open()) {
            ringio::spawn(context, session(std::move(client), stop, farewells));
        } else if (!stop.cancelled()) { // out of descriptors (EMFILE): say so, wait, go on
            const std::string text = "tcp_server: accept: " + error.message() + "\n";
            co_await ringio::write_all(context, STDERR_FILENO, text).with_timeout(1s).into(error);
            co_await ringio::sleep_for(context, 100ms).cancel_on(stop).into(error);
        }
    }
}

int main(int argc, char* argv[]) {
    std::error_code bad; // PORT, or unix:PATH (unix:@NAME: abstract) for a Unix socket
    const auto port = argc == 2 ? ringio::parse_port(argv[1]) : std::nullopt;
    const auto local =
        argc == 2 && !port ? ringio::endpoint::parse(argv[1], bad) : ringio::endpoint{};
    if (!port && (!local.is_unix() || local.unix_name().empty())) {
        std::fputs("usage: tcp_server PORT | tcp_server unix:PATH\n", stderr);
        return 2;
    }
    std::signal(SIGPIPE, SIG_IGN); // a write to a pipe whose reader has gone: EPIPE instead
    try {
        if (::fcntl(STDOUT_FILENO, F_GETFD) < 0) { // else the ring could take its number
            throw std::system_error(errno, std::system_category(), "standard output");
        }
        ringio::io_context context;
        ringio::signal_set signals(context, {SIGINT, SIGTERM});
        ringio::cancellation stop; // ends every read, accept and blocked write, and later ones
        ringio::tcp_listener listener(context, port ? ringio::endpoint::any_v6(*port) : local);
        std::string farewells; // of the sessions a stop ended
        ringio::spawn(context, serve(listener, stop, farewells));
        ringio::spawn(context, ringio::cancel_on_signal(signals, stop));
        context.run();
        // One write, not one each (each handed to a kernel worker when the output is a file).
        ringio::sync_wait(context, [&]() -> ringio::task<> {
            co_await ringio::write_all(context, STDOUT_FILENO, farewells)
                .with_timeout(500ms)
                .into(bad);
        }());
    } catch (const std::exception& error) {
        std::fprintf(stderr, "tcp_server: %s\n", error.what());
        return 1;
    }
}
