#pragma once

// socket_name: the address a socket is known by, kept small: an IP address inline, a longer one
// (a Unix path) in a block of its own.

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <memory>
#include <new>
#include <utility>

namespace ringio::detail {

/// A copy of a socket address, as a descriptor keeps it for its errors and accessors. Empty when
/// there is none, or when a long one found no memory (errors then name the descriptor's number).
class socket_name {
public:
    socket_name() noexcept = default;
    socket_name(const sockaddr* address, socklen_t size) noexcept { assign(address, size); }
    socket_name(const socket_name& other) noexcept { assign(other.data(), other.size_); }
    socket_name(socket_name&& other) noexcept
        : inline_(other.inline_), size_(std::exchange(other.size_, 0)),
          outside_(std::move(other.outside_)) {}
    socket_name& operator=(socket_name other) noexcept {
        inline_ = other.inline_;
        size_ = std::exchange(other.size_, 0);
        outside_ = std::move(other.outside_);
        return *this;
    }
    ~socket_name() = default;

    [[nodiscard]] const sockaddr* data() const noexcept {
        return outside_ ? reinterpret_cast<const sockaddr*>(outside_.get())
                        : reinterpret_cast<const sockaddr*>(&inline_);
    }
    [[nodiscard]] socklen_t size() const noexcept { return size_; }

private:
    void assign(const sockaddr* address, socklen_t size) noexcept {
        size_ = 0;
        outside_.reset();
        if (address == nullptr || size == 0) {
            return;
        }
        void* to = &inline_;
        if (size > sizeof inline_) {
            outside_.reset(new (std::nothrow) unsigned char[size]);
            if (!outside_) {
                return;
            }
            to = outside_.get();
        }
        std::memcpy(to, address, size);
        size_ = size;
    }

    sockaddr_in6 inline_{}; // the largest IP address
    socklen_t size_ = 0;
    std::unique_ptr<unsigned char[]> outside_;
};

} // namespace ringio::detail
