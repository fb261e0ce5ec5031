#include <ringio/udp_socket.hpp>

#include <ringio/io_context.hpp>
#include <ringio/task.hpp>

#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>

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

endpoint loopback(int family) {
    return family == AF_INET ? endpoint::loopback_v4(0) : endpoint::loopback_v6(0);
}

int family_under_test() {
    const int family = GENERATE(AF_INET, AF_INET6);
    if (family == AF_INET6 && !ringio::testing::has_ipv6_loopback()) {
        WARN("SKIPPED: no IPv6 loopback on this machine");
        return AF_UNSPEC;
    }
    return family;
}

} // namespace

TEST_CASE("recvfrom: reports the sender's address and the datagram", "[udp_socket]") {
    const int family = family_under_test();
    if (family == AF_UNSPEC) {
        return;
    }
    ringio::io_context context;
    ringio::udp_socket server(context, loopback(family));
    ringio::udp_socket client(context, loopback(family));
    CHECK(server.local_endpoint().port() != 0);
    auto exchange = [&]() -> ringio::task<ringio::received> {
        co_await client.sendto(bytes_of("hello"), server.local_endpoint());
        std::array<std::byte, 64> buffer{};
        auto got = co_await server.recvfrom(buffer);
        CHECK(text_of(std::span{buffer}.first(got.size)) == "hello");
        co_return got;
    };
    const ringio::received got = ringio::sync_wait(context, exchange());
    CHECK(got.size == 5);
    CHECK_FALSE(got.truncated);
    CHECK(got.sender == client.local_endpoint());
}

TEST_CASE("recvfrom: a datagram larger than the buffer is reported, never overflows",
          "[udp_socket]") {
    ringio::io_context context;
    ringio::udp_socket server(context, endpoint::loopback_v4(0));
    ringio::udp_socket client(context, endpoint::loopback_v4(0));
    std::array<std::byte, 16> storage{};
    storage.fill(std::byte{0x5a});
    auto exchange = [&]() -> ringio::task<ringio::received> {
        co_await client.sendto(bytes_of("0123456789abcdefghijklmnopqrstuvwxyz"),
                               server.local_endpoint());
        co_return co_await server.recvfrom(std::span{storage}.first(10));
    };
    const ringio::received got = ringio::sync_wait(context, exchange());
    CHECK(got.truncated);
    CHECK(got.size == 10);
    CHECK(text_of(std::span{storage}.first(10)) == "0123456789");
    for (std::size_t i = 10; i < storage.size(); ++i) {
        CHECK(storage[i] == std::byte{0x5a}); // untouched past the buffer given
    }
}

TEST_CASE("recvfrom: an empty datagram is a datagram of size 0", "[udp_socket]") {
    ringio::io_context context;
    ringio::udp_socket server(context, endpoint::loopback_v4(0));
    ringio::udp_socket client(context, endpoint::loopback_v4(0));
    auto exchange = [&]() -> ringio::task<ringio::received> {
        co_await client.sendto({}, server.local_endpoint());
        std::array<std::byte, 8> buffer{};
        co_return co_await server.recvfrom(buffer);
    };
    const ringio::received got = ringio::sync_wait(context, exchange());
    CHECK(got.size == 0);
    CHECK_FALSE(got.truncated);
    CHECK(got.sender == client.local_endpoint());
}

TEST_CASE("recvfrom: a timeout completes it with ETIME", "[udp_socket]") {
    ringio::io_context context;
    ringio::udp_socket server(context, endpoint::loopback_v4(0));
    std::error_code error;
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        std::array<std::byte, 8> buffer{};
        co_await server.recvfrom(buffer, error).with_timeout(20ms);
    }());
    CHECK(error.value() == ETIME);
}

TEST_CASE("recvfrom: closing the socket cancels it and releases the descriptor", "[udp_socket]") {
    const int before = ringio::testing::open_fd_count();
    std::error_code error;
    {
        ringio::io_context context;
        ringio::udp_socket server(context, endpoint::loopback_v4(0));
        auto waiter = [&]() -> ringio::task<> {
            std::array<std::byte, 8> buffer{};
            co_await server.recvfrom(buffer, error);
        };
        ringio::spawn(context, waiter());
        context.poll();
        server.close();
        server.close(); // idempotent
        context.run();
        CHECK(error == std::errc::operation_canceled);
        CHECK(ringio::testing::open_fd_count() == before + 1); // the ring's own descriptor
    }
    CHECK(ringio::testing::open_fd_count() == before);
}

TEST_CASE("sendto: an unbound socket is bound by its first datagram", "[udp_socket]") {
    ringio::io_context context;
    ringio::udp_socket server(context, endpoint::loopback_v4(0));
    ringio::udp_socket client(context, ringio::ip_family::v4);
    auto exchange = [&]() -> ringio::task<ringio::received> {
        const std::size_t sent = co_await client.sendto(bytes_of("hi"), server.local_endpoint());
        CHECK(sent == 2);
        std::array<std::byte, 8> buffer{};
        co_return co_await server.recvfrom(buffer);
    };
    const ringio::received got = ringio::sync_wait(context, exchange());
    CHECK(got.sender.port() == client.local_endpoint().port());
    CHECK(got.sender.port() != 0);
}

TEST_CASE("sendto: errors name the destination", "[udp_socket]") {
    ringio::io_context context;
    ringio::udp_socket v4(context, endpoint::loopback_v4(0));
    auto wrong_family = [&]() -> ringio::task<> {
        co_await v4.sendto(bytes_of("x"), endpoint::loopback_v6(9));
    };
    try {
        ringio::sync_wait(context, wrong_family());
        FAIL("sendto across families succeeded");
    } catch (const std::system_error& error) {
        CHECK_THAT(error.what(), Catch::StartsWith("sendto [::1]:9"));
    }
    std::error_code error;
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        co_await v4.sendto(bytes_of("x"), endpoint{}, error);
    }());
    CHECK(error == std::errc::destination_address_required);
}

TEST_CASE("udp_socket: binding a port in use names the address", "[udp_socket]") {
    ringio::io_context context;
    ringio::udp_socket first(context, endpoint::loopback_v4(0));
    const endpoint taken = first.local_endpoint();
    try {
        ringio::udp_socket second(context, taken);
        FAIL("bound twice");
    } catch (const std::system_error& error) {
        CHECK(error.code() == std::errc::address_in_use);
        CHECK_THAT(error.what(), Catch::Contains(taken.to_string()));
    }
}

TEST_CASE("udp_socket: descriptors are close-on-exec", "[udp_socket]") {
    ringio::io_context context;
    ringio::udp_socket bound(context, endpoint::loopback_v4(0));
    ringio::udp_socket unbound(context, ringio::ip_family::v4);
    CHECK((::fcntl(bound.native_handle(), F_GETFD) & FD_CLOEXEC) != 0);
    CHECK((::fcntl(unbound.native_handle(), F_GETFD) & FD_CLOEXEC) != 0);
    CHECK_THROWS_AS(ringio::udp_socket(context, ringio::ip_family::any), std::system_error);
}

TEST_CASE("udp_socket: a moved socket keeps working and the source is closed", "[udp_socket]") {
    ringio::io_context context;
    ringio::udp_socket original(context, endpoint::loopback_v4(0));
    const endpoint address = original.local_endpoint();
    ringio::udp_socket moved = std::move(original);
    CHECK_FALSE(original.is_open());
    ringio::udp_socket client(context, endpoint::loopback_v4(0));
    auto exchange = [&]() -> ringio::task<std::size_t> {
        co_await client.sendto(bytes_of("abc"), address);
        std::array<std::byte, 8> buffer{};
        co_return (co_await moved.recvfrom(buffer)).size;
    };
    CHECK(ringio::sync_wait(context, exchange()) == 3);
}

TEST_CASE("udp_socket: an IPv6 wildcard socket receives IPv4 unless v6_only", "[udp_socket]") {
    if (!ringio::testing::has_ipv6_loopback()) {
        WARN("SKIPPED: no IPv6 loopback on this machine");
        return;
    }
    ringio::io_context context;
    ringio::udp_socket dual(context, endpoint::any_v6(0));
    ringio::udp_socket sender(context, endpoint::loopback_v4(0));
    auto exchange = [&]() -> ringio::task<ringio::received> {
        co_await sender.sendto(bytes_of("v4"), endpoint::loopback_v4(dual.local_endpoint().port()));
        std::array<std::byte, 8> buffer{};
        co_return co_await dual.recvfrom(buffer);
    };
    const ringio::received got = ringio::sync_wait(context, exchange());
    CHECK(got.sender.is_v4_mapped());
    CHECK(got.sender.unmapped() == sender.local_endpoint());

    ringio::udp_socket only(context, endpoint::any_v6(0), {.v6_only = true});
    int v6_only = 0;
    socklen_t size = sizeof v6_only;
    REQUIRE(::getsockopt(only.native_handle(), IPPROTO_IPV6, IPV6_V6ONLY, &v6_only, &size) == 0);
    CHECK(v6_only == 1);
}

TEST_CASE("sendto: a datagram larger than UDP carries is EMSGSIZE naming the destination",
          "[udp_socket]") {
    const int family = family_under_test();
    if (family == AF_UNSPEC) {
        return;
    }
    ringio::io_context context;
    ringio::udp_socket server(context, loopback(family));
    ringio::udp_socket client(context, loopback(family));
    const endpoint destination = server.local_endpoint();
    const std::vector<std::byte> oversize(70'000);
    auto send = [&]() -> ringio::task<> {
        co_await client.sendto(oversize, destination);
    };
    try {
        ringio::sync_wait(context, send());
        FAIL("a 70,000-byte datagram was sent");
    } catch (const std::system_error& error) {
        CHECK(error.code() == std::errc::message_size);
        CHECK_THAT(error.what(), Catch::StartsWith("sendto " + destination.to_string() + ": "));
    }
    // The socket is still usable.
    auto exchange = [&]() -> ringio::task<std::size_t> {
        co_await client.sendto(bytes_of("after"), destination);
        std::array<std::byte, 8> buffer{};
        co_return (co_await server.recvfrom(buffer)).size;
    };
    CHECK(ringio::sync_wait(context, exchange()) == 5);
}

TEST_CASE("recvfrom: an empty buffer takes the datagram and reports it truncated", "[udp_socket]") {
    ringio::io_context context;
    ringio::udp_socket server(context, endpoint::loopback_v4(0));
    ringio::udp_socket client(context, endpoint::loopback_v4(0));
    auto exchange = [&]() -> ringio::task<ringio::received> {
        co_await client.sendto(bytes_of("dropped"), server.local_endpoint());
        co_await client.sendto(bytes_of("kept"), server.local_endpoint());
        const ringio::received first = co_await server.recvfrom(std::span<std::byte>{});
        std::array<std::byte, 8> buffer{};
        const ringio::received second = co_await server.recvfrom(buffer);
        CHECK(text_of(std::span{buffer}.first(second.size)) == "kept");
        co_return first;
    };
    const ringio::received got = ringio::sync_wait(context, exchange());
    CHECK(got.size == 0);
    CHECK(got.truncated);
    CHECK(got.sender == client.local_endpoint());
}

TEST_CASE("udp_socket: a closed socket's operations are EBADF naming the operation",
          "[udp_socket]") {
    ringio::io_context context;
    ringio::udp_socket socket(context, endpoint::loopback_v4(0));
    const endpoint local = socket.local_endpoint();
    socket.close();
    context.run();
    CHECK(socket.native_handle() == -1);
    auto receive = [&]() -> ringio::task<> {
        std::array<std::byte, 8> buffer{};
        co_await socket.recvfrom(buffer);
    };
    try {
        ringio::sync_wait(context, receive());
        FAIL("recvfrom on a closed socket succeeded");
    } catch (const std::system_error& error) {
        CHECK(error.code() == std::errc::bad_file_descriptor);
        CHECK_THAT(error.what(), Catch::StartsWith("recvfrom on " + local.to_string() + ": "));
    }
    auto send = [&]() -> ringio::task<> {
        co_await socket.sendto(bytes_of("x"), local);
    };
    try {
        ringio::sync_wait(context, send());
        FAIL("sendto on a closed socket succeeded");
    } catch (const std::system_error& error) {
        CHECK(error.code() == std::errc::bad_file_descriptor);
        CHECK_THAT(error.what(), Catch::StartsWith("sendto " + local.to_string() + ": "));
    }
    try {
        (void)socket.local_endpoint();
        FAIL("getsockname on a closed socket succeeded");
    } catch (const std::system_error& error) {
        CHECK(error.code() == std::errc::bad_file_descriptor);
        CHECK_THAT(error.what(), Catch::StartsWith("getsockname"));
    }
}

TEST_CASE("destroying a socket cancels the recvfrom another coroutine waits on", "[udp_socket]") {
    const int before = ringio::testing::open_fd_count();
    std::error_code error;
    std::string message;
    std::string local;
    {
        ringio::io_context context;
        auto owned = std::make_unique<ringio::udp_socket>(context, endpoint::loopback_v4(0));
        local = owned->local_endpoint().to_string();
        // The waiter outlives the socket it receives from: the error must not need it.
        auto waiter = [&](ringio::udp_socket& socket) -> ringio::task<> {
            std::array<std::byte, 8> buffer{};
            try {
                co_await socket.recvfrom(buffer);
            } catch (const std::system_error& failure) {
                error = failure.code();
                message = failure.what();
            }
        };
        ringio::testing::destroy_while_awaited(context, std::move(owned), waiter);
    }
    CHECK(error == std::errc::operation_canceled);
    CHECK_THAT(message, Catch::StartsWith("recvfrom on " + local + ": "));
    CHECK(ringio::testing::open_fd_count() == before);
}

TEST_CASE("udp_socket: errors about an empty endpoint say so", "[udp_socket]") {
    ringio::io_context context;
    std::vector<std::string> messages;
    try {
        ringio::udp_socket bad(context, ringio::endpoint{});
    } catch (const std::system_error& error) {
        messages.emplace_back(error.what());
    }
    ringio::udp_socket socket(context, ringio::endpoint::loopback_v4(0));
    const std::array<std::byte, 4> payload{};
    try {
        ringio::sync_wait(context, [](ringio::udp_socket& s, auto bytes) -> ringio::task<> {
            co_await s.sendto(bytes, ringio::endpoint{});
        }(socket, std::span(payload)));
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
