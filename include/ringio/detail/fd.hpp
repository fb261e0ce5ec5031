#pragma once

// fd: unique_fd, an owned file descriptor closed on destruction.

#include <unistd.h>

#include <utility>

namespace ringio::detail {

/// Owns a file descriptor and closes it on destruction; move-only. -1 means "none".
class unique_fd {
public:
    /// Holds no descriptor.
    unique_fd() noexcept = default;

    /// Takes ownership of `fd` (-1 for none).
    explicit unique_fd(int fd) noexcept : fd_(fd) {}

    unique_fd(unique_fd&& other) noexcept : fd_(other.release()) {}

    unique_fd& operator=(unique_fd&& other) noexcept {
        reset(other.release());
        return *this;
    }

    unique_fd(const unique_fd&) = delete;
    unique_fd& operator=(const unique_fd&) = delete;

    ~unique_fd() { reset(); }

    /// The descriptor, still owned; -1 when empty.
    [[nodiscard]] int get() const noexcept { return fd_; }

    /// True when a descriptor is held.
    explicit operator bool() const noexcept { return fd_ >= 0; }

    /// Gives up ownership and returns the descriptor.
    int release() noexcept { return std::exchange(fd_, -1); }

    /// Closes the held descriptor, if any, and takes `fd` instead.
    void reset(int fd = -1) noexcept {
        // close(2) on Linux releases the descriptor even when it reports EINTR, so it is never
        // retried: a retry could close a descriptor another thread has just been given.
        if (fd_ >= 0) {
            ::close(fd_);
        }
        fd_ = fd;
    }

private:
    int fd_ = -1;
};

} // namespace ringio::detail
