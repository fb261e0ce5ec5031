#pragma once

/// Pieces of endpoint text (ports, IPv6 scopes) and the quoting of any text in error messages.

#include <net/if.h>

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

} // namespace ringio::detail
