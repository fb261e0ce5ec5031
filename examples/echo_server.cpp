// echo_server PORT [--threads N] [--simple]: a TCP echo server, every byte back to its sender.
// Each thread runs its own io_context; all accept on one listening socket (no SO_REUSEPORT for
// another program to join). A connection receives into buffers its thread's connections share,
// two at most: a peer that never reads holds two, never the others'. Each chunk goes back from
// its buffer, unawaited and uncopied; --simple reads and writes a buffer per connection.
// Usage errors: status 2; other errors: one line, status 1. SIGINT or SIGTERM: status 0.

#include <ringio/net.hpp>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <sys/eventfd.h>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

static ringio::task<> echo(ringio::tcp_stream stream, ringio::buffer_ring& buffers,
                           ringio::cancellation& stop) {
    auto incoming = stream.receive(buffers);
    std::error_code error; // an empty chunk: the peer closed, the connection failed, or a stop
    while (ringio::buffer_lease chunk = co_await incoming.next().cancel_on(stop).into(error)) {
        stream.send(std::move(chunk), error); // its buffer goes back once the kernel took it
    }
    co_await stream.flush().cancel_on(stop).into(error); // the last replies, before closing
}

static ringio::task<> echo_simple(ringio::tcp_stream stream, ringio::cancellation& stop) {
    std::array<char, 4096> buffer;
    std::error_code error;
    while (const std::size_t size = co_await stream.read(buffer).cancel_on(stop).into(error)) {
        co_await stream.write_all(std::span(buffer).first(size)).cancel_on(stop).into(error);
    }
}

// One thread's share, built on the main thread: a busy port is said before any thread starts.
struct worker {
    ringio::io_context context;
    ringio::cancellation stop;
    std::optional<ringio::tcp_listener> listener;
    std::optional<ringio::buffer_ring> buffers; // 4,096 of 4 KiB: room left by 2,000 stalled

    void start(const ringio::tcp_listener& shared, bool simple, int wake) {
        listener.emplace(context, shared);
        buffers = simple ? std::nullopt : std::optional(ringio::buffer_ring(context, 4096, 4096));
        ringio::spawn(context, serve());
        ringio::spawn(context, [](worker& self, int fd) -> ringio::task<> {
            std::uint64_t word = 0; // a semaphore: each worker takes one of the stop's wake-ups
            co_await ringio::read(self.context, fd, std::as_writable_bytes(std::span(&word, 1)));
            self.stop.cancel(); // every connection and the accept end at once
        }(*this, wake));
    }

    ringio::task<> serve() {
        auto incoming = listener->accept_all();
        for (std::error_code error; !stop.cancelled();) {
            ringio::tcp_stream stream = co_await incoming.next().cancel_on(stop).into(error);
            if (stream.is_open()) {
                stream.set_no_delay(true, error); // a reply in two pieces would wait for an ACK
                ringio::spawn(context, buffers ? echo(std::move(stream), *buffers, stop)
                                               : echo_simple(std::move(stream), stop));
            } else if (!stop.cancelled()) { // out of descriptors (EMFILE): say so, wait, go on
                const std::string text = "echo_server: accept: " + error.message() + "\n";
                co_await ringio::write_all(context, STDERR_FILENO, text)
                    .with_timeout(1s)
                    .into(error);
                co_await ringio::sleep_for(context, 50ms).cancel_on(stop).into(error);
            }
        }
    }
};

static ringio::task<> wake_all(ringio::signal_set& signals, int wake, unsigned workers) {
    co_await signals.wait();
    (void)::eventfd_write(wake, workers);
}

int main(int argc, char* argv[]) {
    const auto port = argc >= 2 ? ringio::parse_port(argv[1]) : std::nullopt;
    const bool threaded = argc >= 4 && std::strcmp(argv[2], "--threads") == 0; // in this order
    const auto threads = threaded ? ringio::parse_port(argv[3]) : std::optional<std::uint16_t>(1);
    const int at = threaded ? 4 : 2;
    const bool simple = at < argc && std::strcmp(argv[at], "--simple") == 0;
    if (!port || !threads || *threads > 256 || at + (simple ? 1 : 0) != argc) {
        std::fputs("usage: echo_server PORT [--threads N] [--simple]\n", stderr);
        return 2;
    }
    try {
        std::vector<std::unique_ptr<worker>> workers(*threads);
        std::ranges::generate(workers, [] { return std::make_unique<worker>(); });
        // The main thread runs the first worker, which waits for a signal and wakes them all.
        // Blocked before any thread starts, and before the port is bound: a client may stop us.
        ringio::signal_set signals(workers[0]->context, {SIGINT, SIGTERM});
        const ringio::descriptor wake(workers[0]->context,
                                      ::eventfd(0, EFD_CLOEXEC | EFD_SEMAPHORE));
        ringio::spawn(workers[0]->context, wake_all(signals, wake.native_handle(), *threads));
        const ringio::tcp_listener listener(workers[0]->context, ringio::endpoint::any_v6(*port));
        for (const std::unique_ptr<worker>& each : workers) {
            each->start(listener, simple, wake.native_handle());
        }
        std::vector<std::thread> running;
        for (unsigned i = 1; i < *threads; ++i) {
            running.emplace_back([each = std::move(workers[i])]() mutable {
                each->context.run(); // its tasks throw nothing: they take their errors as codes
                each.reset();        // on the thread that ran it
            });
        }
        workers[0]->context.run();
        for (std::thread& each : running) {
            each.join();
        }
    } catch (const std::exception& error) {
        std::fprintf(stderr, "echo_server: %s\n", error.what());
        return 1;
    }
}
