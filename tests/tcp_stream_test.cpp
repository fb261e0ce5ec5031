#include <ringio/tcp_stream.hpp>

#include <ringio/io_context.hpp>
#include <ringio/task.hpp>
#include <ringio/tcp_listener.hpp>
#include <ringio/timer.hpp>

#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>

#include <array>
#include <chrono>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

using namespace std::chrono_literals;
using ringio::endpoint;
using ringio::testing::bytes_of;
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
            co_await client.connect(listener.address());
        };
        auto accept = [&]() -> ringio::task<> {
            server = (co_await listener.accept()).stream;
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
    return probe.address();
}

} // namespace

TEST_CASE("connect: reaches a listener over IPv4 and IPv6", "[tcp_stream]") {
    const bool v6 = GENERATE(false, true);
    if (v6 && !ringio::testing::has_ipv6_loopback()) {
        WARN("SKIPPED: no IPv6 loopback on this machine");
        return;
    }
    ringio::io_context context;
    connected_pair pair(context, v6 ? endpoint::loopback_v6(0) : endpoint::loopback_v4(0));
    CHECK(pair.client.remote_endpoint() == pair.listener.address());
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
            co_await stream.connect(deaf.address(), error).with_timeout(200ms);
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
        context, ringio::connect(context, "127.0.0.1", std::to_string(listener.address().port())));
    CHECK(stream.remote_endpoint() == listener.address());
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

TEST_CASE("read: zero means the peer closed its side", "[tcp_stream]") {
    ringio::io_context context;
    connected_pair pair(context, endpoint::loopback_v4(0));
    pair.client.shutdown(ringio::shutdown_how::send);
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
    const linger abort_on_close{1, 0};
    REQUIRE(::setsockopt(pair.client.native_handle(), SOL_SOCKET, SO_LINGER, &abort_on_close,
                         sizeof abort_on_close) == 0);
    pair.client.close();
    context.run();
    std::error_code error;
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        std::array<std::byte, 8> buffer{};
        co_await pair.server.read(buffer, error);
    }());
    CHECK(error == std::errc::connection_reset);
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
            co_await pair.server.write_all(data, error);
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
        co_await pair.server.read(std::span<std::byte>{}, error);
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
        co_await pair.server.read_exact(buffer, error);
    }());
    CHECK(error.value() == ENODATA);
}

TEST_CASE("close: cancels a pending read; the descriptor number is reused safely", "[tcp_stream]") {
    ringio::io_context context;
    connected_pair pair(context, endpoint::loopback_v4(0));
    std::error_code error;
    auto waiter = [&]() -> ringio::task<> {
        std::array<std::byte, 8> buffer{};
        co_await pair.server.read(buffer, error);
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

TEST_CASE("read and write: many connections are served at once", "[tcp_stream]") {
    ringio::io_context context;
    ringio::tcp_listener listener(context, endpoint::loopback_v4(0));
    constexpr int clients = 200;
    int echoed = 0;
    auto serve = [&]() -> ringio::task<> {
        for (int i = 0; i < clients; ++i) {
            auto [stream, peer] = co_await listener.accept();
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
        co_await stream.connect(listener.address());
        const std::string message = "client " + std::to_string(id);
        co_await stream.write_all(bytes_of(message));
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
        const std::size_t all = co_await pair.client.write_all(std::span<const std::byte>{});
        co_return some + all;
    };
    CHECK(ringio::sync_wait(context, write_nothing()) == 0);
    // Nothing reached the peer: the next byte it reads is the first one written after.
    auto exchange = [&]() -> ringio::task<std::string> {
        co_await pair.client.write_all(bytes_of("x"));
        std::array<std::byte, 4> buffer{};
        const std::size_t n = co_await pair.server.read(buffer);
        co_return text_of(std::span{buffer}.first(n));
    };
    CHECK(ringio::sync_wait(context, exchange()) == "x");
}

TEST_CASE("set_no_delay: turns TCP_NODELAY on and off, in both forms", "[tcp_stream]") {
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
    std::error_code error = std::make_error_code(std::errc::io_error);
    pair.server.set_no_delay(true, error);
    CHECK_FALSE(error); // cleared on success
    CHECK(no_delay());
    pair.server.close();
    context.run();
    pair.server.set_no_delay(false, error);
    CHECK(error == std::errc::bad_file_descriptor);
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
    std::string peer;
    {
        ringio::io_context context;
        connected_pair pair(context, endpoint::loopback_v4(0));
        peer = pair.server.remote_endpoint().to_string();
        auto owned = std::make_unique<ringio::tcp_stream>(std::move(pair.server));
        // The waiter outlives the stream it reads from: the error it gets must not need it.
        auto waiter = [&](ringio::tcp_stream& stream) -> ringio::task<> {
            std::array<std::byte, 8> buffer{};
            if (!throwing) {
                got = co_await stream.read(buffer, error);
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
        CHECK_THAT(message, Catch::StartsWith("read from " + peer + ": "));
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
