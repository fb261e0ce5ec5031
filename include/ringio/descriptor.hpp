#pragma once

#include <ringio/detail/operation.hpp>
#include <ringio/io_context.hpp>

#include <liburing.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <system_error>

namespace ringio {

namespace detail {

/// "At the current file position": what pipes, sockets and terminals need.
inline constexpr std::uint64_t current_position = ~std::uint64_t{0};

inline std::string describe_fd(const char* operation, int fd, std::uint64_t offset) {
    std::string text = std::string(operation) + " fd " + std::to_string(fd);
    if (offset != current_position) {
        text += " at offset " + std::to_string(offset);
    }
    return text;
}

/// IORING_OP_READ into one buffer; with `exact`, repeats until the buffer is full.
struct read_op {
    int fd;
    std::span<std::byte> buffer;
    std::uint64_t offset;
    bool exact = false;
    std::size_t done = 0;
    bool ended = false;

    void prepare(io_uring_sqe* sqe) noexcept {
        const std::span<std::byte> rest = buffer.subspan(done);
        io_uring_prep_read(sqe, fd, rest.data(), static_cast<unsigned>(clamp(rest.size())),
                           offset == current_position ? offset : offset + done);
    }

    bool again(int& result) noexcept {
        if (!exact) {
            return false;
        }
        if (result == 0 && done < buffer.size()) {
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
        std::string text = describe_fd(exact ? "read_exact" : "read", fd, offset);
        if (ended) {
            text += " (end of stream after " + std::to_string(done) + " of " +
                    std::to_string(buffer.size()) + " bytes)";
        }
        return text;
    }

    // One submission moves at most what an int result can report.
    static std::size_t clamp(std::size_t size) noexcept {
        return size < std::size_t{1} << 30 ? size : std::size_t{1} << 30;
    }
};

/// IORING_OP_WRITE from one buffer; with `all`, repeats until everything is written.
struct write_op {
    int fd;
    std::span<const std::byte> buffer;
    std::uint64_t offset;
    bool all = false;
    std::size_t done = 0;

    void prepare(io_uring_sqe* sqe) noexcept {
        const std::span<const std::byte> rest = buffer.subspan(done);
        io_uring_prep_write(sqe, fd, rest.data(),
                            static_cast<unsigned>(read_op::clamp(rest.size())),
                            offset == current_position ? offset : offset + done);
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
        return describe_fd(all ? "write_all" : "write", fd, offset);
    }
};

} // namespace detail

/// The awaitable of `read`, `read_at` and `read_exact`.
using read_operation = detail::operation<detail::read_op>;
/// The awaitable of `write`, `write_at` and `write_all`.
using write_operation = detail::operation<detail::write_op>;

/// Reads up to `buffer.size()` bytes from descriptor `fd` (a file at its current position, a
/// pipe, a socket, standard input) without blocking the thread.
/// Completes with: the byte count; 0 means end of stream (or an empty buffer).
/// Errors: the kernel's, e.g. `EBADF`. Lifetime: `buffer` until completion.
/// Cancellation: `cancel()`, `with_timeout`. Kernel: 5.6. See: read(2).
inline read_operation read(io_context& context, int fd, std::span<std::byte> buffer) {
    return read_operation{context, nullptr, fd, buffer, detail::current_position};
}

/// As `read` above; an error is stored in `error` instead of thrown.
inline read_operation read(io_context& context, int fd, std::span<std::byte> buffer,
                           std::error_code& error) {
    return read_operation{context, &error, fd, buffer, detail::current_position};
}

/// Reads up to `buffer.size()` bytes from file `fd` at byte `offset` (pread).
/// Completes with: the byte count, 0 at end of file. Kernel: 5.6. See: pread(2).
inline read_operation read_at(io_context& context, int fd, std::uint64_t offset,
                              std::span<std::byte> buffer) {
    return read_operation{context, nullptr, fd, buffer, offset};
}

/// As `read_at` above; an error is stored in `error` instead of thrown.
inline read_operation read_at(io_context& context, int fd, std::uint64_t offset,
                              std::span<std::byte> buffer, std::error_code& error) {
    return read_operation{context, &error, fd, buffer, offset};
}

/// Reads until `buffer` is full, submitting again after each short read.
/// Completes with: `buffer.size()`. Errors: `ENODATA` when the stream ends first (the message
/// says after how many bytes), or the kernel's.
inline read_operation read_exact(io_context& context, int fd, std::span<std::byte> buffer) {
    return read_operation{context, nullptr, fd, buffer, detail::current_position, true};
}

/// As `read_exact` above; an error is stored in `error` instead of thrown.
inline read_operation read_exact(io_context& context, int fd, std::span<std::byte> buffer,
                                 std::error_code& error) {
    return read_operation{context, &error, fd, buffer, detail::current_position, true};
}

/// Writes up to `buffer.size()` bytes to descriptor `fd`; the count may be short.
/// Completes with: the byte count. Errors: the kernel's, e.g. `EBADF`, `EPIPE` (a pipe whose
/// reader has gone raises SIGPIPE first unless the program ignores it, as with write(2); use
/// the socket operations for sockets, which never do). Lifetime: `buffer` until completion.
/// Kernel: 5.6. See: write(2).
inline write_operation write(io_context& context, int fd, std::span<const std::byte> buffer) {
    return write_operation{context, nullptr, fd, buffer, detail::current_position};
}

/// As `write` above; an error is stored in `error` instead of thrown.
inline write_operation write(io_context& context, int fd, std::span<const std::byte> buffer,
                             std::error_code& error) {
    return write_operation{context, &error, fd, buffer, detail::current_position};
}

/// Writes `buffer` to file `fd` at byte `offset` (pwrite). See: pwrite(2).
inline write_operation write_at(io_context& context, int fd, std::uint64_t offset,
                                std::span<const std::byte> buffer) {
    return write_operation{context, nullptr, fd, buffer, offset};
}

/// As `write_at` above; an error is stored in `error` instead of thrown.
inline write_operation write_at(io_context& context, int fd, std::uint64_t offset,
                                std::span<const std::byte> buffer, std::error_code& error) {
    return write_operation{context, &error, fd, buffer, offset};
}

/// Writes all of `buffer`, submitting the rest again after each short write.
/// Completes with: `buffer.size()`. Errors: the kernel's; on an error or a timeout the number
/// of bytes already written is unknown to the caller.
inline write_operation write_all(io_context& context, int fd, std::span<const std::byte> buffer) {
    return write_operation{context, nullptr, fd, buffer, detail::current_position, true};
}

/// As `write_all` above; an error is stored in `error` instead of thrown.
inline write_operation write_all(io_context& context, int fd, std::span<const std::byte> buffer,
                                 std::error_code& error) {
    return write_operation{context, &error, fd, buffer, detail::current_position, true};
}

} // namespace ringio
