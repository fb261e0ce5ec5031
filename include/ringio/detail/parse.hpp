#pragma once

// parse: endpoint text read and written (addresses, ports, IPv6 scopes), and quoting text in error
// messages.

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ringio::detail {

/// Quotes `text` for an error message: printable ASCII as is, `"` and `\` escaped, any other
/// byte as `\xNN`, cut after 64 bytes so that a huge input cannot make a huge message.
inline std::string quote(std::string_view text) {
    constexpr std::size_t limit = 64;
    constexpr std::string_view hex = "0123456789abcdef";
    std::string out = "\"";
    for (std::size_t i = 0; i < text.size() && i < limit; ++i) {
        const auto byte = static_cast<unsigned char>(text[i]);
        if (byte == '"' || byte == '\\') {
            out += '\\';
            out += text[i];
        } else if (byte >= 0x20 && byte < 0x7f) {
            out += text[i];
        } else {
            out += "\\x";
            out += hex[static_cast<std::size_t>(byte >> 4U)];
            out += hex[static_cast<std::size_t>(byte & 0xfU)];
        }
    }
    out += text.size() > limit ? "\"..." : "\"";
    return out;
}

inline bool all_digits(std::string_view text) noexcept {
    return !text.empty() && text.find_first_not_of("0123456789") == std::string_view::npos;
}

/// Reads a decimal number of at most `max` written without sign or leading zero (so that
/// printing it gives the same text back); false if `text` is anything else.
inline bool parse_decimal(std::string_view text, std::uint32_t max, std::uint32_t& out) noexcept {
    if (!all_digits(text) || (text.size() > 1 && text[0] == '0')) {
        return false;
    }
    std::uint64_t value = 0;
    for (const char digit : text) {
        value = value * 10 + static_cast<std::uint64_t>(digit - '0');
        if (value > max) {
            return false;
        }
    }
    out = static_cast<std::uint32_t>(value);
    return true;
}

// Each parse_* function returns nullptr on success, else why the text is rejected: the reason
// ends up in the exception's message, so that each kind of bad input has its own.

inline const char* parse_port(std::string_view text, std::uint16_t& port) noexcept {
    std::uint32_t value = 0;
    if (text.empty()) {
        return "missing port after ':'";
    }
    if (!all_digits(text)) {
        return "the port is not a decimal number";
    }
    if (text.size() > 1 && text[0] == '0') {
        return "the port has a leading zero";
    }
    if (!parse_decimal(text, 65535, value)) {
        return "the port is greater than 65535";
    }
    port = static_cast<std::uint16_t>(value);
    return nullptr;
}

inline const char* parse_scope(std::string_view text, std::uint32_t& scope_id) noexcept {
    if (text.empty()) {
        return "empty scope after '%'";
    }
    if (all_digits(text)) {
        if (!parse_decimal(text, UINT32_MAX, scope_id) || scope_id == 0) {
            return "the scope index is not 1 to 4294967295 without a leading zero";
        }
        return nullptr;
    }
    std::array<char, IF_NAMESIZE> name{};
    if (text.size() >= name.size()) {
        return "the scope is longer than any interface name";
    }
    text.copy(name.data(), text.size());
    scope_id = ::if_nametoindex(name.data());
    return scope_id == 0 ? "no network interface has the scope's name" : nullptr;
}

/// An IPv4 or IPv6 address and port, as endpoint text reads and writes them.
struct ip_endpoint {
    bool is_v6 = false;
    in_addr v4{};
    in6_addr v6{};
    std::uint16_t port = 0;
    std::uint32_t scope_id = 0;
};

/// Reads `127.0.0.1:8080` or `[::1%lo]:8080` into `out`: nullptr on success, else why the text
/// is rejected.
inline const char* parse_endpoint(std::string_view text, ip_endpoint& out) noexcept {
    // "[" + the longest IPv6 text inet_pton accepts (45) + "%" + an interface name + "]:65535".
    constexpr std::size_t longest = 1 + 45 + 1 + (IF_NAMESIZE - 1) + 2 + 5;
    if (text.empty()) {
        return "the text is empty";
    }
    if (text.find('\0') != std::string_view::npos) {
        return "the text contains a NUL byte";
    }
    if (text.size() > longest) {
        return "the text is longer than any endpoint";
    }
    // inet_pton needs a NUL-terminated string: copy the address into a buffer that has room.
    std::array<char, 46> address{};
    if (text[0] != '[') {
        const auto colon = text.find(':');
        const auto host = text.substr(0, colon);
        if (host.size() < address.size()) {
            host.copy(address.data(), host.size());
        }
        if (host.size() >= address.size() || ::inet_pton(AF_INET, address.data(), &out.v4) != 1) {
            const bool colons = colon != std::string_view::npos &&
                                text.find(':', colon + 1) != std::string_view::npos;
            return colons         ? "an IPv6 address needs brackets, as in [::1]:80"
                   : host.empty() ? "missing address before ':'"
                                  : "the host is not an IPv4 address (resolve looks up names)";
        }
        if (colon == std::string_view::npos) {
            return "missing ':' and port after the address";
        }
        out.is_v6 = false;
        return parse_port(text.substr(colon + 1), out.port);
    }
    const auto close = text.find(']');
    if (close == std::string_view::npos) {
        return "missing ']' after the IPv6 address";
    }
    const auto inside = text.substr(1, close - 1);
    const auto percent = inside.find('%');
    const auto host = inside.substr(0, percent);
    if (host.size() < address.size()) {
        host.copy(address.data(), host.size());
    }
    if (host.size() >= address.size() || ::inet_pton(AF_INET6, address.data(), &out.v6) != 1) {
        return "the text in brackets is not an IPv6 address";
    }
    out.scope_id = 0;
    if (percent != std::string_view::npos) {
        if (const char* why = parse_scope(inside.substr(percent + 1), out.scope_id)) {
            return why;
        }
    }
    const auto rest = text.substr(close + 1);
    if (rest.empty() || rest[0] != ':') {
        return "missing ':' and port after ']'";
    }
    out.is_v6 = true;
    return parse_port(rest.substr(1), out.port);
}

/// `1.2.3.4:80`, `[::1]:80` or `[fe80::1%eth0]:80`: text that parse_endpoint reads back as `e`.
inline std::string format_endpoint(const ip_endpoint& e) {
    std::array<char, INET6_ADDRSTRLEN> text{};
    if (!e.is_v6) {
        ::inet_ntop(AF_INET, &e.v4, text.data(), sizeof text);
        return std::string(text.data()) + ':' + std::to_string(e.port);
    }
    ::inet_ntop(AF_INET6, &e.v6, text.data(), sizeof text);
    // Appending rather than `"[" + std::string(...)` keeps g++ 12's -Wrestrict false alarm away.
    std::string out = "[";
    out += text.data();
    if (e.scope_id != 0) {
        // The interface's name reads better than its index, but only a name that parse_scope
        // reads back as the same scope will do: not all digits, nothing that ends the brackets.
        std::array<char, IF_NAMESIZE> name{};
        const bool named = ::if_indextoname(e.scope_id, name.data()) != nullptr &&
                           !all_digits(name.data()) &&
                           std::string_view(name.data()).find_first_of("]%") == std::string::npos;
        out += '%';
        out += named ? std::string(name.data()) : std::to_string(e.scope_id);
    }
    return out + "]:" + std::to_string(e.port);
}

} // namespace ringio::detail
