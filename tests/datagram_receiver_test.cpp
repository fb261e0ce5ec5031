#include <ringio/datagram_receiver.hpp>

#include <ringio/buffer_ring.hpp>
#include <ringio/io_context.hpp>
#include <ringio/task.hpp>
#include <ringio/timer.hpp>
#include <ringio/udp_socket.hpp>

#include "allocation_counter.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <sys/socket.h>

#include <chrono>
#include <set>
#include <string>
#include <system_error>
#include <vector>

using namespace std::chrono_literals;
using ringio::endpoint;
using ringio::testing::bytes_of;
using ringio::testing::text_of;

namespace {

constexpr std::size_t overhead = ringio::datagram_receiver::overhead;

// A plain blocking UDP socket on loopback that sends to `target`.
struct sender {
    ringio::detail::unique_fd fd;
    endpoint local;

    explicit sender(const endpoint& target)
        : fd(::socket(target.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0)) {
        REQUIRE(fd);
        // Connecting binds the socket to a loopback address and a free port.
        REQUIRE(::connect(fd.get(), target.data(), target.size()) == 0);
        socklen_t size = endpoint::capacity();
        REQUIRE(::getsockname(fd.get(), local.mutable_data(), &size) == 0);
        local.resize(size);
    }

    void send(std::string_view text) const {
        REQUIRE(::send(fd.get(), text.data(), text.size(), 0) == static_cast<ssize_t>(text.size()));
    }

    std::string receive() const {
        char buffer[2048];
        const ssize_t n = ::recv(fd.get(), buffer, sizeof buffer, 0);
        REQUIRE(n >= 0);
        return {buffer, static_cast<std::size_t>(n)};
    }
};

// "d<i>", built by appending: g++ 12 at -O2 takes "d" + std::to_string(i) for an overlapping
// memcpy (-Wrestrict).
std::string numbered(int i) {
    std::string text = "d";
    text += std::to_string(i);
    return text;
}

// Multishot recvmsg came in Linux 6.0; before, the receiver's first datagram is EINVAL.
bool has_multishot_recvmsg() {
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 2, 256);
    ringio::udp_socket socket(context, endpoint::loopback_v4(0));
    ringio::datagram_receiver incoming(socket, buffers);
    const sender peer(socket.local_endpoint());
    peer.send("probe");
    std::error_code error;
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        co_await incoming.next(error);
    }());
    if (error == std::errc::invalid_argument) {
        WARN("SKIPPED: this kernel has no multishot recvmsg (Linux 6.0)");
        return false;
    }
    REQUIRE_FALSE(error);
    return true;
}

} // namespace

TEST_CASE("datagram_receiver: delivers each datagram with its sender, in order",
          "[datagram_receiver]") {
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
    ringio::datagram_receiver incoming(socket, buffers);
    const sender first(socket.local_endpoint());
    const sender second(socket.local_endpoint());
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
    CHECK(text_of(got[0].payload.bytes()) == "one");
    CHECK(got[0].sender == first.local);
    CHECK(text_of(got[1].payload.bytes()) == "two");
    CHECK(got[1].sender == second.local);
    CHECK(got[2].payload.size() == 0);
    CHECK(got[2].sender == first.local);
    for (const ringio::datagram& each : got) {
        CHECK_FALSE(each.truncated);
    }
}

TEST_CASE("datagram_receiver: a datagram larger than a buffer is reported truncated",
          "[datagram_receiver]") {
    if (!has_multishot_recvmsg()) {
        return;
    }
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 4, overhead + 8); // room for 8 bytes of payload
    ringio::udp_socket socket(context, endpoint::loopback_v4(0));
    ringio::datagram_receiver incoming(socket, buffers);
    const sender peer(socket.local_endpoint());
    peer.send("0123456789abcdef");
    peer.send("fits");
    auto take = [&]() -> ringio::task<std::vector<ringio::datagram>> {
        std::vector<ringio::datagram> got;
        got.push_back(co_await incoming.next());
        got.push_back(co_await incoming.next());
        co_return got;
    };
    const std::vector<ringio::datagram> got = ringio::sync_wait(context, take());
    CHECK(text_of(got[0].payload.bytes()) == "01234567");
    CHECK(got[0].truncated);
    CHECK(text_of(got[1].payload.bytes()) == "fits");
    CHECK_FALSE(got[1].truncated);
}

TEST_CASE("datagram_receiver: refuses buffers with no room for a payload", "[datagram_receiver]") {
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 4, overhead);
    ringio::udp_socket socket(context, endpoint::loopback_v4(0));
    try {
        ringio::datagram_receiver incoming(socket, buffers);
        FAIL("accepted buffers of " << overhead << " bytes");
    } catch (const std::system_error& error) {
        CHECK(error.code() == std::errc::invalid_argument);
        CHECK_THAT(error.what(), Catch::Contains(socket.local_endpoint().to_string()) &&
                                     Catch::Contains("no room for a payload"));
    }
}

TEST_CASE("datagram_receiver: several coroutines share one receiver, each datagram once",
          "[datagram_receiver]") {
    if (!has_multishot_recvmsg()) {
        return;
    }
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 16, 256);
    ringio::udp_socket socket(context, endpoint::loopback_v4(0));
    ringio::datagram_receiver incoming(socket, buffers);
    const sender peer(socket.local_endpoint());
    constexpr int total = 200;
    constexpr int workers = 4;
    std::vector<std::string> seen;
    std::set<int> busy; // the workers that answered at least once
    int answered = 0;
    // Each worker answers with its number: while one waits for its sendto, the others serve.
    auto worker = [&](int number) -> ringio::task<> {
        while (answered < total) {
            std::error_code error;
            ringio::datagram got = co_await incoming.next(error);
            if (error) {
                co_return; // the socket closed under the workers still waiting
            }
            seen.push_back(text_of(got.payload.bytes()));
            const std::string reply = std::to_string(number);
            co_await socket.sendto(bytes_of(reply), got.sender);
            busy.insert(number);
            ++answered;
        }
    };
    for (int i = 0; i < workers; ++i) {
        ringio::spawn(context, worker(i));
    }
    context.poll(); // all four wait now
    for (int i = 0; i < total; ++i) {
        peer.send(numbered(i));
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

TEST_CASE("datagram_receiver: closing the socket wakes every waiting coroutine",
          "[datagram_receiver]") {
    if (!has_multishot_recvmsg()) {
        return;
    }
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 4, 256);
    ringio::udp_socket socket(context, endpoint::loopback_v4(0));
    ringio::datagram_receiver incoming(socket, buffers);
    std::vector<std::error_code> errors;
    auto waiter = [&]() -> ringio::task<> {
        std::error_code error;
        const ringio::datagram got = co_await incoming.next(error);
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
        co_await incoming.next(after);
    }());
    CHECK(after == std::errc::bad_file_descriptor);
}

TEST_CASE("datagram_receiver: errors name the local address", "[datagram_receiver]") {
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 4, 256);
    ringio::udp_socket socket(context, endpoint::loopback_v4(0));
    const std::string local = socket.local_endpoint().to_string();
    ringio::datagram_receiver incoming(socket, buffers);
    socket.close();
    try {
        ringio::sync_wait(context, [&]() -> ringio::task<> {
            co_await incoming.next();
        }());
        FAIL("next() on a closed socket succeeded");
    } catch (const std::system_error& error) {
        CHECK(error.code() == std::errc::bad_file_descriptor);
        CHECK_THAT(error.what(), Catch::StartsWith("recvfrom on " + local + ": "));
    }
}

TEST_CASE("datagram_receiver: a dry buffer ring loses no datagram", "[datagram_receiver]") {
    if (!has_multishot_recvmsg()) {
        return;
    }
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 2, 128); // two buffers
    ringio::udp_socket socket(context, endpoint::loopback_v4(0));
    ringio::datagram_receiver incoming(socket, buffers);
    const sender peer(socket.local_endpoint());
    constexpr int total = 40;
    for (int i = 0; i < total; ++i) {
        peer.send(numbered(i));
    }
    auto hoard = [&]() -> ringio::task<std::vector<std::string>> {
        std::vector<std::string> got;
        std::vector<ringio::buffer_lease> held;
        while (got.size() < static_cast<std::size_t>(total)) {
            // Hold both buffers for a while: the kernel runs out and stops the recvmsg.
            ringio::datagram each = co_await incoming.next();
            got.push_back(text_of(each.payload.bytes()));
            held.push_back(std::move(each.payload));
            if (held.size() == 2) {
                co_await ringio::sleep_for(context, 1ms);
                held.clear();
            }
        }
        co_return got;
    };
    const std::vector<std::string> got = ringio::sync_wait(context, hoard());
    for (int i = 0; i < total; ++i) {
        CHECK(got[static_cast<std::size_t>(i)] == numbered(i));
    }
}

TEST_CASE("datagram_receiver: destroying it while armed gives its buffers back",
          "[datagram_receiver]") {
    if (!has_multishot_recvmsg()) {
        return;
    }
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 2, 128);
    ringio::udp_socket socket(context, endpoint::loopback_v4(0));
    const sender peer(socket.local_endpoint());
    {
        ringio::datagram_receiver first(socket, buffers);
        peer.send("a");
        peer.send("b"); // both buffers filled, one still queued when the receiver goes
        auto one = [&]() -> ringio::task<std::string> {
            co_return text_of((co_await first.next()).payload.bytes());
        };
        CHECK(ringio::sync_wait(context, one()) == "a");
    }
    context.poll();
    // Both buffers are back: a new receiver gets two datagrams while holding both leases.
    ringio::datagram_receiver second(socket, buffers);
    peer.send("c");
    peer.send("d");
    auto two = [&]() -> ringio::task<std::string> {
        ringio::datagram x = co_await second.next();
        ringio::datagram y = co_await second.next();
        co_return text_of(x.payload.bytes()) + text_of(y.payload.bytes());
    };
    const std::string got = ringio::sync_wait(context, two());
    // "b" went with the first receiver if it was already queued there; none after it is lost.
    CHECK((got == "cd" || got == "bc"));
}

TEST_CASE("datagram_receiver: steady state allocates nothing", "[datagram_receiver]") {
    if (!RINGIO_TEST_COUNTS_ALLOCATIONS) {
        WARN("SKIPPED: a sanitizer replaces operator new; the other builds count");
        return;
    }
    if (!has_multishot_recvmsg()) {
        return;
    }
    ringio::io_context context;
    ringio::buffer_ring buffers(context, 8, 256);
    ringio::udp_socket socket(context, endpoint::loopback_v4(0));
    ringio::datagram_receiver incoming(socket, buffers);
    const sender peer(socket.local_endpoint());
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
