#include <ringio/endpoint.hpp>

#include <catch2/catch.hpp>
#include <endpoint_printing.hpp>

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_set>

using ringio::endpoint;

namespace {

// The exception parse throws for `text`; fails the test if it throws nothing.
std::system_error parse_failure(std::string_view text) {
    try {
        (void)endpoint::parse(text);
    } catch (const std::system_error& error) {
        return error;
    }
    FAIL("parse accepted " << std::string(text));
    return std::system_error(std::error_code{});
}

sockaddr_in make_v4(const char* address, std::uint16_t port) {
    sockaddr_in v4{};
    v4.sin_family = AF_INET;
    v4.sin_port = htons(port);
    REQUIRE(::inet_pton(AF_INET, address, &v4.sin_addr) == 1);
    return v4;
}

} // namespace

TEST_CASE("endpoint: a default-constructed endpoint is empty", "[endpoint]") {
    const endpoint e;
    CHECK(e.empty());
    CHECK(e.family() == AF_UNSPEC);
    CHECK(e.size() == 0);
    CHECK(e.port() == 0);
    CHECK_FALSE(e.is_v4());
    CHECK_FALSE(e.is_v6());
    CHECK(e.to_string().empty());
    CHECK(e == endpoint{});
}

TEST_CASE("endpoint: parses an IPv4 address and port", "[endpoint]") {
    const auto e = endpoint::parse("127.0.0.1:8080");
    CHECK(e.is_v4());
    CHECK(e.family() == AF_INET);
    CHECK(e.port() == 8080);
    CHECK(e.size() == sizeof(sockaddr_in));
    CHECK(e == endpoint::loopback_v4(8080));
    CHECK(e.to_string() == "127.0.0.1:8080");
}

TEST_CASE("endpoint: parses an IPv6 address in brackets", "[endpoint]") {
    const auto e = endpoint::parse("[::1]:8080");
    CHECK(e.is_v6());
    CHECK(e.family() == AF_INET6);
    CHECK(e.port() == 8080);
    CHECK(e.size() == sizeof(sockaddr_in6));
    CHECK(e.scope_id() == 0);
    CHECK(e == endpoint::loopback_v6(8080));
    CHECK(e.to_string() == "[::1]:8080");
}

TEST_CASE("endpoint: parses the lowest and highest ports", "[endpoint]") {
    CHECK(endpoint::parse("0.0.0.0:0") == endpoint::any_v4(0));
    CHECK(endpoint::parse("[::]:65535") == endpoint::any_v6(65535));
    CHECK(endpoint::parse("1.2.3.4:65535").port() == 65535);
}

TEST_CASE("endpoint: prints what it parses, for IPv4 and IPv6", "[endpoint]") {
    for (const char* text : {"127.0.0.1:8080", "0.0.0.0:0", "255.255.255.255:65535", "10.0.0.1:1",
                             "[::1]:8080", "[::]:0", "[::ffff:1.2.3.4]:80", "[2001:db8::1]:443",
                             "[fe80::1:2:3:4]:65535", "[2001:db8:0:1:1:1:1:1]:9"}) {
        CAPTURE(text);
        const auto e = endpoint::parse(text);
        CHECK(e.to_string() == text);
        CHECK(endpoint::parse(e.to_string()) == e);
    }
}

TEST_CASE("endpoint: prints an IPv6 address in its shortest form", "[endpoint]") {
    CHECK(endpoint::parse("[0:0:0:0:0:0:0:1]:80").to_string() == "[::1]:80");
    CHECK(endpoint::parse("[2001:DB8::A]:80").to_string() == "[2001:db8::a]:80");
    CHECK(endpoint::parse("[::ffff:0102:0304]:80").to_string() == "[::ffff:1.2.3.4]:80");
}

TEST_CASE("endpoint: parses a numeric IPv6 scope and prints it back", "[endpoint]") {
    const auto e = endpoint::parse("[fe80::1%1]:80");
    CHECK(e.scope_id() == 1);
    CHECK(e != endpoint::parse("[fe80::1]:80"));
    CHECK(endpoint::parse(e.to_string()) == e);
    // An index that names no interface prints as the number.
    const auto unnamed = endpoint::parse("[fe80::1%4000000000]:80");
    CHECK(unnamed.scope_id() == 4000000000U);
    CHECK(unnamed.to_string() == "[fe80::1%4000000000]:80");
}

TEST_CASE("endpoint: parses an interface name as the IPv6 scope", "[endpoint]") {
    const unsigned index = ::if_nametoindex("lo");
    if (index == 0) {
        WARN("SKIPPED: this machine has no interface named lo");
        return;
    }
    const auto e = endpoint::parse("[fe80::1%lo]:80");
    CHECK(e.scope_id() == index);
    CHECK(e.to_string() == "[fe80::1%lo]:80");
    CHECK(endpoint::parse("[fe80::1%" + std::to_string(index) + "]:80") == e);
}

TEST_CASE("endpoint: rejects text that is not an endpoint, saying why", "[endpoint]") {
    using namespace std::string_view_literals;
    const std::string overlong = "[" + std::string(200, '1') + "]:80";
    for (const std::string_view text : {""sv,
                                        "127.0.0.1"sv,
                                        "127.0.0.1:"sv,
                                        ":80"sv,
                                        "1.2.3:80"sv,
                                        "1.2.3.4.5:80"sv,
                                        "256.1.1.1:80"sv,
                                        "01.2.3.4:80"sv,
                                        "localhost:80"sv,
                                        "1.2.3.4:65536"sv,
                                        "1.2.3.4:99999"sv,
                                        "1.2.3.4:123456"sv,
                                        "1.2.3.4:-1"sv,
                                        "1.2.3.4:+80"sv,
                                        "1.2.3.4: 80"sv,
                                        "1.2.3.4:80 "sv,
                                        " 1.2.3.4:80"sv,
                                        "1.2.3.4:080"sv,
                                        "1.2.3.4:0x50"sv,
                                        "1.2.3.4:80:"sv,
                                        "1.2.3.4:8a"sv,
                                        "1.2.3.4:80x"sv,
                                        "[::1]"sv,
                                        "[::1]:"sv,
                                        "[::1]80"sv,
                                        "[::1]:80x"sv,
                                        "[::1]:80]"sv,
                                        "::1:80"sv,
                                        "::1"sv,
                                        "[::1:80"sv,
                                        "::1]:80"sv,
                                        "[1.2.3.4]:80"sv,
                                        "[::g]:80"sv,
                                        "[]:80"sv,
                                        "[[::1]]:80"sv,
                                        "[::1%]:80"sv,
                                        "[fe80::1%0]:80"sv,
                                        "[fe80::1%01]:80"sv,
                                        "[fe80::1%4294967296]:80"sv,
                                        "[fe80::1%no-such-if]:80"sv,
                                        "[fe80::1%abcdefghijklmnopq]:80"sv,
                                        "1.2.3.4\0:80"sv,
                                        "1.2.3.4:80\0"sv,
                                        "[::1\0]:80"sv,
                                        std::string_view(overlong)}) {
        CAPTURE(text);
        std::error_code ec = std::make_error_code(std::errc::io_error);
        CHECK(endpoint::parse(text, ec).empty());
        CHECK(ec == std::errc::invalid_argument);
        const auto error = parse_failure(text);
        CHECK(error.code() == std::errc::invalid_argument);
        CHECK_THAT(error.what(), Catch::StartsWith("parse endpoint \""));
    }
}

TEST_CASE("endpoint: the parse error quotes the text and names the problem", "[endpoint]") {
    using Catch::Contains;
    CHECK_THAT(parse_failure("1.2.3:80").what(),
               Catch::StartsWith("parse endpoint \"1.2.3:80\": the host is not an IPv4 address"));
    CHECK_THAT(parse_failure("1.2.3.4:65536").what(), Contains("greater than 65535"));
    CHECK_THAT(parse_failure("1.2.3.4:+80").what(), Contains("not a decimal number"));
    CHECK_THAT(parse_failure("1.2.3.4:080").what(), Contains("leading zero"));
    CHECK_THAT(parse_failure("1.2.3.4:").what(), Contains("missing port"));
    CHECK_THAT(parse_failure("1.2.3.4").what(), Contains("missing ':' and port"));
    CHECK_THAT(parse_failure("[::1]").what(), Contains("missing ':' and port after ']'"));
    CHECK_THAT(parse_failure("::1:80").what(), Contains("needs brackets"));
    CHECK_THAT(parse_failure("[::1:80").what(), Contains("missing ']'"));
    CHECK_THAT(parse_failure("[::g]:80").what(), Contains("not an IPv6 address"));
    CHECK_THAT(parse_failure("[fe80::1%no-such-if]:80").what(), Contains("no network interface"));
    CHECK_THAT(parse_failure("").what(), Contains("empty"));
    CHECK_THAT(parse_failure(":80").what(), Contains("missing address"));
    CHECK_THAT(parse_failure(std::string_view("1.2\0:80", 7)).what(),
               Catch::StartsWith("parse endpoint \"1.2\\x00:80\": the text contains a NUL byte"));
    const std::string overlong(1000, '9');
    const std::string what = parse_failure(overlong).what();
    CHECK_THAT(what, Contains("longer than any endpoint"));
    CHECK(what.size() < 200);
}

TEST_CASE("endpoint: the non-throwing parse clears a previous error", "[endpoint]") {
    std::error_code ec = std::make_error_code(std::errc::io_error);
    CHECK(endpoint::parse("1.2.3.4:5", ec) == endpoint::parse("1.2.3.4:5"));
    CHECK_FALSE(ec);
}

TEST_CASE("endpoint: factories give loopback and wildcard addresses", "[endpoint]") {
    CHECK(endpoint::loopback_v4(1).to_string() == "127.0.0.1:1");
    CHECK(endpoint::loopback_v6(2).to_string() == "[::1]:2");
    CHECK(endpoint::any_v4(3).to_string() == "0.0.0.0:3");
    CHECK(endpoint::any_v6(4).to_string() == "[::]:4");
}

TEST_CASE("endpoint: builds from an address and a port in host byte order", "[endpoint]") {
    in_addr v4{};
    REQUIRE(::inet_pton(AF_INET, "192.0.2.7", &v4) == 1);
    CHECK(endpoint(v4, 5353).to_string() == "192.0.2.7:5353");
    in6_addr v6{};
    REQUIRE(::inet_pton(AF_INET6, "2001:db8::7", &v6) == 1);
    CHECK(endpoint(v6, 5353).to_string() == "[2001:db8::7]:5353");
    CHECK(endpoint(v6, 5353, 4000000000U).scope_id() == 4000000000U);
}

TEST_CASE("endpoint: equality ignores the storage's padding and the flow label", "[endpoint]") {
    auto v4 = make_v4("10.1.2.3", 99);
    v4.sin_zero[3] = 42;
    const endpoint from_kernel(reinterpret_cast<const sockaddr*>(&v4), sizeof v4);
    CHECK(from_kernel == endpoint::parse("10.1.2.3:99"));
    CHECK(std::hash<endpoint>{}(from_kernel) ==
          std::hash<endpoint>{}(endpoint::parse("10.1.2.3:99")));

    sockaddr_in6 v6{};
    v6.sin6_family = AF_INET6;
    v6.sin6_port = htons(7);
    v6.sin6_addr = in6addr_loopback;
    v6.sin6_flowinfo = htonl(12345);
    const endpoint labelled(reinterpret_cast<const sockaddr*>(&v6), sizeof v6);
    CHECK(labelled == endpoint::loopback_v6(7));
    CHECK(std::hash<endpoint>{}(labelled) == std::hash<endpoint>{}(endpoint::loopback_v6(7)));
}

TEST_CASE("endpoint: compares family, address, port and scope", "[endpoint]") {
    const auto base = endpoint::parse("[fe80::1%7]:80");
    CHECK(base == endpoint::parse("[fe80::1%7]:80"));
    CHECK(base != endpoint::parse("[fe80::2%7]:80"));
    CHECK(base != endpoint::parse("[fe80::1%8]:80"));
    CHECK(base != endpoint::parse("[fe80::1%7]:81"));
    CHECK(endpoint::parse("1.2.3.4:80") != endpoint::parse("[::ffff:1.2.3.4]:80"));
    CHECK(endpoint::parse("1.2.3.4:80") != endpoint::parse("1.2.3.5:80"));
}

TEST_CASE("endpoint: orders empty before IPv4 before IPv6, then by address and port",
          "[endpoint]") {
    CHECK(endpoint{} < endpoint::parse("0.0.0.0:0"));
    CHECK(endpoint::parse("255.255.255.255:65535") < endpoint::parse("[::]:0"));
    CHECK(endpoint::parse("1.2.3.4:9") < endpoint::parse("1.2.3.5:1"));
    CHECK(endpoint::parse("9.9.9.9:1") < endpoint::parse("10.0.0.0:1"));
    CHECK(endpoint::parse("1.2.3.4:80") < endpoint::parse("1.2.3.4:443"));
    CHECK(std::is_eq(endpoint::parse("[::1]:80") <=> endpoint::parse("[::1]:80")));

    std::map<endpoint, int> by_endpoint;
    by_endpoint[endpoint::parse("[::1]:1")] = 3;
    by_endpoint[endpoint::parse("1.2.3.4:1")] = 1;
    by_endpoint[endpoint::parse("1.2.3.4:2")] = 2;
    by_endpoint[endpoint::parse("1.2.3.4:1")] = 1;
    REQUIRE(by_endpoint.size() == 3);
    int expected = 1;
    for (const auto& [key, value] : by_endpoint) {
        CHECK(value == expected++);
    }
}

TEST_CASE("endpoint: equal endpoints hash equally and key an unordered_set", "[endpoint]") {
    std::unordered_set<endpoint> set;
    for (const char* text : {"1.2.3.4:80", "1.2.3.4:81", "[::1]:80", "[::1%1]:80", "0.0.0.0:0"}) {
        CHECK(set.insert(endpoint::parse(text)).second);
    }
    CHECK(set.insert(endpoint{}).second);
    CHECK_FALSE(set.insert(endpoint::parse("[0::1]:80")).second);
    CHECK_FALSE(set.insert(endpoint::parse("1.2.3.4:80")).second);
    CHECK(set.size() == 6);
    CHECK(set.count(endpoint::parse("1.2.3.4:81")) == 1);
    CHECK(set.count(endpoint::parse("1.2.3.4:82")) == 0);
}

TEST_CASE("endpoint: copies a valid sockaddr and rejects others", "[endpoint]") {
    const auto v4 = make_v4("192.0.2.1", 53);
    const auto* address = reinterpret_cast<const sockaddr*>(&v4);
    CHECK(endpoint(address, sizeof v4).to_string() == "192.0.2.1:53");

    // A length larger than the structure is allowed, as bind(2) allows it.
    sockaddr_storage storage{};
    std::memcpy(&storage, &v4, sizeof v4);
    const endpoint from_storage(reinterpret_cast<const sockaddr*>(&storage), sizeof storage);
    CHECK(from_storage.size() == sizeof(sockaddr_in));

    std::error_code ec;
    CHECK(endpoint(address, sizeof v4 - 1, ec).empty());
    CHECK(ec == std::errc::invalid_argument);
    CHECK(endpoint(nullptr, 16, ec).empty());
    CHECK(ec == std::errc::invalid_argument);

    sockaddr_in6 v6{};
    v6.sin6_family = AF_INET6;
    CHECK(endpoint(reinterpret_cast<const sockaddr*>(&v6), sizeof(sockaddr_in), ec).empty());
    CHECK(ec == std::errc::invalid_argument);
    CHECK(endpoint(reinterpret_cast<const sockaddr*>(&v6), sizeof v6, ec).is_v6());
    CHECK_FALSE(ec);

    sockaddr_storage packet_address{};
    packet_address.ss_family = AF_PACKET;
    CHECK(endpoint(reinterpret_cast<const sockaddr*>(&packet_address), sizeof packet_address, ec)
              .empty());
    CHECK(ec == std::errc::address_family_not_supported);
    try {
        endpoint thrown(reinterpret_cast<const sockaddr*>(&packet_address), sizeof packet_address);
        FAIL("an AF_PACKET address was accepted");
    } catch (const std::system_error& error) {
        CHECK(error.code() == std::errc::address_family_not_supported);
        CHECK_THAT(error.what(),
                   Catch::StartsWith("endpoint from sockaddr (family 17, 128 bytes): "));
    }
}

TEST_CASE("endpoint: adopts the address the kernel writes into it", "[endpoint]") {
    // A real kernel write: getsockname on a bound loopback socket.
    const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    REQUIRE(fd >= 0);
    const auto bound = endpoint::loopback_v4(0);
    REQUIRE(::bind(fd, bound.data(), bound.size()) == 0);
    endpoint local = endpoint::parse("[::1]:1");
    socklen_t length = endpoint::capacity();
    REQUIRE(::getsockname(fd, local.mutable_data(), &length) == 0);
    ::close(fd);
    CHECK(local.empty());
    local.resize(length);
    CHECK(local.is_v4());
    CHECK(local.size() == sizeof(sockaddr_in));
    CHECK(local.port() != 0);
    CHECK(local.to_string().rfind("127.0.0.1:", 0) == 0);
}

TEST_CASE("endpoint: resize rejects a length the family does not fit", "[endpoint]") {
    endpoint e;
    auto v4 = make_v4("1.2.3.4", 5);
    std::memcpy(e.mutable_data(), &v4, sizeof v4);
    std::error_code ec;
    e.resize(8, ec);
    CHECK(ec == std::errc::invalid_argument);
    CHECK(e.empty());
    e.resize(endpoint::capacity() + 1, ec);
    CHECK(ec == std::errc::invalid_argument);
    CHECK(e.empty());
    CHECK_THROWS_AS(e.resize(3), std::system_error);
    e.resize(0, ec);
    CHECK_FALSE(ec);
    CHECK(e.empty());
    e.resize(sizeof v4, ec);
    CHECK_FALSE(ec);
    CHECK(e == endpoint::parse("1.2.3.4:5"));
}

TEST_CASE("endpoint: an IPv4-mapped address is recognised and unmapped", "[endpoint]") {
    const auto mapped = ringio::endpoint::parse("[::ffff:192.0.2.7]:8080");
    CHECK(mapped.is_v4_mapped());
    CHECK(mapped.unmapped() == ringio::endpoint::parse("192.0.2.7:8080"));
    const auto plain = ringio::endpoint::parse("[2001:db8::7]:80");
    CHECK_FALSE(plain.is_v4_mapped());
    CHECK(plain.unmapped() == plain);
    const auto v4 = ringio::endpoint::parse("10.1.2.3:9");
    CHECK_FALSE(v4.is_v4_mapped());
    CHECK(v4.unmapped() == v4);
    CHECK_FALSE(ringio::endpoint{}.is_v4_mapped());
}

TEST_CASE("endpoint: a Unix path", "[endpoint]") {
    const auto e = endpoint::unix_path("/run/app.sock");
    CHECK(e.is_unix());
    CHECK(e.family() == AF_UNIX);
    CHECK_FALSE(e.empty());
    CHECK_FALSE(e.is_v4());
    CHECK_FALSE(e.is_v6());
    CHECK(e.port() == 0);
    CHECK(e.scope_id() == 0);
    CHECK(e.unix_name() == "/run/app.sock");
    CHECK(e.size() == offsetof(sockaddr_un, sun_path) + std::strlen("/run/app.sock") + 1);
    CHECK(e.to_string() == "unix:/run/app.sock");
    CHECK(endpoint::parse("unix:/run/app.sock") == e);
    CHECK(endpoint::unix_path("relative/app.sock").to_string() == "unix:relative/app.sock");
    sockaddr_un un{};
    std::memcpy(&un, e.data(), e.size());
    CHECK(un.sun_family == AF_UNIX);
    CHECK(std::string_view(un.sun_path) == "/run/app.sock");
}

TEST_CASE("endpoint: a Unix abstract name", "[endpoint]") {
    const auto e = endpoint::unix_abstract("app");
    CHECK(e.is_unix());
    CHECK(e.unix_name() == std::string_view("\0app", 4));
    CHECK(e.size() == offsetof(sockaddr_un, sun_path) + 4); // no terminating NUL counted
    CHECK(e.to_string() == "unix:@app");
    CHECK(endpoint::parse("unix:@app") == e);
    CHECK(e != endpoint::unix_path("app"));
    CHECK(e != endpoint::unix_path("./@app"));
    // An empty abstract name is a name too, not the unnamed address.
    const auto empty_name = endpoint::unix_abstract("");
    CHECK(empty_name.to_string() == "unix:@");
    CHECK(endpoint::parse("unix:@") == empty_name);
    CHECK(empty_name != endpoint::parse("unix:"));
}

TEST_CASE("endpoint: the unnamed Unix address is not empty", "[endpoint]") {
    const auto unnamed = endpoint::parse("unix:");
    CHECK(unnamed.is_unix());
    CHECK_FALSE(unnamed.empty());
    CHECK(unnamed.unix_name().empty());
    CHECK(unnamed.size() == sizeof(sa_family_t));
    CHECK(unnamed.to_string() == "unix:");
    CHECK(unnamed == endpoint::unix_path(""));
    CHECK(unnamed != endpoint{});
    // As the kernel reports a peer that never bound: the family alone.
    const sa_family_t family = AF_UNIX;
    CHECK(endpoint(reinterpret_cast<const sockaddr*>(&family), sizeof family) == unnamed);
}

TEST_CASE("endpoint: Unix text forms print back as they parse", "[endpoint]") {
    const std::string longest_path = "/" + std::string(106, 'p');
    const std::string longest_name = std::string(106, 'n');
    for (const std::string& text :
         {std::string("unix:/tmp/a b"), std::string("unix:rel/x"), std::string("unix:@n"),
          std::string("unix:@"), std::string("unix:"), std::string("unix:/tmp/x@y"),
          std::string("unix:@with/slash"), "unix:" + longest_path, "unix:@" + longest_name}) {
        const auto e = endpoint::parse(text);
        CHECK(e.to_string() == text);
        CHECK(endpoint::parse(e.to_string()) == e);
        CHECK(std::hash<endpoint>{}(endpoint::parse(e.to_string())) == std::hash<endpoint>{}(e));
    }
}

TEST_CASE("endpoint: a Unix name that does not fit is ENAMETOOLONG, a NUL inside is EINVAL, as "
          "is a path that begins with '@'",
          "[endpoint]") {
    // sun_path is 108 bytes: 107 for a path and its NUL, 106 for an abstract name.
    CHECK_NOTHROW(endpoint::unix_path(std::string(107, 'p')));
    CHECK_NOTHROW(endpoint::unix_abstract(std::string(106, 'n')));
    const auto failure = [](auto make) -> std::system_error {
        try {
            (void)make();
        } catch (const std::system_error& error) {
            return error;
        }
        FAIL("accepted");
        return std::system_error(std::error_code{});
    };
    const auto long_path = failure([] { return endpoint::unix_path(std::string(108, 'p')); });
    CHECK(long_path.code() == std::errc::filename_too_long);
    CHECK_THAT(long_path.what(), Catch::StartsWith("endpoint unix:\"ppp"));
    CHECK_THAT(long_path.what(), Catch::EndsWith("\"...: File name too long"));
    const auto long_name = failure([] { return endpoint::unix_abstract(std::string(107, 'n')); });
    CHECK(long_name.code() == std::errc::filename_too_long);
    CHECK_THAT(long_name.what(), Catch::StartsWith("endpoint unix:@\"nnn"));

    const auto nul_path =
        failure([] { return endpoint::unix_path(std::string_view("/tmp/a\0b", 8)); });
    CHECK(nul_path.code() == std::errc::invalid_argument);
    CHECK(std::string(nul_path.what()) == "endpoint unix:\"/tmp/a\\x00b\": Invalid argument");
    const auto nul_name =
        failure([] { return endpoint::unix_abstract(std::string_view("a\0b", 3)); });
    CHECK(nul_name.code() == std::errc::invalid_argument);
    CHECK(std::string(nul_name.what()) == "endpoint unix:@\"a\\x00b\": Invalid argument");
    // A path that begins with '@' would print as an abstract name, and parse back as one.
    const auto at_path = failure([] { return endpoint::unix_path("@x"); });
    CHECK(at_path.code() == std::errc::invalid_argument);
    CHECK(std::string(at_path.what()) == "endpoint unix:\"@x\": Invalid argument");
    CHECK(endpoint::unix_path("./@x").to_string() == "unix:./@x");

    // parse reports both as EINVAL, and says why.
    for (const std::string& text :
         {"unix:" + std::string(108, 'p'), "unix:@" + std::string(107, 'n'),
          std::string("unix:/tmp/a\0b", 13)}) {
        std::error_code ec = std::make_error_code(std::errc::io_error);
        CHECK(endpoint::parse(text, ec).empty());
        CHECK(ec == std::errc::invalid_argument);
        const auto error = parse_failure(text);
        CHECK(error.code() == std::errc::invalid_argument);
        CHECK_THAT(error.what(), Catch::Contains("a Unix path may not hold a NUL byte or pass 107 "
                                                 "bytes (106 for an abstract name)"));
    }
}

TEST_CASE("endpoint: a Unix path compares equal however the kernel counts its NUL", "[endpoint]") {
    const auto expected = endpoint::unix_path("/tmp/s");
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    std::memcpy(un.sun_path, "/tmp/s", 6);
    const auto* address = reinterpret_cast<const sockaddr*>(&un);
    const auto base = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path));
    for (const socklen_t size : {socklen_t(base + 6), socklen_t(base + 7), socklen_t(sizeof un)}) {
        const endpoint e(address, size);
        CHECK(e == expected);
        CHECK(e.unix_name() == "/tmp/s");
        CHECK(e.to_string() == "unix:/tmp/s");
        CHECK(std::hash<endpoint>{}(e) == std::hash<endpoint>{}(expected));
    }
    // Longer than a sockaddr_un is cut to it.
    sockaddr_storage storage{};
    std::memcpy(&storage, &un, sizeof un);
    const endpoint from_storage(reinterpret_cast<const sockaddr*>(&storage), sizeof storage);
    CHECK(from_storage.size() == sizeof un);
    CHECK(from_storage == expected);
}

TEST_CASE("endpoint: Unix addresses order, hash and compare among the other families",
          "[endpoint]") {
    const auto path = endpoint::unix_path("/a");
    const auto abstract = endpoint::unix_abstract("a");
    const auto unnamed = endpoint::parse("unix:");
    const auto v4 = endpoint::parse("0.0.0.0:0");
    const auto v6 = endpoint::parse("[::]:0");
    // Empty < Unix < IPv4 < IPv6; among Unix names, by their bytes (an abstract name starts
    // with NUL, so it comes before every path).
    CHECK(endpoint{} < unnamed);
    CHECK(unnamed < abstract);
    CHECK(abstract < path);
    CHECK(path < endpoint::unix_path("/b"));
    CHECK(endpoint::unix_path("/a") < endpoint::unix_path("/a/b"));
    CHECK(path < v4);
    CHECK(v4 < v6);
    CHECK(path != abstract);
    CHECK(std::is_eq(path <=> endpoint::unix_path("/a")));

    std::unordered_set<endpoint> set;
    for (const endpoint& e : {endpoint{}, unnamed, abstract, path, v4, v6, endpoint::unix_path("a"),
                              endpoint::unix_abstract("/a")}) {
        CHECK(set.insert(e).second);
    }
    CHECK_FALSE(set.insert(endpoint::parse("unix:/a")).second);
    CHECK_FALSE(set.insert(endpoint::parse("unix:@a")).second);
    CHECK_FALSE(set.insert(endpoint::unix_path("")).second);
    CHECK(set.size() == 8);

    std::map<endpoint, int> ordered{{v6, 5}, {path, 3},     {endpoint{}, 0},
                                    {v4, 4}, {abstract, 2}, {unnamed, 1}};
    int expected = 0;
    for (const auto& [key, value] : ordered) {
        CHECK(value == expected++);
    }
}

TEST_CASE("parse_port: decimal digits from 1 to 65535 and nothing else", "[endpoint]") {
    CHECK(ringio::parse_port("1") == std::uint16_t{1});
    CHECK(ringio::parse_port("80") == std::uint16_t{80});
    CHECK(ringio::parse_port("8080") == std::uint16_t{8080});
    CHECK(ringio::parse_port("65535") == std::uint16_t{65535});
    for (const std::string_view bad :
         {"", "0", "00", "080", "65536", "99999", "4294967377", "+80", "-80", "-0", " 80", "80 ",
          "8 0", "http", "8o", "0x50", "80.0", "1e3", "٨٠"}) {
        INFO("text: \"" << std::string(bad) << "\"");
        CHECK_FALSE(ringio::parse_port(bad).has_value());
    }
    CHECK_FALSE(ringio::parse_port(std::string_view("80\0", 3)).has_value());
    CHECK_FALSE(ringio::parse_port(std::string(1000, '9')).has_value());
}
