#include <ringio/socket.hpp>

#include <ringio/io_context.hpp>
#include <ringio/task.hpp>
#include <ringio/tcp_listener.hpp>
#include <ringio/tcp_stream.hpp>
#include <ringio/udp_socket.hpp>

#include "child_process.hpp"
#include "temp_dir.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
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

namespace {

// A Unix socket file that nobody listens on any more: what a server that ended without
// removing its socket leaves behind.
void leave_stale_socket(const endpoint& path, int type) {
    const ringio::detail::unique_fd fd{::socket(AF_UNIX, type | SOCK_CLOEXEC, 0)};
    REQUIRE(fd);
    REQUIRE(::bind(fd.get(), path.data(), path.size()) == 0);
    if (type == SOCK_STREAM) {
        REQUIRE(::listen(fd.get(), 1) == 0);
    }
}

bool is_socket_file(const std::filesystem::path& path) {
    struct stat info {};
    return ::lstat(path.c_str(), &info) == 0 && S_ISSOCK(info.st_mode);
}

// A unique abstract name for this process.
std::string abstract_name(std::string_view what) {
    return "ringio-socket-test-" + std::to_string(::getpid()) + "-" + std::string(what);
}

} // namespace

TEST_CASE("open: a stale Unix socket file is replaced at bind", "[socket]") {
    ringio::io_context context;
    ringio::testing::temp_dir dir;
    const auto stream_path = endpoint::unix_path((dir / "stream").string());
    const auto datagram_path = endpoint::unix_path((dir / "datagram").string());
    leave_stale_socket(stream_path, SOCK_STREAM);
    leave_stale_socket(datagram_path, SOCK_DGRAM);
    REQUIRE(is_socket_file(dir / "stream"));
    REQUIRE(is_socket_file(dir / "datagram"));

    ringio::tcp_listener listener(context, stream_path);
    CHECK(listener.local_endpoint() == stream_path);
    const auto client = ringio::testing::blocking_connect(stream_path); // really listening
    ringio::udp_socket socket(context, datagram_path);
    CHECK(socket.local_endpoint() == datagram_path);
}

TEST_CASE("open: a live Unix socket's file is not replaced: EADDRINUSE", "[socket]") {
    ringio::io_context context;
    ringio::testing::temp_dir dir;
    const auto path = endpoint::unix_path((dir / "live").string());
    ringio::tcp_listener live(context, path);
    try {
        ringio::tcp_listener second(context, path);
        FAIL("a live listener's file was replaced");
    } catch (const std::system_error& error) {
        CHECK(error.code() == std::errc::address_in_use);
        CHECK(std::string(error.what()) ==
              "tcp_listener " + path.to_string() + ": bind: Address already in use");
    }
    // The probe's connection is the live listener's to accept; it goes on listening.
    const auto client = ringio::testing::blocking_connect(path);
    CHECK(is_socket_file(dir / "live"));

    const auto datagram_path = endpoint::unix_path((dir / "live-datagram").string());
    ringio::udp_socket bound(context, datagram_path);
    CHECK_THROWS_WITH(ringio::udp_socket(context, datagram_path),
                      "udp_socket " + datagram_path.to_string() + ": bind: Address already in use");
    CHECK(is_socket_file(dir / "live-datagram"));
}

TEST_CASE("open: a live listener whose queue is full is not mistaken for a stale one", "[socket]") {
    // The probe must not wait for room in the queue: the bind fails at once.
    ringio::testing::temp_dir dir;
    const auto path = endpoint::unix_path((dir / "busy").string());
    const int status = ringio::testing::run_in_child(
        [&] {
            ringio::io_context context;
            ringio::tcp_listener busy(context, path, {.backlog = 0});
            std::vector<ringio::detail::unique_fd> waiting;
            for (int i = 0; i < 64; ++i) {
                ringio::detail::unique_fd fd{
                    ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)};
                if (::connect(fd.get(), path.data(), path.size()) != 0) {
                    break; // EAGAIN: the queue is full
                }
                waiting.push_back(std::move(fd));
            }
            try {
                ringio::tcp_listener second(context, path);
            } catch (const std::system_error& error) {
                return error.code() == std::errc::address_in_use ? 0 : 2;
            }
            return 1;
        },
        std::chrono::seconds(5));
    CHECK(status == 0);
}

TEST_CASE("open: a file of another kind at a Unix path is left alone: EADDRINUSE", "[socket]") {
    ringio::io_context context;
    ringio::testing::temp_dir dir;
    const auto file = dir / "plain";
    { std::ofstream(file) << "keep me"; }
    CHECK_THROWS_WITH(ringio::tcp_listener(context, endpoint::unix_path(file.string())),
                      "tcp_listener unix:" + file.string() + ": bind: Address already in use");
    CHECK(std::filesystem::is_regular_file(file));
    CHECK_THROWS_WITH(
        ringio::tcp_listener(context, endpoint::unix_path((dir / "no/such/dir/s").string())),
        Catch::EndsWith(": bind: No such file or directory"));
}

TEST_CASE("open: an abstract name is taken while bound and free once closed", "[socket]") {
    ringio::io_context context;
    const auto name = endpoint::unix_abstract(abstract_name("taken"));
    {
        ringio::tcp_listener first(context, name);
        CHECK(first.local_endpoint() == name);
        CHECK_THROWS_WITH(ringio::tcp_listener(context, name),
                          "tcp_listener " + name.to_string() + ": bind: Address already in use");
        first.close();
        context.poll(); // the close runs through the ring
    }
    ringio::tcp_listener again(context, name);
    CHECK(again.local_endpoint() == name);
}

TEST_CASE("socket_options: reuse_port on a Unix socket is EOPNOTSUPP naming it", "[socket]") {
    ringio::io_context context;
    ringio::testing::temp_dir dir;
    const auto path = endpoint::unix_path((dir / "s").string());
    const int before = ringio::testing::open_fd_count();
    try {
        ringio::tcp_listener listener(context, path, {.reuse_port = true});
        FAIL("SO_REUSEPORT accepted on a Unix socket");
    } catch (const std::system_error& error) {
        CHECK(error.code() == std::errc::operation_not_supported);
        CHECK(std::string(error.what()) ==
              "tcp_listener " + path.to_string() + ": SO_REUSEPORT: Operation not supported");
    }
    CHECK(ringio::testing::open_fd_count() == before);
}
