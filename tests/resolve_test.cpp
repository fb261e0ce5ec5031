#include <ringio/resolve.hpp>

#include <catch2/catch.hpp>
#include <endpoint_printing.hpp>

#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <string>
#include <system_error>
#include <vector>

using ringio::endpoint;

namespace {

bool contains(const std::vector<endpoint>& endpoints, const endpoint& wanted) {
    return std::find(endpoints.begin(), endpoints.end(), wanted) != endpoints.end();
}

} // namespace

TEST_CASE("resolve: finds the loopback address for localhost", "[resolve]") {
    const auto endpoints = ringio::resolve("localhost", "8080");
    REQUIRE_FALSE(endpoints.empty());
    CHECK((contains(endpoints, endpoint::loopback_v4(8080)) ||
           contains(endpoints, endpoint::loopback_v6(8080))));
    for (const auto& e : endpoints) {
        CHECK(e.port() == 8080);
    }
}

TEST_CASE("resolve: returns every result in getaddrinfo's order", "[resolve]") {
    for (const char* host : {"localhost", "::1", ""}) {
        CAPTURE(host);
        addrinfo hints{};
        hints.ai_socktype = SOCK_DGRAM;
        hints.ai_flags = AI_PASSIVE;
        addrinfo* list = nullptr;
        REQUIRE(::getaddrinfo(*host != '\0' ? host : nullptr, "7", &hints, &list) == 0);
        std::vector<endpoint> expected;
        for (const addrinfo* entry = list; entry != nullptr; entry = entry->ai_next) {
            expected.emplace_back(entry->ai_addr, entry->ai_addrlen);
        }
        ::freeaddrinfo(list);
        CHECK(ringio::resolve(host, "7", {.type = SOCK_DGRAM, .passive = true}) == expected);
    }
}

TEST_CASE("resolve: restricts the result to the family asked for", "[resolve]") {
    const auto v4 = ringio::resolve("localhost", "80", {.family = AF_INET});
    REQUIRE_FALSE(v4.empty());
    CHECK(std::all_of(v4.begin(), v4.end(), [](const endpoint& e) { return e.is_v4(); }));
    CHECK(contains(v4, endpoint::loopback_v4(80)));

    const auto v6 = ringio::resolve("::1", "80", {.family = AF_INET6});
    CHECK(v6 == std::vector{endpoint::loopback_v6(80)});

    std::error_code ec;
    CHECK(ringio::resolve("::1", "80", {.family = AF_INET}, ec).empty());
    CHECK(ec);
}

TEST_CASE("resolve: takes numeric hosts without a lookup", "[resolve]") {
    const ringio::resolve_hints numeric{.numeric_host = true, .numeric_service = true};
    CHECK(ringio::resolve("192.0.2.1", "53", numeric) ==
          std::vector{endpoint::parse("192.0.2.1:53")});
    CHECK(ringio::resolve("2001:db8::1", "443", numeric) ==
          std::vector{endpoint::parse("[2001:db8::1]:443")});
    std::error_code ec;
    CHECK(ringio::resolve("localhost", "80", numeric, ec).empty());
    CHECK(ec == ringio::resolve_errc::no_name);
    CHECK(ringio::resolve("127.0.0.1", "http", numeric, ec).empty());
    CHECK(ec.category() == ringio::resolve_category());
}

TEST_CASE("resolve: gives one endpoint per address for either socket type", "[resolve]") {
    for (const auto type : {SOCK_STREAM, SOCK_DGRAM}) {
        const auto endpoints = ringio::resolve("127.0.0.1", "9", {.type = type});
        CHECK(endpoints == std::vector{endpoint::parse("127.0.0.1:9")});
    }
}

TEST_CASE("resolve: looks up service names", "[resolve]") {
    // getaddrinfo reads service names from /etc/services, which Debian's netbase provides and the
    // scripts install: without it, this test fails rather than test nothing.
    std::error_code ec;
    const auto endpoints = ringio::resolve("127.0.0.1", "http", {}, ec);
    INFO("resolve 127.0.0.1 http: " << ec.message() << " (does /etc/services list http?)");
    REQUIRE_FALSE(ec);
    CHECK(endpoints == std::vector{endpoint::parse("127.0.0.1:80")});
}

TEST_CASE("resolve: an empty passive host gives the wildcard addresses", "[resolve]") {
    const auto endpoints = ringio::resolve("", "8080", {.passive = true});
    REQUIRE_FALSE(endpoints.empty());
    CHECK((contains(endpoints, endpoint::any_v4(8080)) ||
           contains(endpoints, endpoint::any_v6(8080))));
    const auto v4 = ringio::resolve("", "8080", {.family = AF_INET, .passive = true});
    CHECK(v4 == std::vector{endpoint::any_v4(8080)});
}

TEST_CASE("resolve: an empty host that is not passive gives loopback", "[resolve]") {
    const auto v4 = ringio::resolve("", "8080", {.family = AF_INET});
    CHECK(v4 == std::vector{endpoint::loopback_v4(8080)});
}

TEST_CASE("resolve: an unknown host is an error that names the host and port", "[resolve]") {
    // .invalid never resolves (RFC 6761); without a network the resolver may report a temporary
    // or permanent failure instead of "no such name", all of them in the resolve category.
    std::error_code ec;
    CHECK(ringio::resolve("no-such-host.invalid", "80", {}, ec).empty());
    CHECK(ec.category() == ringio::resolve_category());
    CHECK((ec == ringio::resolve_errc::no_name || ec == ringio::resolve_errc::again ||
           ec == ringio::resolve_errc::fail));
    try {
        (void)ringio::resolve("no-such-host.invalid", "80");
        FAIL("no-such-host.invalid resolved");
    } catch (const std::system_error& error) {
        CHECK(error.code() == ec);
        CHECK_THAT(error.what(),
                   Catch::StartsWith("resolve \"no-such-host.invalid\" port \"80\": "));
        CHECK_THAT(error.what(), Catch::EndsWith(ec.message()));
    }
}

TEST_CASE("resolve: an unknown service is an error in the resolve category", "[resolve]") {
    std::error_code ec;
    CHECK(ringio::resolve("127.0.0.1", "no-such-service", {}, ec).empty());
    CHECK(ec == ringio::resolve_errc::service);
    CHECK(ec.message() == ::gai_strerror(EAI_SERVICE));
    CHECK_THROWS_WITH(ringio::resolve("127.0.0.1", "no-such-service"),
                      Catch::Contains("port \"no-such-service\""));
}

TEST_CASE("resolve: a port number out of range is refused, not wrapped to 16 bits", "[resolve]") {
    // glibc reads a numeric service with strtoul and keeps the low 16 bits: 70000 would be
    // port 4464, and 2^32 + 80 port 80.
    for (const std::string_view port :
         {"65536", "70000", "4294967376", "-4294967216", " 70000", "+99999", "-1"}) {
        INFO("port \"" << port << "\"");
        std::error_code ec;
        CHECK(ringio::resolve("127.0.0.1", port, {}, ec).empty());
        CHECK(ec == std::errc::result_out_of_range);
        CHECK_THROWS_WITH(
            ringio::resolve("127.0.0.1", port),
            Catch::StartsWith("resolve \"127.0.0.1\" port \"" + std::string(port) + "\": ") &&
                Catch::Contains("out of range"));
    }
    CHECK(ringio::resolve("127.0.0.1", "65535") == std::vector{endpoint::loopback_v4(65535)});
    CHECK(ringio::resolve("127.0.0.1", "+80") == std::vector{endpoint::loopback_v4(80)});
}

TEST_CASE("resolve: a name with a NUL byte is rejected, not cut short", "[resolve]") {
    using namespace std::string_view_literals;
    std::error_code ec;
    CHECK(ringio::resolve("localhost\0.invalid"sv, "80", {}, ec).empty());
    CHECK(ec == std::errc::invalid_argument);
    CHECK(ringio::resolve("localhost", "80\0"sv, {}, ec).empty());
    CHECK(ec == std::errc::invalid_argument);
    CHECK_THROWS_WITH(ringio::resolve("localhost\0x"sv, "80"),
                      Catch::StartsWith("resolve \"localhost\\x00x\" port \"80\""));
}

TEST_CASE("resolve: the error category names its codes with gai_strerror", "[resolve]") {
    const std::error_code no_name = ringio::resolve_errc::no_name;
    CHECK(no_name.value() == EAI_NONAME);
    CHECK(no_name.message() == ::gai_strerror(EAI_NONAME));
    CHECK(std::string(ringio::resolve_category().name()) == "ringio.resolve");
    CHECK(std::error_code(ringio::resolve_errc::memory) == std::errc::not_enough_memory);
    CHECK(std::error_code(ringio::resolve_errc::family) == std::errc::address_family_not_supported);
    CHECK(std::error_code(ringio::resolve_errc::again) ==
          std::errc::resource_unavailable_try_again);
}

TEST_CASE("name_of: gives the numeric host and port on request", "[resolve]") {
    const ringio::resolve_hints numeric{.numeric_host = true, .numeric_service = true};
    auto [host, port] = ringio::name_of(endpoint::parse("192.0.2.1:8080"), numeric);
    CHECK(host == "192.0.2.1");
    CHECK(port == "8080");
    const auto v6 = ringio::name_of(endpoint::parse("[2001:db8::1]:53"), numeric);
    CHECK(v6.host == "2001:db8::1");
    CHECK(v6.service == "53");
}

TEST_CASE("name_of: names the loopback host when not numeric", "[resolve]") {
    const auto names = ringio::name_of(endpoint::loopback_v4(80));
    // /etc/hosts maps 127.0.0.1 to localhost on Debian; other names may come first elsewhere.
    CHECK_FALSE(names.host.empty());
    CHECK(names.host != "127.0.0.1");
    CHECK((names.service == "http" || names.service == "80"));
}

TEST_CASE("name_of: a datagram type names the port as a UDP service", "[resolve]") {
    // Port 512 is "exec" over TCP and "biff" over UDP in netbase's /etc/services.
    CHECK(ringio::name_of(endpoint::loopback_v4(512)).service == "exec");
    CHECK(ringio::name_of(endpoint::loopback_v4(512), {.type = SOCK_DGRAM}).service == "biff");
}

TEST_CASE("name_of: an empty endpoint is an error that says so", "[resolve]") {
    std::error_code ec;
    const auto names = ringio::name_of(endpoint{}, {}, ec);
    CHECK(ec == ringio::resolve_errc::family);
    CHECK(names.host.empty());
    CHECK_THROWS_WITH(ringio::name_of(endpoint{}), Catch::StartsWith("name_of an empty endpoint"));
}

TEST_CASE("name_of: requiring a name fails for an address without one", "[resolve]") {
    std::error_code ec;
    // 192.0.2.0/24 is reserved for documentation: no hosts entry, and no DNS answer offline.
    (void)ringio::name_of(endpoint::parse("192.0.2.55:80"), {.name_required = true}, ec);
    CHECK(ec.category() == ringio::resolve_category());
    CHECK(ec);
    CHECK_THROWS_WITH(ringio::name_of(endpoint::parse("192.0.2.55:80"), {.name_required = true}),
                      Catch::StartsWith("name_of 192.0.2.55:80: "));
}
