#pragma once

// resolve and name_of: between names and endpoints (getaddrinfo, getnameinfo); connect by name.

#include <ringio/detail/error.hpp>
#include <ringio/endpoint.hpp>
#include <ringio/io_context.hpp>
#include <ringio/task.hpp>
#include <ringio/tcp_stream.hpp>

#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

namespace ringio {

/// The error category of `getaddrinfo` and `getnameinfo` failures.
inline const std::error_category& resolve_category() noexcept;

/// The `EAI_*` codes of `resolve_category()`, named, to compare with an error code:
/// `ec == ringio::resolve_errc::no_name`.
enum class resolve_errc {
    again = EAI_AGAIN,          ///< Temporary failure, e.g. no answer from the DNS server.
    bad_flags = EAI_BADFLAGS,   ///< Invalid combination of flags.
    fail = EAI_FAIL,            ///< Permanent failure of the name server.
    family = EAI_FAMILY,        ///< Address family not supported.
    memory = EAI_MEMORY,        ///< Out of memory.
    no_name = EAI_NONAME,       ///< Unknown host or service, or neither given.
    service = EAI_SERVICE,      ///< Service not available for the socket type.
    socket_type = EAI_SOCKTYPE, ///< Socket type not supported.
    overflow = EAI_OVERFLOW,    ///< A name did not fit the buffer.
#ifdef EAI_NODATA
    no_data = EAI_NODATA, ///< The host exists but has no address (of the requested family).
#endif
};

/// Makes an error code of `resolve_category()`, so that `resolve_errc` compares with one.
inline std::error_code make_error_code(resolve_errc e) noexcept {
    return {static_cast<int>(e), resolve_category()};
}

/// How `resolve` (`getaddrinfo`) and `name_of` (`getnameinfo`) translate; each reads the fields
/// that have a flag of its own.
struct resolve_hints {
    int family = AF_UNSPEC;       ///< resolve: `AF_UNSPEC`, `AF_INET` or `AF_INET6`.
    int type = SOCK_STREAM;       ///< `SOCK_STREAM` (TCP) or `SOCK_DGRAM` (UDP, `NI_DGRAM`).
    bool passive = false;         ///< resolve, `AI_PASSIVE`: an empty host is the wildcard.
    bool numeric_host = false;    ///< `AI_`/`NI_NUMERICHOST`: an address, never a lookup.
    bool numeric_service = false; ///< `AI_`/`NI_NUMERICSERV`: a port number, never a name.
    bool name_required = false;   ///< name_of, `NI_NAMEREQD`: fail rather than give the address.
};

/// Looks up `host` and `service` and returns every endpoint `getaddrinfo` gives, in its order
/// (duplicates kept), so that a client can try each in turn.
inline std::vector<endpoint> resolve(std::string_view host, std::string_view service,
                                     resolve_hints hints = {});

/// Like `resolve` above, but reports an error through `ec` and returns no endpoints instead of
/// throwing (running out of memory still throws `std::bad_alloc`).
inline std::vector<endpoint> resolve(std::string_view host, std::string_view service,
                                     resolve_hints hints, std::error_code& ec);

/// A host and a service name, as `name_of` gives them: `auto [host, port] = name_of(e);`.
struct host_and_service {
    std::string host;    ///< A host name, or the numeric address.
    std::string service; ///< A service name such as "http", or the port number.
};

/// Names an endpoint's host and port with `getnameinfo`.
inline host_and_service name_of(const endpoint& e, resolve_hints hints = {});

/// Like `name_of` above, but reports an error through `ec` and returns empty names instead of
/// throwing.
inline host_and_service name_of(const endpoint& e, resolve_hints hints, std::error_code& ec);

namespace detail {

class resolve_category_type final : public std::error_category {
public:
    [[nodiscard]] const char* name() const noexcept override { return "ringio.resolve"; }

    [[nodiscard]] std::string message(int value) const override { return ::gai_strerror(value); }

    // Lets a caller test `ec == std::errc::not_enough_memory` and the like without knowing
    // the EAI_* codes.
    [[nodiscard]] std::error_condition default_error_condition(int value) const noexcept override {
        switch (value) {
        case EAI_MEMORY:
            return std::errc::not_enough_memory;
        case EAI_FAMILY:
            return std::errc::address_family_not_supported;
        case EAI_AGAIN:
            return std::errc::resource_unavailable_try_again;
        case EAI_BADFLAGS:
            return std::errc::invalid_argument;
        default:
            return {value, *this};
        }
    }
};

/// The error code for a non-zero `getaddrinfo`/`getnameinfo` status; call it right after the
/// failed call, since `EAI_SYSTEM` reads `errno`.
inline std::error_code resolve_error(int status) noexcept {
    if (status == EAI_SYSTEM && errno != 0) {
        return last_error();
    }
    return {status, resolve_category()};
}

struct addrinfo_deleter {
    void operator()(addrinfo* list) const noexcept { ::freeaddrinfo(list); }
};

/// True when `service` is a port number, as getaddrinfo reads one, outside 0 to 65535.
inline bool port_out_of_range(std::string_view service) noexcept {
    std::size_t at = service.find_first_not_of(" \t\n\v\f\r");
    if (at == std::string_view::npos) {
        return false;
    }
    const bool negative = service[at] == '-';
    if (service[at] == '+' || negative) {
        ++at;
    }
    if (at == service.size()) {
        return false;
    }
    unsigned value = 0;
    for (; at < service.size(); ++at) {
        if (service[at] < '0' || service[at] > '9') {
            return false; // a service name, looked up as one
        }
        // Saturates just past the range, so that no number of digits overflows.
        value = std::min(value * 10 + static_cast<unsigned>(service[at] - '0'), 65536U);
    }
    return negative ? value != 0 : value > 65535;
}

// The sizes glibc documents as NI_MAXHOST and NI_MAXSERV, which it defines only for
// _DEFAULT_SOURCE.
inline constexpr std::size_t max_host_name = 1025;
inline constexpr std::size_t max_service_name = 32;

} // namespace detail

inline const std::error_category& resolve_category() noexcept {
    static const detail::resolve_category_type category;
    return category;
}

inline std::vector<endpoint> resolve(std::string_view host, std::string_view service,
                                     resolve_hints hints, std::error_code& ec) {
    ec.clear();
    std::vector<endpoint> endpoints;
    // getaddrinfo takes C strings: an embedded NUL would silently cut the name short.
    if (host.find('\0') != std::string_view::npos || service.find('\0') != std::string_view::npos) {
        ec = std::make_error_code(std::errc::invalid_argument);
        return endpoints;
    }
    if (detail::port_out_of_range(service)) {
        ec = std::make_error_code(std::errc::result_out_of_range);
        return endpoints;
    }
    addrinfo request{};
    request.ai_family = hints.family;
    request.ai_socktype = hints.type;
    request.ai_flags = (hints.passive ? AI_PASSIVE : 0) |
                       (hints.numeric_host ? AI_NUMERICHOST : 0) |
                       (hints.numeric_service ? AI_NUMERICSERV : 0);
    const std::string host_text(host);
    const std::string service_text(service);
    addrinfo* list = nullptr;
    const int status =
        ::getaddrinfo(host.empty() ? nullptr : host_text.c_str(),
                      service.empty() ? nullptr : service_text.c_str(), &request, &list);
    // Owned from here on, whatever happens next (a failed call leaves it null).
    const std::unique_ptr<addrinfo, detail::addrinfo_deleter> owner(list);
    if (status != 0) {
        ec = detail::resolve_error(status);
        return endpoints;
    }
    for (const addrinfo* entry = list; entry != nullptr; entry = entry->ai_next) {
        // With ai_family IPv4, IPv6 or both, no other family comes back; should a resolver
        // module ever add one, it is not an endpoint and is left out rather than failing all.
        std::error_code other_family;
        endpoint address(entry->ai_addr, entry->ai_addrlen, other_family);
        if (!other_family) {
            endpoints.push_back(address);
        }
    }
    return endpoints;
}

inline std::vector<endpoint> resolve(std::string_view host, std::string_view service,
                                     resolve_hints hints) {
    std::error_code ec;
    auto endpoints = resolve(host, service, hints, ec);
    if (ec) {
        detail::throw_error(ec,
                            "resolve " + detail::quote(host) + " port " + detail::quote(service));
    }
    return endpoints;
}

inline host_and_service name_of(const endpoint& e, resolve_hints hints, std::error_code& ec) {
    ec.clear();
    std::array<char, detail::max_host_name> host{};
    std::array<char, detail::max_service_name> service{};
    const int ni_flags =
        (hints.numeric_host ? NI_NUMERICHOST : 0) | (hints.numeric_service ? NI_NUMERICSERV : 0) |
        (hints.name_required ? NI_NAMEREQD : 0) | (hints.type == SOCK_DGRAM ? NI_DGRAM : 0);
    const int status =
        ::getnameinfo(e.data(), e.size(), host.data(), static_cast<socklen_t>(host.size()),
                      service.data(), static_cast<socklen_t>(service.size()), ni_flags);
    if (status != 0) {
        ec = detail::resolve_error(status);
        return {};
    }
    return {host.data(), service.data()};
}

inline host_and_service name_of(const endpoint& e, resolve_hints hints) {
    std::error_code ec;
    auto names = name_of(e, hints, ec);
    if (ec) {
        detail::throw_error(ec,
                            e.empty() ? "name_of an empty endpoint" : "name_of " + e.to_string());
    }
    return names;
}

/// Connects to `host` and `service`, trying each address `resolve` gives in turn, and produces
/// the first stream that connects. Resolution blocks the thread (getaddrinfo may ask DNS).
// A template only so that it is compiled where it is called: g++ emits an inline coroutine, and
// all it calls, into every unit that includes its header, even one that never calls it.
template <class = void>
task<tcp_stream> connect(io_context& context, std::string host, std::string service) {
    const auto targets = resolve(host, service);
    std::error_code error;
    std::string tried;
    for (const endpoint& target : targets) {
        tcp_stream stream(context);
        co_await stream.connect(target).into(error);
        if (!error) {
            co_return stream;
        }
        tried += (tried.empty() ? "" : ", ") + target.to_string();
    }
    detail::throw_error(error, "connect " + detail::quote(host) + " port " +
                                   detail::quote(service) + " (tried " + tried + ")");
}

} // namespace ringio

template <>
struct std::is_error_code_enum<ringio::resolve_errc> : std::true_type {};
