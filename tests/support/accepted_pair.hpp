#pragma once

// A loopback connection for the tests of what sits on a stream (receive, send): a plain
// blocking client socket, the test's peer, and the ringio stream the server accepted.

#include <ringio/buffer_ring.hpp>
#include <ringio/io_context.hpp>
#include <ringio/multishot.hpp>
#include <ringio/task.hpp>
#include <ringio/tcp_listener.hpp>
#include <ringio/tcp_stream.hpp>

#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
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
        : listener(context, endpoint::loopback_v4(0)),
          client(blocking_connect(listener.local_endpoint())), server(context) {
        server = sync_wait(context, [](tcp_listener& l) -> task<tcp_stream> {
            co_return co_await l.accept();
        }(listener));
    }

    /// Sends `text` from the client, whole.
    void send(std::string_view text) const {
        REQUIRE(::send(client.get(), text.data(), text.size(), MSG_NOSIGNAL) ==
                static_cast<ssize_t>(text.size()));
    }

    /// Makes the client reset the connection (an RST, not a FIN) and closes it.
    void reset_client() {
        const linger abort_on_close{1, 0};
        REQUIRE(::setsockopt(client.get(), SOL_SOCKET, SO_LINGER, &abort_on_close,
                             sizeof abort_on_close) == 0);
        client.reset();
    }

    /// Fills the server's send buffer and the client's receive buffer, so that the server's
    /// next send waits for room.
    void fill_server_side() const {
        const int small = 4096;
        const int fd = server.native_handle();
        REQUIRE(::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small) == 0);
        const std::string block(65536, 'f');
        // Room comes back as the peer acknowledges what was in flight: full means that a few
        // pauses in a row free none.
        for (int quiet = 0; quiet < 3;) {
            bool sent = false;
            while (::send(fd, block.data(), block.size(), MSG_DONTWAIT | MSG_NOSIGNAL) > 0) {
                sent = true;
            }
            REQUIRE(errno == EAGAIN);
            quiet = sent ? 0 : quiet + 1;
            ::usleep(20000);
        }
    }
};

/// Receives `count` chunks and keeps them all.
inline task<std::vector<buffer_lease>> take(multishot<buffer_lease>& incoming, int count) {
    std::vector<buffer_lease> chunks;
    for (int i = 0; i < count; ++i) {
        chunks.push_back(co_await incoming.next());
    }
    co_return chunks;
}

/// Takes chunks until the end of the stream and returns everything received.
inline task<std::string> drain(multishot<buffer_lease>& incoming) {
    std::string all;
    for (;;) {
        const buffer_lease chunk = co_await incoming.next();
        if (chunk.empty()) {
            co_return all;
        }
        all += chunk.text();
    }
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
