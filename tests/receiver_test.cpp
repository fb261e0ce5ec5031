#include <ringio/receiver.hpp>

#include <ringio/acceptor.hpp>
#include <ringio/buffer_ring.hpp>
#include <ringio/io_context.hpp>
#include <ringio/task.hpp>
#include <ringio/tcp_listener.hpp>
#include <ringio/tcp_stream.hpp>
#include <ringio/timer.hpp>

#include "accepted_pair.hpp"
#include "allocation_counter.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <system_error>
#include <vector>

using namespace std::chrono_literals;
using ringio::endpoint;
using ringio::testing::bytes_of;
using ringio::testing::take;
using ringio::testing::text_of;
using pair = ringio::testing::accepted_pair;

namespace {

// Takes chunks until the end of the stream and returns everything received.
ringio::task<std::string> drain(ringio::receiver& incoming) {
    std::string all;
    for (;;) {
        ringio::buffer_lease chunk = co_await incoming.next();
        if (chunk.empty()) {
            co_return all;
        }
        all += text_of(chunk.bytes());
    }
}

// A receiver whose stream holds far more than it keeps untaken: 1,600 bytes for buffers of 8,
// with room in the ring for all of it.
struct flooded {
    ringio::io_context context;
    ringio::buffer_ring buffers{context, 256, 8};
    pair connection{context};
    ringio::receiver incoming{connection.server, buffers};
    const std::string expected = ringio::testing::pattern(1600);

    flooded() { connection.send(expected); }

    // Takes the first chunk only: the rest of the recv's first batch queues up behind it, more
    // than the receiver holds, so a pause is queued but not yet submitted.
    std::string first() {
        return ringio::sync_wait(context, [](ringio::receiver& r) -> ringio::task<std::string> {
            co_return text_of((co_await r.next()).bytes());
        }(incoming));
    }
};

} // namespace

TEST_CASE("buffer_ring: refuses a count that is not a power of two", "[receiver]") {
    ringio::io_context context;
    try {
        ringio::buffer_ring ring(context, 3, 64);
        FAIL("accepted 3 buffers");
    } catch (const std::system_error& error) {
        CHECK(error.code() == std::errc::invalid_argument);
        CHECK_THAT(error.what(), Catch::Contains("power of two"));
    }
    CHECK_THROWS_AS(ringio::buffer_ring(context, 8, 0), std::system_error);
}

TEST_CASE("receiver: delivers chunks in order, then an empty lease at the end", "[receiver]") {
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 8, 64);
    pair connection(context);
    ringio::receiver incoming(connection.server, buffers);
    connection.send("hello, ");
    connection.send("world");
    ::shutdown(connection.client.get(), SHUT_WR);
    CHECK(ringio::sync_wait(context, drain(incoming)) == "hello, world");
    // After the end, every next() says so again without submitting anything.
    auto again = [&]() -> ringio::task<bool> {
        co_return (co_await incoming.next()).empty();
    };
    CHECK(ringio::sync_wait(context, again()));
}

TEST_CASE("receiver: a chunk larger than a buffer arrives in several leases", "[receiver]") {
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 8, 16);
    pair connection(context);
    ringio::receiver incoming(connection.server, buffers);
    const std::string text(100, 'x');
    connection.send(text);
    ::shutdown(connection.client.get(), SHUT_WR);
    CHECK(ringio::sync_wait(context, drain(incoming)) == text);
}

TEST_CASE("receiver: a dry buffer ring loses no data", "[receiver]") {
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 2, 8); // two buffers of 8 bytes
    pair connection(context);
    ringio::receiver incoming(connection.server, buffers);
    std::string expected;
    for (int i = 0; i < 40; ++i) {
        expected += "chunk" + std::to_string(i) + ";";
    }
    connection.send(expected);
    ::shutdown(connection.client.get(), SHUT_WR);
    auto hoard = [&]() -> ringio::task<std::string> {
        std::string all;
        std::vector<ringio::buffer_lease> held;
        for (;;) {
            // Hold both buffers for a while: the kernel runs out and stops the recv.
            ringio::buffer_lease chunk = co_await incoming.next();
            if (chunk.empty()) {
                co_return all;
            }
            all += text_of(chunk.bytes());
            held.push_back(std::move(chunk));
            if (held.size() == 2) {
                co_await ringio::sleep_for(context, 1ms);
                held.clear();
            }
        }
    };
    CHECK(ringio::sync_wait(context, hoard()) == expected);
}

TEST_CASE("receiver: many connections share one small ring", "[receiver]") {
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 4, 32);
    ringio::tcp_listener listener(context, endpoint::loopback_v4(0));
    constexpr int connections = 50;
    int correct = 0;
    auto serve = [&]() -> ringio::task<> {
        ringio::acceptor incoming(listener);
        for (int i = 0; i < connections; ++i) {
            auto [stream, peer] = co_await incoming.next();
            ringio::spawn(context,
                          [](ringio::tcp_stream s, ringio::buffer_ring& b) -> ringio::task<> {
                              ringio::receiver chunks(s, b);
                              for (;;) {
                                  const ringio::buffer_lease chunk = co_await chunks.next();
                                  if (chunk.empty()) {
                                      co_return;
                                  }
                                  co_await s.write_all(chunk.bytes());
                              }
                          }(std::move(stream), buffers));
        }
    };
    auto client = [&](int id) -> ringio::task<> {
        ringio::tcp_stream stream(context);
        co_await stream.connect(listener.address());
        std::string message;
        for (int i = 0; i < 20; ++i) {
            message += std::to_string(id) + ":" + std::to_string(i) + ",";
        }
        co_await stream.write_all(bytes_of(message));
        std::vector<std::byte> reply(message.size());
        co_await stream.read_exact(reply);
        correct += text_of(reply) == message ? 1 : 0;
    };
    ringio::spawn(context, serve());
    for (int i = 0; i < connections; ++i) {
        ringio::spawn(context, client(i));
    }
    context.run();
    CHECK(correct == connections);
}

TEST_CASE_METHOD(flooded,
                 "receiver: stops receiving while its chunks wait untaken, and loses nothing",
                 "[receiver]") {
    // One chunk taken, then none for a while: the recv pauses, the rest waits in the socket,
    // though the ring has room for all of it.
    std::string all = first();
    for (int i = 0; i < 20; ++i) {
        context.poll();
        ::usleep(1000);
    }
    int waiting = 0;
    REQUIRE(::ioctl(connection.server.native_handle(), FIONREAD, &waiting) == 0);
    CHECK(waiting > 0);
    ::shutdown(connection.client.get(), SHUT_WR);
    all += ringio::sync_wait(context, drain(incoming));
    CHECK(all == expected);
}

TEST_CASE_METHOD(flooded, "receiver: a consumer that waits while the recv pauses wakes it again",
                 "[receiver]") {
    ::shutdown(connection.client.get(), SHUT_WR);
    std::string all = first();
    // The consumer takes what is queued at once and waits again before the pause's own
    // completion arrives: that completion must arm the recv for it.
    bool ended = false;
    auto consume = [&]() -> ringio::task<> {
        all += co_await drain(incoming);
        ended = true;
    };
    ringio::spawn(context, consume());
    context.run();
    CHECK(ended);
    CHECK(all == expected);
}

TEST_CASE_METHOD(flooded,
                 "receiver: closing the stream while the recv pauses still ends it with ECANCELED",
                 "[receiver]") {
    std::string all = first();
    connection.server.close(); // submitted with the pause, in the same turn
    std::error_code error;
    auto consume = [&]() -> ringio::task<> {
        for (;;) {
            const ringio::buffer_lease chunk = co_await incoming.next(error);
            if (chunk.empty()) {
                co_return;
            }
            all += text_of(chunk.bytes());
        }
    };
    ringio::spawn(context, consume());
    context.run();
    // What was received before the close arrives in order, then the close's ECANCELED.
    CHECK(error == std::errc::operation_canceled);
    CHECK(expected.starts_with(all));
    CHECK(all.size() > 8);
}

TEST_CASE("receiver: starved when its stream closes, it never receives on the reused number",
          "[receiver]") {
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 2, 8);
    pair connection(context);
    ringio::receiver incoming(connection.server, buffers);
    connection.send("0123456789abcdefghijklmnop"); // more than both buffers hold
    auto held = ringio::sync_wait(context, take(incoming, 2));
    // The ring is dry: the recv has stopped and a consumer waits for the rest.
    std::error_code error;
    bool woken = false;
    auto waiter = [&]() -> ringio::task<> {
        const ringio::buffer_lease chunk = co_await incoming.next(error);
        woken = true;
    };
    ringio::spawn(context, waiter());
    context.poll();
    const int old_fd = connection.server.native_handle();
    connection.server.close();
    context.poll();
    // The number is free now: a pipe takes it, with data a recv would find.
    ringio::testing::owned_pipe pipe;
    REQUIRE(::write(pipe.write_end.get(), "pipe", 4) == 4);
    CHECK((pipe.read_end.get() == old_fd || pipe.write_end.get() == old_fd));
    held.clear(); // buffers come back: the starved receiver is fed
    context.run();
    CHECK(woken);
    CHECK(error == std::errc::bad_file_descriptor);
    char left[4];
    CHECK(::read(pipe.read_end.get(), left, sizeof left) == 4);
}

TEST_CASE("receiver: a reset is an error naming the peer", "[receiver]") {
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 8, 64);
    pair connection(context);
    ringio::receiver incoming(connection.server, buffers);
    const linger abort_on_close{1, 0};
    REQUIRE(::setsockopt(connection.client.get(), SOL_SOCKET, SO_LINGER, &abort_on_close,
                         sizeof abort_on_close) == 0);
    connection.client.reset();
    try {
        ringio::sync_wait(context, drain(incoming));
        FAIL("a reset stream ended normally");
    } catch (const std::system_error& error) {
        CHECK(error.code() == std::errc::connection_reset);
        CHECK_THAT(error.what(), Catch::StartsWith("recv from 127.0.0.1:"));
    }
}

TEST_CASE("receiver: closing the stream cancels the armed recv", "[receiver]") {
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 8, 64);
    pair connection(context);
    ringio::receiver incoming(connection.server, buffers);
    std::error_code error;
    auto waiter = [&]() -> ringio::task<> {
        co_await incoming.next(error);
    };
    ringio::spawn(context, waiter());
    context.poll();
    connection.server.close();
    context.run();
    CHECK(error == std::errc::operation_canceled);
    // The cancellation is reported once; after it, as for the acceptor and the datagram
    // receiver, the closed stream is EBADF at once.
    ringio::sync_wait(context, waiter());
    CHECK(error == std::errc::bad_file_descriptor);
    CHECK(context.in_flight() == 0);
}

TEST_CASE("receiver: destroying it while armed is safe and frees its buffers", "[receiver]") {
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 2, 8);
    pair connection(context);
    {
        ringio::receiver first(connection.server, buffers);
        connection.send("0123456789abcdef"); // fills both buffers
        auto one = [&]() -> ringio::task<std::string> {
            co_return text_of((co_await first.next()).bytes());
        };
        CHECK(ringio::sync_wait(context, one()) == "01234567");
    } // armed (or holding a chunk) here: orphaned, cancelled, buffers returned
    context.poll();
    ringio::receiver second(connection.server, buffers);
    connection.send("tail");
    ::shutdown(connection.client.get(), SHUT_WR);
    const std::string rest = ringio::sync_wait(context, drain(second));
    // The chunk the first receiver had queued went with it; nothing after it is lost.
    CHECK((rest == "tail" || rest == "89abcdeftail"));
}

TEST_CASE("receiver: steady state allocates nothing", "[receiver]") {
    if (!RINGIO_TEST_COUNTS_ALLOCATIONS) {
        WARN("SKIPPED: a sanitizer replaces operator new; the other builds count");
        return;
    }
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 8, 64);
    pair connection(context);
    ringio::receiver incoming(connection.server, buffers);
    long counted = -1;
    auto loop = [&]() -> ringio::task<> {
        connection.send("warm");
        co_await incoming.next();
        const long before = ringio::testing::allocations.load();
        for (int i = 0; i < 1000; ++i) {
            connection.send("ping");
            const ringio::buffer_lease chunk = co_await incoming.next();
            co_await connection.server.write_all(chunk.bytes());
        }
        counted = ringio::testing::allocations.load() - before;
    };
    ringio::sync_wait(context, loop());
    CHECK(counted == 0);
}

TEST_CASE("receiver: on a closed stream is EBADF naming the peer", "[receiver]") {
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 4, 64);
    pair connection(context);
    const std::string peer = connection.server.remote_endpoint().to_string();
    connection.server.close();
    context.run();
    ringio::receiver incoming(connection.server, buffers);
    try {
        ringio::sync_wait(context, drain(incoming));
        FAIL("a receiver on a closed stream received");
    } catch (const std::system_error& error) {
        CHECK(error.code() == std::errc::bad_file_descriptor);
        CHECK_THAT(error.what(), Catch::StartsWith("recv from " + peer + ": "));
    }
}

TEST_CASE("receiver: after the stream is closed, next() fails with EBADF at once", "[receiver]") {
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 8, 64);
    pair connection(context);
    ringio::receiver incoming(connection.server, buffers);
    connection.server.close();
    context.run();
    std::error_code error;
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        co_await incoming.next(error);
    }());
    CHECK(error == std::errc::bad_file_descriptor);
    CHECK(context.in_flight() == 0);
}
