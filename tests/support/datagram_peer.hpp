#pragma once

// A plain blocking UDP socket on loopback, the peer of the tests of what receives datagrams.

#include <ringio/detail/fd.hpp>
#include <ringio/endpoint.hpp>

#include <catch2/catch.hpp>

#include <sys/socket.h>

#include <string>
#include <string_view>

namespace ringio::testing {

/// Connected to `target`, so that `send` needs no address; `local` is where it sends from.
struct datagram_peer {
    detail::unique_fd fd;
    endpoint local;

    explicit datagram_peer(const endpoint& target)
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

} // namespace ringio::testing
