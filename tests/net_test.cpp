#include <ringio/net.hpp>

#include <catch2/catch.hpp>

#include <string>

using namespace std::chrono_literals;

// libstdc++ defines this guard once <filesystem> is in; the mapped half is what would pull it.
#if defined(_GLIBCXX_FILESYSTEM)
#error "net.hpp includes <filesystem>, so it pulls in the mapped-memory half"
#endif

TEST_CASE("net: one include serves a TCP exchange by name, a datagram and a deadline", "[net]") {
    ringio::io_context context;
    ringio::tcp_listener listener(context, ringio::endpoint::loopback_v4(0));
    ringio::udp_socket socket(context, ringio::endpoint::loopback_v4(0));
    const std::string port = std::to_string(listener.local_endpoint().port());
    const auto answered = ringio::sync_wait(context, [&]() -> ringio::task<std::string> {
        ringio::tcp_stream client = co_await ringio::connect(context, "localhost", port);
        ringio::tcp_stream server = co_await listener.accept().with_timeout(5s);
        co_await client.write_all(std::string("ping"));
        std::string got(4, '\0');
        co_await server.read_exact(got);
        co_await socket.sendto(got, socket.local_endpoint());
        std::string datagram(16, '\0');
        const ringio::received r = co_await socket.recvfrom(datagram);
        datagram.resize(r.size);
        co_return datagram;
    }());
    CHECK(answered == "ping");
}
