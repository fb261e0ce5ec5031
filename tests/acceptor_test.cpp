#include <ringio/acceptor.hpp>

#include <ringio/io_context.hpp>
#include <ringio/task.hpp>
#include <ringio/tcp_listener.hpp>

#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/resource.h>

#include <optional>
#include <system_error>
#include <vector>

using ringio::endpoint;
using ringio::testing::blocking_connect;
using ringio::testing::open_fd_count;

TEST_CASE("acceptor: one submission accepts many connections", "[acceptor]") {
    ringio::io_context context;
    ringio::tcp_listener listener(context, endpoint::loopback_v4(0));
    ringio::acceptor incoming(listener);
    std::vector<ringio::detail::unique_fd> clients;
    for (int i = 0; i < 10; ++i) {
        clients.push_back(blocking_connect(listener.address()));
    }
    auto take = [&]() -> ringio::task<std::vector<ringio::accepted>> {
        std::vector<ringio::accepted> all;
        for (int i = 0; i < 10; ++i) {
            all.push_back(co_await incoming.next());
            // Still the one multishot accept: nothing else is in flight.
            CHECK(context.in_flight() == 1);
        }
        co_return all;
    };
    const auto all = ringio::sync_wait(context, take());
    for (std::size_t i = 0; i < all.size(); ++i) {
        CHECK(all[i].stream.is_open());
        CHECK(all[i].peer.port() != 0);
        CHECK(all[i].peer == all[i].stream.remote_endpoint());
        CHECK((::fcntl(all[i].stream.native_handle(), F_GETFD) & FD_CLOEXEC) != 0);
    }
}

TEST_CASE("acceptor: running out of descriptors is reported and then survived", "[acceptor]") {
    ringio::io_context context;
    ringio::tcp_listener listener(context, endpoint::loopback_v4(0));
    ringio::acceptor incoming(listener);
    const auto first = blocking_connect(listener.address());
    auto exhausted = std::make_optional<ringio::testing::descriptor_exhaustion>();
    std::error_code error;
    auto attempt = [&]() -> ringio::task<bool> {
        co_return (co_await incoming.next(error)).stream.is_open();
    };
    const bool opened = ringio::sync_wait(context, attempt());
    exhausted.reset();
    CHECK_FALSE(opened);
    CHECK(error == std::errc::too_many_files_open);
    // The multishot accept ended with the error; the next call arms it again.
    CHECK(ringio::sync_wait(context, attempt()));
    CHECK_FALSE(error);
}

TEST_CASE("acceptor: destroying it closes connections it had queued", "[acceptor]") {
    const int before = open_fd_count();
    {
        ringio::io_context context;
        ringio::tcp_listener listener(context, endpoint::loopback_v4(0));
        std::vector<ringio::detail::unique_fd> clients;
        {
            ringio::acceptor incoming(listener);
            auto first = [&]() -> ringio::task<> {
                co_await incoming.next();
            };
            clients.push_back(blocking_connect(listener.address()));
            ringio::sync_wait(context, first());
            for (int i = 0; i < 5; ++i) {
                clients.push_back(blocking_connect(listener.address()));
            }
            context.poll(); // the armed accept takes them into its queue
            context.poll();
        }
        context.poll();
    }
    CHECK(open_fd_count() == before);
}

TEST_CASE("acceptor: closing the listener ends it with ECANCELED", "[acceptor]") {
    ringio::io_context context;
    ringio::tcp_listener listener(context, endpoint::loopback_v4(0));
    ringio::acceptor incoming(listener);
    std::error_code error;
    auto waiter = [&]() -> ringio::task<> {
        co_await incoming.next(error);
    };
    ringio::spawn(context, waiter());
    context.poll();
    listener.close();
    context.run();
    CHECK(error == std::errc::operation_canceled);
}

TEST_CASE("acceptor: on a closed listener is EBADF naming the listener", "[acceptor]") {
    ringio::io_context context;
    ringio::tcp_listener listener(context, endpoint::loopback_v4(0));
    const std::string where = listener.address().to_string();
    listener.close();
    context.run();
    ringio::acceptor incoming(listener);
    try {
        ringio::sync_wait(context, [](ringio::acceptor& a) -> ringio::task<> {
            co_await a.next();
        }(incoming));
        FAIL("an acceptor on a closed listener accepted");
    } catch (const std::system_error& error) {
        CHECK(error.code() == std::errc::bad_file_descriptor);
        CHECK_THAT(error.what(), Catch::StartsWith("accept on " + where + ": "));
    }
}

TEST_CASE("acceptor: after the listener is closed, next() fails with EBADF at once", "[acceptor]") {
    ringio::io_context context;
    ringio::tcp_listener listener(context, endpoint::loopback_v4(0));
    ringio::acceptor incoming(listener);
    listener.close();
    context.run();
    // The number is free now; a new socket may take it. Arming on it would be a stale accept.
    ringio::tcp_listener other(context, endpoint::loopback_v4(0));
    std::error_code error;
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        co_await incoming.next(error);
    }());
    CHECK(error == std::errc::bad_file_descriptor);
    CHECK(context.in_flight() == 0);
}

TEST_CASE("acceptor: several coroutines share one, and closing wakes them all", "[acceptor]") {
    ringio::io_context context;
    ringio::tcp_listener listener(context, endpoint::loopback_v4(0));
    ringio::acceptor incoming(listener);
    std::vector<ringio::tcp_stream> taken;
    std::vector<std::error_code> endings;
    auto worker = [&]() -> ringio::task<> {
        for (;;) {
            std::error_code error;
            auto [stream, peer] = co_await incoming.next(error);
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
        clients.push_back(blocking_connect(listener.address()));
    }
    while (taken.size() < clients.size()) {
        context.run_once();
    }
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
