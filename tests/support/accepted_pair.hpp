#pragma once

// A loopback connection for the tests of what sits on a stream (receiver, sender): a plain
// blocking client socket, the test's peer, and the ringio stream the server accepted.

#include <ringio/buffer_ring.hpp>
#include <ringio/io_context.hpp>
#include <ringio/receiver.hpp>
#include <ringio/task.hpp>
#include <ringio/tcp_listener.hpp>
#include <ringio/tcp_stream.hpp>

#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <sys/socket.h>

#include <string>
#include <string_view>
#include <vector>

namespace ringio::testing {

/// A connected pair: `client` is a plain blocking socket, `server` a ringio stream.
struct accepted_pair {
    tcp_listener listener;
    detail::unique_fd client;
    tcp_stream server;

    explicit accepted_pair(io_context& context)
        : listener(context, endpoint::loopback_v4(0)), client(blocking_connect(listener.address())),
          server(context) {
        server = sync_wait(context, [](tcp_listener& l) -> task<tcp_stream> {
            co_return (co_await l.accept()).stream;
        }(listener));
    }

    /// Sends `text` from the client, whole.
    void send(std::string_view text) const {
        REQUIRE(::send(client.get(), text.data(), text.size(), MSG_NOSIGNAL) ==
                static_cast<ssize_t>(text.size()));
    }
};

/// Receives `count` chunks and keeps them all.
inline task<std::vector<buffer_lease>> take(receiver& incoming, int count) {
    std::vector<buffer_lease> chunks;
    for (int i = 0; i < count; ++i) {
        chunks.push_back(co_await incoming.next());
    }
    co_return chunks;
}

/// `size` bytes of text in which a chunk out of place shows: no short period repeats.
inline std::string pattern(std::size_t size) {
    std::string text(size, '\0');
    for (std::size_t i = 0; i < size; ++i) {
        text[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
    }
    return text;
}

} // namespace ringio::testing
