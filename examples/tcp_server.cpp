// tcp_server PORT: accepts clients, prints everything each one sends, and prints `connection
// terminated` when one leaves.
//
//     $ tcp_server 3490
//     hello
//     connection terminated
//
// The C original forked a process per client; here each client gets a coroutine, all of them
// on one thread and one ring. Output is printed a whole line at a time, so clients talking at
// once never share a line (a line longer than 4096 bytes is printed in pieces, and a last line
// without a newline gets one). Neither a client that resets its connection nor running out of
// descriptors stops the server.
//
// PORT is a number from 1 to 65535; anything else on the command line is a usage error
// (status 2). SIGINT or SIGTERM stops the server, closing every connection, and it exits 0,
// even while its output or error output is blocked. An output whose reader has gone ends it
// with one line and status 1, as does any other error.

#include "common.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <exception>
#include <list>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

using namespace std::chrono_literals;

namespace {

// The open connections, so that a stop signal can close them all.
using connections = std::list<ringio::tcp_stream>;

ringio::task<> session(connections& open, connections::iterator client, examples::output& out) {
    ringio::tcp_stream& stream = *client;
    // 4096 bytes is PIPE_BUF: a write of up to that many bytes to a pipe is never split by
    // another client's.
    std::array<char, 4096> buffer;
    std::size_t used = 0;
    bool mid_line = false; // a piece of a long line was printed without its end
    std::string failure;   // why the connection ended, when it failed
    for (;;) {
        std::size_t size = 0;
        try {
            size = co_await stream.read(std::as_writable_bytes(std::span(buffer).subspan(used)));
        } catch (const std::system_error& error) {
            failure = error.what();
            break;
        }
        if (size == 0) {
            break; // the client closed its side
        }
        used += size;
        // Print up to the last newline; the rest of the line waits for more, unless the buffer
        // is full.
        const std::string_view text(buffer.data(), used);
        const std::size_t newline = text.rfind('\n');
        const std::size_t whole = used == buffer.size()  ? used
                                  : newline == text.npos ? 0
                                                         : newline + 1;
        if (whole > 0) {
            co_await out.print(std::string(text.substr(0, whole)));
            mid_line = text[whole - 1] != '\n';
            std::copy(buffer.begin() + whole, buffer.begin() + used, buffer.begin());
            used -= whole;
        }
    }
    // A reset or a failed read ends this client only; a stream closed by stop_on_signal is no
    // failure. The connection is released before anything is said about it, which may wait
    // for a slow output.
    const bool stopped = !stream.is_open();
    open.erase(client);
    if (!failure.empty() && !stopped) {
        co_await out.warn("tcp_server: " + failure + "\n");
    }
    if (used > 0 || mid_line) {
        co_await out.print(std::string(buffer.data(), used) + '\n'); // the end of the last line
    }
    co_await out.print("connection terminated\n");
}

ringio::task<> accept_clients(ringio::tcp_listener& listener, connections& open,
                              examples::output& out) {
    for (;;) {
        std::error_code error;
        auto [stream, peer] = co_await listener.accept(error);
        if (!listener.is_open()) {
            co_return; // closed by stop_on_signal; a connection that raced it closes unserved
        }
        if (error) {
            // Out of descriptors (EMFILE, ENFILE), or a connection that died in the queue: the
            // listener itself is fine. Waiting a little lets descriptors free up, and never spins.
            co_await out.warn("tcp_server: accept: " + error.message() + "\n");
            co_await ringio::sleep_for(listener.context(), 100ms);
            continue;
        }
        open.push_front(std::move(stream));
        ringio::spawn(listener.context(), session(open, open.begin(), out));
    }
}

ringio::task<> stop_on_signal(examples::stop_signals& signals, ringio::tcp_listener& listener,
                              connections& open, examples::output& out) {
    co_await signals.wait(listener.context());
    // Each close cancels what is pending on that socket, and stop() the writes waiting for a
    // blocked output; every coroutine then ends by itself.
    listener.close();
    for (ringio::tcp_stream& stream : open) {
        stream.close();
    }
    out.stop();
}

} // namespace

int main(int argc, char* argv[]) {
    if (argc != 2 || !examples::is_port(argv[1])) {
        std::fputs("usage: tcp_server PORT\n", stderr);
        return 2;
    }
    try {
        examples::require_open(STDOUT_FILENO, "standard output");
        examples::stop_signals signals;
        ringio::io_context context;
        examples::output out(context);
        auto listener = examples::open_server<ringio::tcp_listener>(context, argv[1],
                                                                    ringio::socket_type::stream);
        connections open;
        ringio::spawn(context, accept_clients(listener, open, out));
        ringio::spawn(context, stop_on_signal(signals, listener, open, out));
        // Returns once every coroutine has finished and every socket is closed.
        context.run();
    } catch (const std::exception& error) {
        std::fprintf(stderr, "tcp_server: %s\n", error.what());
        return 1;
    }
}
