// echo_server PORT [--threads N] [--simple]: a TCP echo server; every byte goes back to its
// sender.
//
// Each thread runs its own io_context on one listening socket that all of them share (no
// SO_REUSEPORT: no other program can join it). Connections receive into buffers every
// connection of the thread shares, one recv per chunk and at most two chunks per connection,
// so an idle connection holds no buffer and a peer that sends but never reads holds two, never
// the others'. Each chunk is sent back from its buffer without a copy and without waiting.
// --simple uses read/write_all on one buffer per connection instead, for comparison.
//
// PORT is 1 to 65535, N 1 to 256, each option at most once; anything else is a usage error
// (status 2). A busy port or any other error is one line and status 1. SIGINT or SIGTERM stops
// it (status 0): the main thread takes the signal and wakes each loop through an eventfd.

#include <ringio/ringio.hpp>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <sys/eventfd.h>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

ringio::task<> echo(ringio::tcp_stream stream, ringio::buffer_ring& buffers,
                    ringio::cancellation& stop) {
    auto incoming = stream.receive(buffers);
    std::error_code error;
    for (;;) {
        ringio::buffer_lease chunk = co_await incoming.next().cancel_on(stop).into(error);
        if (chunk.empty()) {
            break; // the peer closed, the connection failed, or the server stops
        }
        stream.send(std::move(chunk), error); // its buffer goes back once the kernel took it
        if (error) {
            co_return;
        }
    }
    co_await stream.flush().cancel_on(stop).into(error); // the last replies, before it closes
}

ringio::task<> echo_simple(ringio::tcp_stream stream, ringio::cancellation& stop) {
    std::array<char, 4096> buffer;
    std::error_code error;
    while (const std::size_t size = co_await stream.read(buffer).cancel_on(stop).into(error)) {
        co_await stream.write_all(std::span(buffer).first(size)).cancel_on(stop).into(error);
    }
}

// One thread's share of the server, built on the main thread (so that a busy port is said before
// any thread starts) and run, then destroyed, by its own.
struct worker {
    ringio::io_context context;
    ringio::tcp_listener listener;
    ringio::descriptor wake{context, ::eventfd(0, EFD_CLOEXEC)};
    ringio::cancellation stop;
    std::optional<ringio::buffer_ring> buffers; // 4,096 of 4 KiB: 2,000 stalled peers, each
                                                // holding two, leave the others room
    worker(const ringio::tcp_listener& shared, bool simple) : listener(context, shared) {
        if (!simple) {
            buffers.emplace(context, 4096, 4096);
        }
        ringio::spawn(context, serve());
        ringio::spawn(context, [](worker& self) -> ringio::task<> {
            std::uint64_t word = 0;
            co_await self.wake.read(std::as_writable_bytes(std::span(&word, 1)));
            self.stop.cancel(); // every connection and the accept end at once
        }(*this));
    }

    ringio::task<> serve() {
        auto incoming = listener.accept_all();
        for (std::error_code error; !stop.cancelled();) {
            ringio::tcp_stream stream = co_await incoming.next().cancel_on(stop).into(error);
            if (!stream.is_open()) { // out of descriptors (EMFILE): wait, never spin
                co_await ringio::sleep_for(context, 50ms).cancel_on(stop).into(error);
                continue;
            }
            stream.set_no_delay(true); // a reply in two pieces would wait for an acknowledgment
            ringio::spawn(context, buffers ? echo(std::move(stream), *buffers, stop)
                                           : echo_simple(std::move(stream), stop));
        }
    }
};

bool number(const char* text, unsigned low, unsigned high, unsigned& value) {
    const auto parsed = ringio::parse_port(text); // digits, 1 to 65535
    value = parsed ? *parsed : 0;
    return parsed && value >= low && value <= high;
}

} // namespace

int main(int argc, char* argv[]) {
    unsigned port = 0;
    unsigned threads = 0;
    bool simple = false;
    bool good = argc >= 2 && number(argv[1], 1, 65535, port);
    for (int i = 2; good && i < argc; ++i) {
        if (std::strcmp(argv[i], "--simple") == 0 && !simple) {
            simple = true;
        } else {
            good = std::strcmp(argv[i], "--threads") == 0 && threads == 0 && i + 1 < argc &&
                   number(argv[++i], 1, 256, threads);
        }
    }
    if (!good) {
        std::fputs("usage: echo_server PORT [--threads N] [--simple]\n", stderr);
        return 2;
    }
    try {
        ringio::io_context main_context;
        ringio::signal_set signals(main_context, {SIGINT, SIGTERM}); // before any thread starts
        ringio::tcp_listener listener(main_context,
                                      ringio::endpoint::any_v6(static_cast<std::uint16_t>(port)));
        std::vector<int> wakes;
        std::vector<std::thread> running;
        for (unsigned i = 0; i < std::max(threads, 1U); ++i) {
            auto each = std::make_unique<worker>(listener, simple);
            wakes.push_back(each->wake.native_handle());
            running.emplace_back([each = std::move(each)]() mutable {
                each->context.run();
                each.reset(); // a context is destroyed on the thread that ran it
            });
        }
        ringio::sync_wait(main_context, [](ringio::signal_set& s) -> ringio::task<> {
            co_await s.wait();
        }(signals));
        for (std::size_t i = 0; i < running.size(); ++i) {
            const std::uint64_t one = 1;
            (void)!::write(wakes[i], &one, sizeof one);
            running[i].join();
        }
    } catch (const std::exception& error) {
        std::fprintf(stderr, "echo_server: %s\n", error.what());
        return 1;
    }
}
