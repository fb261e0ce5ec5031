#include <ringio/tcp_stream.hpp>

#include <ringio/buffer_ring.hpp>
#include <ringio/io_context.hpp>
#include <ringio/multishot.hpp>
#include <ringio/resolve.hpp>
#include <ringio/task.hpp>
#include <ringio/tcp_listener.hpp>
#include <ringio/timer.hpp>

#include "accepted_pair.hpp"
#include "allocation_counter.hpp"
#include "temp_dir.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using ringio::endpoint;
using ringio::testing::accepted_pair;
using ringio::testing::bytes_of;
using ringio::testing::drain;
using ringio::testing::take;
using ringio::testing::text_of;

namespace {

// A listener on loopback and one stream connected to it, both ends owned by the test.
struct connected_pair {
    ringio::tcp_listener listener;
    ringio::tcp_stream client;
    ringio::tcp_stream server;

    connected_pair(ringio::io_context& context, const endpoint& where)
        : listener(context, where), client(context), server(context) {
        auto connect = [&]() -> ringio::task<> {
            co_await client.connect(listener.local_endpoint());
        };
        auto accept = [&]() -> ringio::task<> {
            server = co_await listener.accept();
        };
        ringio::spawn(context, accept());
        ringio::sync_wait(context, connect());
        context.run();
        REQUIRE(server.is_open());
    }
};

std::vector<std::byte> pattern(std::size_t size) {
    std::vector<std::byte> data(size);
    for (std::size_t i = 0; i < size; ++i) {
        data[i] = static_cast<std::byte>((i * 131) ^ (i >> 9));
    }
    return data;
}

endpoint closed_port() {
    // Bind, learn the port, close: nothing listens there afterwards.
    ringio::io_context scratch;
    ringio::tcp_listener probe(scratch, endpoint::loopback_v4(0));
    return probe.local_endpoint();
}

// The bytes a socket holds that nobody has read yet.
int unread(int fd) {
    int waiting = 0;
    REQUIRE(::ioctl(fd, FIONREAD, &waiting) == 0);
    return waiting;
}

// Turns the loop a few times without waiting, letting the kernel work in between.
void settle(ringio::io_context& context) {
    for (int i = 0; i < 20; ++i) {
        context.poll();
        ::usleep(1000);
    }
}

// Takes leases from `incoming` and keeps them in `held` until the end of the stream or an
// error (the stream closed).
ringio::task<> hoard(ringio::multishot<ringio::buffer_lease>& incoming,
                     std::vector<ringio::buffer_lease>& held) {
    for (;;) {
        std::error_code error;
        ringio::buffer_lease chunk = co_await incoming.next().into(error);
        if (chunk.empty()) {
            co_return;
        }
        held.push_back(std::move(chunk));
    }
}

// Reads `size` bytes on the client, on its own thread, into `into`.
std::thread read_on_client(const accepted_pair& connection, std::string& into, std::size_t size) {
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

// A receive whose stream holds far more than it keeps untaken: 1,600 bytes for buffers of 8,
// with room in the ring for all of it.
struct flooded {
    ringio::io_context context;
    ringio::buffer_ring buffers{context, 256, 8};
    accepted_pair connection{context};
    ringio::multishot<ringio::buffer_lease> incoming = connection.server.receive(buffers);
    const std::string expected = ringio::testing::pattern(1600);

    flooded() { connection.send(expected); }

    // Takes the first chunk only.
    std::string first() {
        return ringio::sync_wait(
            context, [](ringio::multishot<ringio::buffer_lease>& r) -> ringio::task<std::string> {
                co_return std::string((co_await r.next()).text());
            }(incoming));
    }
};

// A receive with a first chunk, "first", on its way. A receive re-armed while the loop
// dispatches completions goes out after what the dispatch queues, so that it finds the peer's
// answer to those sends; a close, cancel or drop meanwhile must find it as one already in the
// kernel.
struct rearmed {
    ringio::io_context context;
    ringio::buffer_ring buffers{context, 8, 64};
    accepted_pair connection{context};
    ringio::multishot<ringio::buffer_lease> incoming = connection.server.receive(buffers);

    rearmed() { connection.send("first"); }

    // Takes "first" in a coroutine that the dispatch resumes, spawns `waiter` (whose wait
    // re-arms the receive), then calls `act`, all before that dispatch ends.
    template <class Act>
    void take_first_then(ringio::task<> waiter, Act act) {
        ringio::sync_wait(context, [&]() -> ringio::task<> {
            const ringio::buffer_lease chunk = co_await incoming.next();
            CHECK(chunk.text() == "first");
            ringio::spawn(context, std::move(waiter));
            act();
        }());
    }
};

} // namespace

TEST_CASE("connect: reaches a listener over IPv4 and IPv6", "[tcp_stream]") {
    const bool v6 = GENERATE(false, true);
    if (v6 && !ringio::testing::has_ipv6_loopback()) {
        WARN("SKIPPED: no IPv6 loopback on this machine");
        return;
    }
    ringio::io_context context;
    connected_pair pair(context, v6 ? endpoint::loopback_v6(0) : endpoint::loopback_v4(0));
    CHECK(pair.client.remote_endpoint() == pair.listener.local_endpoint());
    CHECK(pair.server.remote_endpoint() == pair.client.local_endpoint());
    CHECK((::fcntl(pair.client.native_handle(), F_GETFD) & FD_CLOEXEC) != 0);
    CHECK((::fcntl(pair.server.native_handle(), F_GETFD) & FD_CLOEXEC) != 0);
}

TEST_CASE("connect: a closed port is refused, and the message names it", "[tcp_stream]") {
    ringio::io_context context;
    const endpoint nobody = closed_port();
    ringio::tcp_stream stream(context);
    try {
        ringio::sync_wait(context, [&]() -> ringio::task<> {
            co_await stream.connect(nobody);
        }());
        FAIL("connected to a closed port");
    } catch (const std::system_error& error) {
        CHECK(error.code() == std::errc::connection_refused);
        CHECK_THAT(error.what(), Catch::StartsWith("connect " + nobody.to_string()));
    }
}

TEST_CASE("connect: a timeout gives up on a peer that never answers", "[tcp_stream]") {
    ringio::io_context context;
    // A listener that never accepts and has a full queue drops further handshakes.
    ringio::tcp_listener deaf(context, endpoint::loopback_v4(0), {.backlog = 0});
    std::vector<ringio::tcp_stream> queued; // kept open so that the queue stays full
    std::error_code error;
    const auto start = std::chrono::steady_clock::now();
    for (int attempt = 0; attempt < 8 && !error; ++attempt) {
        ringio::tcp_stream stream(context);
        ringio::sync_wait(context, [&]() -> ringio::task<> {
            co_await stream.connect(deaf.local_endpoint()).with_timeout(200ms).into(error);
        }());
        queued.push_back(std::move(stream));
    }
    CHECK(error.value() == ETIME);
    CHECK(ringio::testing::elapsed_ms(start) < 10'000);
}

TEST_CASE("connect by name: tries each address and names them all on failure", "[tcp_stream]") {
    ringio::io_context context;
    const endpoint nobody = closed_port();
    try {
        ringio::sync_wait(context,
                          ringio::connect(context, "localhost", std::to_string(nobody.port())));
        FAIL("connected to a closed port");
    } catch (const std::system_error& error) {
        CHECK(error.code() == std::errc::connection_refused);
        CHECK_THAT(error.what(), Catch::Contains("connect \"localhost\" port \""));
        CHECK_THAT(error.what(),
                   Catch::Contains("tried 127.0.0.1:") || Catch::Contains("tried [::1]:"));
    }
    ringio::tcp_listener listener(context, endpoint::loopback_v4(0));
    auto accept = [&]() -> ringio::task<> {
        co_await listener.accept();
    };
    ringio::spawn(context, accept());
    ringio::tcp_stream stream = ringio::sync_wait(
        context,
        ringio::connect(context, "127.0.0.1", std::to_string(listener.local_endpoint().port())));
    CHECK(stream.remote_endpoint() == listener.local_endpoint());
}

TEST_CASE("read and write: bytes cross in both directions", "[tcp_stream]") {
    ringio::io_context context;
    connected_pair pair(context, endpoint::loopback_v4(0));
    auto talk = [&]() -> ringio::task<std::string> {
        co_await pair.client.write_all(bytes_of("ping"));
        std::array<std::byte, 4> buffer{};
        co_await pair.server.read_exact(buffer);
        CHECK(text_of(buffer) == "ping");
        co_await pair.server.write_all(bytes_of("pong!"));
        std::array<std::byte, 16> reply{};
        const std::size_t n = co_await pair.client.read(reply);
        co_return text_of(std::span{reply}.first(n));
    };
    CHECK(ringio::sync_wait(context, talk()) == "pong!");
}

TEST_CASE("read and write: strings, string literals, vectors and arrays are buffers",
          "[tcp_stream]") {
    ringio::io_context context;
    connected_pair pair(context, endpoint::loopback_v4(0));
    std::vector<std::size_t> counts;
    auto send = [&]() -> ringio::task<> {
        const std::string text = "string,";
        counts.push_back(co_await pair.client.write_all(text));
        counts.push_back(co_await pair.client.write_all("literal,")); // its NUL is not sent
        const std::vector<std::byte> bytes{std::byte{'v'}, std::byte{'e'}, std::byte{'c'},
                                           std::byte{','}};
        counts.push_back(co_await pair.client.write(bytes));
        const std::array<char, 6> chars{'a', 'r', 'r', 'a', 'y', ','};
        counts.push_back(co_await pair.client.write_all(chars));
        counts.push_back(co_await pair.client.write_all(std::string_view("view")));
        pair.client.shutdown();
    };
    std::string got;
    auto receive = [&]() -> ringio::task<> {
        std::string into_string(7, '\0');
        co_await pair.server.read_exact(into_string);
        std::array<char, 8> into_array{};
        co_await pair.server.read_exact(into_array);
        std::vector<std::byte> into_vector(4);
        co_await pair.server.read_exact(into_vector);
        char into_c_array[6];
        co_await pair.server.read_exact(into_c_array);
        std::string rest(16, '\0');
        const std::size_t n = co_await pair.server.read(rest);
        rest.resize(n);
        std::array<char, 1> after{};
        const std::size_t end = co_await pair.server.read(after);
        CHECK(end == 0); // nothing more, no NUL
        got = into_string + std::string(into_array.data(), into_array.size()) +
              text_of(into_vector) + std::string(into_c_array, sizeof into_c_array) + rest;
    };
    ringio::spawn(context, send());
    ringio::spawn(context, receive());
    context.run();
    CHECK(counts == std::vector<std::size_t>{7, 8, 4, 6, 4});
    CHECK(got == "string,literal,vec,array,view");
}

TEST_CASE("read: zero means the peer closed its side", "[tcp_stream]") {
    ringio::io_context context;
    connected_pair pair(context, endpoint::loopback_v4(0));
    pair.client.shutdown(SHUT_WR);
    auto read_end = [&]() -> ringio::task<std::size_t> {
        std::array<std::byte, 8> buffer{};
        const std::size_t n = co_await pair.server.read(buffer);
        // The other direction still works after a half-close.
        co_await pair.server.write_all(bytes_of("bye"));
        std::array<std::byte, 3> reply{};
        co_await pair.client.read_exact(reply);
        CHECK(text_of(reply) == "bye");
        co_return n;
    };
    CHECK(ringio::sync_wait(context, read_end()) == 0);
}

TEST_CASE("read: a reset by the peer is ECONNRESET naming the peer", "[tcp_stream]") {
    ringio::io_context context;
    connected_pair pair(context, endpoint::loopback_v4(0));
    const std::string peer = pair.server.remote_endpoint().to_string();
    const linger abort_on_close{1, 0};
    REQUIRE(::setsockopt(pair.client.native_handle(), SOL_SOCKET, SO_LINGER, &abort_on_close,
                         sizeof abort_on_close) == 0);
    pair.client.close();
    context.run();
    const bool throwing = GENERATE(false, true);
    std::error_code error;
    std::string message;
    auto read = [&]() -> ringio::task<> {
        std::array<std::byte, 8> buffer{};
        if (!throwing) {
            co_await pair.server.read(buffer).into(error);
            co_return;
        }
        try {
            co_await pair.server.read(buffer);
        } catch (const std::system_error& failure) {
            error = failure.code();
            message = failure.what();
        }
    };
    ringio::sync_wait(context, read());
    CHECK(error == std::errc::connection_reset);
    if (throwing) {
        CHECK_THAT(message, Catch::StartsWith("read from " + peer + ": "));
    }
}

TEST_CASE("write: a peer that has gone gives EPIPE or ECONNRESET, never SIGPIPE", "[tcp_stream]") {
    REQUIRE(::signal(SIGPIPE, SIG_DFL) != SIG_ERR); // SIGPIPE would kill the test
    ringio::io_context context;
    connected_pair pair(context, endpoint::loopback_v4(0));
    pair.client.close();
    context.run();
    std::error_code error;
    const auto data = pattern(1 << 16);
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        for (int i = 0; i < 100 && !error; ++i) {
            co_await pair.server.write_all(data).into(error);
        }
    }());
    CHECK((error == std::errc::broken_pipe || error == std::errc::connection_reset));
}

TEST_CASE("write_all: a large buffer arrives whole through partial writes", "[tcp_stream]") {
    ringio::io_context context;
    connected_pair pair(context, endpoint::loopback_v4(0));
    const auto data = pattern(16 << 20);
    std::vector<std::byte> received(data.size());
    std::size_t reads = 0;
    auto send = [&]() -> ringio::task<> {
        // Never co_await inside CHECK: its assertion handler would span the suspension.
        const std::size_t sent = co_await pair.client.write_all(data);
        CHECK(sent == data.size());
    };
    auto receive = [&]() -> ringio::task<> {
        std::size_t filled = 0;
        while (filled < received.size()) {
            const std::size_t n =
                co_await pair.server.read(std::span{received}.subspan(filled).first(
                    std::min<std::size_t>(received.size() - filled, 100'000)));
            REQUIRE(n > 0);
            filled += n;
            ++reads;
        }
    };
    ringio::spawn(context, send());
    ringio::spawn(context, receive());
    context.run();
    CHECK(received == data);
    CHECK(reads > 1);
}

TEST_CASE("read: an empty buffer is refused with EINVAL", "[tcp_stream]") {
    ringio::io_context context;
    connected_pair pair(context, endpoint::loopback_v4(0));
    std::error_code error;
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        co_await pair.server.read(std::span<std::byte>{}).into(error);
    }());
    CHECK(error == std::errc::invalid_argument);
}

TEST_CASE("read_exact: an early end of stream is ENODATA", "[tcp_stream]") {
    ringio::io_context context;
    connected_pair pair(context, endpoint::loopback_v4(0));
    std::error_code error;
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        co_await pair.client.write_all(bytes_of("abc"));
        pair.client.shutdown();
        std::array<std::byte, 8> buffer{};
        co_await pair.server.read_exact(buffer).into(error);
    }());
    CHECK(error.value() == ENODATA);
}

TEST_CASE("close: cancels a pending read; the descriptor number is reused safely", "[tcp_stream]") {
    ringio::io_context context;
    connected_pair pair(context, endpoint::loopback_v4(0));
    std::error_code error;
    auto waiter = [&]() -> ringio::task<> {
        std::array<std::byte, 8> buffer{};
        co_await pair.server.read(buffer).into(error);
    };
    ringio::spawn(context, waiter());
    context.poll();
    const int old_fd = pair.server.native_handle();
    pair.server.close();
    context.run();
    CHECK(error == std::errc::operation_canceled);
    // Only once the read is cancelled is the number released for reuse.
    CHECK(::fcntl(old_fd, F_GETFD) == -1);
    CHECK(errno == EBADF);
}

TEST_CASE("close: cancels exactly that stream's requests; the others go on", "[tcp_stream]") {
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 4, 64);
    connected_pair closed(context, endpoint::loopback_v4(0));
    connected_pair reading(context, endpoint::loopback_v4(0));
    connected_pair receiving(context, endpoint::loopback_v4(0));
    auto incoming = receiving.server.receive(buffers);
    std::error_code cancelled;
    bool closed_done = false;
    std::string read_text;
    std::string received_text;
    bool accepted = false;
    auto read_closed = [&]() -> ringio::task<> {
        std::array<char, 8> buffer{};
        co_await closed.server.read(buffer).into(cancelled);
        closed_done = true;
    };
    ringio::spawn(context, read_closed());
    auto read_open = [&]() -> ringio::task<> {
        std::array<char, 8> buffer{};
        const std::size_t n = co_await reading.server.read(buffer);
        read_text.assign(buffer.data(), n);
    };
    ringio::spawn(context, read_open());
    auto receive_open = [&]() -> ringio::task<> {
        const ringio::buffer_lease chunk = co_await incoming.next();
        received_text = chunk.text();
    };
    ringio::spawn(context, receive_open());
    auto accept_one = [&]() -> ringio::task<> {
        accepted = (co_await closed.listener.accept()).is_open();
    };
    ringio::spawn(context, accept_one());
    context.poll();
    CHECK(context.in_flight() == 4);
    closed.server.close();
    while (!closed_done) {
        context.run_once();
    }
    CHECK(cancelled == std::errc::operation_canceled);
    // The others are still waiting, and complete when their data comes.
    CHECK(context.in_flight() == 3);
    CHECK(read_text.empty());
    CHECK(received_text.empty());
    CHECK_FALSE(accepted);
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        co_await reading.client.write_all("read");
        co_await receiving.client.write_all("received");
    }());
    const auto client = ringio::testing::blocking_connect(closed.listener.local_endpoint());
    context.run();
    CHECK(read_text == "read");
    CHECK(received_text == "received");
    CHECK(accepted);
}

TEST_CASE("close: an operation made before and awaited after fails with EBADF, touching "
          "nothing",
          "[tcp_stream]") {
    ringio::io_context context;
    connected_pair pair(context, endpoint::loopback_v4(0));
    const int old_fd = pair.server.native_handle();
    std::array<char, 4> buffer{};
    std::error_code read_error;
    std::error_code write_error;
    int reused[2] = {-1, -1};
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        auto read = pair.server.read(buffer);
        auto write = pair.server.write("late");
        pair.server.close();
        co_await ringio::sleep_for(context, 1ms); // the close has run: the number is free
        // A new pair of sockets takes the number, with data a stale read would find.
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, reused) == 0);
        REQUIRE(::send(reused[1], "mine", 4, 0) == 4);
        co_await read.into(read_error);
        co_await write.into(write_error);
    }());
    CHECK(read_error == std::errc::bad_file_descriptor);
    CHECK(write_error == std::errc::bad_file_descriptor);
    CHECK((reused[0] == old_fd || reused[1] == old_fd));
    // Neither the read nor the write reached the new sockets.
    char left[8];
    CHECK(::recv(reused[0], left, sizeof left, MSG_DONTWAIT) == 4);
    CHECK(::recv(reused[1], left, sizeof left, MSG_DONTWAIT) == -1);
    CHECK(errno == EAGAIN);
    ::close(reused[0]);
    ::close(reused[1]);
}

TEST_CASE("read and write: many connections are served at once", "[tcp_stream]") {
    ringio::io_context context;
    ringio::tcp_listener listener(context, endpoint::loopback_v4(0));
    constexpr int clients = 200;
    int echoed = 0;
    auto serve = [&]() -> ringio::task<> {
        for (int i = 0; i < clients; ++i) {
            ringio::tcp_stream stream = co_await listener.accept();
            ringio::spawn(context, [](ringio::tcp_stream s) -> ringio::task<> {
                std::array<std::byte, 64> buffer{};
                for (;;) {
                    const std::size_t n = co_await s.read(buffer);
                    if (n == 0) {
                        co_return;
                    }
                    co_await s.write_all(std::span{buffer}.first(n));
                }
            }(std::move(stream)));
        }
    };
    auto client = [&](int id) -> ringio::task<> {
        ringio::tcp_stream stream(context);
        co_await stream.connect(listener.local_endpoint());
        const std::string message = "client " + std::to_string(id);
        co_await stream.write_all(message);
        std::vector<std::byte> reply(message.size());
        co_await stream.read_exact(reply);
        CHECK(text_of(reply) == message);
        ++echoed;
    };
    ringio::spawn(context, serve());
    for (int i = 0; i < clients; ++i) {
        ringio::spawn(context, client(i));
    }
    context.run();
    CHECK(echoed == clients);
}

TEST_CASE("write: an empty buffer completes at once with 0 bytes", "[tcp_stream]") {
    ringio::io_context context;
    connected_pair pair(context, endpoint::loopback_v4(0));
    auto write_nothing = [&]() -> ringio::task<std::size_t> {
        const std::size_t some = co_await pair.client.write(std::span<const std::byte>{});
        const std::size_t all = co_await pair.client.write_all(std::string_view{});
        co_return some + all;
    };
    CHECK(ringio::sync_wait(context, write_nothing()) == 0);
    // Nothing reached the peer: the next byte it reads is the first one written after.
    auto exchange = [&]() -> ringio::task<std::string> {
        co_await pair.client.write_all("x");
        std::array<std::byte, 4> buffer{};
        const std::size_t n = co_await pair.server.read(buffer);
        co_return text_of(std::span{buffer}.first(n));
    };
    CHECK(ringio::sync_wait(context, exchange()) == "x");
}

TEST_CASE("read and write: steady state allocates nothing, over TCP and a Unix stream",
          "[tcp_stream]") {
    if (!RINGIO_TEST_COUNTS_ALLOCATIONS) {
        WARN("SKIPPED: a sanitizer replaces operator new; the other builds count");
        return;
    }
    const bool over_unix = GENERATE(false, true);
    ringio::io_context context;
    ringio::testing::temp_dir dir;
    connected_pair pair(context, over_unix ? endpoint::unix_path((dir / "s").string())
                                           : endpoint::loopback_v4(0));
    long counted = -1;
    auto loop = [&]() -> ringio::task<> {
        std::array<char, 4> buffer{};
        long before = 0;
        for (int i = 0; i <= 1000; ++i) {
            if (i == 1) {
                before = ringio::testing::allocations.load(); // after a warm-up round
            }
            co_await pair.client.write_all("ping");
            co_await pair.server.read_exact(buffer);
            co_await pair.server.write(buffer);
            co_await pair.client.read_exact(buffer).with_timeout(5s);
        }
        counted = ringio::testing::allocations.load() - before;
    };
    ringio::sync_wait(context, loop());
    CHECK(counted == 0);
}

TEST_CASE("set_no_delay: turns TCP_NODELAY on and off", "[tcp_stream]") {
    ringio::io_context context;
    connected_pair pair(context, endpoint::loopback_v4(0));
    const auto no_delay = [&] {
        int value = -1;
        socklen_t size = sizeof value;
        REQUIRE(::getsockopt(pair.server.native_handle(), IPPROTO_TCP, TCP_NODELAY, &value,
                             &size) == 0);
        return value != 0;
    };
    REQUIRE_FALSE(no_delay()); // Linux's default: Nagle's algorithm on
    pair.server.set_no_delay(true);
    CHECK(no_delay());
    pair.server.set_no_delay(false);
    CHECK_FALSE(no_delay());
    pair.server.close();
    context.run();
    try {
        pair.server.set_no_delay(false);
        FAIL("set_no_delay on a closed stream succeeded");
    } catch (const std::system_error& error) {
        CHECK(error.code() == std::errc::bad_file_descriptor);
    }
}

TEST_CASE("a closed stream's operations are EBADF naming the operation and the peer",
          "[tcp_stream]") {
    ringio::io_context context;
    connected_pair pair(context, endpoint::loopback_v4(0));
    const std::string peer = pair.server.remote_endpoint().to_string();
    pair.server.close();
    context.run();
    auto read = [&]() -> ringio::task<> {
        std::array<std::byte, 8> buffer{};
        co_await pair.server.read(buffer);
    };
    auto write = [&]() -> ringio::task<> {
        co_await pair.server.write_all(bytes_of("x"));
    };
    const auto require_ebadf = [&](ringio::task<> work, const std::string& what) {
        try {
            ringio::sync_wait(context, std::move(work));
            FAIL(what << " on a closed stream succeeded");
        } catch (const std::system_error& error) {
            CHECK(error.code() == std::errc::bad_file_descriptor);
            CHECK_THAT(error.what(), Catch::StartsWith(what + ": "));
        }
    };
    require_ebadf(read(), "read from " + peer);
    require_ebadf(write(), "write_all to " + peer);
    try {
        pair.server.shutdown();
        FAIL("shutdown of a closed stream succeeded");
    } catch (const std::system_error& error) {
        CHECK(error.code() == std::errc::bad_file_descriptor);
        CHECK_THAT(error.what(), Catch::StartsWith("shutdown " + peer + ": "));
    }
    CHECK_THROWS_WITH(pair.server.set_no_delay(true),
                      Catch::StartsWith("setsockopt TCP_NODELAY " + peer));
}

TEST_CASE("destroying a stream cancels the read another coroutine waits on", "[tcp_stream]") {
    const bool throwing = GENERATE(false, true);
    const int before = ringio::testing::open_fd_count();
    std::error_code error;
    std::string message;
    std::size_t got = 99;
    {
        ringio::io_context context;
        connected_pair pair(context, endpoint::loopback_v4(0));
        auto owned = std::make_unique<ringio::tcp_stream>(std::move(pair.server));
        // The waiter outlives the stream it reads from: the error it gets must not need it.
        auto waiter = [&](ringio::tcp_stream& stream) -> ringio::task<> {
            std::array<std::byte, 8> buffer{};
            if (!throwing) {
                got = co_await stream.read(buffer).into(error);
                co_return;
            }
            try {
                got = co_await stream.read(buffer);
            } catch (const std::system_error& failure) {
                error = failure.code();
                message = failure.what();
            }
        };
        ringio::testing::destroy_while_awaited(context, std::move(owned), waiter);
    }
    CHECK(error == std::errc::operation_canceled);
    if (throwing) {
        // The stream is gone when the error is built: it is named by its number.
        CHECK_THAT(message, Catch::Matches("read fd [0-9]+: .*"));
    } else {
        CHECK(got == 0);
    }
    CHECK(ringio::testing::open_fd_count() == before);
}

// A stream that never connected has no peer: its messages name the descriptor instead of
// leaving the slot empty ("read from : Bad file descriptor").
TEST_CASE("tcp_stream: errors of a stream without a peer leave no empty slot", "[tcp_stream]") {
    ringio::io_context context;
    std::vector<std::string> messages;
    auto collect = [&messages](auto&& call) {
        try {
            call();
            messages.emplace_back("(no error)");
        } catch (const std::system_error& error) {
            messages.emplace_back(error.what());
        }
    };
    auto run = [&context](auto make) {
        ringio::sync_wait(context, [](auto body) -> ringio::task<> {
            co_await body();
        }(make));
    };
    ringio::tcp_stream stream(context);
    std::array<std::byte, 4> buffer{};
    collect([&] { run([&] { return stream.read(buffer); }); });
    collect([&] { run([&] { return stream.read_exact(buffer); }); });
    collect([&] { run([&] { return stream.write(buffer); }); });
    collect([&] { run([&] { return stream.write_all(buffer); }); });
    collect([&] { run([&] { return stream.connect(ringio::endpoint{}); }); });
    collect([&] { stream.shutdown(); });
    collect([&] { ringio::tcp_stream{context}.set_no_delay(true); });
    for (const std::string& message : messages) {
        INFO(message);
        CHECK_FALSE(ringio::testing::has_empty_slot(message));
        CHECK(message != "(no error)");
    }
}

// receive: chunks into a shared buffer_ring.

TEST_CASE("receive: delivers chunks in order, then an empty lease at the end", "[tcp_stream]") {
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 8, 64);
    accepted_pair connection(context);
    auto incoming = connection.server.receive(buffers);
    connection.send("hello, ");
    connection.send("world");
    ::shutdown(connection.client.get(), SHUT_WR);
    CHECK(ringio::sync_wait(context, drain(incoming)) == "hello, world");
    // After the end, every next() says so again without submitting anything.
    auto again = [&]() -> ringio::task<int> {
        int empty = 0;
        for (int i = 0; i < 3; ++i) {
            empty += (co_await incoming.next()).empty() ? 1 : 0;
        }
        co_return empty;
    };
    CHECK(ringio::sync_wait(context, again()) == 3);
    CHECK(context.in_flight() == 0);
    auto ready = incoming.next().operator co_await(); // ready as it is awaited: no recv armed
    CHECK(ready.await_ready());
    CHECK(ready.await_resume().empty());
    // Those next() calls queued nothing: destroying the stream has nothing to drop.
    const auto start = std::chrono::steady_clock::now();
    { auto gone = std::move(incoming); }
    CHECK(ringio::testing::elapsed_ms(start) < 1000);
}

TEST_CASE("receive: a chunk larger than a buffer arrives in several leases", "[tcp_stream]") {
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 8, 16);
    accepted_pair connection(context);
    auto incoming = connection.server.receive(buffers);
    const std::string text(100, 'x');
    connection.send(text);
    ::shutdown(connection.client.get(), SHUT_WR);
    CHECK(ringio::sync_wait(context, drain(incoming)) == text);
}

TEST_CASE("receive: a dry buffer ring loses no data", "[tcp_stream]") {
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 2, 8); // two buffers of 8 bytes
    accepted_pair connection(context);
    auto incoming = connection.server.receive(buffers, 2);
    std::string expected;
    for (int i = 0; i < 40; ++i) {
        expected += "chunk" + std::to_string(i) + ";";
    }
    connection.send(expected);
    ::shutdown(connection.client.get(), SHUT_WR);
    auto keep_both = [&]() -> ringio::task<std::string> {
        std::string all;
        std::vector<ringio::buffer_lease> held;
        for (;;) {
            // Hold both buffers for a while: the kernel runs out and stops the recv.
            ringio::buffer_lease chunk = co_await incoming.next();
            if (chunk.empty()) {
                co_return all;
            }
            all += chunk.text();
            held.push_back(std::move(chunk));
            if (held.size() == 2) {
                co_await ringio::sleep_for(context, 1ms);
                held.clear();
            }
        }
    };
    CHECK(ringio::sync_wait(context, keep_both()) == expected);
}

TEST_CASE("receive: many connections share one small ring", "[tcp_stream]") {
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 4, 32);
    ringio::tcp_listener listener(context, endpoint::loopback_v4(0));
    constexpr int connections = 50;
    int correct = 0;
    auto serve = [&]() -> ringio::task<> {
        auto incoming = listener.accept_all();
        for (int i = 0; i < connections; ++i) {
            ringio::tcp_stream stream = co_await incoming.next();
            ringio::spawn(context,
                          [](ringio::tcp_stream s, ringio::buffer_ring& b) -> ringio::task<> {
                              auto chunks = s.receive(b);
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
        co_await stream.connect(listener.local_endpoint());
        std::string message;
        for (int i = 0; i < 20; ++i) {
            message += std::to_string(id) + ":" + std::to_string(i) + ",";
        }
        co_await stream.write_all(message);
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

TEST_CASE("receive: a connection never holds more than its budget", "[tcp_stream]") {
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 8, 8);
    accepted_pair first(context);
    accepted_pair second(context);
    first.send(ringio::testing::pattern(200));
    second.send(ringio::testing::pattern(200));
    auto budgeted = first.server.receive(buffers, 3);
    std::vector<ringio::buffer_lease> first_held;
    ringio::spawn(context, hoard(budgeted, first_held));
    settle(context);
    // Three leases taken and kept: the fourth next() waits, the rest stays in the socket.
    CHECK(first_held.size() == 3);
    CHECK(unread(first.server.native_handle()) == 200 - 3 * 8);
    // The ring lent out only those three: a connection with room for all takes the other five.
    auto greedy = second.server.receive(buffers, 8);
    std::vector<ringio::buffer_lease> second_held;
    ringio::spawn(context, hoard(greedy, second_held));
    settle(context);
    CHECK(second_held.size() == 5);
    // The second gives its leases back and takes five again; the first is still held to three.
    second_held.clear();
    settle(context);
    CHECK(first_held.size() == 3);
    CHECK(second_held.size() == 5);
    // The second goes; one lease back from the first: it takes exactly one more.
    second.server.close();
    context.run();
    second_held.clear();
    first_held.erase(first_held.begin());
    settle(context);
    CHECK(first_held.size() == 3);
    CHECK(unread(first.server.native_handle()) == 200 - 4 * 8);
    first.server.close();
    context.run();
    first_held.clear();
}

TEST_CASE("receive: leases given to send count against the budget", "[tcp_stream]") {
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 8, 8);
    accepted_pair connection(context);
    connection.fill_server_side(); // every send waits for room
    auto incoming = connection.server.receive(buffers, 2);
    connection.send(ringio::testing::pattern(64));
    int echoed = 0;
    auto echo = [&]() -> ringio::task<> {
        for (;;) {
            std::error_code error;
            ringio::buffer_lease chunk = co_await incoming.next().into(error);
            if (chunk.empty()) {
                co_return;
            }
            connection.server.send(std::move(chunk));
            ++echoed;
        }
    };
    ringio::spawn(context, echo());
    settle(context);
    // Two leases are in the send queue, waiting for room: the third chunk stays in the socket.
    CHECK(echoed == 2);
    CHECK(connection.server.pending_sends() == 2);
    CHECK(unread(connection.server.native_handle()) == 64 - 2 * 8);
    connection.server.close();
    context.run();
}

TEST_CASE_METHOD(flooded,
                 "receive: stops receiving while its chunks wait untaken, and loses nothing",
                 "[tcp_stream]") {
    // One chunk taken, then none for a while: no recv is armed, the rest waits in the socket,
    // though the ring has room for all of it.
    std::string all = first();
    settle(context);
    CHECK(unread(connection.server.native_handle()) > 0);
    CHECK(context.in_flight() == 0);
    ::shutdown(connection.client.get(), SHUT_WR);
    all += ringio::sync_wait(context, drain(incoming));
    CHECK(all == expected);
}

TEST_CASE_METHOD(flooded, "receive: a consumer that comes back later gets the rest in order",
                 "[tcp_stream]") {
    ::shutdown(connection.client.get(), SHUT_WR);
    std::string all = first();
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

// Behaviour of the redesign: a recv is armed only while a consumer waits, so closing a stream
// whose consumer is busy elsewhere cancels nothing; its next() is EBADF.
TEST_CASE_METHOD(flooded,
                 "receive: closing the stream while no recv is armed ends it with EBADF at once",
                 "[tcp_stream]") {
    const std::string all = first();
    connection.server.close();
    std::error_code error;
    std::string after;
    auto consume = [&]() -> ringio::task<> {
        for (;;) {
            const ringio::buffer_lease chunk = co_await incoming.next().into(error);
            if (chunk.empty()) {
                co_return;
            }
            after += chunk.text();
        }
    };
    ringio::spawn(context, consume());
    context.run();
    CHECK(error == std::errc::bad_file_descriptor);
    CHECK(all == expected.substr(0, 8));
    CHECK(after.empty());
}

TEST_CASE("receive: starved when its stream closes, it never receives on the reused number",
          "[tcp_stream]") {
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 2, 8);
    accepted_pair connection(context);
    auto incoming = connection.server.receive(buffers, 3);
    connection.send("0123456789abcdefghijklmnop"); // more than both buffers hold
    auto held = ringio::sync_wait(context, take(incoming, 2));
    // The ring is dry: the recv has stopped and a consumer waits for the rest.
    std::error_code error;
    bool woken = false;
    auto waiter = [&]() -> ringio::task<> {
        const ringio::buffer_lease chunk = co_await incoming.next().into(error);
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
    held.clear(); // buffers come back: the starved stream is fed
    context.run();
    CHECK(woken);
    CHECK(error == std::errc::bad_file_descriptor);
    char left[4];
    CHECK(::read(pipe.read_end.get(), left, sizeof left) == 4);
}

TEST_CASE("receive: waiting for its budget when its stream closes, it is woken with EBADF",
          "[tcp_stream]") {
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 8, 8);
    accepted_pair connection(context);
    auto incoming = connection.server.receive(buffers, 2);
    connection.send("0123456789abcdefghijklmnop");
    auto held = ringio::sync_wait(context, take(incoming, 2));
    std::error_code error;
    bool woken = false;
    auto wait_more = [&]() -> ringio::task<> {
        const ringio::buffer_lease chunk = co_await incoming.next().into(error);
        woken = true;
    };
    ringio::spawn(context, wait_more());
    settle(context);
    CHECK_FALSE(woken); // at its budget: nothing armed
    connection.server.close();
    context.run();
    CHECK(woken);
    CHECK(error == std::errc::bad_file_descriptor);
    CHECK(held.size() == 2);
}

TEST_CASE_METHOD(rearmed, "receive: re-armed and closed in one loop turn, its recv is cancelled",
                 "[tcp_stream]") {
    std::error_code error;
    bool woken = false;
    auto wait_more = [&]() -> ringio::task<> {
        const ringio::buffer_lease chunk = co_await incoming.next().into(error);
        woken = true;
    };
    take_first_then(wait_more(), [&] { connection.server.close(); });
    context.run();
    CHECK(woken);
    CHECK(error == std::errc::operation_canceled); // as for a recv already in the kernel
    CHECK(context.in_flight() == 0);
}

TEST_CASE_METHOD(rearmed,
                 "receive: re-armed and cancelled in one loop turn, it takes nothing until asked",
                 "[tcp_stream]") {
    ringio::cancellation stop;
    std::error_code error;
    auto wait_more = [&]() -> ringio::task<> {
        const ringio::buffer_lease chunk = co_await incoming.next().cancel_on(stop).into(error);
    };
    take_first_then(wait_more(), [&] { stop.cancel(); });
    context.poll(); // the recv and its cancel reach the kernel
    connection.send("second");
    settle(context);
    CHECK(error == std::errc::operation_canceled);
    CHECK(unread(connection.server.native_handle()) == 6); // nobody asked: nothing armed
    auto chunk = ringio::sync_wait(context, take(incoming, 1));
    CHECK(chunk.at(0).text() == "second");
}

TEST_CASE_METHOD(rearmed, "receive: re-armed and dropped in one loop turn, it takes nothing more",
                 "[tcp_stream]") {
    auto wait_more = [&]() -> ringio::task<> {
        const ringio::buffer_lease chunk = co_await incoming.next(); // never woken: dropped
    };
    take_first_then(wait_more(), [&] { const auto gone = std::move(incoming); });
    context.poll();
    connection.send("second");
    settle(context);
    CHECK(unread(connection.server.native_handle()) == 6);
    CHECK(context.in_flight() == 0);
}

TEST_CASE("receive: a reset is an error naming the peer", "[tcp_stream]") {
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 8, 64);
    accepted_pair connection(context);
    auto incoming = connection.server.receive(buffers);
    connection.reset_client();
    try {
        ringio::sync_wait(context, drain(incoming));
        FAIL("a reset stream ended normally");
    } catch (const std::system_error& error) {
        CHECK(error.code() == std::errc::connection_reset);
        CHECK_THAT(error.what(), Catch::StartsWith("recv from 127.0.0.1:"));
    }
}

TEST_CASE("receive: closing the stream cancels the armed recv", "[tcp_stream]") {
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 8, 64);
    accepted_pair connection(context);
    auto incoming = connection.server.receive(buffers);
    std::error_code error;
    auto waiter = [&]() -> ringio::task<> {
        co_await incoming.next().into(error);
    };
    ringio::spawn(context, waiter());
    context.poll();
    connection.server.close();
    context.run();
    CHECK(error == std::errc::operation_canceled);
    // The cancellation is reported once; after it, as for accept_all and receive_from, the
    // closed stream is EBADF at once.
    ringio::sync_wait(context, waiter());
    CHECK(error == std::errc::bad_file_descriptor);
    CHECK(context.in_flight() == 0);
}

TEST_CASE("receive: steady state allocates nothing", "[tcp_stream]") {
    if (!RINGIO_TEST_COUNTS_ALLOCATIONS) {
        WARN("SKIPPED: a sanitizer replaces operator new; the other builds count");
        return;
    }
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 8, 64);
    accepted_pair connection(context);
    auto incoming = connection.server.receive(buffers);
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

TEST_CASE("receive: on a closed stream is EBADF naming the number", "[tcp_stream]") {
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 4, 64);
    accepted_pair connection(context);
    connection.server.close();
    context.run();
    auto incoming = connection.server.receive(buffers);
    try {
        ringio::sync_wait(context, drain(incoming));
        FAIL("a receive on a closed stream received");
    } catch (const std::system_error& error) {
        CHECK(error.code() == std::errc::bad_file_descriptor);
        // Once closed, a stream of receives names the descriptor by number.
        CHECK_THAT(error.what(), Catch::Matches("recv fd -?[0-9]+: .*"));
    }
    CHECK(context.in_flight() == 0);
}

TEST_CASE("receive: after the stream is closed, next() fails with EBADF at once", "[tcp_stream]") {
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 8, 64);
    accepted_pair connection(context);
    auto incoming = connection.server.receive(buffers);
    connection.server.close();
    context.run();
    std::error_code error;
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        co_await incoming.next().into(error);
    }());
    CHECK(error == std::errc::bad_file_descriptor);
    CHECK(context.in_flight() == 0);
}

// send and flush: leases sent in order without awaiting each.

TEST_CASE("send: sends each lease in order and gives its buffer back", "[tcp_stream]") {
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 8, 64);
    accepted_pair connection(context);
    auto incoming = connection.server.receive(buffers, 8);
    const std::string text = ringio::testing::pattern(200'000);
    std::size_t most_pending = 0;
    auto echo = [&]() -> ringio::task<> {
        std::size_t echoed = 0;
        std::vector<ringio::buffer_lease> batch;
        while (echoed < text.size()) {
            // Up to six chunks, sent together: they queue behind the one in flight, more than
            // the queue holds inline.
            while (batch.size() < 6 && echoed < text.size()) {
                batch.push_back(co_await incoming.next());
                echoed += batch.back().size();
            }
            for (ringio::buffer_lease& chunk : batch) {
                connection.server.send(std::move(chunk));
                most_pending = std::max(most_pending, connection.server.pending_sends());
            }
            batch.clear();
        }
        co_await connection.server.flush();
    };
    // 8 buffers carry 200 KB only if every sent one comes back.
    std::thread writer([&] { connection.send(text); });
    std::string echoed;
    std::thread reader = read_on_client(connection, echoed, text.size());
    ringio::sync_wait(context, echo());
    writer.join();
    reader.join();
    CHECK(echoed == text);
    CHECK(connection.server.pending_sends() == 0);
    CHECK(most_pending == 6);
}

TEST_CASE("send: the rest of a partly taken buffer follows it", "[tcp_stream]") {
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 4, 1 << 20);
    accepted_pair connection(context);
    auto incoming = connection.server.receive(buffers, 4);
    const std::string text = ringio::testing::pattern(3 << 20);
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
            connection.server.send(std::move(chunk));
        }
        co_await connection.server.flush();
    };
    std::string echoed;
    std::thread reader = read_on_client(connection, echoed, text.size());
    ringio::sync_wait(context, echo());
    writer.join();
    reader.join();
    CHECK(echoed.size() == text.size());
    CHECK(echoed == text);
}

TEST_CASE("send: a failed send is reported later, naming the peer", "[tcp_stream]") {
    REQUIRE(::signal(SIGPIPE, SIG_DFL) != SIG_ERR); // SIGPIPE would kill the test
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 8, 4);
    accepted_pair connection(context);
    auto incoming = connection.server.receive(buffers, 2);
    connection.send("one two three");
    auto chunks = ringio::sync_wait(context, take(incoming, 2));
    // The peer resets the connection: the next send fails with EPIPE or ECONNRESET.
    connection.reset_client();
    std::error_code error;
    auto send_until_failure = [&]() -> ringio::task<> {
        connection.server.send(std::move(chunks[0]), error);
        co_await connection.server.flush().into(error);
    };
    ringio::sync_wait(context, send_until_failure());
    REQUIRE(error);
    CHECK((error == std::errc::broken_pipe || error == std::errc::connection_reset));
    CHECK(connection.server.pending_sends() == 0);
    // The error stays: a later send reports it and leaves its lease with the caller.
    const std::error_code first = error;
    std::error_code again;
    connection.server.send(std::move(chunks[1]), again);
    CHECK(again == first);
    CHECK(chunks[1].text() == "two ");
    try {
        connection.server.send(std::move(chunks[1]));
        FAIL("a broken stream sent");
    } catch (const std::system_error& failure) {
        CHECK(failure.code() == first);
        CHECK_THAT(failure.what(), Catch::StartsWith("send to 127.0.0.1:"));
    }
    try {
        ringio::sync_wait(context, [&]() -> ringio::task<> {
            co_await connection.server.flush();
        }());
        FAIL("a broken stream flushed");
    } catch (const std::system_error& failure) {
        CHECK(failure.code() == first);
    }
}

TEST_CASE("flush: into(error) stores the error, and clears it on success", "[tcp_stream]") {
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 8, 64);
    accepted_pair connection(context);
    auto incoming = connection.server.receive(buffers);
    connection.send("echo");
    std::error_code error = std::make_error_code(std::errc::io_error);
    std::error_code sent = std::make_error_code(std::errc::io_error);
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        connection.server.send(co_await incoming.next(), sent);
        co_await connection.server.flush().into(error);
    }());
    CHECK_FALSE(sent);
    CHECK_FALSE(error);
    char reply[4];
    CHECK(::recv(connection.client.get(), reply, sizeof reply, MSG_WAITALL) == 4);
    // An error is stored, not thrown.
    connection.send("more");
    ringio::buffer_lease chunk = ringio::sync_wait(
        context,
        [](ringio::multishot<ringio::buffer_lease>& r) -> ringio::task<ringio::buffer_lease> {
            co_return co_await r.next();
        }(incoming));
    connection.server.close();
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        connection.server.send(std::move(chunk), sent);
        co_await connection.server.flush().into(error);
    }());
    CHECK(sent == std::errc::bad_file_descriptor);
    CHECK(error == std::errc::bad_file_descriptor);
}

TEST_CASE("send: on a closed stream is EBADF, and the lease stays", "[tcp_stream]") {
    // Whether or not the stream had sent anything before it was closed.
    const bool sent_before = GENERATE(false, true);
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 8, 64);
    accepted_pair connection(context);
    auto incoming = connection.server.receive(buffers, 2);
    const std::string peer = connection.server.remote_endpoint().to_string();
    connection.send("sentkept");
    auto chunks = ringio::sync_wait(context, take(incoming, 1));
    REQUIRE(chunks[0].text() == "sentkept");
    if (sent_before) {
        connection.send("first");
        ringio::sync_wait(context, [&]() -> ringio::task<> {
            connection.server.send(co_await incoming.next());
            co_await connection.server.flush();
        }());
    }
    connection.server.close();
    context.run();
    try {
        connection.server.send(std::move(chunks[0]));
        FAIL("sent on a closed stream");
    } catch (const std::system_error& error) {
        CHECK(error.code() == std::errc::bad_file_descriptor);
        CHECK_THAT(error.what(), Catch::StartsWith("send to " + peer + ": "));
    }
    CHECK(chunks[0].text() == "sentkept");
    CHECK(connection.server.pending_sends() == 0);
    CHECK(context.in_flight() == 0);
}

TEST_CASE("send: closing the stream cancels a send that waits for room", "[tcp_stream]") {
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 4, 64);
    accepted_pair connection(context);
    auto incoming = connection.server.receive(buffers);
    connection.send("abcdefgh");
    auto chunks = ringio::sync_wait(context, take(incoming, 1));
    connection.fill_server_side();
    std::error_code error;
    auto flush = [&]() -> ringio::task<> {
        connection.server.send(std::move(chunks[0]), error);
        co_await connection.server.flush().into(error);
    };
    ringio::spawn(context, flush());
    context.poll();
    CHECK(connection.server.pending_sends() == 1);
    connection.server.close();
    context.run();
    CHECK(error == std::errc::operation_canceled);
    CHECK(connection.server.pending_sends() == 0);
}

TEST_CASE("send: closing or destroying the stream gives back the buffers it holds",
          "[tcp_stream]") {
    const bool destroy = GENERATE(false, true);
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 4, 8);
    {
        auto connection = std::make_unique<accepted_pair>(context);
        auto incoming = connection->server.receive(buffers, 4);
        connection->send("0123456789abcdefghijklmnopqrstuv"); // four full buffers
        auto chunks = ringio::sync_wait(context, take(incoming, 4));
        connection->fill_server_side();
        for (ringio::buffer_lease& chunk : chunks) {
            connection->server.send(std::move(chunk));
        }
        CHECK(connection->server.pending_sends() == 4); // one waits for room, three queued
        if (destroy) {
            connection.reset();
        } else {
            connection->server.close();
        }
        context.run();
    }
    // A new stream can hold all four buffers at once: none was lost.
    accepted_pair second(context);
    auto incoming = second.server.receive(buffers, 4);
    second.send("ABCDEFGHIJKLMNOPQRSTUVWXYZ012345");
    const auto chunks = ringio::sync_wait(context, take(incoming, 4));
    std::string all;
    for (const ringio::buffer_lease& chunk : chunks) {
        all += chunk.text();
    }
    CHECK(all == "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345");
}

TEST_CASE("flush: with nothing pending completes at once", "[tcp_stream]") {
    ringio::io_context context;
    accepted_pair connection(context);
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        co_await connection.server.flush();
    }());
    CHECK(context.in_flight() == 0);
    CHECK(connection.server.pending_sends() == 0);
}

TEST_CASE("send: destroying the context with a send in flight is safe", "[tcp_stream]") {
    ringio::detail::unique_fd client; // kept open: closing it would reset the connection
    auto context = std::make_unique<ringio::io_context>();
    ringio::buffer_ring buffers(*context, 4, 64);
    bool resumed = false;
    auto stuck = [](ringio::tcp_stream stream, ringio::buffer_lease chunk,
                    bool& after) -> ringio::task<> {
        stream.send(std::move(chunk));
        co_await stream.flush();
        after = true;
    };
    {
        accepted_pair connection(*context);
        std::vector<ringio::buffer_lease> chunks;
        {
            auto incoming = connection.server.receive(buffers);
            connection.send("stuck");
            chunks = ringio::sync_wait(*context, take(incoming, 1));
        }
        connection.fill_server_side();
        ringio::spawn(*context, stuck(std::move(connection.server), std::move(chunks[0]), resumed));
        context->poll();
        client = std::move(connection.client);
    }
    // The context cancels the send, drains, then destroys the waiting frame and its stream.
    context.reset();
    CHECK_FALSE(resumed);
}

TEST_CASE("send: steady state allocates nothing", "[tcp_stream]") {
    if (!RINGIO_TEST_COUNTS_ALLOCATIONS) {
        WARN("SKIPPED: a sanitizer replaces operator new; the other builds count");
        return;
    }
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 8, 64);
    accepted_pair connection(context);
    auto incoming = connection.server.receive(buffers);
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
            connection.server.send(co_await incoming.next());
            co_await connection.server.flush();
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

// Unix streams: the same class over AF_UNIX.

namespace {

// A Unix address of each kind, unique to this test.
endpoint unix_address(bool abstract, const ringio::testing::temp_dir& dir, std::string_view name) {
    return abstract ? endpoint::unix_abstract("ringio-stream-test-" + std::to_string(::getpid()) +
                                              "-" + std::string(name))
                    : endpoint::unix_path((dir / name).string());
}

} // namespace

TEST_CASE("connect: reaches a Unix listener by path and by abstract name; bytes cross both ways",
          "[tcp_stream]") {
    ringio::io_context context;
    ringio::testing::temp_dir dir;
    const bool abstract = GENERATE(false, true);
    const endpoint where = unix_address(abstract, dir, "connect");
    connected_pair pair(context, where);
    CHECK(pair.client.remote_endpoint() == where);
    CHECK(pair.server.local_endpoint() == where);
    CHECK(pair.server.remote_endpoint().to_string() == "unix:"); // the client never bound
    CHECK(pair.client.local_endpoint().to_string() == "unix:");
    CHECK((::fcntl(pair.client.native_handle(), F_GETFD) & FD_CLOEXEC) != 0);
    std::string at_server;
    std::string at_client;
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        std::array<char, 5> buffer{};
        co_await pair.client.write_all("hello");
        co_await pair.server.read_exact(buffer);
        at_server.assign(buffer.data(), buffer.size());
        co_await pair.server.write_all("world");
        co_await pair.client.read_exact(buffer);
        at_client.assign(buffer.data(), buffer.size());
        pair.client.shutdown();
        CHECK(co_await pair.server.read(buffer) == 0); // the end of the stream
    }());
    CHECK(at_server == "hello");
    CHECK(at_client == "world");
}

TEST_CASE("receive and send: a Unix stream echoes through leases", "[tcp_stream]") {
    ringio::io_context context;
    ringio::testing::temp_dir dir;
    const bool abstract = GENERATE(false, true);
    connected_pair pair(context, unix_address(abstract, dir, "echo"));
    ringio::buffer_ring buffers(context, 8, 16);
    const std::string message = ringio::testing::pattern(200);
    std::string echoed;
    auto echo = [&]() -> ringio::task<> {
        auto chunks = pair.server.receive(buffers);
        for (;;) {
            ringio::buffer_lease chunk = co_await chunks.next();
            if (chunk.empty()) {
                break;
            }
            pair.server.send(std::move(chunk));
        }
        co_await pair.server.flush();
        pair.server.shutdown();
    };
    auto client = [&]() -> ringio::task<> {
        co_await pair.client.write_all(message);
        pair.client.shutdown();
        std::array<char, 64> buffer{};
        for (;;) {
            const std::size_t n = co_await pair.client.read(buffer);
            if (n == 0) {
                break;
            }
            echoed.append(buffer.data(), n);
        }
    };
    ringio::spawn(context, echo());
    ringio::spawn(context, client());
    context.run();
    CHECK(echoed == message);
}

TEST_CASE("connect: a Unix address nobody listens on is refused, naming it", "[tcp_stream]") {
    ringio::io_context context;
    ringio::testing::temp_dir dir;
    const auto missing = endpoint::unix_path((dir / "missing").string());
    const auto nobody = unix_address(true, dir, "nobody");
    std::vector<std::string> messages;
    std::vector<std::error_code> errors;
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        for (const endpoint& target : {missing, nobody}) {
            ringio::tcp_stream stream(context);
            try {
                co_await stream.connect(target);
            } catch (const std::system_error& error) {
                messages.emplace_back(error.what());
                errors.push_back(error.code());
            }
        }
    }());
    REQUIRE(errors.size() == 2);
    CHECK(errors[0] == std::errc::no_such_file_or_directory);
    CHECK(messages[0] == "connect " + missing.to_string() + ": No such file or directory");
    CHECK(errors[1] == std::errc::connection_refused);
    CHECK(messages[1] == "connect " + nobody.to_string() + ": Connection refused");
}

TEST_CASE("tcp_stream: keeps an IP peer inline and a long Unix path apart, through moves",
          "[tcp_stream]") {
    // Every connection's frame holds its stream: the address inside costs 40 bytes, not the
    // 128 of a sockaddr_storage.
    STATIC_REQUIRE(sizeof(ringio::tcp_stream) <= 112);
    ringio::io_context context;
    ringio::testing::temp_dir dir;
    const endpoint long_path = endpoint::unix_path((dir / std::string(60, 'p')).string());
    for (const endpoint& where : {endpoint::loopback_v6(0), long_path}) {
        connected_pair pair(context, where);
        const endpoint peer = pair.client.remote_endpoint();
        CHECK(peer == pair.listener.local_endpoint());
        ringio::tcp_stream moved(std::move(pair.client));
        ringio::tcp_stream again(context);
        again = std::move(moved);
        CHECK(again.remote_endpoint() == peer);
        CHECK(moved.remote_endpoint().empty()); // NOLINT(bugprone-use-after-move): it says so
        std::string message;
        ringio::sync_wait(context, [&]() -> ringio::task<> {
            std::array<char, 4> buffer{};
            std::error_code error;
            co_await again.read(buffer).with_timeout(1ms).into(error);
            message = error.message();
            try {
                co_await again.read(buffer).with_timeout(1ms);
            } catch (const std::system_error& failure) {
                message = failure.what();
            }
        }());
        CHECK(message == "read from " + peer.to_string() + ": Timer expired");
    }
}

TEST_CASE("tcp_stream: errors name a Unix peer by its address, or by number when it is unnamed",
          "[tcp_stream]") {
    REQUIRE(::signal(SIGPIPE, SIG_DFL) != SIG_ERR); // a send without MSG_NOSIGNAL would end it
    ringio::io_context context;
    ringio::testing::temp_dir dir;
    const endpoint where = endpoint::unix_path((dir / "named").string());
    connected_pair pair(context, where);
    const std::string server_fd = "fd " + std::to_string(pair.server.native_handle());
    std::vector<std::string> client_messages;
    std::vector<std::string> server_messages;
    const auto collect = [](std::vector<std::string>& into, auto&& call) {
        try {
            call();
            into.emplace_back("(no error)");
        } catch (const std::system_error& error) {
            into.emplace_back(error.what());
        }
    };
    const auto timed_out_read = [&](ringio::tcp_stream& stream) {
        ringio::sync_wait(context, [&]() -> ringio::task<> {
            std::array<char, 4> buffer{};
            co_await stream.read(buffer).with_timeout(1ms);
        }());
    };
    collect(client_messages, [&] { timed_out_read(pair.client); });
    collect(client_messages, [&] { pair.client.set_no_delay(true); });
    collect(client_messages, [&] { pair.client.shutdown(99); });
    collect(server_messages, [&] { timed_out_read(pair.server); });
    collect(server_messages, [&] { pair.server.set_no_delay(true); });
    collect(server_messages, [&] { pair.server.shutdown(99); });
    // A send that fails: the peer has gone.
    ringio::buffer_ring buffers(context, 8, 16);
    auto chunks = pair.server.receive(buffers);
    collect(server_messages, [&] {
        ringio::sync_wait(context, [&]() -> ringio::task<> {
            co_await pair.client.write_all("bye");
            ringio::buffer_lease chunk = co_await chunks.next();
            pair.client.close();
            co_await ringio::sleep_for(context, 1ms); // the close has run
            pair.server.send(std::move(chunk));
            co_await pair.server.flush();
        }());
    });
    CHECK(client_messages ==
          std::vector<std::string>{"read from " + where.to_string() + ": Timer expired",
                                   "setsockopt TCP_NODELAY " + where.to_string() +
                                       ": Operation not supported",
                                   "shutdown " + where.to_string() + ": Invalid argument"});
    REQUIRE(server_messages.size() == 4);
    CHECK(server_messages[0] == "read " + server_fd + ": Timer expired");
    CHECK(server_messages[1] ==
          "setsockopt TCP_NODELAY " + server_fd + ": Operation not supported");
    CHECK(server_messages[2] == "shutdown " + server_fd + ": Invalid argument");
    CHECK_THAT(server_messages[3], Catch::StartsWith("send " + server_fd + ": "));
}

TEST_CASE("send: the errors of a stream adopted without a peer name it by number", "[tcp_stream]") {
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 8, 16);
    accepted_pair connection(context);
    auto chunks = connection.server.receive(buffers);
    connection.send("bye");
    auto chunk = ringio::sync_wait(context, take(chunks, 1));
    ringio::tcp_stream adopted(context, ::dup(connection.server.native_handle()), endpoint{});
    const std::string number = "fd " + std::to_string(adopted.native_handle());
    connection.reset_client();
    std::string message;
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        try {
            adopted.send(std::move(chunk[0]));
            co_await adopted.flush();
        } catch (const std::system_error& error) {
            message = error.what();
        }
    }());
    CHECK_THAT(message, Catch::StartsWith("send " + number + ": "));
}

TEST_CASE("set_no_delay: the error_code form clears the error on success and never throws",
          "[tcp_stream]") {
    ringio::io_context context;
    connected_pair pair(context, endpoint::loopback_v4(0));
    const auto no_delay = [&] {
        int value = -1;
        socklen_t size = sizeof value;
        REQUIRE(::getsockopt(pair.server.native_handle(), IPPROTO_TCP, TCP_NODELAY, &value,
                             &size) == 0);
        return value != 0;
    };
    std::error_code error = std::make_error_code(std::errc::io_error);
    pair.server.set_no_delay(true, error);
    CHECK_FALSE(error);
    CHECK(no_delay());
    error = std::make_error_code(std::errc::io_error);
    pair.server.set_no_delay(false, error);
    CHECK_FALSE(error);
    CHECK_FALSE(no_delay());

    ringio::testing::temp_dir dir;
    connected_pair unix_pair(context, endpoint::unix_path((dir / "s").string()));
    unix_pair.client.set_no_delay(true, error);
    CHECK(error == std::errc::operation_not_supported);

    pair.server.close();
    context.run();
    pair.server.set_no_delay(true, error);
    CHECK(error == std::errc::bad_file_descriptor);
}

TEST_CASE("close: an operation made before and awaited after the stream connected again, on "
          "the same number, fails with EBADF and touches nothing",
          "[tcp_stream]") {
    ringio::io_context context;
    ringio::tcp_listener listener(context, endpoint::loopback_v4(0));
    ringio::tcp_stream client(context);
    ringio::tcp_stream first_server(context);
    ringio::tcp_stream second_server(context);
    std::array<char, 4> buffer{};
    std::error_code read_error;
    std::error_code write_error;
    int old_fd = -1;
    int new_fd = -2;
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        co_await client.connect(listener.local_endpoint());
        first_server = co_await listener.accept();
        old_fd = client.native_handle();
        auto read = client.read(buffer);
        auto write = client.write("late");
        client.close();
        co_await ringio::sleep_for(context, 1ms); // the close has run: the number is free
        co_await client.connect(listener.local_endpoint());
        new_fd = client.native_handle();
        second_server = co_await listener.accept();
        co_await second_server.write_all("mine");
        co_await read.into(read_error);
        co_await write.into(write_error);
        co_await ringio::sleep_for(context, 5ms); // a stray write would have arrived by now
    }());
    CHECK(new_fd == old_fd); // the case that a check of the number alone would miss
    CHECK(read_error == std::errc::bad_file_descriptor);
    CHECK(write_error == std::errc::bad_file_descriptor);
    CHECK(unread(client.native_handle()) == 4); // "mine" is still there for the new stream
    CHECK(unread(second_server.native_handle()) == 0);
    CHECK(unread(first_server.native_handle()) == 0);
}
