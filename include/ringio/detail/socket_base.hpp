#pragma once

#include <ringio/detail/error.hpp>
#include <ringio/detail/fd.hpp>
#include <ringio/endpoint.hpp>
#include <ringio/io_context.hpp>

#include <liburing.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <string>
#include <system_error>
#include <utility>

namespace ringio::detail {

/// Opens a socket (always close-on-exec) for `family`; errors name `what`.
inline unique_fd open_socket(int family, int type, const std::string& what) {
    unique_fd fd{::socket(family, type | SOCK_CLOEXEC, 0)};
    if (!fd) {
        throw_error(last_error(), what);
    }
    return fd;
}

/// Sets an integer socket option; errors name `what`.
inline void set_socket_option(int fd, int level, int name, int value, const std::string& what) {
    if (::setsockopt(fd, level, name, &value, sizeof value) != 0) {
        throw_error(last_error(), what);
    }
}

/// Binds `fd` to `local`; errors name the address.
inline void bind_socket(int fd, const endpoint& local, const char* operation) {
    if (::bind(fd, local.data(), local.size()) != 0) {
        throw_error(last_error(), std::string(operation) + ": bind " + describe_endpoint(local));
    }
}

/// The descriptor and context every socket shares. Closing cancels the socket's pending
/// operations before the descriptor is released, so a descriptor number reused later can never
/// receive an operation meant for this one.
class socket_base {
public:
    socket_base(const socket_base&) = delete;
    socket_base& operator=(const socket_base&) = delete;

    /// The descriptor (-1 once closed), for options ringio does not wrap.
    [[nodiscard]] int native_handle() const noexcept { return fd_; }

    /// True until `close()`.
    [[nodiscard]] bool is_open() const noexcept { return fd_ >= 0; }

    /// The context whose ring carries this socket's operations.
    [[nodiscard]] io_context& context() const noexcept { return *context_; }

    /// The address the socket is bound to (`getsockname`): the real port after binding port 0.
    [[nodiscard]] endpoint local_endpoint() const {
        endpoint local;
        socklen_t size = endpoint::capacity();
        if (::getsockname(fd_, local.mutable_data(), &size) != 0) {
            throw_error(last_error(), "getsockname fd " + std::to_string(fd_));
        }
        local.resize(size);
        return local;
    }

    /// Cancels every pending operation on this socket; each completes with `ECANCELED` (or
    /// with its result, if that came first).
    void cancel() noexcept {
        if (fd_ >= 0) {
            context_->cancel_fd(fd_);
        }
    }

    /// Cancels the pending operations, then closes the descriptor, both through the ring at
    /// its next turn: the cancel is hard-linked to the close, so the descriptor number stays
    /// taken until nothing can reach it. Idempotent.
    void close() noexcept {
        if (fd_ < 0) {
            return;
        }
        const int fd = std::exchange(fd_, -1);
        context_->reserve(2);
        io_uring_sqe* cancel = context_->get_sqe();
        io_uring_prep_cancel_fd(cancel, fd, IORING_ASYNC_CANCEL_ALL);
        io_uring_sqe_set_data64(cancel, 0);
        // A hard link runs the close even when the cancel finds nothing (-ENOENT).
        cancel->flags |= IOSQE_IO_HARDLINK;
        io_uring_sqe* close = context_->get_sqe();
        io_uring_prep_close(close, fd);
        io_uring_sqe_set_data64(close, 0);
    }

protected:
    socket_base(io_context& context, unique_fd fd) noexcept
        : context_(&context), fd_(fd.release()) {}

    socket_base(socket_base&& other) noexcept
        : context_(other.context_), fd_(std::exchange(other.fd_, -1)) {}

    socket_base& operator=(socket_base&& other) noexcept {
        if (this != &other) {
            close();
            context_ = other.context_;
            fd_ = std::exchange(other.fd_, -1);
        }
        return *this;
    }

    ~socket_base() { close(); }

    /// Replaces the descriptor (closing the old one through the ring).
    void adopt(unique_fd fd) noexcept {
        close();
        fd_ = fd.release();
    }

private:
    io_context* context_;
    int fd_ = -1;
};

} // namespace ringio::detail
