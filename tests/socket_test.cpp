#include <ringio/socket.hpp>

#include <ringio/io_context.hpp>
#include <ringio/task.hpp>
#include <ringio/tcp_listener.hpp>
#include <ringio/tcp_stream.hpp>
#include <ringio/udp_socket.hpp>

#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <string>
#include <system_error>
#include <vector>

using ringio::endpoint;

namespace {

int option(int fd, int level, int name) {
    int value = -1;
    socklen_t size = sizeof value;
    REQUIRE(::getsockopt(fd, level, name, &value, &size) == 0);
    return value;
}

} // namespace

TEST_CASE("socket_options: the defaults", "[socket]") {
    const ringio::socket_options defaults;
    CHECK_FALSE(defaults.reuse_port);
    CHECK_FALSE(defaults.v6_only);
    CHECK(defaults.backlog == SOMAXCONN);
}

TEST_CASE("open: a listener reuses addresses and listens", "[socket]") {
    ringio::io_context context;
    ringio::tcp_listener listener(context, endpoint::loopback_v4(0));
    CHECK(option(listener.native_handle(), SOL_SOCKET, SO_REUSEADDR) != 0);
    CHECK(option(listener.native_handle(), SOL_SOCKET, SO_REUSEPORT) == 0);
    CHECK(option(listener.native_handle(), SOL_SOCKET, SO_ACCEPTCONN) != 0);
}

TEST_CASE("socket_options: reuse_port lets two listeners share a port", "[socket]") {
    ringio::io_context context;
    ringio::tcp_listener first(context, endpoint::loopback_v4(0), {.reuse_port = true});
    ringio::tcp_listener second(context, first.local_endpoint(), {.reuse_port = true});
    CHECK(second.local_endpoint() == first.local_endpoint());
    CHECK(option(second.native_handle(), SOL_SOCKET, SO_REUSEPORT) != 0);
}

TEST_CASE("socket_options: reuse_port lets two UDP sockets share a port", "[socket]") {
    ringio::io_context context;
    ringio::udp_socket first(context, endpoint::loopback_v4(0), {.reuse_port = true});
    ringio::udp_socket second(context, first.local_endpoint(), {.reuse_port = true});
    CHECK(second.local_endpoint() == first.local_endpoint());
}

TEST_CASE("socket_options: an IPv6 wildcard socket receives IPv4 unless v6_only", "[socket]") {
    if (!ringio::testing::has_ipv6_loopback()) {
        WARN("SKIPPED: no IPv6 loopback on this machine");
        return;
    }
    ringio::io_context context;
    ringio::udp_socket dual(context, endpoint::any_v6(0));
    ringio::udp_socket sender(context, endpoint::loopback_v4(0));
    auto exchange = [&]() -> ringio::task<ringio::received> {
        co_await sender.sendto("v4", endpoint::loopback_v4(dual.local_endpoint().port()));
        std::array<std::byte, 8> buffer{};
        co_return co_await dual.recvfrom(buffer);
    };
    const ringio::received got = ringio::sync_wait(context, exchange());
    CHECK(got.sender.is_v4_mapped());
    CHECK(got.sender.unmapped() == sender.local_endpoint());
    CHECK(option(dual.native_handle(), IPPROTO_IPV6, IPV6_V6ONLY) == 0);

    ringio::udp_socket only(context, endpoint::any_v6(0), {.v6_only = true});
    CHECK(option(only.native_handle(), IPPROTO_IPV6, IPV6_V6ONLY) == 1);
}

TEST_CASE("socket_options: v6_only applies to listeners too", "[socket]") {
    if (!ringio::testing::has_ipv6_loopback()) {
        WARN("SKIPPED: no IPv6 loopback on this machine");
        return;
    }
    ringio::io_context context;
    ringio::tcp_listener dual(context, endpoint::any_v6(0));
    CHECK(option(dual.native_handle(), IPPROTO_IPV6, IPV6_V6ONLY) == 0);
    // An IPv4 client reaches the dual-stack listener.
    const auto client =
        ringio::testing::blocking_connect(endpoint::loopback_v4(dual.local_endpoint().port()));
    const ringio::tcp_stream accepted =
        ringio::sync_wait(context, [&]() -> ringio::task<ringio::tcp_stream> {
            co_return co_await dual.accept();
        }());
    CHECK(accepted.remote_endpoint().is_v4_mapped());
    ringio::tcp_listener only(context, endpoint::any_v6(0), {.v6_only = true});
    CHECK(option(only.native_handle(), IPPROTO_IPV6, IPV6_V6ONLY) == 1);
}

TEST_CASE("open: a port in use is an error naming the address", "[socket]") {
    ringio::io_context context;
    ringio::tcp_listener listener(context, endpoint::loopback_v4(0));
    try {
        ringio::tcp_listener second(context, listener.local_endpoint());
        FAIL("listened twice on one port");
    } catch (const std::system_error& error) {
        CHECK(error.code() == std::errc::address_in_use);
        CHECK_THAT(error.what(),
                   Catch::StartsWith("tcp_listener " + listener.local_endpoint().to_string()));
    }
    ringio::udp_socket bound(context, endpoint::loopback_v4(0));
    const endpoint taken = bound.local_endpoint();
    try {
        ringio::udp_socket second(context, taken);
        FAIL("bound twice");
    } catch (const std::system_error& error) {
        CHECK(error.code() == std::errc::address_in_use);
        CHECK_THAT(error.what(), Catch::StartsWith("udp_socket " + taken.to_string()));
    }
}

TEST_CASE("open: an empty endpoint is named in the error", "[socket]") {
    ringio::io_context context;
    std::vector<std::string> messages;
    try {
        ringio::tcp_listener listener(context, ringio::endpoint{});
    } catch (const std::system_error& error) {
        messages.emplace_back(error.what());
    }
    try {
        ringio::udp_socket socket(context, ringio::endpoint{});
    } catch (const std::system_error& error) {
        messages.emplace_back(error.what());
    }
    REQUIRE(messages.size() == 2);
    for (const std::string& message : messages) {
        INFO(message);
        CHECK_FALSE(ringio::testing::has_empty_slot(message));
        CHECK_THAT(message, Catch::Contains("an empty endpoint"));
    }
}

TEST_CASE("open: a failed bind leaks no descriptor", "[socket]") {
    ringio::io_context context;
    ringio::tcp_listener listener(context, endpoint::loopback_v4(0));
    const int before = ringio::testing::open_fd_count();
    for (int i = 0; i < 3; ++i) {
        CHECK_THROWS_AS(ringio::tcp_listener(context, listener.local_endpoint()),
                        std::system_error);
        CHECK_THROWS_AS(ringio::udp_socket(context, ringio::endpoint{}), std::system_error);
    }
    CHECK(ringio::testing::open_fd_count() == before);
}
