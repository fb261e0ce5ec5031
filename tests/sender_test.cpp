#include <ringio/sender.hpp>

#include <ringio/buffer_ring.hpp>
#include <ringio/io_context.hpp>
#include <ringio/receiver.hpp>
#include <ringio/task.hpp>
#include <ringio/tcp_listener.hpp>
#include <ringio/tcp_stream.hpp>

#include "accepted_pair.hpp"
#include "allocation_counter.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

using ringio::testing::pattern;
using ringio::testing::take;
using ringio::testing::text_of;

namespace {

using pair = ringio::testing::accepted_pair;

// Reads `size` bytes on the client, on its own thread, into `into`.
std::thread read_on_client(const pair& connection, std::string& into, std::size_t size) {
    return std::thread([&connection, &into, size] {
        std::array<char, 4096> buffer;
        while (into.size() < size) {
            const ssize_t n = ::recv(connection.client.get(), buffer.data(), buffer.size(), 0);
            if (n <= 0) {
                return;
            }
            into.append(buffer.data(), static_cast<std::size_t>(n));
        }
    });
}

// Fills the server's send buffer and the client's receive buffer, so that the next send waits
// for room.
void fill_server_side(const pair& connection) {
    const int small = 4096;
    const int fd = connection.server.native_handle();
    REQUIRE(::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small) == 0);
    const std::string block(65536, 'f');
    while (::send(fd, block.data(), block.size(), MSG_DONTWAIT | MSG_NOSIGNAL) > 0) {
    }
    REQUIRE(errno == EAGAIN);
}

} // namespace

TEST_CASE("sender: sends each lease in order and gives its buffer back", "[sender]") {
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 8, 64);
    pair connection(context);
    ringio::receiver incoming(connection.server, buffers);
    ringio::sender outgoing(connection.server);
    const std::string text = pattern(200'000);
    std::size_t most_pending = 0;
    auto echo = [&]() -> ringio::task<> {
        std::size_t echoed = 0;
        while (echoed < text.size()) {
            ringio::buffer_lease chunk = co_await incoming.next();
            echoed += chunk.size();
            outgoing.send(std::move(chunk));
            most_pending = std::max(most_pending, outgoing.pending());
        }
        co_await outgoing.flush();
    };
    // 8 buffers carry 200 KB only if every sent one comes back.
    std::thread writer([&] { connection.send(text); });
    std::string echoed;
    std::thread reader = read_on_client(connection, echoed, text.size());
    ringio::sync_wait(context, echo());
    writer.join();
    reader.join();
    CHECK(echoed == text);
    CHECK(outgoing.pending() == 0);
    // Several chunks arrive per loop turn, so sends queue behind the one in flight.
    CHECK(most_pending > 1);
}

TEST_CASE("sender: the rest of a partly taken buffer follows it", "[sender]") {
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 4, 1 << 20);
    pair connection(context);
    ringio::receiver incoming(connection.server, buffers);
    ringio::sender outgoing(connection.server);
    const std::string text = pattern(3 << 20);
    // A small send buffer on the server and a peer that is not reading yet: the socket takes a
    // megabyte buffer a piece at a time.
    const int small = 16384;
    REQUIRE(::setsockopt(connection.server.native_handle(), SOL_SOCKET, SO_SNDBUF, &small,
                         sizeof small) == 0);
    std::thread writer([&] { connection.send(text); });
    auto echo = [&]() -> ringio::task<> {
        std::size_t echoed = 0;
        while (echoed < text.size()) {
            ringio::buffer_lease chunk = co_await incoming.next();
            echoed += chunk.size();
            outgoing.send(std::move(chunk));
        }
        co_await outgoing.flush();
    };
    std::string echoed;
    std::thread reader = read_on_client(connection, echoed, text.size());
    ringio::sync_wait(context, echo());
    writer.join();
    reader.join();
    CHECK(echoed.size() == text.size());
    CHECK(echoed == text);
}

TEST_CASE("sender: a failed send is reported later, naming the peer", "[sender]") {
    REQUIRE(::signal(SIGPIPE, SIG_DFL) != SIG_ERR); // SIGPIPE would kill the test
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 8, 4);
    pair connection(context);
    ringio::receiver incoming(connection.server, buffers);
    ringio::sender outgoing(connection.server);
    connection.send("one two three");
    auto chunks = ringio::sync_wait(context, take(incoming, 2));
    // The peer resets the connection: the next send fails with EPIPE or ECONNRESET.
    const linger abort_on_close{1, 0};
    REQUIRE(::setsockopt(connection.client.get(), SOL_SOCKET, SO_LINGER, &abort_on_close,
                         sizeof abort_on_close) == 0);
    connection.client.reset();
    std::error_code error;
    auto send_until_failure = [&]() -> ringio::task<> {
        outgoing.send(std::move(chunks[0]), error);
        co_await outgoing.flush(error);
    };
    ringio::sync_wait(context, send_until_failure());
    REQUIRE(error);
    CHECK((error == std::errc::broken_pipe || error == std::errc::connection_reset));
    CHECK(outgoing.pending() == 0);
    // The error stays: a later send reports it and leaves its lease with the caller.
    const std::error_code first = error;
    std::error_code again;
    outgoing.send(std::move(chunks[1]), again);
    CHECK(again == first);
    CHECK(text_of(chunks[1].bytes()) == "two ");
    try {
        outgoing.send(std::move(chunks[1]));
        FAIL("a broken sender sent");
    } catch (const std::system_error& failure) {
        CHECK(failure.code() == first);
        CHECK_THAT(failure.what(), Catch::StartsWith("send to 127.0.0.1:"));
    }
    try {
        ringio::sync_wait(context, [&]() -> ringio::task<> {
            co_await outgoing.flush();
        }());
        FAIL("a broken sender flushed");
    } catch (const std::system_error& failure) {
        CHECK(failure.code() == first);
    }
}

TEST_CASE("sender: on a closed stream is EBADF, and the lease stays", "[sender]") {
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 8, 64);
    pair connection(context);
    ringio::receiver incoming(connection.server, buffers);
    ringio::sender outgoing(connection.server);
    const std::string peer = connection.server.remote_endpoint().to_string();
    connection.send("kept");
    auto chunks = ringio::sync_wait(context, take(incoming, 1));
    connection.server.close();
    context.run();
    try {
        outgoing.send(std::move(chunks[0]));
        FAIL("sent on a closed stream");
    } catch (const std::system_error& error) {
        CHECK(error.code() == std::errc::bad_file_descriptor);
        CHECK_THAT(error.what(), Catch::StartsWith("send to " + peer + ": "));
    }
    CHECK(text_of(chunks[0].bytes()) == "kept");
    CHECK(context.in_flight() == 0);
}

TEST_CASE("sender: closing the stream cancels a send that waits for room", "[sender]") {
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 4, 64);
    pair connection(context);
    ringio::receiver incoming(connection.server, buffers);
    ringio::sender outgoing(connection.server);
    connection.send("abcdefgh");
    auto chunks = ringio::sync_wait(context, take(incoming, 1));
    fill_server_side(connection);
    std::error_code error;
    auto flush = [&]() -> ringio::task<> {
        outgoing.send(std::move(chunks[0]), error);
        co_await outgoing.flush(error);
    };
    ringio::spawn(context, flush());
    context.poll();
    CHECK(outgoing.pending() == 1);
    connection.server.close();
    context.run();
    CHECK(error == std::errc::operation_canceled);
    CHECK(outgoing.pending() == 0);
}

TEST_CASE("sender: destroying it gives back the buffers it holds", "[sender]") {
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 4, 8);
    pair connection(context);
    {
        ringio::receiver incoming(connection.server, buffers);
        connection.send("0123456789abcdefghijklmnopqrstuv"); // four full buffers
        auto chunks = ringio::sync_wait(context, take(incoming, 4));
        fill_server_side(connection);
        ringio::sender outgoing(connection.server);
        for (ringio::buffer_lease& chunk : chunks) {
            outgoing.send(std::move(chunk));
        }
        CHECK(outgoing.pending() == 4); // one waits for room, three are queued
    } // the queued three go back now; the one in flight when the stream closes
    connection.server.close();
    context.run();
    // A new stream can hold all four buffers at once: none was lost.
    pair second(context);
    ringio::receiver incoming(second.server, buffers);
    second.send("ABCDEFGHIJKLMNOPQRSTUVWXYZ012345");
    const auto chunks = ringio::sync_wait(context, take(incoming, 4));
    std::string all;
    for (const ringio::buffer_lease& chunk : chunks) {
        all += text_of(chunk.bytes());
    }
    CHECK(all == "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345");
}

TEST_CASE("sender: flush with nothing pending completes at once", "[sender]") {
    ringio::io_context context;
    pair connection(context);
    ringio::sender outgoing(connection.server);
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        co_await outgoing.flush();
    }());
    CHECK(context.in_flight() == 0);
    CHECK(outgoing.pending() == 0);
}

TEST_CASE("sender: destroying the context with a send in flight is safe", "[sender]") {
    ringio::detail::unique_fd client; // kept open: closing it would reset the connection
    auto context = std::make_unique<ringio::io_context>();
    ringio::buffer_ring buffers(*context, 4, 64);
    bool resumed = false;
    auto stuck = [](ringio::tcp_stream stream, ringio::buffer_lease chunk,
                    bool& after) -> ringio::task<> {
        ringio::sender outgoing(stream);
        outgoing.send(std::move(chunk));
        co_await outgoing.flush();
        after = true;
    };
    {
        pair connection(*context);
        std::vector<ringio::buffer_lease> chunks;
        {
            ringio::receiver incoming(connection.server, buffers);
            connection.send("stuck");
            chunks = ringio::sync_wait(*context, take(incoming, 1));
        }
        fill_server_side(connection);
        ringio::spawn(*context, stuck(std::move(connection.server), std::move(chunks[0]), resumed));
        context->poll();
        client = std::move(connection.client);
    }
    // The context cancels the send, drains, then destroys the waiting frame and its sender.
    context.reset();
    CHECK_FALSE(resumed);
}

TEST_CASE("sender: steady state allocates nothing", "[sender]") {
    if (!RINGIO_TEST_COUNTS_ALLOCATIONS) {
        WARN("SKIPPED: a sanitizer replaces operator new; the other builds count");
        return;
    }
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 8, 64);
    pair connection(context);
    ringio::receiver incoming(connection.server, buffers);
    ringio::sender outgoing(connection.server);
    long counted = -1;
    int replies = 0;
    std::array<char, 4> reply;
    auto loop = [&]() -> ringio::task<> {
        long before = 0;
        for (int i = 0; i <= 1000; ++i) {
            if (i == 1) {
                before = ringio::testing::allocations.load(); // after a warm-up round
            }
            (void)!::send(connection.client.get(), "ping", 4, MSG_NOSIGNAL);
            outgoing.send(co_await incoming.next());
            co_await outgoing.flush();
            replies +=
                ::recv(connection.client.get(), reply.data(), reply.size(), MSG_WAITALL) == 4;
        }
        counted = ringio::testing::allocations.load() - before;
    };
    ringio::sync_wait(context, loop());
    CHECK(counted == 0);
    CHECK(replies == 1001);
    CHECK(std::string_view(reply.data(), reply.size()) == "ping");
}
