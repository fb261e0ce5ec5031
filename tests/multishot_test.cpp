#include <ringio/multishot.hpp>

#include <ringio/buffer_ring.hpp>
#include <ringio/io_context.hpp>
#include <ringio/task.hpp>
#include <ringio/tcp_listener.hpp>
#include <ringio/tcp_stream.hpp>
#include <ringio/timer.hpp>
#include <ringio/udp_socket.hpp>

#include "accepted_pair.hpp"
#include "datagram_peer.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <sys/socket.h>

#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

using namespace std::chrono_literals;
using ringio::endpoint;
using ringio::testing::blocking_connect;
using ringio::testing::bytes_of;
using ringio::testing::datagram_peer;
using ringio::testing::open_fd_count;
using ringio::testing::take;
using pair = ringio::testing::accepted_pair;

namespace {

// Waits on `incoming` once, forever if nothing comes.
template <class T>
ringio::task<> wait_once(ringio::multishot<T>& incoming) {
    std::error_code error;
    co_await incoming.next().into(error);
}

} // namespace

TEST_CASE("multishot: move-only", "[multishot]") {
    using stream = ringio::multishot<ringio::tcp_stream>;
    STATIC_REQUIRE_FALSE(std::is_copy_constructible_v<stream>);
    STATIC_REQUIRE_FALSE(std::is_copy_assignable_v<stream>);
    STATIC_REQUIRE(std::is_nothrow_move_constructible_v<stream>);
    STATIC_REQUIRE(std::is_nothrow_move_assignable_v<stream>);
}

TEST_CASE("multishot: several coroutines share accept_all, and closing wakes them all",
          "[multishot]") {
    ringio::io_context context;
    ringio::tcp_listener listener(context, endpoint::loopback_v4(0));
    auto incoming = listener.accept_all();
    std::vector<ringio::tcp_stream> taken;
    std::vector<std::error_code> endings;
    auto worker = [&]() -> ringio::task<> {
        for (;;) {
            std::error_code error;
            ringio::tcp_stream stream = co_await incoming.next().into(error);
            if (error) {
                endings.push_back(error);
                co_return;
            }
            taken.push_back(std::move(stream));
        }
    };
    for (int i = 0; i < 3; ++i) {
        ringio::spawn(context, worker());
    }
    context.poll(); // all three wait on the one multishot accept
    CHECK(context.in_flight() == 1);
    std::vector<ringio::detail::unique_fd> clients;
    for (int i = 0; i < 5; ++i) {
        clients.push_back(blocking_connect(listener.local_endpoint()));
    }
    while (taken.size() < clients.size()) {
        context.run_once();
    }
    CHECK(context.in_flight() == 1); // one request, however many completions it posted
    for (const ringio::tcp_stream& stream : taken) {
        CHECK(stream.is_open());
    }
    listener.close();
    context.run();
    REQUIRE(endings.size() == 3);
    for (const std::error_code& error : endings) {
        CHECK(error == std::errc::operation_canceled);
    }
}

TEST_CASE("multishot: several coroutines share receive_from, each datagram once", "[multishot]") {
    ringio::io_context context;
    ringio::testing::receiving_socket receiver(context, 16, 256);
    auto& [buffers, socket, incoming, peer] = receiver;
    constexpr int total = 200;
    constexpr int workers = 4;
    std::vector<std::string> seen;
    std::set<int> busy; // the workers that answered at least once
    int answered = 0;
    // Each worker answers with its number: while one waits for its sendto, the others serve.
    auto worker = [&](int number) -> ringio::task<> {
        while (answered < total) {
            std::error_code error;
            ringio::datagram got = co_await incoming.next().into(error);
            if (error) {
                co_return; // the socket closed under the workers still waiting
            }
            seen.emplace_back(got.payload.text());
            const std::string reply = std::to_string(number);
            co_await socket.sendto(reply, got.sender);
            busy.insert(number);
            ++answered;
        }
    };
    for (int i = 0; i < workers; ++i) {
        ringio::spawn(context, worker(i));
    }
    context.poll(); // all four wait now
    for (int i = 0; i < total; ++i) {
        peer.send("d" + std::to_string(i));
    }
    while (answered < total) {
        context.run_once();
    }
    for (int i = 0; i < total; ++i) {
        CHECK(!peer.receive().empty());
    }
    REQUIRE(seen.size() >= static_cast<std::size_t>(total));
    std::set<std::string> distinct(seen.begin(), seen.begin() + total);
    CHECK(distinct.size() == static_cast<std::size_t>(total)); // none twice, none lost
    CHECK(busy.size() > 1);
    socket.close(); // the workers still waiting hear ECANCELED and end
    context.run();
}

TEST_CASE("multishot: closing the socket wakes every waiting coroutine, then EBADF",
          "[multishot]") {
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 4, 256);
    ringio::udp_socket socket(context, endpoint::loopback_v4(0));
    auto incoming = socket.receive_from(buffers);
    std::vector<std::error_code> errors;
    auto waiter = [&]() -> ringio::task<> {
        std::error_code error;
        const ringio::datagram got = co_await incoming.next().into(error);
        CHECK(got.payload.empty());
        errors.push_back(error);
    };
    for (int i = 0; i < 3; ++i) {
        ringio::spawn(context, waiter());
    }
    context.poll();
    CHECK(errors.empty());
    socket.close();
    context.run();
    REQUIRE(errors.size() == 3);
    for (const std::error_code& error : errors) {
        CHECK(error == std::errc::operation_canceled);
    }
    // Afterwards the number may belong to another file: EBADF at once, nothing armed.
    std::error_code after;
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        co_await incoming.next().into(after);
    }());
    CHECK(after == std::errc::bad_file_descriptor);
    CHECK(context.in_flight() == 0);
}

TEST_CASE("multishot: next().into(error) stores the error instead of throwing, and clears it "
          "on success",
          "[multishot]") {
    ringio::io_context context;
    ringio::tcp_listener listener(context, endpoint::loopback_v4(0));
    auto incoming = listener.accept_all();
    const auto client = blocking_connect(listener.local_endpoint());
    std::error_code error = std::make_error_code(std::errc::io_error);
    bool opened = false;
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        opened = (co_await incoming.next().into(error)).is_open();
    }());
    CHECK(opened);
    CHECK_FALSE(error);
    listener.close();
    context.run(); // the armed accept's cancellation arrives, and waits in the queue
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        opened = (co_await incoming.next().into(error)).is_open();
    }());
    CHECK_FALSE(opened);
    CHECK(error == std::errc::operation_canceled);
    // Then the closed listener is EBADF; thrown, the error names its number.
    try {
        ringio::sync_wait(context, [&]() -> ringio::task<> {
            co_await incoming.next();
        }());
        FAIL("next() on a closed listener succeeded");
    } catch (const std::system_error& failure) {
        CHECK(failure.code() == std::errc::bad_file_descriptor);
        CHECK_THAT(failure.what(), Catch::Matches("accept fd [0-9]+: .*"));
    }
}

TEST_CASE("multishot: a next() held by value keeps its adaptors until awaited", "[multishot]") {
    ringio::io_context context;
    ringio::cancellation stop;
    ringio::tcp_listener listener(context, endpoint::loopback_v4(0));
    auto incoming = listener.accept_all();
    std::error_code error = std::make_error_code(std::errc::io_error);
    bool opened = true;
    stop.cancel();
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        auto held = incoming.next().into(error);
        auto both = std::move(held).cancel_on(stop);
        opened = (co_await both).is_open();
    }());
    CHECK_FALSE(opened);
    CHECK(error == std::errc::operation_canceled); // stored, not thrown: both adaptors held
}

TEST_CASE("multishot: a burst that queues past the room inline comes out in order", "[multishot]") {
    ringio::io_context context;
    ringio::testing::receiving_socket receiver(context, 16, 256);
    auto& [buffers, socket, incoming, peer] = receiver;
    peer.send("0");
    std::vector<std::string> got;
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        got.emplace_back((co_await incoming.next()).payload.text());
        for (int i = 1; i < 10; ++i) {
            peer.send(std::to_string(i));
        }
        co_await ringio::sleep_for(context, 20ms); // they arrive meanwhile, and queue
        for (int i = 1; i < 10; ++i) {
            got.emplace_back((co_await incoming.next()).payload.text());
        }
    }());
    CHECK(got == std::vector<std::string>{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"});
}

TEST_CASE("multishot: a moved one keeps its request and what it queued", "[multishot]") {
    ringio::io_context context;
    ringio::tcp_listener listener(context, endpoint::loopback_v4(0));
    auto incoming = listener.accept_all();
    std::vector<ringio::detail::unique_fd> clients;
    clients.push_back(blocking_connect(listener.local_endpoint()));
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        co_await incoming.next();
    }());
    // Still armed: these wait in its queue, or in the listener's.
    clients.push_back(blocking_connect(listener.local_endpoint()));
    clients.push_back(blocking_connect(listener.local_endpoint()));
    context.poll();
    ringio::multishot<ringio::tcp_stream> moved = std::move(incoming);
    const auto streams =
        ringio::sync_wait(context, [&]() -> ringio::task<std::vector<ringio::tcp_stream>> {
            std::vector<ringio::tcp_stream> all;
            all.push_back(co_await moved.next());
            all.push_back(co_await moved.next());
            co_return all;
        }());
    CHECK(streams[0].is_open());
    CHECK(streams[1].is_open());
    CHECK(context.in_flight() == 1); // the one multishot accept, moved along
}

TEST_CASE("multishot: assigning over one cancels its request and closes what it queued",
          "[multishot]") {
    const int before = open_fd_count();
    {
        ringio::io_context context;
        ringio::tcp_listener first(context, endpoint::loopback_v4(0));
        ringio::tcp_listener second(context, endpoint::loopback_v4(0));
        auto incoming = first.accept_all();
        std::vector<ringio::detail::unique_fd> clients;
        clients.push_back(blocking_connect(first.local_endpoint()));
        ringio::sync_wait(context, [&]() -> ringio::task<> {
            co_await incoming.next();
        }());
        clients.push_back(blocking_connect(first.local_endpoint())); // queued in `incoming`
        context.poll();
        incoming = second.accept_all();
        context.run(); // the first accept's cancellation completes
        CHECK(context.in_flight() == 0);
        // The new one serves the second listener.
        clients.push_back(blocking_connect(second.local_endpoint()));
        const bool opened = ringio::sync_wait(context, [&]() -> ringio::task<bool> {
            co_return (co_await incoming.next()).is_open();
        }());
        CHECK(opened);
    }
    CHECK(open_fd_count() == before);
}

TEST_CASE("multishot: destroying accept_all closes the connections it had queued", "[multishot]") {
    const int before = open_fd_count();
    {
        ringio::io_context context;
        ringio::tcp_listener listener(context, endpoint::loopback_v4(0));
        std::vector<ringio::detail::unique_fd> clients;
        {
            auto incoming = listener.accept_all();
            auto first = [&]() -> ringio::task<> {
                co_await incoming.next();
            };
            clients.push_back(blocking_connect(listener.local_endpoint()));
            ringio::sync_wait(context, first());
            for (int i = 0; i < 5; ++i) {
                clients.push_back(blocking_connect(listener.local_endpoint()));
            }
            context.poll(); // the armed accept takes them into its queue
            context.poll();
        }
        context.poll();
    }
    CHECK(open_fd_count() == before);
}

TEST_CASE("multishot: destroying a receive while its recv is armed loses no buffer",
          "[multishot]") {
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 2, 8);
    pair connection(context);
    {
        auto first = connection.server.receive(buffers);
        // One waiter, with nothing to receive yet: the recv is armed when the receive goes.
        ringio::spawn(context, wait_once(first));
        context.poll();
        CHECK(context.in_flight() == 1);
    } // cancelled; the waiter stays asleep (its stream of completions is gone)
    context.run();
    CHECK(context.in_flight() == 0);
    // Both buffers are still there: a new receive holds two chunks at once.
    auto second = connection.server.receive(buffers, 2);
    connection.send("0123456789abcdef");
    const auto chunks = ringio::sync_wait(context, take(second, 2));
    CHECK(chunks[0].text() == "01234567");
    CHECK(chunks[1].text() == "89abcdef");
}

TEST_CASE("multishot: destroying a receive after a chunk leaves the rest in the socket",
          "[multishot]") {
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 2, 8);
    pair connection(context);
    {
        auto first = connection.server.receive(buffers);
        connection.send("0123456789abcdef"); // fills both buffers
        const auto chunks = ringio::sync_wait(context, take(first, 1));
        CHECK(chunks[0].text() == "01234567");
    }
    context.poll();
    auto second = connection.server.receive(buffers);
    connection.send("tail");
    ::shutdown(connection.client.get(), SHUT_WR);
    // A recv is armed only while a consumer waits: nothing after the first chunk was taken.
    CHECK(ringio::sync_wait(context, ringio::testing::drain(second)) == "89abcdeftail");
}

TEST_CASE("multishot: destroying receive_from while armed gives its buffers back", "[multishot]") {
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 2, 128);
    ringio::udp_socket socket(context, endpoint::loopback_v4(0));
    const datagram_peer peer(socket.local_endpoint());
    {
        auto first = socket.receive_from(buffers);
        peer.send("a");
        peer.send("b"); // both buffers filled, one still queued when the stream goes
        auto one = [&]() -> ringio::task<std::string> {
            co_return std::string((co_await first.next()).payload.text());
        };
        CHECK(ringio::sync_wait(context, one()) == "a");
    }
    context.poll();
    // Both buffers are back: a new stream gets two datagrams while holding both leases.
    auto second = socket.receive_from(buffers);
    peer.send("c");
    peer.send("d");
    auto two = [&]() -> ringio::task<std::string> {
        ringio::datagram x = co_await second.next();
        ringio::datagram y = co_await second.next();
        co_return std::string(x.payload.text()) + std::string(y.payload.text());
    };
    const std::string got = ringio::sync_wait(context, two());
    // "b" went with the first stream if it was already queued there; none after it is lost.
    CHECK((got == "cd" || got == "bc"));
}

TEST_CASE("multishot: outlives the socket it was made from after that socket was closed",
          "[multishot]") {
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 4, 64);
    auto listener = std::make_unique<ringio::tcp_listener>(context, endpoint::loopback_v4(0));
    auto connection = std::make_unique<pair>(context);
    listener->close();
    connection->server.close();
    context.run();
    // Made from closed sockets, then the sockets go first.
    auto connections = listener->accept_all();
    auto chunks = connection->server.receive(buffers);
    listener.reset();
    connection.reset();
    std::error_code accept_error;
    std::error_code receive_error;
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        co_await connections.next().into(accept_error);
        co_await chunks.next().into(receive_error);
    }());
    CHECK(accept_error == std::errc::bad_file_descriptor);
    CHECK(receive_error == std::errc::bad_file_descriptor);
}
