#pragma once

// A plain blocking UDP socket on loopback, the peer of the tests of what receives datagrams, and
// the socket that receives them.

#include <ringio/buffer_ring.hpp>
#include <ringio/detail/fd.hpp>
#include <ringio/endpoint.hpp>
#include <ringio/io_context.hpp>
#include <ringio/multishot.hpp>
#include <ringio/udp_socket.hpp>

#include <catch2/catch.hpp>

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
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

/// A UDP socket on IPv4 loopback receiving into `count` buffers of `size` bytes, and a peer
/// sending to it; a test takes it apart: `auto& [buffers, socket, incoming, peer] = receiver;`.
struct receiving_socket {
    buffer_ring buffers;
    udp_socket socket;
    multishot<datagram> incoming;
    datagram_peer peer;

    receiving_socket(io_context& context, std::uint32_t count, std::size_t size)
        : buffers(context, count, size), socket(context, endpoint::loopback_v4(0)),
          incoming(socket.receive_from(buffers)), peer(socket.local_endpoint()) {}
};

} // namespace ringio::testing
