#pragma once

// endpoint: a socket address (IPv4, IPv6 or Unix domain), parsed from and printed as text.

#include <ringio/detail/error.hpp>
#include <ringio/detail/parse.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace ringio {

namespace detail {
struct endpoint_key;
} // namespace detail

/// A socket address held as the `sockaddr_storage` the kernel reads and writes, with its length:
/// IPv4 or IPv6 with a port, or a Unix domain socket's path or abstract name.
class endpoint {
public:
    /// An empty endpoint (family `AF_UNSPEC`, size 0).
    endpoint() noexcept = default;

    /// IPv4, from an address in network byte order and a port in host byte order.
    endpoint(in_addr address, std::uint16_t port) noexcept {
        sockaddr_in v4{};
        v4.sin_family = AF_INET;
        v4.sin_port = htons(port);
        v4.sin_addr = address;
        store(&v4, sizeof v4);
    }

    /// IPv6, from an address, a port in host byte order and a scope id (0 for none).
    endpoint(const in6_addr& address, std::uint16_t port, std::uint32_t scope_id = 0) noexcept {
        sockaddr_in6 v6{};
        v6.sin6_family = AF_INET6;
        v6.sin6_port = htons(port);
        v6.sin6_addr = address;
        v6.sin6_scope_id = scope_id;
        store(&v6, sizeof v6);
    }

    /// Copies a socket address of family `AF_INET`, `AF_INET6` or `AF_UNIX`.
    endpoint(const sockaddr* address, socklen_t size) {
        std::error_code ec;
        assign(address, size, ec);
        if (ec) {
            detail::throw_error(ec, "endpoint from sockaddr" + describe(address, size));
        }
    }
    /// As above, reporting an error through `ec` (the endpoint is then empty).
    endpoint(const sockaddr* address, socklen_t size, std::error_code& ec) noexcept {
        assign(address, size, ec);
    }

    /// Parses `a.b.c.d:port`, `[ipv6%scope]:port`, `unix:/path` or `unix:@abstract`.
    [[nodiscard]] static endpoint parse(std::string_view text);
    /// As above, reporting `invalid_argument` through `ec` (and returning an empty endpoint).
    [[nodiscard]] static endpoint parse(std::string_view text, std::error_code& ec) noexcept;

    /// `127.0.0.1:port`.
    [[nodiscard]] static endpoint loopback_v4(std::uint16_t port) noexcept {
        return {in_addr{htonl(INADDR_LOOPBACK)}, port};
    }
    /// `[::1]:port`.
    [[nodiscard]] static endpoint loopback_v6(std::uint16_t port) noexcept {
        return {in6addr_loopback, port};
    }
    /// `0.0.0.0:port`, to bind on every interface.
    [[nodiscard]] static endpoint any_v4(std::uint16_t port) noexcept {
        return {in_addr{htonl(INADDR_ANY)}, port};
    }
    /// `[::]:port`, to bind on every interface (and IPv4 too, unless `v6_only`).
    [[nodiscard]] static endpoint any_v6(std::uint16_t port) noexcept {
        return {in6addr_any, port};
    }
    /// A Unix domain socket at `path` in the file system; ENAMETOOLONG past 107 bytes.
    [[nodiscard]] static endpoint unix_path(std::string_view path) { return local(path, false); }
    /// A Unix domain socket in the abstract namespace (Linux), named `name`.
    [[nodiscard]] static endpoint unix_abstract(std::string_view name) { return local(name, true); }

    /// `AF_INET`, `AF_INET6`, `AF_UNIX`, or `AF_UNSPEC` when empty.
    [[nodiscard]] int family() const noexcept {
        return size_ == 0 ? AF_UNSPEC : storage_.ss_family;
    }
    /// True for IPv4.
    [[nodiscard]] bool is_v4() const noexcept { return family() == AF_INET; }
    /// True for IPv6.
    [[nodiscard]] bool is_v6() const noexcept { return family() == AF_INET6; }
    /// True for a Unix domain socket's address (which may be unnamed).
    [[nodiscard]] bool is_unix() const noexcept { return family() == AF_UNIX; }
    /// True for an empty endpoint.
    [[nodiscard]] bool empty() const noexcept { return size_ == 0; }

    /// The port in host byte order; 0 for a Unix address or an empty endpoint.
    [[nodiscard]] std::uint16_t port() const noexcept {
        return is_v4()   ? ntohs(as<sockaddr_in>().sin_port)
               : is_v6() ? ntohs(as<sockaddr_in6>().sin6_port)
                         : std::uint16_t{0};
    }
    /// The IPv6 scope id (an interface index); 0 for none and for other families.
    [[nodiscard]] std::uint32_t scope_id() const noexcept {
        return is_v6() ? as<sockaddr_in6>().sin6_scope_id : 0;
    }
    /// A Unix address's path, or its abstract name after a NUL byte; empty when unnamed.
    [[nodiscard]] std::string_view unix_name() const noexcept {
        if (!is_unix()) {
            return {};
        }
        const char* path =
            reinterpret_cast<const char*>(&storage_) + offsetof(sockaddr_un, sun_path);
        std::size_t length = size_ - offsetof(sockaddr_un, sun_path);
        while (length > 0 && path[0] != '\0' && path[length - 1] == '\0') {
            --length; // a path's terminating NUL, which the kernel may count
        }
        return {path, length};
    }
    /// True for an IPv4-mapped IPv6 address (`[::ffff:1.2.3.4]:80`).
    [[nodiscard]] bool is_v4_mapped() const noexcept {
        const auto v6 = as<sockaddr_in6>();
        return is_v6() && IN6_IS_ADDR_V4MAPPED(&v6.sin6_addr) != 0;
    }
    /// The IPv4 form of an IPv4-mapped endpoint; any other endpoint unchanged.
    [[nodiscard]] endpoint unmapped() const noexcept {
        if (!is_v4_mapped()) {
            return *this;
        }
        in_addr v4;
        const auto v6 = as<sockaddr_in6>();
        std::memcpy(&v4, &v6.sin6_addr.s6_addr[12], sizeof v4);
        return {v4, port()};
    }

    /// The socket address, for `bind`, `connect` and `sendto`.
    [[nodiscard]] const sockaddr* data() const noexcept {
        return reinterpret_cast<const sockaddr*>(&storage_);
    }
    /// The length of the socket address at `data()`; 0 when empty.
    [[nodiscard]] socklen_t size() const noexcept { return size_; }
    /// Empties the endpoint and returns its storage, `capacity()` bytes, for the kernel to fill.
    [[nodiscard]] sockaddr* mutable_data() noexcept {
        size_ = 0;
        return reinterpret_cast<sockaddr*>(&storage_);
    }
    /// The number of bytes at `mutable_data()`.
    [[nodiscard]] static constexpr socklen_t capacity() noexcept {
        return static_cast<socklen_t>(sizeof(sockaddr_storage));
    }

    /// Adopts the address the kernel wrote at `mutable_data()`, given the length it reported.
    void resize(socklen_t size) {
        std::error_code ec;
        resize(size, ec);
        if (ec) {
            detail::throw_error(ec, "resize endpoint" + describe(data(), size));
        }
    }
    /// As above, reporting an error through `ec` (the endpoint is then empty).
    void resize(socklen_t size, std::error_code& ec) noexcept {
        if (size > capacity()) {
            size_ = 0;
            ec = std::make_error_code(std::errc::invalid_argument);
        } else if (size == 0) {
            size_ = 0;
            ec.clear();
        } else {
            assign(data(), size, ec);
        }
    }

    /// `127.0.0.1:8080`, `[::1]:8080`, `[fe80::1%eth0]:80`, `unix:/path`, `unix:@name`; "" when
    /// empty. The text parses back to an equal endpoint.
    [[nodiscard]] std::string to_string() const;

private:
    friend struct detail::endpoint_key;
    // A copy, not a cast: reading the storage through another structure's type would alias it.
    template <class Address>
    Address as() const noexcept {
        Address address;
        std::memcpy(&address, &storage_, sizeof address);
        return address;
    }

    static endpoint local(std::string_view name, bool abstract) {
        sockaddr_un un{};
        un.sun_family = AF_UNIX;
        const std::size_t room = sizeof un.sun_path - 1 - (abstract ? 1 : 0);
        // A path that begins with '@' would print as an abstract name: "./@name" is the same file.
        if (name.size() > room || name.find('\0') != std::string_view::npos ||
            (!abstract && name.starts_with('@'))) {
            detail::throw_error(
                std::make_error_code(name.size() > room ? std::errc::filename_too_long
                                                        : std::errc::invalid_argument),
                "endpoint " + std::string(abstract ? "unix:@" : "unix:") + detail::quote(name));
        }
        name.copy(un.sun_path + (abstract ? 1 : 0), name.size());
        endpoint e;
        if (name.empty() && !abstract) {
            e.store(&un, sizeof un.sun_family); // unnamed, as the kernel reports an unbound peer
            return e;
        }
        e.store(&un, offsetof(sockaddr_un, sun_path) + (abstract ? 1 : 0) + name.size() +
                         (abstract ? 0 : 1));
        return e;
    }

    // Copies a validated address; `address` may point into storage_ itself, hence memmove.
    void assign(const sockaddr* address, socklen_t size, std::error_code& ec) noexcept {
        size_ = 0;
        ec.clear();
        if (address == nullptr || size < sizeof(sa_family_t)) {
            ec = std::make_error_code(std::errc::invalid_argument);
            return;
        }
        const sa_family_t f = address->sa_family;
        const std::size_t fixed = f == AF_INET    ? sizeof(sockaddr_in)
                                  : f == AF_INET6 ? sizeof(sockaddr_in6)
                                                  : 0;
        if (f == AF_UNIX) {
            std::memmove(&storage_, address, std::min<std::size_t>(size, sizeof(sockaddr_un)));
            size_ = static_cast<socklen_t>(std::min<std::size_t>(size, sizeof(sockaddr_un)));
        } else if (fixed == 0) {
            ec = std::make_error_code(std::errc::address_family_not_supported);
        } else if (size < fixed) {
            ec = std::make_error_code(std::errc::invalid_argument);
        } else {
            std::memmove(&storage_, address, fixed);
            size_ = static_cast<socklen_t>(fixed);
        }
    }

    void store(const void* address, std::size_t size) noexcept {
        std::memcpy(&storage_, address, size);
        size_ = static_cast<socklen_t>(size);
    }

    static std::string describe(const sockaddr* address, socklen_t size) {
        if (address == nullptr) {
            return " (null)";
        }
        return " (family " + std::to_string(address->sa_family) + ", " + std::to_string(size) +
               " bytes)";
    }

    sockaddr_storage storage_{};
    socklen_t size_ = 0;
};

namespace detail {

// What `==`, `<=>` and `std::hash` look at: the family, then the address bytes in order of
// significance (port and scope in network order); never padding or the IPv6 flow label.
struct endpoint_key {
    int family;
    std::array<char, sizeof(sockaddr_un)> bytes{};
    std::size_t size = 0;

    explicit endpoint_key(const endpoint& e) noexcept : family(e.family()) {
        if (e.is_v4()) {
            const auto v4 = e.as<sockaddr_in>();
            add(&v4.sin_addr, sizeof v4.sin_addr);
            add(&v4.sin_port, sizeof v4.sin_port);
        } else if (e.is_v6()) {
            const auto v6 = e.as<sockaddr_in6>();
            const std::uint32_t scope = htonl(v6.sin6_scope_id);
            add(&v6.sin6_addr, sizeof v6.sin6_addr);
            add(&scope, sizeof scope);
            add(&v6.sin6_port, sizeof v6.sin6_port);
        } else {
            const std::string_view name = e.unix_name();
            add(name.data(), name.size());
        }
    }
    [[nodiscard]] std::string_view view() const noexcept { return {bytes.data(), size}; }
    friend bool operator==(const endpoint_key& a, const endpoint_key& b) noexcept {
        return a.family == b.family && a.view() == b.view();
    }
    friend std::strong_ordering operator<=>(const endpoint_key& a, const endpoint_key& b) noexcept {
        if (a.family != b.family) {
            return a.family <=> b.family;
        }
        return a.view().compare(b.view()) <=> 0;
    }

private:
    void add(const void* from, std::size_t count) noexcept {
        if (count == 0) {
            return; // an empty endpoint's name has no data pointer, which memcpy may not take
        }
        std::memcpy(bytes.data() + size, from, count);
        size += count;
    }
};

} // namespace detail

/// True when both endpoints have the same family and address (port and scope included).
inline bool operator==(const endpoint& a, const endpoint& b) noexcept {
    return detail::endpoint_key(a) == detail::endpoint_key(b);
}

/// Orders endpoints by family, then address, scope and port, so that they can key a `std::map`.
inline std::strong_ordering operator<=>(const endpoint& a, const endpoint& b) noexcept {
    return detail::endpoint_key(a) <=> detail::endpoint_key(b);
}

/// A port number in decimal digits, 1 to 65535 (0, signs and service names are not); nullopt
/// otherwise.
inline std::optional<std::uint16_t> parse_port(std::string_view text) noexcept {
    std::uint16_t port = 0;
    if (text.empty() || text[0] == '0' || detail::parse_port(text, port) != nullptr) {
        return std::nullopt;
    }
    return port;
}

namespace detail {

/// Names `e` in an error message, which must never show an empty slot.
inline std::string describe_endpoint(const endpoint& e) {
    return e.empty() ? std::string("an empty endpoint") : e.to_string();
}

} // namespace detail

inline endpoint endpoint::parse(std::string_view text, std::error_code& ec) noexcept {
    ec.clear();
    if (text.starts_with("unix:")) {
        const std::string_view name = text.substr(5);
        const bool abstract = name.starts_with('@');
        try {
            return abstract ? unix_abstract(name.substr(1)) : unix_path(name);
        } catch (const std::exception&) {
            ec = std::make_error_code(std::errc::invalid_argument);
            return {};
        }
    }
    detail::ip_endpoint parsed;
    if (detail::parse_endpoint(text, parsed) != nullptr) {
        ec = std::make_error_code(std::errc::invalid_argument);
        return {};
    }
    return parsed.is_v6 ? endpoint(parsed.v6, parsed.port, parsed.scope_id)
                        : endpoint(parsed.v4, parsed.port);
}

inline endpoint endpoint::parse(std::string_view text) {
    std::error_code ec;
    endpoint result = parse(text, ec);
    if (ec) {
        detail::ip_endpoint ignored;
        const char* why =
            text.starts_with("unix:")
                ? "a Unix path may not hold a NUL byte or pass 107 bytes (106 for an abstract name)"
                : detail::parse_endpoint(text, ignored);
        detail::throw_error(ec, "parse endpoint " + detail::quote(text) + ": " + why);
    }
    return result;
}

inline std::string endpoint::to_string() const {
    if (is_unix()) {
        const std::string_view name = unix_name();
        const bool abstract = name.starts_with('\0');
        std::string out = abstract ? "unix:@" : "unix:";
        out += name.substr(abstract ? 1 : 0);
        return out;
    }
    if (!is_v4() && !is_v6()) {
        return {};
    }
    const auto v4 = as<sockaddr_in>();
    const auto v6 = as<sockaddr_in6>();
    return detail::format_endpoint({is_v6(), v4.sin_addr, v6.sin6_addr, port(), scope_id()});
}

} // namespace ringio

/// Hashes an endpoint consistently with `==`, so that it can key a `std::unordered_map`.
template <>
struct std::hash<ringio::endpoint> {
    std::size_t operator()(const ringio::endpoint& e) const noexcept {
        const ringio::detail::endpoint_key key(e);
        return std::hash<std::string_view>{}(key.view()) ^ static_cast<std::size_t>(key.family);
    }
};
