// echo_server PORT [--threads N] [--simple]
//
// A TCP echo server: every byte goes back to its sender. Each thread runs its own io_context
// and its own listener, so nothing is shared between them (thread-per-core).
//
// Connections are accepted by one multishot accept and read by multishot recvs into buffers
// that all connections of a thread share: an idle connection holds no buffer. Each chunk goes
// back through a sender, which returns its buffer once sent, with nobody waiting for it.
// --simple uses the plain read(buffer)/write_all instead, one buffer per connection, for
// comparison.
//
// With one thread (the default), the listener shares its port with nobody: another server on
// the port fails to start. --threads N gives the N listeners the port together through
// SO_REUSEPORT, and the kernel spreads connections among them; a port already taken is still
// reported, but while the server runs, any program of the same user that sets SO_REUSEPORT may
// join the group and take a share of the connections. (One listening socket that every
// thread's ring accepts on would close that gap, but a tcp_listener belongs to one context.)
//
// PORT is a number from 1 to 65535, N from 1 to 256, each option at most once and after the
// port; anything else is a usage error (status 2). A port that is taken, or any other error,
// ends the server with one line and status 1. SIGINT or SIGTERM stops it, and it exits 0: the
// main thread waits for the signal and wakes every loop through an eventfd that the loop reads
// like any other descriptor.

#include <ringio/acceptor.hpp>
#include <ringio/buffer_ring.hpp>
#include <ringio/descriptor.hpp>
#include <ringio/receiver.hpp>
#include <ringio/sender.hpp>
#include <ringio/tcp_listener.hpp>
#include <ringio/timer.hpp>

#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
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
            // Said through the ring, so that a stderr nobody reads cannot hold the thread past
            // a stop (which cancels the write); a failure to say it is dropped.
            const std::string line = "echo_server: accept: " + error.message() + "\n";
            co_await ringio::write_all(context, STDERR_FILENO, std::as_bytes(std::span(line)),
                                       error);
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

    worker(const ringio::endpoint& address, bool share_port, bool simple, int wake)
        : listener(context, address, {.reuse_port = share_port}) {
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
    return !text.empty() && error == std::errc{} && end == text.data() + text.size() &&
           value >= low && value <= high;
}

// SO_REUSEPORT would let this server join another that holds the port with it, or that one
// join this: a listener that does not share the port, opened and closed on a ring of its own
// first, reports a port that is taken. Its descriptor is closed when the ring is destroyed.
void check_port_free(const ringio::endpoint& address) {
    ringio::io_context scratch;
    const ringio::tcp_listener probe(scratch, address);
}

} // namespace

int main(int argc, char** argv) {
    unsigned port = 0;
    unsigned threads = 0; // 0: not given
    bool simple = false;
    // Ports as every example takes them: 1 to 65535.
    if (argc < 2 || !parse_number(argv[1], port, 1, 65535)) {
        return usage();
    }
    for (int i = 2; i < argc; ++i) {
        const std::string_view option = argv[i];
        if (option == "--threads" && threads == 0 && i + 1 < argc &&
            parse_number(argv[i + 1], threads, 1, 256)) {
            ++i;
        } else if (option == "--simple" && !simple) {
            simple = true;
        } else {
            return usage();
        }
    }
    threads = std::max(threads, 1U);

    // Every thread inherits this mask, so the signals wait for sigwait below.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);

    try {
        const ringio::endpoint address = ringio::endpoint::any_v6(static_cast<std::uint16_t>(port));
        if (threads > 1) {
            check_port_free(address);
        }
        std::vector<int> wakes;
        std::vector<std::unique_ptr<worker>> workers;
        for (unsigned i = 0; i < threads; ++i) {
            wakes.push_back(::eventfd(0, EFD_CLOEXEC));
            if (wakes.back() < 0) {
                throw std::system_error(errno, std::system_category(), "eventfd");
            }
            workers.push_back(std::make_unique<worker>(address, threads > 1, simple, wakes.back()));
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
