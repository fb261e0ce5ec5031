#include <ringio/tcp_listener.hpp>

#include <ringio/io_context.hpp>
#include <ringio/task.hpp>
#include <ringio/tcp_stream.hpp>
#include <ringio/timer.hpp>

#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/resource.h>

#include <array>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

using namespace std::chrono_literals;
using ringio::endpoint;
using ringio::testing::blocking_connect;
using ringio::testing::open_fd_count;

TEST_CASE("tcp_listener: port 0 gives a real port", "[tcp_listener]") {
    ringio::io_context context;
    ringio::tcp_listener listener(context, endpoint::loopback_v4(0));
    CHECK(listener.address().port() != 0);
    CHECK(listener.address() == listener.local_endpoint());
    CHECK((::fcntl(listener.native_handle(), F_GETFD) & FD_CLOEXEC) != 0);
}

TEST_CASE("tcp_listener: a port in use is an error naming the address", "[tcp_listener]") {
    ringio::io_context context;
    ringio::tcp_listener first(context, endpoint::loopback_v4(0));
    try {
        ringio::tcp_listener second(context, first.address());
        FAIL("listened twice on one port");
    } catch (const std::system_error& error) {
        CHECK(error.code() == std::errc::address_in_use);
        CHECK_THAT(error.what(), Catch::Contains(first.address().to_string()));
    }
}

TEST_CASE("tcp_listener: reuse_port lets two listeners share a port", "[tcp_listener]") {
    ringio::io_context context;
    ringio::tcp_listener first(context, endpoint::loopback_v4(0), {.reuse_port = true});
    ringio::tcp_listener second(context, first.address(), {.reuse_port = true});
    CHECK(second.address() == first.address());
}

TEST_CASE("accept: gives the stream and the peer's address", "[tcp_listener]") {
    ringio::io_context context;
    ringio::tcp_listener listener(context, endpoint::loopback_v4(0));
    const auto client = blocking_connect(listener.address());
    ringio::accepted got = ringio::sync_wait(context, [&]() -> ringio::task<ringio::accepted> {
        co_return co_await listener.accept();
    }());
    sockaddr_storage local{};
    socklen_t size = sizeof local;
    REQUIRE(::getsockname(client.get(), reinterpret_cast<sockaddr*>(&local), &size) == 0);
    CHECK(got.peer == endpoint(reinterpret_cast<const sockaddr*>(&local), size));
    CHECK(got.stream.remote_endpoint() == got.peer);
    CHECK((::fcntl(got.stream.native_handle(), F_GETFD) & FD_CLOEXEC) != 0);
}

TEST_CASE("accept: running out of descriptors is an error the server survives", "[tcp_listener]") {
    ringio::io_context context;
    ringio::tcp_listener listener(context, endpoint::loopback_v4(0));
    const auto first = blocking_connect(listener.address());
    const auto second = blocking_connect(listener.address());

    auto exhausted = std::make_optional<ringio::testing::descriptor_exhaustion>();
    std::error_code error;
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        co_await listener.accept(error);
    }());
    exhausted.reset();
    CHECK(error == std::errc::too_many_files_open);

    // With descriptors free again, the connections still queued are accepted.
    auto accept_two = [&]() -> ringio::task<int> {
        int count = 0;
        for (int i = 0; i < 2; ++i) {
            auto got = co_await listener.accept();
            count += got.stream.is_open() ? 1 : 0;
        }
        co_return count;
    };
    CHECK(ringio::sync_wait(context, accept_two()) == 2);
}

TEST_CASE("accept: the error names the listener", "[tcp_listener]") {
    ringio::io_context context;
    ringio::tcp_listener listener(context, endpoint::loopback_v4(0));
    const std::string where = listener.address().to_string();
    auto cancelled = [&]() -> ringio::task<> {
        auto op = listener.accept();
        ringio::spawn(context,
                      [](ringio::io_context& ctx, ringio::accept_operation& a) -> ringio::task<> {
                          co_await ringio::sleep_for(ctx, 1ms);
                          a.cancel();
                      }(context, op));
        co_await op;
    };
    try {
        ringio::sync_wait(context, cancelled());
        FAIL("a cancelled accept succeeded");
    } catch (const std::system_error& error) {
        CHECK(error.code() == std::errc::operation_canceled);
        CHECK(std::string(error.what()).rfind("accept on " + where, 0) == 0);
    }
}

TEST_CASE("accept: a timeout completes it with ETIME and the listener goes on", "[tcp_listener]") {
    ringio::io_context context;
    ringio::tcp_listener listener(context, endpoint::loopback_v4(0));
    std::error_code error;
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        co_await listener.accept(error).with_timeout(10ms);
    }());
    CHECK(error.value() == ETIME);
    const auto client = blocking_connect(listener.address());
    auto got = ringio::sync_wait(context, [&]() -> ringio::task<ringio::accepted> {
        co_return co_await listener.accept().with_timeout(5s);
    }());
    CHECK(got.stream.is_open());
}

TEST_CASE("accept: destroying the context with accepts pending leaks nothing", "[tcp_listener]") {
    const int before = open_fd_count();
    {
        ringio::io_context context;
        ringio::tcp_listener listener(context, endpoint::loopback_v4(0));
        for (int i = 0; i < 4; ++i) {
            ringio::spawn(context, [](ringio::tcp_listener& l) -> ringio::task<> {
                auto got = co_await l.accept();
                std::array<std::byte, 8> buffer{};
                co_await got.stream.read(buffer); // the client never writes
            }(listener));
        }
        const auto client = blocking_connect(listener.address());
        context.poll();
        context.poll();
    }
    CHECK(open_fd_count() == before);
}

TEST_CASE("accept: on a closed listener is EBADF naming the listener", "[tcp_listener]") {
    ringio::io_context context;
    ringio::tcp_listener listener(context, endpoint::loopback_v4(0));
    const std::string where = listener.address().to_string();
    listener.close();
    context.run();
    try {
        ringio::sync_wait(context, [](ringio::tcp_listener& l) -> ringio::task<> {
            co_await l.accept();
        }(listener));
        FAIL("accept on a closed listener succeeded");
    } catch (const std::system_error& error) {
        CHECK(error.code() == std::errc::bad_file_descriptor);
        CHECK_THAT(error.what(), Catch::StartsWith("accept on " + where + ": "));
    }
}

TEST_CASE("accept: destroying the listener cancels the accept another coroutine waits on",
          "[tcp_listener]") {
    const int before = open_fd_count();
    std::error_code error;
    std::string message;
    std::string where;
    {
        ringio::io_context context;
        auto owned = std::make_unique<ringio::tcp_listener>(context, endpoint::loopback_v4(0));
        where = owned->address().to_string();
        // The waiter outlives the listener: the error it gets must not need it.
        auto waiter = [&](ringio::tcp_listener& listener) -> ringio::task<> {
            try {
                co_await listener.accept();
            } catch (const std::system_error& failure) {
                error = failure.code();
                message = failure.what();
            }
        };
        ringio::testing::destroy_while_awaited(context, std::move(owned), waiter);
    }
    CHECK(error == std::errc::operation_canceled);
    CHECK_THAT(message, Catch::StartsWith("accept on " + where + ": "));
    CHECK(open_fd_count() == before);
}

TEST_CASE("tcp_listener: an empty endpoint is named in the error", "[tcp_listener]") {
    ringio::io_context context;
    try {
        ringio::tcp_listener listener(context, ringio::endpoint{});
        FAIL("listened on an empty endpoint");
    } catch (const std::system_error& error) {
        INFO(error.what());
        CHECK_FALSE(ringio::testing::has_empty_slot(error.what()));
        CHECK_THAT(error.what(), Catch::Contains("an empty endpoint"));
    }
}
