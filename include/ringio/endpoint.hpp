#pragma once

// endpoint: an IPv4 or IPv6 address and port, parsed from and printed as text.

#include <ringio/detail/error.hpp>
#include <ringio/detail/parse.hpp>

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <system_error>

namespace ringio {

/// An IPv4 or IPv6 address and port, held as the `sockaddr_storage` the kernel reads and writes,
/// with its length.
class endpoint {
public:
    /// Creates an empty endpoint (family `AF_UNSPEC`, size 0, port 0).
    endpoint() noexcept = default;

    /// Creates an IPv4 endpoint from an address in network byte order (as `inet_pton` writes it)
    /// and a port in host byte order.
    endpoint(in_addr address, std::uint16_t port) noexcept {
        sockaddr_in v4{};
        v4.sin_family = AF_INET;
        v4.sin_port = htons(port);
        v4.sin_addr = address;
        store(&v4, sizeof v4);
    }

    /// Creates an IPv6 endpoint from an address, a port in host byte order and a scope id (the
    /// interface index a link-local address belongs to; 0 for none).
    endpoint(const in6_addr& address, std::uint16_t port, std::uint32_t scope_id = 0) noexcept {
        sockaddr_in6 v6{};
        v6.sin6_family = AF_INET6;
        v6.sin6_port = htons(port);
        v6.sin6_addr = address;
        v6.sin6_scope_id = scope_id;
        store(&v6, sizeof v6);
    }

    /// Copies an IPv4 or IPv6 socket address, such as one from `getaddrinfo` or `accept`.
    endpoint(const sockaddr* address, socklen_t size) {
        std::error_code ec;
        assign(address, size, ec);
        if (ec) {
            detail::throw_error(ec, "endpoint from sockaddr" + describe(address, size));
        }
    }

    /// Like the constructor above, but reports an error through `ec` and leaves the endpoint
    /// empty instead of throwing.
    endpoint(const sockaddr* address, socklen_t size, std::error_code& ec) noexcept {
        assign(address, size, ec);
    }

    /// Parses `a.b.c.d:port` or `[ipv6]:port`; an IPv6 address may carry a scope, either an
    /// interface name or a decimal index.
    [[nodiscard]] static endpoint parse(std::string_view text);

    /// Like `parse` above, but reports `std::errc::invalid_argument` through `ec` and returns an
    /// empty endpoint instead of throwing.
    [[nodiscard]] static endpoint parse(std::string_view text, std::error_code& ec) noexcept;

    /// The IPv4 loopback endpoint `127.0.0.1:port`.
    [[nodiscard]] static endpoint loopback_v4(std::uint16_t port) noexcept {
        return {in_addr{htonl(INADDR_LOOPBACK)}, port};
    }
    /// The IPv6 loopback endpoint `[::1]:port`.
    [[nodiscard]] static endpoint loopback_v6(std::uint16_t port) noexcept {
        return {in6addr_loopback, port};
    }
    /// The IPv4 wildcard endpoint `0.0.0.0:port`, to bind a server on every interface.
    [[nodiscard]] static endpoint any_v4(std::uint16_t port) noexcept {
        return {in_addr{htonl(INADDR_ANY)}, port};
    }
    /// The IPv6 wildcard endpoint `[::]:port`, to bind a server on every interface.
    [[nodiscard]] static endpoint any_v6(std::uint16_t port) noexcept {
        return {in6addr_any, port};
    }

    /// The address family: `AF_INET`, `AF_INET6`, or `AF_UNSPEC` when empty.
    [[nodiscard]] int family() const noexcept {
        return size_ == 0 ? AF_UNSPEC : storage_.ss_family;
    }
    /// True for an IPv4 endpoint.
    [[nodiscard]] bool is_v4() const noexcept { return family() == AF_INET; }
    /// True for an IPv6 endpoint.
    [[nodiscard]] bool is_v6() const noexcept { return family() == AF_INET6; }
    /// True for an empty endpoint (default-constructed, or not yet filled by the kernel).
    [[nodiscard]] bool empty() const noexcept { return size_ == 0; }

    /// The port in host byte order; 0 when empty.
    [[nodiscard]] std::uint16_t port() const noexcept;

    /// The IPv6 scope id (an interface index); 0 for none, for IPv4 and when empty.
    [[nodiscard]] std::uint32_t scope_id() const noexcept;

    /// True for an IPv4-mapped IPv6 address (`[::ffff:1.2.3.4]:80`): how a dual-stack IPv6
    /// socket reports an IPv4 peer.
    [[nodiscard]] bool is_v4_mapped() const noexcept;

    /// The IPv4 form of an IPv4-mapped endpoint (`1.2.3.4:80`); any other endpoint unchanged.
    [[nodiscard]] endpoint unmapped() const noexcept;

    /// The socket address, for `bind`, `connect`, `sendto` and their io_uring forms.
    [[nodiscard]] const sockaddr* data() const noexcept {
        return reinterpret_cast<const sockaddr*>(&storage_);
    }
    /// The length of the socket address at `data()`: `sizeof(sockaddr_in)`,
    /// `sizeof(sockaddr_in6)`, or 0 when empty.
    [[nodiscard]] socklen_t size() const noexcept { return size_; }

    /// Empties the endpoint and returns its storage, `capacity()` bytes, for the kernel to fill
    /// (`accept`, `recvmsg`); then call `resize` with the length the kernel reported.
    [[nodiscard]] sockaddr* mutable_data() noexcept {
        size_ = 0;
        return reinterpret_cast<sockaddr*>(&storage_);
    }
    /// The number of bytes at `mutable_data()`: `sizeof(sockaddr_storage)`.
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

    /// Like `resize` above, but reports an error through `ec` instead of throwing.
    void resize(socklen_t size, std::error_code& ec) noexcept {
        if (size == 0) {
            size_ = 0;
            ec.clear();
            return;
        }
        if (size > capacity()) {
            size_ = 0;
            ec = std::make_error_code(std::errc::invalid_argument);
            return;
        }
        assign(data(), size, ec);
    }

    /// Prints `127.0.0.1:8080` or `[::1]:8080` (`[fe80::1%eth0]:80` with a scope, the interface
    /// name when one has that index, else the index); an empty endpoint prints as "".
    [[nodiscard]] std::string to_string() const;

private:
    // Copies a validated IPv4 or IPv6 address; on error the endpoint is left empty. `address`
    // may point into storage_ itself (resize), hence memmove.
    void assign(const sockaddr* address, socklen_t size, std::error_code& ec) noexcept {
        size_ = 0;
        ec.clear();
        if (address == nullptr || size < sizeof(sa_family_t)) {
            ec = std::make_error_code(std::errc::invalid_argument);
            return;
        }
        const auto needed = address->sa_family == AF_INET    ? sizeof(sockaddr_in)
                            : address->sa_family == AF_INET6 ? sizeof(sockaddr_in6)
                                                             : 0;
        if (needed == 0) {
            ec = std::make_error_code(std::errc::address_family_not_supported);
        } else if (size < needed) {
            ec = std::make_error_code(std::errc::invalid_argument);
        } else {
            std::memmove(&storage_, address, needed);
            size_ = static_cast<socklen_t>(needed);
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

/// True when both endpoints have the same family, address, port and scope id.
inline bool operator==(const endpoint& a, const endpoint& b) noexcept;

/// Orders endpoints by family (empty, then IPv4, then IPv6), address, scope id and port, so
/// that they can key a `std::map`; consistent with `==`.
inline std::strong_ordering operator<=>(const endpoint& a, const endpoint& b) noexcept;

namespace detail {

/// What identifies an endpoint: the fields that `==`, `<=>` and `std::hash` look at.
struct endpoint_key {
    int family = AF_UNSPEC;
    std::array<unsigned char, 16> address{};
    std::uint32_t scope_id = 0;
    std::uint16_t port = 0;

    friend auto operator<=>(const endpoint_key&, const endpoint_key&) = default;
};

inline endpoint_key key_of(const endpoint& e) noexcept {
    endpoint_key key;
    key.family = e.family();
    key.port = e.port();
    key.scope_id = e.scope_id();
    // memcpy out of the storage rather than casting to sockaddr_in, which would alias it.
    if (e.is_v4()) {
        sockaddr_in v4;
        std::memcpy(&v4, e.data(), sizeof v4);
        std::memcpy(key.address.data(), &v4.sin_addr, sizeof v4.sin_addr);
    } else if (e.is_v6()) {
        sockaddr_in6 v6;
        std::memcpy(&v6, e.data(), sizeof v6);
        std::memcpy(key.address.data(), &v6.sin6_addr, sizeof v6.sin6_addr);
    }
    return key;
}

/// An operation's own copy of the endpoint its errors name (a stream's peer, a socket's or a
/// listener's address), so that an error reported after the socket was destroyed (ECANCELED,
class endpoint_copy {
public:
    /// Names nothing. User-provided, so that value-initialising one does not zero the bytes.
    endpoint_copy() noexcept {} // NOLINT(modernize-use-equals-default)

    /// Copies `e`'s address.
    explicit endpoint_copy(const endpoint& e) noexcept
        : size_(e.size() < sizeof bytes_ ? e.size() : static_cast<socklen_t>(sizeof bytes_)) {
        // All of bytes_, whatever size_: `e` holds a whole sockaddr_storage, and a copy of a
        // fixed size is a few moves where one of a variable size is a loop (`rep movsb`).
        static_assert(sizeof bytes_ <= sizeof(sockaddr_storage));
        std::memcpy(bytes_, e.data(), sizeof bytes_);
    }

    /// True when it names nothing.
    [[nodiscard]] bool empty() const noexcept { return size_ == 0; }

    /// The endpoint copied, as text (for request_name).
    [[nodiscard]] std::string text() const { return get().to_string(); }

    /// The endpoint copied.
    [[nodiscard]] endpoint get() const noexcept {
        if (size_ == 0) {
            return {};
        }
        sockaddr_storage address{};
        std::memcpy(&address, bytes_, size_);
        std::error_code ignored; // copied from a valid endpoint
        return {reinterpret_cast<const sockaddr*>(&address), size_, ignored};
    }

    /// The copy an operation needs: `e`'s for the throwing form, none for the form that stores
    /// its error in `error`, whose message nobody reads.
    static endpoint_copy for_errors(const endpoint& e, const std::error_code* error) noexcept {
        return error != nullptr ? endpoint_copy{} : endpoint_copy{e};
    }

private:
    // Left uninitialised: only the first size_ bytes are ever read.
    unsigned char bytes_[sizeof(sockaddr_in6)];
    socklen_t size_ = 0;
};

/// Names `e` in an error message, which must never show an empty slot.
inline std::string describe_endpoint(const endpoint& e) {
    return e.empty() ? std::string("an empty endpoint") : e.to_string();
}

// As `detail::parse_endpoint`, into an endpoint.
inline const char* parse_endpoint(std::string_view text, endpoint& out) noexcept {
    parsed_endpoint parsed;
    const char* why = parse_endpoint(text, parsed);
    if (why == nullptr) {
        out = parsed.is_v6 ? endpoint(parsed.v6, parsed.port, parsed.scope_id)
                           : endpoint(parsed.v4, parsed.port);
    }
    return why;
}

} // namespace detail

inline endpoint endpoint::parse(std::string_view text) {
    endpoint result;
    if (const char* why = detail::parse_endpoint(text, result)) {
        detail::throw_error(std::make_error_code(std::errc::invalid_argument),
                            "parse endpoint " + detail::quote(text) + ": " + why);
    }
    return result;
}

inline endpoint endpoint::parse(std::string_view text, std::error_code& ec) noexcept {
    endpoint result;
    ec.clear();
    if (detail::parse_endpoint(text, result) != nullptr) {
        ec = std::make_error_code(std::errc::invalid_argument);
        return {};
    }
    return result;
}

inline std::uint16_t endpoint::port() const noexcept {
    // sin_port and sin6_port sit at the same offset, but each family is read through its own
    // structure rather than relying on that.
    if (is_v4()) {
        sockaddr_in v4;
        std::memcpy(&v4, &storage_, sizeof v4);
        return ntohs(v4.sin_port);
    }
    if (is_v6()) {
        sockaddr_in6 v6;
        std::memcpy(&v6, &storage_, sizeof v6);
        return ntohs(v6.sin6_port);
    }
    return 0;
}

inline std::uint32_t endpoint::scope_id() const noexcept {
    if (!is_v6()) {
        return 0;
    }
    sockaddr_in6 v6;
    std::memcpy(&v6, &storage_, sizeof v6);
    return v6.sin6_scope_id;
}

inline bool endpoint::is_v4_mapped() const noexcept {
    if (!is_v6()) {
        return false;
    }
    sockaddr_in6 v6;
    std::memcpy(&v6, &storage_, sizeof v6);
    return IN6_IS_ADDR_V4MAPPED(&v6.sin6_addr) != 0;
}

inline endpoint endpoint::unmapped() const noexcept {
    if (!is_v4_mapped()) {
        return *this;
    }
    sockaddr_in6 v6;
    std::memcpy(&v6, &storage_, sizeof v6);
    in_addr v4;
    std::memcpy(&v4, &v6.sin6_addr.s6_addr[12], sizeof v4);
    return {v4, port()};
}

inline std::string endpoint::to_string() const {
    std::array<char, INET6_ADDRSTRLEN> address{};
    const auto key = detail::key_of(*this);
    if (is_v4()) {
        ::inet_ntop(AF_INET, key.address.data(), address.data(), sizeof address);
        return std::string(address.data()) + ':' + std::to_string(key.port);
    }
    if (!is_v6()) {
        return {};
    }
    ::inet_ntop(AF_INET6, key.address.data(), address.data(), sizeof address);
    std::string text = "[";
    text += address.data();
    if (key.scope_id != 0) {
        // The interface's name reads better than its index, but only a name that parse reads
        // back as the same scope will do: not all digits, nothing that ends the brackets early.
        std::array<char, IF_NAMESIZE> name{};
        const bool named = ::if_indextoname(key.scope_id, name.data()) != nullptr &&
                           !detail::all_digits(name.data()) &&
                           std::string_view(name.data()).find_first_of("]%") == std::string::npos;
        text += '%';
        text += named ? std::string(name.data()) : std::to_string(key.scope_id);
    }
    text += "]:";
    text += std::to_string(key.port);
    return text;
}

inline bool operator==(const endpoint& a, const endpoint& b) noexcept {
    return detail::key_of(a) == detail::key_of(b);
}

inline std::strong_ordering operator<=>(const endpoint& a, const endpoint& b) noexcept {
    return detail::key_of(a) <=> detail::key_of(b);
}

} // namespace ringio

/// Hashes an endpoint consistently with `==`, so that it can key a `std::unordered_map`.
template <>
struct std::hash<ringio::endpoint> {
    std::size_t operator()(const ringio::endpoint& e) const noexcept {
        const auto key = ringio::detail::key_of(e);
        // Serialise the key's fields without their padding, then hash the bytes.
        std::array<char, 1 + 16 + 4 + 2> bytes{};
        bytes[0] = static_cast<char>(key.family);
        std::memcpy(&bytes[1], key.address.data(), key.address.size());
        std::memcpy(&bytes[17], &key.scope_id, sizeof key.scope_id);
        std::memcpy(&bytes[21], &key.port, sizeof key.port);
        return std::hash<std::string_view>{}(std::string_view(bytes.data(), bytes.size()));
    }
};
