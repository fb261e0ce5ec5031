#pragma once

#include <ringio/detail/operation.hpp>
#include <ringio/detail/stream_ops.hpp>
#include <ringio/io_context.hpp>

#include <liburing.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <system_error>

namespace ringio {

/// Reads up to `buffer.size()` bytes from descriptor `fd` (a file at its current position, a
/// pipe, a socket, standard input) without blocking the thread.
/// Completes with: the byte count; 0 means end of stream.
/// Errors: `EINVAL` for an empty buffer (0 would read as end of stream), else the kernel's,
/// e.g. `EBADF`. Lifetime: `buffer` until completion.
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
    return read_operation{context, nullptr, fd, buffer, detail::current_position, false, true};
}

/// As `read_exact` above; an error is stored in `error` instead of thrown.
inline read_operation read_exact(io_context& context, int fd, std::span<std::byte> buffer,
                                 std::error_code& error) {
    return read_operation{context, &error, fd, buffer, detail::current_position, false, true};
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
    return write_operation{context, nullptr, fd, buffer, detail::current_position, false, true};
}

/// As `write_all` above; an error is stored in `error` instead of thrown.
inline write_operation write_all(io_context& context, int fd, std::span<const std::byte> buffer,
                                 std::error_code& error) {
    return write_operation{context, &error, fd, buffer, detail::current_position, false, true};
}

} // namespace ringio
