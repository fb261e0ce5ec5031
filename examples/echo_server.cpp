// echo_server PORT [--threads N] [--simple]
//
// A TCP echo server: every byte goes back to its sender. Each thread runs its own io_context
// and its own SO_REUSEPORT listener, so the kernel spreads connections over the threads and
// nothing is shared between them (thread-per-core).
//
// Connections are accepted by one multishot accept and read by multishot recvs into buffers
// that all connections of a thread share: an idle connection holds no buffer. Each chunk goes
// back through a sender, which returns its buffer once sent, with nobody waiting for it.
// --simple uses the plain read(buffer)/write_all instead, one buffer per connection, for
// comparison.
//
// SIGINT or SIGTERM stops it: the main thread waits for the signal and wakes every loop
// through an eventfd that the loop reads like any other descriptor.

#include <ringio/acceptor.hpp>
#include <ringio/buffer_ring.hpp>
#include <ringio/descriptor.hpp>
#include <ringio/receiver.hpp>
#include <ringio/sender.hpp>
#include <ringio/tcp_listener.hpp>
#include <ringio/timer.hpp>

#include <signal.h>
#include <sys/eventfd.h>

#include <array>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

// Replies one connection may have waiting to go out before it stops receiving.
constexpr std::size_t max_pending = 4;

// The fast path: chunks arrive in shared buffers, each goes back as it came. The reply is not
// awaited: the sender returns each buffer to the ring once the kernel has taken its bytes.
ringio::task<> echo(ringio::tcp_stream stream, ringio::buffer_ring& buffers) {
    ringio::receiver incoming(stream, buffers);
    ringio::sender outgoing(stream);
    std::error_code error;
    for (;;) {
        ringio::buffer_lease chunk = co_await incoming.next(error);
        if (chunk.empty()) {
            break; // the peer closed, or the connection failed
        }
        outgoing.send(std::move(chunk), error);
        if (error) {
            co_return;
        }
        // A peer that sends without reading would otherwise hold the buffers every other
        // connection needs.
        if (outgoing.pending() > max_pending) {
            co_await outgoing.flush(error);
            if (error) {
                co_return;
            }
        }
    }
    co_await outgoing.flush(error); // the last replies, before the stream closes
}

// The simple path, for comparison: one buffer per connection.
ringio::task<> echo_simple(ringio::tcp_stream stream) {
    std::array<std::byte, 4096> buffer;
    std::error_code error;
    for (;;) {
        const std::size_t n = co_await stream.read(buffer, error);
        if (n == 0 || error) {
            co_return;
        }
        co_await stream.write_all(std::span{buffer}.first(n), error);
        if (error) {
            co_return;
        }
    }
}

ringio::task<> serve(ringio::io_context& context, ringio::tcp_listener& listener,
                     ringio::buffer_ring* buffers) {
    ringio::acceptor incoming(listener);
    for (;;) {
        std::error_code error;
        auto [stream, peer] = co_await incoming.next(error);
        if (error == std::errc::operation_canceled) {
            co_return; // shutting down
        }
        if (error) {
            // Out of descriptors, or a connection aborted before it was taken: keep serving.
            std::fprintf(stderr, "echo_server: accept: %s\n", error.message().c_str());
            co_await ringio::sleep_for(context, 50ms);
            continue;
        }
        // Each reply goes out whole at once: with Nagle's algorithm, the second part of a
        // message that arrived in two pieces would wait for the peer to acknowledge the first.
        // A failure here means the connection is already gone; its first read will say so.
        stream.set_no_delay(true, error);
        if (buffers != nullptr) {
            ringio::spawn(context, echo(std::move(stream), *buffers));
        } else {
            ringio::spawn(context, echo_simple(std::move(stream)));
        }
    }
}

// Waits for the main thread's word, then closes the listener: its accept is cancelled, and
// run() returns once the last connection has gone.
ringio::task<> stop_on(ringio::io_context& context, int wake, ringio::tcp_listener& listener) {
    std::array<std::byte, 8> word;
    co_await ringio::read(context, wake, word);
    listener.close();
    context.stop();
}

// One thread's share of the server. Everything is set up on the main thread, so that a busy
// port is reported before any thread starts and no connection ever finds the port closed; the
// ring is enabled by the thread that runs it.
struct worker {
    ringio::io_context context;
    ringio::tcp_listener listener;
    std::optional<ringio::buffer_ring> buffers;

    worker(const ringio::endpoint& address, bool simple, int wake)
        : listener(context, address, {.reuse_port = true}) {
        if (!simple) {
            buffers.emplace(context, 1024, 4096);
        }
        ringio::spawn(context, serve(context, listener, buffers ? &*buffers : nullptr));
        ringio::spawn(context, stop_on(context, wake, listener));
    }
};

int usage() {
    std::fprintf(stderr, "usage: echo_server PORT [--threads N] [--simple]\n");
    return 2;
}

bool parse_number(std::string_view text, unsigned& value, unsigned low, unsigned high) {
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    return error == std::errc{} && end == text.data() + text.size() && value >= low &&
           value <= high;
}

} // namespace

int main(int argc, char** argv) {
    unsigned port = 0;
    unsigned threads = 1;
    bool simple = false;
    if (argc < 2 || !parse_number(argv[1], port, 0, 65535)) {
        return usage();
    }
    for (int i = 2; i < argc; ++i) {
        const std::string_view option = argv[i];
        if (option == "--threads" && i + 1 < argc && parse_number(argv[i + 1], threads, 1, 256)) {
            ++i;
        } else if (option == "--simple") {
            simple = true;
        } else {
            return usage();
        }
    }

    // Every thread inherits this mask, so the signals wait for sigwait below.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);

    try {
        const ringio::endpoint address = ringio::endpoint::any_v6(static_cast<std::uint16_t>(port));
        std::vector<int> wakes;
        std::vector<std::unique_ptr<worker>> workers;
        for (unsigned i = 0; i < threads; ++i) {
            wakes.push_back(::eventfd(0, EFD_CLOEXEC));
            workers.push_back(std::make_unique<worker>(address, simple, wakes.back()));
        }
        std::vector<std::thread> running;
        for (std::unique_ptr<worker>& each : workers) {
            // A context is destroyed by the thread that ran it: only that thread may still
            // submit the cancellations its destructor needs.
            running.emplace_back([&each] {
                try {
                    each->context.run();
                    each.reset();
                } catch (const std::exception& error) {
                    std::fprintf(stderr, "echo_server: %s\n", error.what());
                    std::_Exit(1);
                }
            });
        }
        int signal = 0;
        sigwait(&signals, &signal);
        for (int wake : wakes) {
            const std::uint64_t one = 1;
            (void)!::write(wake, &one, sizeof one);
        }
        for (std::thread& thread : running) {
            thread.join();
        }
        for (int wake : wakes) {
            ::close(wake);
        }
        return 0;
    } catch (const std::exception& error) {
        std::fprintf(stderr, "echo_server: %s\n", error.what());
        return 1;
    }
}
