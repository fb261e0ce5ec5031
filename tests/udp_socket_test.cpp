#include <ringio/udp_socket.hpp>

#include <ringio/buffer_ring.hpp>
#include <ringio/cancellation.hpp>
#include <ringio/io_context.hpp>
#include <ringio/multishot.hpp>
#include <ringio/task.hpp>
#include <ringio/timer.hpp>

#include "allocation_counter.hpp"
#include "datagram_peer.hpp"
#include "temp_dir.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

using namespace std::chrono_literals;
using ringio::endpoint;
using ringio::testing::bytes_of;
using ringio::testing::datagram_peer;
using ringio::testing::text_of;

namespace {

constexpr std::size_t overhead = ringio::detail::recvmsg_overhead(AF_INET6);

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

// Multishot recvmsg came in Linux 6.0; before, a receive_from's first datagram is EINVAL.
bool has_multishot_recvmsg() {
    ringio::io_context context;
    ringio::testing::receiving_socket receiver(context, 2, 256);
    auto& [buffers, socket, incoming, peer] = receiver;
    peer.send("probe");
    std::error_code error;
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        co_await incoming.next().into(error);
    }());
    if (error == std::errc::invalid_argument) {
        WARN("SKIPPED: this kernel has no multishot recvmsg (Linux 6.0)");
        return false;
    }
    REQUIRE_FALSE(error);
    return true;
}

// Turns the loop a few times without waiting, letting the kernel work in between.
void settle(ringio::io_context& context) {
    for (int i = 0; i < 20; ++i) {
        context.poll();
        ::usleep(1000);
    }
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

TEST_CASE("recvfrom and sendto: strings, string literals, vectors and arrays are buffers",
          "[udp_socket]") {
    ringio::io_context context;
    ringio::udp_socket server(context, endpoint::loopback_v4(0));
    ringio::udp_socket client(context, endpoint::loopback_v4(0));
    const endpoint to = server.local_endpoint();
    std::vector<std::string> got;
    std::vector<std::size_t> sent;
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        sent.push_back(co_await client.sendto("literal", to)); // its NUL is not sent
        sent.push_back(co_await client.sendto(std::string("string"), to));
        const std::vector<std::byte> bytes{std::byte{'v'}, std::byte{'e'}, std::byte{'c'}};
        sent.push_back(co_await client.sendto(bytes, to));
        const std::array<char, 5> chars{'a', 'r', 'r', 'a', 'y'};
        sent.push_back(co_await client.sendto(chars, to));
        std::string into_string(16, '\0');
        into_string.resize((co_await server.recvfrom(into_string)).size);
        got.push_back(into_string);
        std::array<char, 16> into_array{};
        got.emplace_back(into_array.data(), (co_await server.recvfrom(into_array)).size);
        std::vector<std::byte> into_vector(16);
        got.push_back(
            text_of(std::span{into_vector}.first((co_await server.recvfrom(into_vector)).size)));
        char into_c_array[16];
        got.emplace_back(into_c_array, (co_await server.recvfrom(into_c_array)).size);
    }());
    CHECK(sent == std::vector<std::size_t>{7, 6, 3, 5});
    CHECK(got == std::vector<std::string>{"literal", "string", "vec", "array"});
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
        co_await client.sendto(std::string_view{}, server.local_endpoint());
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
        co_await server.recvfrom(buffer).with_timeout(20ms).into(error);
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
            co_await server.recvfrom(buffer).into(error);
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

TEST_CASE("recvfrom: made before close and awaited after, it fails with EBADF and touches "
          "nothing",
          "[udp_socket]") {
    ringio::io_context context;
    ringio::udp_socket server(context, endpoint::loopback_v4(0));
    const int old_fd = server.native_handle();
    std::array<char, 8> buffer{};
    std::error_code error;
    int reused[2] = {-1, -1};
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        auto receive = server.recvfrom(buffer);
        server.close();
        co_await ringio::sleep_for(context, 1ms); // the close has run: the number is free
        REQUIRE(::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, reused) == 0);
        REQUIRE(::send(reused[1], "mine", 4, 0) == 4);
        co_await receive.into(error);
    }());
    CHECK(error == std::errc::bad_file_descriptor);
    CHECK((reused[0] == old_fd || reused[1] == old_fd));
    char left[8];
    CHECK(::recv(reused[0], left, sizeof left, MSG_DONTWAIT) == 4);
    ::close(reused[0]);
    ::close(reused[1]);
}

TEST_CASE("sendto: an unbound socket is bound by its first datagram", "[udp_socket]") {
    ringio::io_context context;
    ringio::udp_socket server(context, endpoint::loopback_v4(0));
    ringio::udp_socket client(context, AF_INET);
    auto exchange = [&]() -> ringio::task<ringio::received> {
        const std::size_t sent = co_await client.sendto("hi", server.local_endpoint());
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
        co_await v4.sendto(bytes_of("x"), endpoint{}).into(error);
    }());
    CHECK(error == std::errc::destination_address_required);
}

TEST_CASE("udp_socket: descriptors are close-on-exec", "[udp_socket]") {
    ringio::io_context context;
    ringio::udp_socket bound(context, endpoint::loopback_v4(0));
    ringio::udp_socket unbound(context, AF_INET);
    CHECK((::fcntl(bound.native_handle(), F_GETFD) & FD_CLOEXEC) != 0);
    CHECK((::fcntl(unbound.native_handle(), F_GETFD) & FD_CLOEXEC) != 0);
    CHECK_THROWS_AS(ringio::udp_socket(context, AF_UNSPEC), std::system_error);
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
    // The socket is gone when the error is built: it is named by its number.
    CHECK_THAT(message, Catch::Matches("recvfrom fd [0-9]+: .*"));
    CHECK(ringio::testing::open_fd_count() == before);
}

TEST_CASE("sendto: an empty endpoint is named in the error", "[udp_socket]") {
    ringio::io_context context;
    ringio::udp_socket socket(context, ringio::endpoint::loopback_v4(0));
    const std::array<std::byte, 4> payload{};
    try {
        ringio::sync_wait(context, [](ringio::udp_socket& s, auto bytes) -> ringio::task<> {
            co_await s.sendto(bytes, ringio::endpoint{});
        }(socket, std::span(payload)));
        FAIL("sendto an empty endpoint succeeded");
    } catch (const std::system_error& error) {
        INFO(error.what());
        CHECK_FALSE(ringio::testing::has_empty_slot(error.what()));
        CHECK_THAT(error.what(), Catch::Contains("an empty endpoint"));
    }
}

// receive_from: datagrams into a shared buffer_ring.

TEST_CASE("receive_from: delivers each datagram with its sender, in order", "[udp_socket]") {
    if (!has_multishot_recvmsg()) {
        return;
    }
    const bool v6 = GENERATE(false, true);
    if (v6 && !ringio::testing::has_ipv6_loopback()) {
        WARN("SKIPPED: no IPv6 loopback on this machine");
        return;
    }
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 8, 256);
    ringio::udp_socket socket(context, v6 ? endpoint::loopback_v6(0) : endpoint::loopback_v4(0));
    auto incoming = socket.receive_from(buffers);
    const datagram_peer first(socket.local_endpoint());
    const datagram_peer second(socket.local_endpoint());
    first.send("one");
    second.send("two");
    first.send(""); // an empty datagram is a datagram
    auto take = [&]() -> ringio::task<std::vector<ringio::datagram>> {
        std::vector<ringio::datagram> got;
        for (int i = 0; i < 3; ++i) {
            got.push_back(co_await incoming.next());
        }
        co_return got;
    };
    const std::vector<ringio::datagram> got = ringio::sync_wait(context, take());
    REQUIRE(got.size() == 3);
    CHECK(got[0].payload.text() == "one");
    CHECK(got[0].sender == first.local);
    CHECK(got[1].payload.text() == "two");
    CHECK(got[1].sender == second.local);
    CHECK(got[2].payload.size() == 0);
    CHECK(got[2].sender == first.local);
    for (const ringio::datagram& each : got) {
        CHECK_FALSE(each.truncated);
    }
}

TEST_CASE("receive_from: a datagram larger than a buffer is reported truncated", "[udp_socket]") {
    if (!has_multishot_recvmsg()) {
        return;
    }
    ringio::io_context context;
    ringio::testing::receiving_socket receiver(context, 4,
                                               overhead + 8); // room for 8 bytes of payload
    auto& [buffers, socket, incoming, peer] = receiver;
    peer.send("0123456789abcdef");
    peer.send("fits");
    auto take = [&]() -> ringio::task<std::vector<ringio::datagram>> {
        std::vector<ringio::datagram> got;
        got.push_back(co_await incoming.next());
        got.push_back(co_await incoming.next());
        co_return got;
    };
    const std::vector<ringio::datagram> got = ringio::sync_wait(context, take());
    CHECK(got[0].payload.text() == "01234567");
    CHECK(got[0].truncated);
    CHECK(got[1].payload.text() == "fits");
    CHECK_FALSE(got[1].truncated);
}

TEST_CASE("receive_from: refuses buffers with no room for a payload", "[udp_socket]") {
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 4, overhead);
    ringio::udp_socket socket(context, endpoint::loopback_v4(0));
    try {
        auto incoming = socket.receive_from(buffers);
        FAIL("accepted buffers of " << overhead << " bytes");
    } catch (const std::system_error& error) {
        CHECK(error.code() == std::errc::invalid_argument);
        CHECK_THAT(error.what(), Catch::Contains(socket.local_endpoint().to_string()) &&
                                     Catch::Contains("no room"));
    }
}

TEST_CASE("receive_from: closed while armed, it fails with EBADF naming the number",
          "[udp_socket]") {
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 4, 256);
    ringio::udp_socket socket(context, endpoint::loopback_v4(0));
    auto incoming = socket.receive_from(buffers);
    socket.close();
    try {
        ringio::sync_wait(context, [&]() -> ringio::task<> {
            co_await incoming.next();
        }());
        FAIL("next() on a closed socket succeeded");
    } catch (const std::system_error& error) {
        CHECK(error.code() == std::errc::bad_file_descriptor);
        // Once closed, a stream of datagrams names the descriptor by number.
        CHECK_THAT(error.what(), Catch::Matches("recvfrom fd -?[0-9]+: .*"));
    }
}

TEST_CASE("receive_from: on a closed socket is EBADF naming the number", "[udp_socket]") {
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 4, 256);
    ringio::udp_socket socket(context, endpoint::loopback_v4(0));
    socket.close();
    context.run();
    auto incoming = socket.receive_from(buffers);
    try {
        ringio::sync_wait(context, [&]() -> ringio::task<> {
            co_await incoming.next();
        }());
        FAIL("next() on a closed socket succeeded");
    } catch (const std::system_error& error) {
        CHECK(error.code() == std::errc::bad_file_descriptor);
        // Once closed, a stream of datagrams names the descriptor by number.
        CHECK_THAT(error.what(), Catch::Matches("recvfrom fd -?[0-9]+: .*"));
    }
    CHECK(context.in_flight() == 0);
}

TEST_CASE("receive_from: a dry buffer ring loses no datagram", "[udp_socket]") {
    if (!has_multishot_recvmsg()) {
        return;
    }
    ringio::io_context context;
    ringio::testing::receiving_socket receiver(context, 2, 128); // two buffers
    auto& [buffers, socket, incoming, peer] = receiver;
    constexpr int total = 40;
    for (int i = 0; i < total; ++i) {
        peer.send("d" + std::to_string(i));
    }
    auto keep_both = [&]() -> ringio::task<std::vector<std::string>> {
        std::vector<std::string> got;
        std::vector<ringio::buffer_lease> held;
        while (got.size() < static_cast<std::size_t>(total)) {
            // Hold both buffers for a while: the kernel runs out and stops the recvmsg.
            ringio::datagram each = co_await incoming.next();
            got.emplace_back(each.payload.text());
            held.push_back(std::move(each.payload));
            if (held.size() == 2) {
                co_await ringio::sleep_for(context, 1ms);
                held.clear();
            }
        }
        co_return got;
    };
    const std::vector<std::string> got = ringio::sync_wait(context, keep_both());
    for (int i = 0; i < total; ++i) {
        CHECK(got[static_cast<std::size_t>(i)] == "d" + std::to_string(i));
    }
}

TEST_CASE("receive_from: a burst larger than the buffers handed over so far loses nothing",
          "[udp_socket]") {
    if (!has_multishot_recvmsg()) {
        return;
    }
    // The ring hands the kernel 32 buffers at first: a burst of 60 held at once ends the
    // multishot recvmsg for want of buffers, the ring hands over more, and it goes on. The
    // later bursts need no more than the first did.
    ringio::io_context context;
    ringio::testing::receiving_socket receiver(context, 1024, 128);
    auto& [buffers, socket, incoming, peer] = receiver;
    constexpr std::size_t burst = 60;
    std::set<const std::byte*> lent;
    for (int round = 0; round < 4; ++round) {
        for (std::size_t i = 0; i < burst; ++i) {
            peer.send(std::to_string(round) + "/" + std::to_string(i));
        }
        auto hold_all = [&]() -> ringio::task<std::vector<ringio::datagram>> {
            std::vector<ringio::datagram> held;
            while (held.size() < burst) {
                held.push_back(co_await incoming.next());
            }
            co_return held;
        };
        const std::vector<ringio::datagram> held = ringio::sync_wait(context, hold_all());
        for (std::size_t i = 0; i < burst; ++i) {
            CHECK(held[i].payload.text() == std::to_string(round) + "/" + std::to_string(i));
            lent.insert(held[i].payload.bytes().data());
        }
    }
    CHECK(lent.size() >= burst);
    CHECK(lent.size() <= 128);
}

// A burst already waiting when the request is armed can exceed the budget: the kernel's
// multishot recvmsg takes every datagram it finds a buffer for. Datagrams that come one at a
// time show the bound.
TEST_CASE("receive_from: at its budget a socket takes no more buffers until leases come back",
          "[udp_socket]") {
    if (!has_multishot_recvmsg()) {
        return;
    }
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 16, 128);
    ringio::udp_socket socket(context, endpoint::loopback_v4(0));
    auto incoming = socket.receive_from(buffers, 3);
    const datagram_peer peer(socket.local_endpoint());
    std::vector<ringio::datagram> held;
    auto keep = [](ringio::multishot<ringio::datagram>& from,
                   std::vector<ringio::datagram>& into) -> ringio::task<> {
        for (;;) {
            std::error_code error;
            ringio::datagram got = co_await from.next().into(error);
            if (error) {
                co_return;
            }
            into.push_back(std::move(got));
        }
    };
    ringio::spawn(context, keep(incoming, held));
    settle(context);
    constexpr int total = 8;
    for (int i = 0; i < total; ++i) {
        peer.send("d" + std::to_string(i));
        settle(context);
    }
    CHECK(held.size() == 3);
    // The ring lent out only those three: another socket gets the other thirteen.
    auto other = std::make_unique<ringio::udp_socket>(context, endpoint::loopback_v4(0));
    auto greedy = other->receive_from(buffers, 16);
    const datagram_peer other_peer(other->local_endpoint());
    for (int i = 0; i < 16; ++i) {
        other_peer.send("o" + std::to_string(i));
    }
    std::vector<ringio::datagram> other_held;
    ringio::spawn(context, keep(greedy, other_held));
    settle(context);
    CHECK(other_held.size() == 13);
    other->close();
    context.run();
    other_held.clear();
    // Leases back: the rest, which waited in the socket, arrives in order.
    std::vector<std::string> order;
    while (order.size() < static_cast<std::size_t>(total)) {
        REQUIRE_FALSE(held.empty());
        order.emplace_back(held.front().payload.text());
        held.erase(held.begin());
        settle(context);
    }
    for (int i = 0; i < total; ++i) {
        CHECK(order[static_cast<std::size_t>(i)] == "d" + std::to_string(i));
    }
    socket.close();
    context.run();
}

TEST_CASE("receive_from: steady state allocates nothing", "[udp_socket]") {
    if (!RINGIO_TEST_COUNTS_ALLOCATIONS) {
        WARN("SKIPPED: a sanitizer replaces operator new; the other builds count");
        return;
    }
    if (!has_multishot_recvmsg()) {
        return;
    }
    ringio::io_context context;
    ringio::testing::receiving_socket receiver(context, 8, 256);
    auto& [buffers, socket, incoming, peer] = receiver;
    long counted = -1;
    auto loop = [&]() -> ringio::task<> {
        peer.send("warm");
        {
            const ringio::datagram got = co_await incoming.next();
            co_await socket.sendto(got.payload.bytes(), got.sender);
        }
        (void)peer.receive();
        const long before = ringio::testing::allocations.load();
        for (int i = 0; i < 1000; ++i) {
            peer.send("ping");
            const ringio::datagram got = co_await incoming.next();
            co_await socket.sendto(got.payload.bytes(), got.sender);
            (void)peer.receive();
        }
        counted = ringio::testing::allocations.load() - before;
    };
    ringio::sync_wait(context, loop());
    CHECK(counted == 0);
}

// Unix datagram sockets: the same class over AF_UNIX.

namespace {

constexpr std::size_t unix_overhead = ringio::detail::recvmsg_overhead(AF_UNIX);

// A Unix address of each kind, unique to this test.
endpoint unix_address(bool abstract, const ringio::testing::temp_dir& dir, std::string_view name) {
    return abstract ? endpoint::unix_abstract("ringio-udp-test-" + std::to_string(::getpid()) +
                                              "-" + std::string(name))
                    : endpoint::unix_path((dir / name).string());
}

// A closed UDP port on loopback: bound, learnt, closed.
endpoint closed_udp_port() {
    const ringio::detail::unique_fd fd{::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)};
    const endpoint any = endpoint::loopback_v4(0);
    REQUIRE(::bind(fd.get(), any.data(), any.size()) == 0);
    endpoint bound;
    socklen_t size = endpoint::capacity();
    REQUIRE(::getsockname(fd.get(), bound.mutable_data(), &size) == 0);
    bound.resize(size);
    return bound;
}

} // namespace

TEST_CASE("recvfrom and sendto: Unix datagrams by path and by abstract name, with the sender",
          "[udp_socket]") {
    ringio::io_context context;
    ringio::testing::temp_dir dir;
    const bool abstract = GENERATE(false, true);
    const endpoint here = unix_address(abstract, dir, "here");
    const endpoint there = unix_address(abstract, dir, "there");
    ringio::udp_socket receiver(context, here);
    ringio::udp_socket replier(context, there);
    CHECK(receiver.local_endpoint() == here);
    ringio::received got;
    ringio::received reply;
    std::string text;
    std::string reply_text;
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        std::array<char, 64> buffer{};
        CHECK(co_await replier.sendto("hello", here) == 5);
        got = co_await receiver.recvfrom(buffer);
        text.assign(buffer.data(), got.size);
        co_await receiver.sendto("back", got.sender);
        reply = co_await replier.recvfrom(buffer);
        reply_text.assign(buffer.data(), reply.size);
    }());
    CHECK(text == "hello");
    CHECK(got.sender == there);
    CHECK_FALSE(got.truncated);
    CHECK(reply_text == "back");
    CHECK(reply.sender == here);
}

TEST_CASE("recvfrom: a Unix sender that never bound is an empty endpoint", "[udp_socket]") {
    ringio::io_context context;
    ringio::testing::temp_dir dir;
    const endpoint here = endpoint::unix_path((dir / "here").string());
    ringio::udp_socket receiver(context, here);
    ringio::udp_socket unbound(context, AF_UNIX);
    ringio::received got;
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        std::array<char, 16> buffer{};
        co_await unbound.sendto("anonymous", here);
        got = co_await receiver.recvfrom(buffer);
    }());
    CHECK(got.size == 9);
    CHECK(got.sender.empty());
}

TEST_CASE("recvfrom: a Unix datagram larger than the buffer is reported truncated",
          "[udp_socket]") {
    ringio::io_context context;
    ringio::testing::temp_dir dir;
    const endpoint here = endpoint::unix_path((dir / "here").string());
    ringio::udp_socket receiver(context, here);
    ringio::udp_socket unbound(context, AF_UNIX);
    std::array<char, 8> guarded{}; // the last 4 bytes are not given to recvfrom
    ringio::received got;
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        co_await unbound.sendto("0123456789", here);
        got = co_await receiver.recvfrom(std::span{guarded}.first(4));
    }());
    CHECK(got.size == 4);
    CHECK(got.truncated);
    CHECK(std::string_view(guarded.data(), 4) == "0123");
    CHECK(std::string_view(guarded.data() + 4, 4) == std::string_view("\0\0\0\0", 4));
}

TEST_CASE("receive_from: Unix datagrams with their senders, the longest path and an unnamed one",
          "[udp_socket]") {
    if (!has_multishot_recvmsg()) {
        return;
    }
    ringio::io_context context;
    ringio::testing::temp_dir dir;
    const bool abstract = GENERATE(false, true);
    const endpoint here = unix_address(abstract, dir, "here");
    // A sender whose address fills sun_path: the header must hold all of it.
    const std::string base = (dir / "").string();
    const endpoint longest = abstract
                                 ? endpoint::unix_abstract(std::string(106, 'n'))
                                 : endpoint::unix_path(base + std::string(107 - base.size(), 'p'));
    ringio::buffer_ring buffers(context, 8, unix_overhead + 64);
    ringio::udp_socket receiver(context, here);
    ringio::udp_socket named(context, longest);
    ringio::udp_socket unbound(context, AF_UNIX);
    auto incoming = receiver.receive_from(buffers);
    std::vector<ringio::datagram> got;
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        co_await named.sendto("from a long name", here);
        co_await unbound.sendto("from nobody", here);
        co_await named.sendto("", here);
        for (int i = 0; i < 3; ++i) {
            got.push_back(co_await incoming.next());
        }
    }());
    REQUIRE(got.size() == 3);
    CHECK(got[0].payload.text() == "from a long name");
    CHECK(got[0].sender == longest);
    CHECK(got[1].payload.text() == "from nobody");
    CHECK(got[1].sender.empty());
    CHECK(got[2].payload.size() == 0);
    CHECK(got[2].sender == longest);
    for (const ringio::datagram& each : got) {
        CHECK_FALSE(each.truncated);
    }
}

TEST_CASE("receive_from: a Unix socket's buffers need room past its larger header",
          "[udp_socket]") {
    if (!has_multishot_recvmsg()) {
        return;
    }
    ringio::io_context context;
    ringio::testing::temp_dir dir;
    const endpoint here = endpoint::unix_path((dir / "here").string());
    ringio::udp_socket receiver(context, here);
    ringio::buffer_ring too_small(context, 4, overhead + 16); // room on an IP socket only
    CHECK(overhead + 16 <= unix_overhead);
    try {
        auto incoming = receiver.receive_from(too_small);
        FAIL("accepted buffers without room for a payload");
    } catch (const std::system_error& error) {
        CHECK(error.code() == std::errc::invalid_argument);
        CHECK(std::string(error.what()) ==
              "receive_from on " + here.to_string() + ": buffers of " +
                  std::to_string(overhead + 16) + " bytes leave no room past the " +
                  std::to_string(unix_overhead) + " bytes of the header: Invalid argument");
    }
    ringio::buffer_ring four(context, 4, unix_overhead + 4);
    auto incoming = receiver.receive_from(four);
    ringio::udp_socket unbound(context, AF_UNIX);
    std::vector<ringio::datagram> got;
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        co_await unbound.sendto("four", here);
        co_await unbound.sendto("longer", here);
        got.push_back(co_await incoming.next());
        got.push_back(co_await incoming.next());
    }());
    CHECK(got[0].payload.text() == "four");
    CHECK_FALSE(got[0].truncated);
    CHECK(got[1].payload.text() == "long");
    CHECK(got[1].truncated);
}

TEST_CASE("sendto: a Unix address nobody is bound to is refused, naming it", "[udp_socket]") {
    ringio::io_context context;
    ringio::testing::temp_dir dir;
    ringio::udp_socket unbound(context, AF_UNIX);
    const endpoint missing = endpoint::unix_path((dir / "missing").string());
    const endpoint nobody = unix_address(true, dir, "nobody");
    std::vector<std::string> messages;
    std::vector<std::error_code> errors;
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        for (const endpoint& target : {missing, nobody}) {
            try {
                co_await unbound.sendto("x", target);
            } catch (const std::system_error& error) {
                errors.push_back(error.code());
                messages.emplace_back(error.what());
            }
        }
    }());
    REQUIRE(errors.size() == 2);
    CHECK(errors[0] == std::errc::no_such_file_or_directory);
    CHECK(messages[0] == "sendto " + missing.to_string() + ": No such file or directory");
    CHECK(errors[1] == std::errc::connection_refused);
    CHECK(messages[1] == "sendto " + nobody.to_string() + ": Connection refused");
}

TEST_CASE("connect: a connected socket receives only its peer's datagrams", "[udp_socket]") {
    ringio::io_context context;
    ringio::testing::temp_dir dir;
    const bool unix_family = GENERATE(false, true);
    const auto address = [&](std::string_view name) {
        return unix_family ? endpoint::unix_path((dir / name).string()) : endpoint::loopback_v4(0);
    };
    ringio::udp_socket socket(context, address("socket"));
    ringio::udp_socket peer(context, address("peer"));
    ringio::udp_socket other(context, address("other"));
    socket.connect(peer.local_endpoint());
    std::string text;
    ringio::received got;
    std::error_code late;
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        std::error_code ignored; // a Unix datagram socket refuses a stranger (EPERM)
        co_await other.sendto("stranger", socket.local_endpoint()).into(ignored);
        co_await peer.sendto("peer", socket.local_endpoint());
        std::array<char, 16> buffer{};
        got = co_await socket.recvfrom(buffer);
        text.assign(buffer.data(), got.size);
        co_await socket.recvfrom(buffer).with_timeout(20ms).into(late);
        // It sends to its peer by default too: the destination may still be named.
        co_await socket.sendto("reply", peer.local_endpoint());
        const ringio::received back = co_await peer.recvfrom(buffer);
        CHECK(back.sender == socket.local_endpoint());
    }());
    CHECK(text == "peer");
    CHECK(got.sender == peer.local_endpoint());
    CHECK(late == std::errc::stream_timeout); // the stranger's datagram never came
}

TEST_CASE("connect: a datagram sent to a port nobody listens on makes the next recvfrom fail "
          "with ECONNREFUSED",
          "[udp_socket]") {
    ringio::io_context context;
    ringio::udp_socket socket(context, endpoint::loopback_v4(0));
    const endpoint closed = closed_udp_port();
    socket.connect(closed);
    std::error_code error;
    std::string message;
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        std::array<char, 16> buffer{};
        co_await socket.sendto("anyone?", closed);
        co_await socket.recvfrom(buffer).with_timeout(5s).into(error);
        co_await socket.sendto("again?", closed);
        try {
            co_await socket.recvfrom(buffer).with_timeout(5s);
        } catch (const std::system_error& e) {
            message = e.what();
        }
    }());
    CHECK(error == std::errc::connection_refused);
    CHECK(message == "recvfrom on " + socket.local_endpoint().to_string() + ": Connection refused");
}

TEST_CASE("connect: an unbound socket is bound first; a peer it cannot have is an error naming "
          "it",
          "[udp_socket]") {
    ringio::io_context context;
    ringio::udp_socket peer(context, endpoint::loopback_v4(0));
    ringio::udp_socket unbound(context, AF_INET);
    unbound.connect(peer.local_endpoint());
    CHECK(unbound.local_endpoint().port() != 0);
    const endpoint v6 = endpoint::loopback_v6(9);
    CHECK_THROWS_WITH(unbound.connect(v6),
                      "connect " + v6.to_string() + ": Address family not supported by protocol");
    CHECK_THROWS_WITH(unbound.connect(endpoint{}),
                      Catch::StartsWith("connect an empty endpoint: "));
    // The failed calls left the first peer in place.
    std::string text;
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        co_await peer.sendto("still", unbound.local_endpoint());
        std::array<char, 8> buffer{};
        const ringio::received got = co_await unbound.recvfrom(buffer);
        text.assign(buffer.data(), got.size);
    }());
    CHECK(text == "still");
}

TEST_CASE("recvfrom on a Unix socket: closed, cancelled or timed out while it waits",
          "[udp_socket]") {
    ringio::io_context context;
    ringio::testing::temp_dir dir;
    const endpoint here = endpoint::unix_path((dir / "here").string());
    ringio::udp_socket socket(context, here);
    ringio::cancellation stop;
    std::array<std::error_code, 3> errors;
    std::string timeout_message;
    auto waits = [&]() -> ringio::task<> {
        std::array<char, 16> buffer{};
        co_await socket.recvfrom(buffer).with_timeout(1ms).into(errors[0]);
        try {
            co_await socket.recvfrom(buffer).with_timeout(1ms);
        } catch (const std::system_error& error) {
            timeout_message = error.what();
        }
        co_await socket.recvfrom(buffer).cancel_on(stop).into(errors[1]);
        co_await socket.recvfrom(buffer).into(errors[2]);
    };
    auto stopper = [&]() -> ringio::task<> {
        co_await ringio::sleep_for(context, 10ms);
        stop.cancel();
        co_await ringio::sleep_for(context, 10ms);
        socket.close();
    };
    ringio::spawn(context, waits());
    ringio::spawn(context, stopper());
    context.run();
    CHECK(errors[0] == std::errc::stream_timeout);
    CHECK(timeout_message == "recvfrom on " + here.to_string() + ": Timer expired");
    CHECK(errors[1] == std::errc::operation_canceled);
    CHECK(errors[2] == std::errc::operation_canceled);
}

TEST_CASE("recvfrom and sendto on Unix sockets: steady state allocates nothing", "[udp_socket]") {
    if (!RINGIO_TEST_COUNTS_ALLOCATIONS) {
        WARN("SKIPPED: a sanitizer replaces operator new; the other builds count");
        return;
    }
    ringio::io_context context;
    ringio::testing::temp_dir dir;
    const endpoint here = endpoint::unix_path((dir / "here").string());
    const endpoint there =
        endpoint::unix_abstract("ringio-udp-test-" + std::to_string(::getpid()) + "-alloc");
    ringio::udp_socket a(context, here);
    ringio::udp_socket b(context, there);
    long counted = -1;
    auto loop = [&]() -> ringio::task<> {
        std::array<char, 16> buffer{};
        const long before = ringio::testing::allocations.load();
        for (int i = 0; i < 500; ++i) {
            co_await a.sendto("ping", there);
            const ringio::received got = co_await b.recvfrom(buffer);
            co_await b.sendto(std::span{buffer}.first(got.size), got.sender);
            co_await a.recvfrom(buffer);
        }
        counted = ringio::testing::allocations.load() - before;
    };
    ringio::sync_wait(context, loop());
    CHECK(counted == 0);
}
