#include <ringio/buffer_ring.hpp>

#include <ringio/io_context.hpp>
#include <ringio/multishot.hpp>
#include <ringio/task.hpp>
#include <ringio/tcp_stream.hpp>
#include <ringio/timer.hpp>

#include "accepted_pair.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <system_error>
#include <type_traits>
#include <vector>

using ringio::testing::take;
using pair = ringio::testing::accepted_pair;

namespace {

using stream_of_leases = ringio::multishot<ringio::buffer_lease>;

// Turns the loop a few times without waiting, letting the kernel work in between.
void settle(ringio::io_context& context) {
    for (int i = 0; i < 20; ++i) {
        context.poll();
        ::usleep(1000);
    }
}

// The next chunk of `incoming`, waited for.
ringio::buffer_lease next_lease(ringio::io_context& context, stream_of_leases& incoming) {
    return ringio::sync_wait(context,
                             [](stream_of_leases& r) -> ringio::task<ringio::buffer_lease> {
                                 co_return co_await r.next();
                             }(incoming));
}

// The text of the one chunk `incoming` delivers next.
std::string one_chunk(ringio::io_context& context, stream_of_leases& incoming) {
    return std::string(next_lease(context, incoming).text());
}

// A consumer that notes its name in `order` each time it gets a chunk, and keeps the chunk in
// `held` until the stream ends or fails.
ringio::task<> record(stream_of_leases& incoming, std::string name, std::vector<std::string>& order,
                      std::vector<ringio::buffer_lease>& held) {
    for (;;) {
        std::error_code error;
        ringio::buffer_lease chunk = co_await incoming.next().into(error);
        if (chunk.empty()) {
            co_return;
        }
        order.push_back(name);
        held.push_back(std::move(chunk));
    }
}

// `count` connections receiving into `ring`: each round, every client sends one message and
// every stream's chunk is taken and held until all have come.
struct many_connections {
    many_connections(ringio::io_context& on, ringio::buffer_ring& ring, std::size_t count)
        : context(on) {
        for (std::size_t i = 0; i < count; ++i) {
            pairs.push_back(std::make_unique<pair>(on));
            streams.push_back(pairs.back()->server.receive(ring));
        }
    }
    ~many_connections() {
        for (auto& p : pairs) {
            p->server.close();
        }
        context.run();
    }
    many_connections(const many_connections&) = delete;
    many_connections& operator=(const many_connections&) = delete;

    static std::string message(std::size_t round, std::size_t i) {
        return "r" + std::to_string(round) + " c" + std::to_string(i);
    }

    // One round: the chunks held at once, in the order of the connections.
    std::vector<ringio::buffer_lease> round(std::size_t number) {
        for (std::size_t i = 0; i < pairs.size(); ++i) {
            pairs[i]->send(message(number, i));
        }
        std::vector<ringio::buffer_lease> held(pairs.size());
        for (std::size_t i = 0; i < pairs.size(); ++i) {
            ringio::spawn(context,
                          [](stream_of_leases& r, ringio::buffer_lease& into) -> ringio::task<> {
                              into = co_await r.next();
                          }(streams[i], held[i]));
        }
        context.run();
        return held;
    }

    ringio::io_context& context;
    std::vector<std::unique_ptr<pair>> pairs;
    std::vector<stream_of_leases> streams;
};

} // namespace

TEST_CASE("buffer_ring: refuses a count that is not a power of two", "[buffer_ring]") {
    ringio::io_context context;
    try {
        ringio::buffer_ring ring(context, 3, 64);
        FAIL("accepted 3 buffers");
    } catch (const std::system_error& error) {
        CHECK(error.code() == std::errc::invalid_argument);
        CHECK_THAT(error.what(), Catch::Contains("power of two"));
    }
    CHECK_THROWS_AS(ringio::buffer_ring(context, 8, 0), std::system_error);
    CHECK_THROWS_AS(ringio::buffer_ring(context, 0, 64), std::system_error);
    CHECK_THROWS_AS(ringio::buffer_ring(context, 65536, 64), std::system_error);
}

TEST_CASE("buffer_ring: says how many buffers it has and how large they are", "[buffer_ring]") {
    ringio::io_context context;
    const ringio::buffer_ring ring(context, 16, 2048);
    CHECK(ring.count() == 16);
    CHECK(ring.buffer_size() == 2048);
    const ringio::buffer_ring copy = ring; // a handle: both name the same buffers
    CHECK(copy.count() == 16);
}

TEST_CASE("buffer_ring: several rings on one context are independent", "[buffer_ring]") {
    ringio::io_context context;
    ringio::buffer_ring small(context, 1, 8);
    ringio::buffer_ring other(context, 1, 8);
    pair first(context);
    pair second(context);
    auto from_small = first.server.receive(small);
    auto from_other = second.server.receive(other);
    first.send("first");
    second.send("second");
    // The one buffer of the first ring stays lent out; the second ring is not short of it.
    const auto kept = ringio::sync_wait(context, take(from_small, 1));
    CHECK(kept[0].text() == "first");
    CHECK(one_chunk(context, from_other) == "second");
}

TEST_CASE("buffer_lease: holds the received bytes until released", "[buffer_ring]") {
    ringio::io_context context;
    ringio::buffer_ring ring(context, 1, 16); // one buffer: it is back only once released
    pair connection(context);
    auto incoming = connection.server.receive(ring);
    connection.send("first");
    auto chunks = ringio::sync_wait(context, take(incoming, 1));
    ringio::buffer_lease& lease = chunks[0];
    CHECK_FALSE(lease.empty());
    CHECK(lease.size() == 5);
    CHECK(lease.text() == "first");
    CHECK(ringio::testing::text_of(lease.bytes()) == "first");
    lease.release();
    CHECK(lease.empty());
    CHECK(lease.size() == 0);
    CHECK(lease.bytes().empty());
    CHECK(lease.text().empty());
    lease.release(); // again: nothing to give back
    connection.send("second");
    CHECK(one_chunk(context, incoming) == "second");
}

TEST_CASE("buffer_lease: a default lease is empty", "[buffer_ring]") {
    const ringio::buffer_lease lease;
    CHECK(lease.empty());
    CHECK(lease.size() == 0);
    CHECK(lease.text().empty());
    STATIC_REQUIRE_FALSE(std::is_copy_constructible_v<ringio::buffer_lease>);
    STATIC_REQUIRE(std::is_nothrow_move_constructible_v<ringio::buffer_lease>);
}

TEST_CASE("buffer_lease: a move hands the buffer over; assigning over one gives its own back",
          "[buffer_ring]") {
    ringio::io_context context;
    ringio::buffer_ring ring(context, 2, 16);
    pair connection(context);
    auto incoming = connection.server.receive(ring, 2);
    connection.send("0123456789abcdef0123");
    auto chunks = ringio::sync_wait(context, take(incoming, 2));
    ringio::buffer_lease moved = std::move(chunks[0]);
    CHECK(chunks[0].empty()); // NOLINT(bugprone-use-after-move): a moved-from lease is empty
    CHECK(moved.text() == "0123456789abcdef");
    moved = std::move(chunks[1]); // its first buffer goes back
    CHECK(moved.text() == "0123");
    connection.send("next");
    CHECK(one_chunk(context, incoming) == "next");
}

TEST_CASE("buffer_lease: outlives the stream and the multishot it came from", "[buffer_ring]") {
    ringio::io_context context;
    ringio::buffer_ring ring(context, 1, 16);
    ringio::buffer_lease kept;
    {
        auto connection = std::make_unique<pair>(context);
        auto incoming = connection->server.receive(ring);
        connection->send("survivor");
        kept = std::move(ringio::sync_wait(context, take(incoming, 1))[0]);
    } // the multishot, then the stream, go
    context.run();
    CHECK(kept.text() == "survivor");
    // Its buffer goes back when it does: the ring's only buffer serves another stream.
    kept.release();
    pair second(context);
    auto incoming = second.server.receive(ring);
    second.send("again");
    CHECK(one_chunk(context, incoming) == "again");
}

TEST_CASE("buffer_ring: a connection that holds its budget forever does not stop another",
          "[buffer_ring]") {
    ringio::io_context context;
    ringio::buffer_ring ring(context, 4, 8);
    pair hog(context);
    pair other(context);
    auto hogging = hog.server.receive(ring, 2);
    auto receiving = other.server.receive(ring, 2);
    hog.send(ringio::testing::pattern(400));
    std::vector<std::string> order;
    std::vector<ringio::buffer_lease> hog_held;
    ringio::spawn(context, record(hogging, "hog", order, hog_held)); // never gives one back
    settle(context);
    CHECK(hog_held.size() == 2);
    const std::string expected = ringio::testing::pattern(200);
    other.send(expected);
    ::shutdown(other.client.get(), SHUT_WR);
    CHECK(ringio::sync_wait(context, ringio::testing::drain(receiving)) == expected);
    hog.server.close();
    context.run();
}

TEST_CASE("buffer_ring: a busy connection that keeps taking buffers does not starve another",
          "[buffer_ring]") {
    using namespace std::chrono_literals;
    ringio::io_context context;
    ringio::buffer_ring ring(context, 2, 8);
    pair busy(context);
    pair waiting(context);
    auto busy_incoming = busy.server.receive(ring, 2);
    auto waiting_incoming = waiting.server.receive(ring);
    // The busy connection has far more than the ring holds and always asks for more; its
    // buffers come back one at a time, each a moment after it took them.
    busy.send(ringio::testing::pattern(4000));
    std::vector<std::string> order;
    std::vector<ringio::buffer_lease> busy_held;
    ringio::spawn(context, record(busy_incoming, "busy", order, busy_held));
    bool stopping = false;
    auto release_slowly = [&]() -> ringio::task<> {
        while (!stopping) {
            co_await ringio::sleep_for(context, 1ms);
            if (!busy_held.empty()) {
                busy_held.erase(busy_held.begin());
            }
        }
    };
    ringio::spawn(context, release_slowly());
    settle(context);
    REQUIRE_FALSE(order.empty());
    // The other connection's one chunk arrives while the busy one still has most of its data.
    waiting.send("mine");
    std::string got;
    auto receive_one = [&]() -> ringio::task<> {
        got = (co_await waiting_incoming.next()).text();
    };
    ringio::spawn(context, receive_one());
    const std::size_t before = order.size();
    while (got.empty() && order.size() < 500) {
        context.run_once();
    }
    CHECK(got == "mine");
    CHECK(order.size() - before <= 4);
    stopping = true;
    busy.server.close();
    context.run();
}

TEST_CASE("buffer_ring: a starved ring feeds waiting connections oldest first", "[buffer_ring]") {
    ringio::io_context context;
    ringio::buffer_ring ring(context, 2, 8);
    pair hog(context);
    std::vector<std::unique_ptr<pair>> others;
    std::vector<stream_of_leases> streams;
    streams.reserve(3); // the consumers wait on them where they are: they must not move
    // The hog takes both buffers and asks for more: it has plenty waiting.
    auto hogging = hog.server.receive(ring, 2);
    hog.send(ringio::testing::pattern(400));
    std::vector<std::string> order;
    std::vector<ringio::buffer_lease> hog_held;
    std::vector<ringio::buffer_lease> others_held;
    ringio::spawn(context, record(hogging, "hog", order, hog_held));
    settle(context);
    REQUIRE(hog_held.size() == 2);
    order.clear();
    // Three connections starve in turn: a, then b, then c.
    for (const char* name : {"a", "b", "c"}) {
        others.push_back(std::make_unique<pair>(context));
        others.back()->send(name);
        streams.push_back(others.back()->server.receive(ring));
        ringio::spawn(context, record(streams.back(), name, order, others_held));
        settle(context);
    }
    CHECK(order.empty());
    // Buffers come back one at a time, from the hog that still asks for more: each goes to the
    // connection that has waited longest, never back to the hog.
    hog_held.erase(hog_held.begin());
    settle(context);
    hog_held.erase(hog_held.begin());
    settle(context);
    REQUIRE(order == std::vector<std::string>{"a", "b"});
    others_held.erase(others_held.begin()); // a's goes back: c's turn
    settle(context);
    CHECK(order == std::vector<std::string>{"a", "b", "c"});
    hog.server.close();
    for (const auto& other : others) {
        other->server.close();
    }
    context.run();
}

TEST_CASE("buffer_ring: the buffers that go round are as few as the load needs", "[buffer_ring]") {
    // One chunk at a time on one connection: a ring that handed the kernel every buffer would
    // lend each of its 1,024 once before any came round again.
    ringio::io_context context;
    ringio::buffer_ring ring(context, 1024, 64);
    pair one(context);
    auto incoming = one.server.receive(ring);
    std::set<const std::byte*> lent;
    for (int i = 0; i < 300; ++i) {
        const std::string text = "chunk " + std::to_string(i);
        one.send(text);
        const ringio::buffer_lease chunk = next_lease(context, incoming);
        REQUIRE(chunk.text() == text);
        lent.insert(chunk.bytes().data());
    }
    CHECK(lent.size() <= 32);
    one.server.close();
    context.run();
}

TEST_CASE("buffer_ring: a burst of receives that find it short grows it once", "[buffer_ring]") {
    // 64 connections each hold a chunk at once, 20 times: the ring grows to what they hold, not
    // once for each receive of the first burst, and every message arrives whole.
    ringio::io_context context;
    ringio::buffer_ring ring(context, 4096, 16);
    many_connections all(context, ring, 64);
    std::set<const std::byte*> lent;
    for (std::size_t round = 0; round < 20; ++round) {
        const std::vector<ringio::buffer_lease> held = all.round(round);
        for (std::size_t i = 0; i < held.size(); ++i) {
            REQUIRE(held[i].text() == many_connections::message(round, i));
            lent.insert(held[i].bytes().data());
        }
    }
    CHECK(lent.size() >= 64);
    CHECK(lent.size() <= 128);
}

TEST_CASE("buffer_ring: receives that found it short before its last buffers came arm again",
          "[buffer_ring]") {
    // A ring of 64 for 64 connections at once: the second issue hands over the last 32, and
    // the receives that failed before it must not wait for a buffer to come back.
    ringio::io_context context;
    ringio::buffer_ring ring(context, 64, 16);
    many_connections all(context, ring, 64);
    const std::vector<ringio::buffer_lease> held = all.round(0);
    for (std::size_t i = 0; i < held.size(); ++i) {
        CHECK(held[i].text() == many_connections::message(0, i));
    }
}

TEST_CASE("buffer_ring: a stream that holds every buffer gets them all, each once",
          "[buffer_ring]") {
    ringio::io_context context;
    ringio::buffer_ring ring(context, 256, 8);
    pair all(context);
    auto everything = all.server.receive(ring, 0);
    const std::string sent = ringio::testing::pattern(256 * 8);
    all.send(sent);
    std::vector<ringio::buffer_lease> held;
    std::string got;
    std::set<const std::byte*> distinct;
    while (got.size() < sent.size()) {
        held.push_back(next_lease(context, everything));
        got += held.back().text();
        distinct.insert(held.back().bytes().data());
    }
    CHECK(got == sent);
    CHECK(distinct.size() == held.size());
    CHECK(held.size() >= 256);
    all.server.close();
    context.run();
}
