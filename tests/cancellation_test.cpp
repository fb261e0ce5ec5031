#include <ringio/cancellation.hpp>

#include <ringio/buffer_ring.hpp>
#include <ringio/descriptor.hpp>
#include <ringio/io_context.hpp>
#include <ringio/multishot.hpp>
#include <ringio/task.hpp>
#include <ringio/tcp_listener.hpp>
#include <ringio/tcp_stream.hpp>
#include <ringio/timer.hpp>
#include <ringio/udp_socket.hpp>

#include "accepted_pair.hpp"
#include "allocation_counter.hpp"
#include "datagram_peer.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

using namespace std::chrono_literals;
using ringio::endpoint;
using ringio::testing::accepted_pair;
using ringio::testing::blocking_connect;
using ringio::testing::datagram_peer;
using ringio::testing::elapsed_ms;
using ringio::testing::owned_pipe;

namespace {

// Turns the loop until nothing is in flight, for at most `limit`: false if work remains (a
// request nobody waits for any more would keep run() from returning).
bool run_until_idle(ringio::io_context& context, std::chrono::milliseconds limit = 5s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (context.poll()) {
        if (std::chrono::steady_clock::now() > end) {
            return false;
        }
        ::usleep(1000);
    }
    return true;
}

// True when nothing waits under `signal`: a node linked now finds the list empty. A frame
// that left a dangling node behind would show here, before a cancel() wrote through it.
bool nothing_waits_under(ringio::cancellation& signal) {
    ringio::detail::cancel_link probe;
    if (!ringio::detail::watch(signal, probe)) {
        return true; // cancelled: nothing can be linked, and cancel() emptied the list
    }
    const bool empty = probe.next == probe.prev; // both the list's own end: nothing else
    ringio::detail::cancellation_list::unlink(probe);
    return empty;
}

// The bytes a descriptor holds that nobody has read yet.
int unread(int fd) {
    int waiting = 0;
    REQUIRE(::ioctl(fd, FIONREAD, &waiting) == 0);
    return waiting;
}

// Cancels `stop` once `delay` has passed.
ringio::task<> cancel_after(ringio::io_context& context, ringio::cancellation& stop,
                            std::chrono::milliseconds delay) {
    co_await ringio::sleep_for(context, delay);
    stop.cancel();
}

} // namespace

TEST_CASE("cancellation: cancels every operation waiting under it, from another coroutine",
          "[cancellation]") {
    ringio::io_context context;
    ringio::cancellation stop;
    owned_pipe tracked_pipe;
    owned_pipe raw_pipe;
    ringio::descriptor tracked(context, tracked_pipe.read_end.release());
    ringio::tcp_listener listener(context, endpoint::loopback_v4(0));
    ringio::udp_socket socket(context, endpoint::loopback_v4(0));
    std::array<std::error_code, 6> errors;
    int resumed = 0;
    auto wait = [&]() -> ringio::task<> {
        std::array<char, 16> buffer{};
        co_await tracked.read(buffer).cancel_on(stop).into(errors[0]);
        ++resumed;
    };
    auto wait_raw = [&]() -> ringio::task<> {
        std::array<char, 16> buffer{};
        co_await ringio::read(context, raw_pipe.read_end.get(), buffer)
            .cancel_on(stop)
            .into(errors[1]);
        ++resumed;
    };
    auto sleep = [&]() -> ringio::task<> {
        co_await ringio::sleep_for(context, 1h).cancel_on(stop).into(errors[2]);
        ++resumed;
    };
    auto accept = [&]() -> ringio::task<> {
        auto op = listener.accept(); // a named operation, awaited in place
        co_await op.cancel_on(stop).into(errors[3]);
        ++resumed;
    };
    auto receive = [&]() -> ringio::task<> {
        std::array<char, 16> buffer{};
        co_await socket.recvfrom(buffer).into(errors[4]).cancel_on(stop);
        ++resumed;
    };
    auto next = [&]() -> ringio::task<> {
        auto incoming = listener.accept_all();
        co_await incoming.next().cancel_on(stop).into(errors[5]);
        ++resumed;
    };
    ringio::spawn(context, wait());
    ringio::spawn(context, wait_raw());
    ringio::spawn(context, sleep());
    ringio::spawn(context, accept());
    ringio::spawn(context, receive());
    ringio::spawn(context, next());
    ringio::spawn(context, cancel_after(context, stop, 10ms));
    const auto start = std::chrono::steady_clock::now();
    REQUIRE(run_until_idle(context));
    CHECK(elapsed_ms(start) < 5000);
    CHECK(resumed == 6);
    for (const std::error_code& error : errors) {
        CHECK(error == std::errc::operation_canceled);
    }
    CHECK(stop.cancelled());
    CHECK(nothing_waits_under(stop));
}

TEST_CASE("cancellation: races two reads; the first to complete cancels the other, and the "
          "loser's bytes stay for a later read",
          "[cancellation]") {
    ringio::io_context context;
    owned_pipe first;
    owned_pipe second;
    ringio::descriptor a(context, first.read_end.release());
    ringio::descriptor b(context, second.read_end.release());
    ringio::cancellation race;
    std::array<std::error_code, 2> errors;
    std::array<std::size_t, 2> sizes{};
    std::size_t winner = 2;
    int completions = 0;
    auto contender = [&](ringio::descriptor& from, std::size_t index) -> ringio::task<> {
        std::array<char, 16> buffer{};
        sizes[index] = co_await from.read(buffer).cancel_on(race).into(errors[index]);
        ++completions;
        if (!errors[index]) {
            winner = index;
            race.cancel(); // the loser ends with ECANCELED; a later contender is refused at once
        }
    };
    ringio::spawn(context, contender(a, 0));
    ringio::spawn(context, contender(b, 1));
    auto write_second = [&]() -> ringio::task<> {
        co_await ringio::sleep_for(context, 20ms);
        co_await ringio::write_all(context, second.write_end.get(), std::string_view("won"));
    };
    ringio::spawn(context, write_second());
    context.run();
    CHECK(winner == 1);
    CHECK(completions == 2);
    CHECK(sizes[1] == 3);
    CHECK(errors[0] == std::errc::operation_canceled);
    CHECK(sizes[0] == 0);

    // The loser read nothing: what its pipe receives now is all there for the next read.
    REQUIRE(::write(first.write_end.get(), "later", 5) == 5);
    race.reset();
    std::error_code error;
    std::array<char, 16> buffer{};
    std::size_t size = 0;
    auto again = [&]() -> ringio::task<> {
        size = co_await a.read(buffer).cancel_on(race).into(error);
    };
    ringio::spawn(context, again());
    context.run();
    CHECK_FALSE(error);
    CHECK(std::string_view(buffer.data(), size) == "later");
}

TEST_CASE("cancellation: races a read against a deadline and a stop; the stop wins",
          "[cancellation]") {
    ringio::io_context context;
    owned_pipe pipe;
    ringio::descriptor in(context, pipe.read_end.release());
    ringio::cancellation stop;
    std::error_code error;
    const auto began = std::chrono::steady_clock::now();
    auto reader = [&]() -> ringio::task<> {
        std::array<char, 16> buffer{};
        co_await in.read(buffer).with_deadline(began + 10s).cancel_on(stop).into(error);
    };
    ringio::spawn(context, reader());
    ringio::spawn(context, cancel_after(context, stop, 20ms));
    context.run();
    CHECK(error == std::errc::operation_canceled); // not ETIME: the stop came first
    CHECK(elapsed_ms(began) < 5000);
}

TEST_CASE("cancellation: awaited after cancel(), an operation fails at once and submits nothing, "
          "until reset()",
          "[cancellation]") {
    ringio::io_context context;
    ringio::cancellation stop;
    owned_pipe pipe;
    ringio::descriptor source(context, pipe.read_end.release());
    REQUIRE(::write(pipe.write_end.get(), "data", 4) == 4);
    stop.cancel();
    CHECK(stop.cancelled());
    std::error_code error;
    std::string message;
    std::size_t in_flight = 99;
    std::string got;
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        std::array<char, 16> buffer{};
        const std::size_t n = co_await source.read(buffer).cancel_on(stop).into(error);
        CHECK(n == 0);
        in_flight = context.in_flight();
        CHECK(unread(source.native_handle()) == 4);
        try {
            co_await ringio::sleep_for(context, 1h).cancel_on(stop);
        } catch (const std::system_error& e) {
            message = e.what();
        }
        stop.cancel(); // again: still cancelled, nothing else changes
        stop.reset();
        const std::size_t m = co_await source.read(buffer).cancel_on(stop);
        got.assign(buffer.data(), m);
    }());
    CHECK(error == std::errc::operation_canceled);
    CHECK(in_flight == 0);
    CHECK(message == "sleep_for: Operation canceled");
    CHECK_FALSE(stop.cancelled());
    CHECK(got == "data"); // the refused read left the data where it was
}

TEST_CASE("cancellation: awaited after cancel(), next() fails at once and arms nothing",
          "[cancellation]") {
    ringio::io_context context;
    ringio::cancellation stop;
    ringio::tcp_listener listener(context, endpoint::loopback_v4(0));
    auto incoming = listener.accept_all();
    const auto client = blocking_connect(listener.local_endpoint());
    stop.cancel();
    std::error_code error;
    std::string message;
    std::size_t in_flight = 99;
    bool open = true;
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        open = (co_await incoming.next().cancel_on(stop).into(error)).is_open();
        in_flight = context.in_flight();
        try {
            co_await incoming.next().cancel_on(stop);
        } catch (const std::system_error& e) {
            message = e.what();
        }
        stop.reset();
        open = (co_await incoming.next().cancel_on(stop)).is_open();
    }());
    CHECK(error == std::errc::operation_canceled);
    CHECK(in_flight == 0);
    CHECK_THAT(message, Catch::Contains("Operation canceled"));
    CHECK(open); // after reset() the connection waiting all along is accepted
}

TEST_CASE("cancellation: a request that completed has left it; a later cancel() touches nothing",
          "[cancellation]") {
    ringio::io_context context;
    ringio::cancellation stop;
    owned_pipe pipe;
    ringio::descriptor source(context, pipe.read_end.release());
    REQUIRE(::write(pipe.write_end.get(), "ab", 2) == 2);
    std::string got;
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        std::array<char, 1> buffer{};
        for (int i = 0; i < 2; ++i) {
            co_await source.read(buffer).cancel_on(stop);
            got += buffer[0];
        }
        co_await ringio::sleep_for(context, 0ms).cancel_on(stop);
    }());
    CHECK(got == "ab");
    CHECK(nothing_waits_under(stop));
    stop.cancel(); // nothing to cancel: no dangling request is reached
    CHECK(context.in_flight() == 0);
}

TEST_CASE("cancellation: destroying it cancels what still waits under it", "[cancellation]") {
    ringio::io_context context;
    auto stop = std::make_unique<ringio::cancellation>();
    owned_pipe pipe;
    ringio::descriptor source(context, pipe.read_end.release());
    std::error_code error;
    auto wait = [&]() -> ringio::task<> {
        std::array<char, 16> buffer{};
        co_await source.read(buffer).cancel_on(*stop).into(error);
    };
    auto destroy = [&]() -> ringio::task<> {
        co_await ringio::sleep_for(context, 5ms);
        stop.reset();
    };
    ringio::spawn(context, wait());
    ringio::spawn(context, destroy());
    REQUIRE(run_until_idle(context));
    CHECK(error == std::errc::operation_canceled);
    CHECK(source.is_open()); // only the read ended
}

TEST_CASE("cancellation: a cancelled timeout and a cancellation are told apart", "[cancellation]") {
    ringio::io_context context;
    ringio::cancellation stop;
    owned_pipe pipe;
    ringio::descriptor source(context, pipe.read_end.release());
    std::error_code cancelled;
    std::error_code timed_out;
    auto cancelled_first = [&]() -> ringio::task<> {
        std::array<char, 16> buffer{};
        co_await source.read(buffer).with_timeout(1h).cancel_on(stop).into(cancelled);
    };
    auto timed_out_first = [&]() -> ringio::task<> {
        ringio::cancellation never;
        std::array<char, 16> buffer{};
        co_await source.read(buffer).cancel_on(never).with_timeout(5ms).into(timed_out);
    };
    ringio::spawn(context, cancelled_first());
    ringio::spawn(context, timed_out_first());
    ringio::spawn(context, cancel_after(context, stop, 50ms));
    REQUIRE(run_until_idle(context));
    CHECK(cancelled == std::errc::operation_canceled);
    CHECK(timed_out.value() == ETIME);
}

TEST_CASE("cancel_on: a cancelled next() ends the wait, not the stream", "[cancellation]") {
    ringio::io_context context;
    ringio::cancellation stop;
    ringio::buffer_ring buffers(context, 8, 64);
    accepted_pair connection(context);
    auto chunks = connection.server.receive(buffers);
    std::error_code error;
    std::string after;
    auto wait = [&]() -> ringio::task<> {
        const ringio::buffer_lease chunk = co_await chunks.next().cancel_on(stop).into(error);
        CHECK(chunk.empty());
        connection.send("after");
        after = (co_await chunks.next()).text();
    };
    ringio::spawn(context, wait());
    ringio::spawn(context, cancel_after(context, stop, 5ms));
    REQUIRE(run_until_idle(context));
    CHECK(error == std::errc::operation_canceled);
    CHECK(after == "after");
}

TEST_CASE("cancel_on: a cancelled next() that was the last waiter pauses the request, so run() "
          "returns",
          "[cancellation]") {
    ringio::io_context context;
    ringio::cancellation stop;
    std::error_code error;

    SECTION("accept_all") {
        ringio::tcp_listener listener(context, endpoint::loopback_v4(0));
        auto incoming = listener.accept_all();
        auto wait = [&]() -> ringio::task<> {
            co_await incoming.next().cancel_on(stop).into(error);
        };
        ringio::spawn(context, wait());
        ringio::spawn(context, cancel_after(context, stop, 5ms));
        CHECK(run_until_idle(context));
        CHECK(error == std::errc::operation_canceled);
        // Paused, not ended: a connection made meanwhile waits in the socket for the next one.
        const auto client = blocking_connect(listener.local_endpoint());
        const bool open = ringio::sync_wait(context, [&]() -> ringio::task<bool> {
            co_return (co_await incoming.next()).is_open();
        }());
        CHECK(open);
    }
    SECTION("receive") {
        ringio::buffer_ring buffers(context, 8, 64);
        accepted_pair connection(context);
        auto chunks = connection.server.receive(buffers);
        auto wait = [&]() -> ringio::task<> {
            co_await chunks.next().cancel_on(stop).into(error);
        };
        ringio::spawn(context, wait());
        ringio::spawn(context, cancel_after(context, stop, 5ms));
        CHECK(run_until_idle(context));
        CHECK(error == std::errc::operation_canceled);
        connection.send("later");
        const std::string got = ringio::sync_wait(context, [&]() -> ringio::task<std::string> {
            co_return std::string((co_await chunks.next()).text());
        }());
        CHECK(got == "later");
    }
    SECTION("receive_from") {
        ringio::buffer_ring buffers(context, 8, 256);
        ringio::udp_socket socket(context, endpoint::loopback_v4(0));
        auto datagrams = socket.receive_from(buffers);
        auto wait = [&]() -> ringio::task<> {
            co_await datagrams.next().cancel_on(stop).into(error);
        };
        ringio::spawn(context, wait());
        ringio::spawn(context, cancel_after(context, stop, 5ms));
        CHECK(run_until_idle(context));
        CHECK(error == std::errc::operation_canceled);
        const datagram_peer peer(socket.local_endpoint());
        peer.send("later");
        std::error_code next_error;
        const std::string got = ringio::sync_wait(context, [&]() -> ringio::task<std::string> {
            const ringio::datagram d = co_await datagrams.next().into(next_error);
            co_return std::string(d.payload.text());
        }());
        if (next_error == std::errc::invalid_argument) {
            WARN("SKIPPED: this kernel has no multishot recvmsg (Linux 6.0)");
            return;
        }
        CHECK(got == "later");
    }
}

TEST_CASE("cancel_on: cancelling one of several waiters on a stream leaves the others waiting",
          "[cancellation]") {
    ringio::io_context context;
    ringio::cancellation stop;
    ringio::tcp_listener listener(context, endpoint::loopback_v4(0));
    auto incoming = listener.accept_all();
    std::error_code cancelled_error;
    bool other_open = false;
    auto cancelled = [&]() -> ringio::task<> {
        co_await incoming.next().cancel_on(stop).into(cancelled_error);
    };
    auto other = [&]() -> ringio::task<> {
        other_open = (co_await incoming.next()).is_open();
    };
    ringio::spawn(context, other());
    ringio::spawn(context, cancelled());
    stop.cancel();
    for (int i = 0; i < 5; ++i) {
        context.poll();
    }
    CHECK(cancelled_error == std::errc::operation_canceled);
    CHECK_FALSE(other_open);
    // The accept stays armed for the other waiter, which takes the next connection.
    CHECK(context.in_flight() > 0);
    const auto client = blocking_connect(listener.local_endpoint());
    const auto start = std::chrono::steady_clock::now();
    while (!other_open && elapsed_ms(start) < 5000) {
        context.poll();
        ::usleep(1000);
    }
    CHECK(other_open);
}

TEST_CASE("cancel_on: waits under two signals on one stream: each cancel stops only its own",
          "[cancellation]") {
    ringio::io_context context;
    ringio::cancellation first;  // the stream links itself under the signal of its first wait
    ringio::cancellation second; // a wait under another one meanwhile links itself
    ringio::tcp_listener listener(context, endpoint::loopback_v4(0));
    auto incoming = listener.accept_all();
    std::error_code first_error;
    std::error_code second_error;
    int resumed = 0;
    auto wait = [&](ringio::cancellation& signal, std::error_code& error) -> ringio::task<> {
        co_await incoming.next().cancel_on(signal).into(error);
        ++resumed;
    };
    ringio::spawn(context, wait(first, first_error));
    ringio::spawn(context, wait(second, second_error));
    const bool first_goes_first = GENERATE(true, false);
    (first_goes_first ? first : second).cancel();
    for (int i = 0; i < 5; ++i) {
        context.poll();
    }
    CHECK(resumed == 1);
    CHECK(first_error == (first_goes_first ? std::errc::operation_canceled : std::errc{}));
    CHECK(second_error == (first_goes_first ? std::errc{} : std::errc::operation_canceled));
    (first_goes_first ? second : first).cancel();
    REQUIRE(run_until_idle(context));
    CHECK(resumed == 2);
    CHECK(first_error == std::errc::operation_canceled);
    CHECK(second_error == std::errc::operation_canceled);
    CHECK(nothing_waits_under(second));
}

TEST_CASE("cancel_on: a stream that waited under one signal, then waits under another, is "
          "stopped by the other only",
          "[cancellation]") {
    ringio::io_context context;
    ringio::cancellation first;
    ringio::cancellation second;
    ringio::buffer_ring buffers(context, 8, 64);
    accepted_pair connection(context);
    auto chunks = connection.server.receive(buffers);
    connection.send("one");
    std::string got;
    std::error_code error;
    bool done = false;
    auto wait = [&]() -> ringio::task<> {
        got = (co_await chunks.next().cancel_on(first)).text();
        co_await chunks.next().cancel_on(second).into(error);
        done = true;
    };
    ringio::spawn(context, wait());
    const auto start = std::chrono::steady_clock::now();
    while (got.empty() && elapsed_ms(start) < 5000) {
        context.poll();
    }
    REQUIRE(got == "one");
    first.cancel();
    for (int i = 0; i < 5; ++i) {
        context.poll();
    }
    CHECK_FALSE(done);
    second.cancel();
    REQUIRE(run_until_idle(context));
    CHECK(done);
    CHECK(error == std::errc::operation_canceled);
}

TEST_CASE("cancel_on: a stream moved, or its signal replaced, between waits is still stopped",
          "[cancellation]") {
    ringio::io_context context;
    ringio::tcp_listener listener(context, endpoint::loopback_v4(0));
    auto incoming = listener.accept_all();
    // A signal made where a destroyed one was (likely the same address) is a new signal.
    auto stop = std::make_unique<ringio::cancellation>();
    const auto client = blocking_connect(listener.local_endpoint());
    CHECK(ringio::sync_wait(context, [&]() -> ringio::task<bool> {
        co_return (co_await incoming.next().cancel_on(*stop)).is_open();
    }()));
    const bool moved = GENERATE(true, false);
    if (moved) {
        auto other = std::move(incoming);
        incoming = std::move(other);
    } else {
        stop.reset();
        stop = std::make_unique<ringio::cancellation>();
    }
    std::error_code error;
    bool done = false;
    auto wait = [&]() -> ringio::task<> {
        co_await incoming.next().cancel_on(*stop).into(error);
        done = true;
    };
    ringio::spawn(context, wait());
    ringio::spawn(context, cancel_after(context, *stop, 5ms));
    REQUIRE(run_until_idle(context));
    CHECK(done);
    CHECK(error == std::errc::operation_canceled);
}

TEST_CASE("cancel_on: a stream destroyed between waits leaves its signal", "[cancellation]") {
    ringio::io_context context;
    ringio::cancellation stop;
    ringio::tcp_listener listener(context, endpoint::loopback_v4(0));
    const auto client = blocking_connect(listener.local_endpoint());
    {
        auto incoming = listener.accept_all();
        CHECK(ringio::sync_wait(context, [&]() -> ringio::task<bool> {
            co_return (co_await incoming.next().cancel_on(stop)).is_open();
        }()));
        CHECK_FALSE(nothing_waits_under(stop)); // it stays, for its next wait
    }
    CHECK(nothing_waits_under(stop));
    stop.cancel(); // reaches no freed stream (AddressSanitizer would see it)
}

TEST_CASE("cancel_on: flush() cancelled while the sends wait for room", "[cancellation]") {
    ringio::io_context context;
    ringio::cancellation stop;
    ringio::buffer_ring buffers(context, 8, 64);
    accepted_pair connection(context);
    auto chunks = connection.server.receive(buffers);
    connection.send("echo");
    connection.fill_server_side();
    std::error_code error;
    std::size_t pending = 0;
    auto echo = [&]() -> ringio::task<> {
        connection.server.send(co_await chunks.next());
        pending = connection.server.pending_sends();
        co_await connection.server.flush().cancel_on(stop).into(error);
    };
    ringio::spawn(context, echo());
    ringio::spawn(context, cancel_after(context, stop, 20ms));
    REQUIRE(run_until_idle(context));
    CHECK(pending == 1);
    CHECK(error == std::errc::operation_canceled);
    CHECK(connection.server.pending_sends() == 0);
    CHECK(nothing_waits_under(stop));
}

TEST_CASE("cancel_on: flush() under a cancellation already cancelled cancels the sends at once",
          "[cancellation]") {
    ringio::io_context context;
    ringio::cancellation stop;
    ringio::buffer_ring buffers(context, 8, 64);
    accepted_pair connection(context);
    auto chunks = connection.server.receive(buffers);
    connection.send("echo");
    connection.fill_server_side();
    stop.cancel();
    std::error_code error;
    auto echo = [&]() -> ringio::task<> {
        connection.server.send(co_await chunks.next());
        co_await connection.server.flush().cancel_on(stop).into(error);
    };
    ringio::spawn(context, echo());
    REQUIRE(run_until_idle(context));
    CHECK(error == std::errc::operation_canceled);
    CHECK(connection.server.pending_sends() == 0);
}

TEST_CASE("cancellation: frames destroyed at shutdown while waiting under it leave it intact",
          "[cancellation]") {
    // The cancellation outlives the context: the frames the context destroys must leave its
    // list, or its next cancel() would write into freed frames (AddressSanitizer sees that).
    ringio::cancellation stop;
    owned_pipe pipe;
    {
        ringio::io_context context;
        auto read = [](ringio::io_context& ctx, int fd,
                       ringio::cancellation& signal) -> ringio::task<> {
            ringio::descriptor source(ctx, fd);
            std::array<char, 16> buffer{};
            co_await source.read(buffer).cancel_on(signal);
        };
        auto accept = [](ringio::io_context& ctx, ringio::cancellation& signal) -> ringio::task<> {
            ringio::tcp_listener listener(ctx, endpoint::loopback_v4(0));
            auto incoming = listener.accept_all();
            co_await incoming.next().cancel_on(signal);
        };
        auto named = [](ringio::io_context& ctx, ringio::cancellation& signal) -> ringio::task<> {
            auto op = ringio::sleep_for(ctx, 1h);
            co_await op.cancel_on(signal);
        };
        ringio::spawn(context, read(context, pipe.read_end.release(), stop));
        ringio::spawn(context, accept(context, stop));
        ringio::spawn(context, named(context, stop));
        context.poll();
        CHECK_FALSE(nothing_waits_under(stop));
    }
    CHECK(nothing_waits_under(stop));
    stop.cancel();
}

TEST_CASE("cancellation: a receive's next() destroyed at shutdown leaves it intact",
          "[cancellation]") {
    ringio::cancellation stop;
    {
        ringio::io_context context;
        ringio::buffer_ring buffers(context, 8, 64);
        accepted_pair connection(context);
        auto wait = [](ringio::tcp_stream stream, ringio::buffer_ring& ring,
                       ringio::cancellation& signal) -> ringio::task<> {
            auto chunks = stream.receive(ring);
            co_await chunks.next().cancel_on(signal);
        };
        ringio::spawn(context, wait(std::move(connection.server), buffers, stop));
        context.poll();
        CHECK_FALSE(nothing_waits_under(stop));
    }
    CHECK(nothing_waits_under(stop));
    stop.cancel();
}

TEST_CASE("cancellation: no heap allocation per operation or wait under it", "[cancellation]") {
    if (!RINGIO_TEST_COUNTS_ALLOCATIONS) {
        WARN("SKIPPED: a sanitizer replaces operator new; the other builds count");
        return;
    }
    ringio::io_context context;
    ringio::cancellation stop;
    ringio::cancellation stopped;
    stopped.cancel();
    ringio::descriptor null(context, ::open("/dev/null", O_WRONLY | O_CLOEXEC));
    REQUIRE(null.is_open());
    ringio::buffer_ring buffers(context, 8, 64);
    accepted_pair connection(context);
    auto chunks = connection.server.receive(buffers);
    long counted = -1;
    auto loop = [&]() -> ringio::task<> {
        std::array<char, 4> buffer{};
        std::error_code error;
        long before = 0;
        for (int i = 0; i <= 200; ++i) {
            if (i == 1) {
                before = ringio::testing::allocations.load(); // after a warm-up round
            }
            co_await null.write(buffer).cancel_on(stop);
            co_await null.write(buffer).cancel_on(stopped).into(error);
            connection.send("x");
            co_await chunks.next().cancel_on(stop);
            co_await chunks.next().cancel_on(stopped).into(error);
        }
        counted = ringio::testing::allocations.load() - before;
    };
    ringio::sync_wait(context, loop());
    CHECK(counted == 0);
}
