#pragma once

#include <ringio/detail/endpoint_copy.hpp>
#include <ringio/detail/operation.hpp>
#include <ringio/detail/valgrind.hpp>
#include <ringio/endpoint.hpp>

#include <liburing.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace ringio::detail {

/// "At the current file position": what pipes, sockets and terminals need.
inline constexpr std::uint64_t current_position = ~std::uint64_t{0};

/// Names the object of a read or write for error messages: the peer of a socket
/// ("read from 127.0.0.1:80"), else (or when it has none) the descriptor and offset ("read fd 5
/// at offset 8").
inline std::string describe_stream(const char* operation, int fd, std::uint64_t offset,
                                   const endpoint_copy* peer) {
    if (peer != nullptr && !peer->empty()) {
        const bool sending = operation[0] == 'w';
        return std::string(operation) + (sending ? " to " : " from ") +
               describe_endpoint(peer->get());
    }
    std::string text = std::string(operation) + " fd " + std::to_string(fd);
    if (offset != current_position) {
        text += " at offset " + std::to_string(offset);
    }
    return text;
}

// One submission moves at most what an int result can report.
inline unsigned clamp_size(std::size_t size) noexcept {
    constexpr std::size_t most = std::size_t{1} << 30;
    return static_cast<unsigned>(size < most ? size : most);
}

/// Reads into one buffer: IORING_OP_RECV on a socket, else IORING_OP_READ; with `exact`,
/// repeats until the buffer is full.
struct read_op {
    int fd;
    std::span<std::byte> buffer;
    std::uint64_t offset = current_position;
    bool socket = false;
    bool exact = false;
    endpoint_copy peer{}; // named by errors; a copy, since the stream may be destroyed first
    bool ended = false;
    std::size_t done = 0;

    void prepare(io_uring_sqe* sqe) noexcept {
        if (buffer.empty()) {
            // A zero-byte read would look like the end of the stream: refuse it (translate).
            io_uring_prep_nop(sqe);
            return;
        }
        const std::span<std::byte> rest = buffer.subspan(done);
        if (socket) {
            io_uring_prep_recv(sqe, fd, rest.data(), clamp_size(rest.size()), 0);
        } else {
            io_uring_prep_read(sqe, fd, rest.data(), clamp_size(rest.size()),
                               offset == current_position ? offset : offset + done);
        }
    }

    int translate(int result) const noexcept {
        if (buffer.empty()) {
            return -EINVAL;
        }
        if (result > 0) {
            mark_received(buffer.data() + done, static_cast<std::size_t>(result));
        }
        return result;
    }

    bool again(int& result) noexcept {
        if (!exact) {
            return false;
        }
        if (result == 0) {
            // The stream ended before the buffer was full: an error, not a short value.
            ended = true;
            result = -ENODATA;
            return false;
        }
        done += static_cast<std::size_t>(result);
        result = 0;
        return done < buffer.size();
    }

    std::size_t complete(int result) const noexcept {
        return exact ? done : static_cast<std::size_t>(result);
    }

    [[nodiscard]] std::string describe() const {
        std::string text =
            describe_stream(exact ? "read_exact" : "read", fd, offset, socket ? &peer : nullptr);
        if (buffer.empty()) {
            text += " (an empty buffer)";
        } else if (ended) {
            text += " (end of stream after " + std::to_string(done) + " of " +
                    std::to_string(buffer.size()) + " bytes)";
        }
        return text;
    }
};

/// Writes one buffer: IORING_OP_SEND with MSG_NOSIGNAL on a socket, else IORING_OP_WRITE;
/// with `all`, repeats until everything is written.
struct write_op {
    int fd;
    std::span<const std::byte> buffer;
    std::uint64_t offset = current_position;
    bool socket = false;
    bool all = false;
    endpoint_copy peer{}; // as read_op's
    std::size_t done = 0;

    void prepare(io_uring_sqe* sqe) noexcept {
        const std::span<const std::byte> rest = buffer.subspan(done);
        if (socket) {
            // A peer that has gone answers EPIPE, never SIGPIPE.
            io_uring_prep_send(sqe, fd, rest.data(), clamp_size(rest.size()), MSG_NOSIGNAL);
        } else {
            io_uring_prep_write(sqe, fd, rest.data(), clamp_size(rest.size()),
                                offset == current_position ? offset : offset + done);
        }
    }

    bool again(int& result) noexcept {
        if (!all) {
            return false;
        }
        if (result == 0 && !buffer.empty()) {
            // No progress on a non-empty write would repeat forever.
            result = -EIO;
            return false;
        }
        done += static_cast<std::size_t>(result);
        result = 0;
        return done < buffer.size();
    }

    std::size_t complete(int result) const noexcept {
        return all ? done : static_cast<std::size_t>(result);
    }

    [[nodiscard]] std::string describe() const {
        return describe_stream(all ? "write_all" : "write", fd, offset, socket ? &peer : nullptr);
    }
};

} // namespace ringio::detail

namespace ringio {

/// The awaitable of the reads: `read`, `read_at`, `read_exact` and `tcp_stream`'s.
using read_operation = detail::operation<detail::read_op>;
/// The awaitable of the writes: `write`, `write_at`, `write_all` and `tcp_stream`'s.
using write_operation = detail::operation<detail::write_op>;

} // namespace ringio
