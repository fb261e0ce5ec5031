#pragma once

#include <ringio/endpoint.hpp>

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <system_error>

namespace ringio::detail {

/// An operation's own copy of the endpoint its errors name (a stream's peer, a socket's or a
/// listener's address), so that an error reported after the socket was destroyed (ECANCELED,
/// since destroying a socket cancels its operations) still names it. Holds the address
/// structure only, at most a `sockaddr_in6`: copying it takes a few stores, and an empty copy
/// none.
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

} // namespace ringio::detail
