// libFuzzer target for endpoint::parse. Whatever it accepts must print as text that parses back
// to an equal endpoint (with an equal hash) and prints the same again, and getaddrinfo must read
// the same address and port from an IP one; whatever it rejects, both forms must reject alike.

#include <ringio/endpoint.hpp>
#include <ringio/resolve.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>
#include <system_error>
#include <vector>

namespace {

// A broken property is a crash, which libFuzzer reports with the input that caused it.
void require(bool property) {
    if (!property) {
        __builtin_trap();
    }
}

// parse accepts a subset of what getaddrinfo reads as a numeric host and port, and must agree
// with it on that subset. A scope is left out: glibc reads interface names for link-local
// addresses only, where parse reads them for any IPv6 address.
void agrees_with_getaddrinfo(std::string_view text, const ringio::endpoint& e) {
    if (e.scope_id() != 0) {
        return;
    }
    const auto colon = text.rfind(':');
    const auto host = e.is_v4() ? text.substr(0, colon) : text.substr(1, text.find(']') - 1);
    std::error_code ec;
    const auto endpoints = ringio::resolve(host, text.substr(colon + 1),
                                           {.numeric_host = true, .numeric_service = true}, ec);
    require(!ec && endpoints == std::vector{e});
}

} // namespace

// NOLINTNEXTLINE(readability-identifier-naming): the name libFuzzer calls.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    std::error_code ec;
    const auto e = ringio::endpoint::parse(text, ec);

    bool threw = false;
    try {
        require(ringio::endpoint::parse(text) == e);
    } catch (const std::system_error& error) {
        threw = true;
        require(error.code() == std::errc::invalid_argument ||
                (text.starts_with("unix:") && error.code() == std::errc::filename_too_long));
    }
    require(threw == static_cast<bool>(ec));
    if (ec) {
        require(e.empty());
        return 0;
    }

    require(e.is_v4() || e.is_v6() || e.is_unix());
    const auto printed = e.to_string();
    std::error_code again;
    const auto reparsed = ringio::endpoint::parse(printed, again);
    require(!again);
    require(reparsed == e);
    require(std::hash<ringio::endpoint>{}(reparsed) == std::hash<ringio::endpoint>{}(e));
    require(reparsed.to_string() == printed);
    if (!e.is_unix()) {
        agrees_with_getaddrinfo(text, e);
    }
    return 0;
}
