#pragma once

// descriptor: an owned file descriptor whose reads and writes are io_uring requests, and the same
// reads and writes on any descriptor by number.

#include <ringio/detail/bytes.hpp>
#include <ringio/detail/tracked.hpp>
#include <ringio/detail/valgrind.hpp>
#include <ringio/endpoint.hpp>
#include <ringio/input_buffer.hpp>
#include <ringio/io_context.hpp>
#include <ringio/operation.hpp>

#include <liburing.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace ringio {

namespace detail {

/// "read fd 5", "read fd 5 at offset 8", or "read from 127.0.0.1:80" when it has a name.
inline std::string request_name(const char* verb, const char* preposition, int fd,
                                std::uint64_t offset, const endpoint_copy& name) {
    if (!name.empty()) {
        return std::string(verb) + ' ' + preposition + ' ' + name.text();
    }
    std::string text = std::string(verb) + " fd " + std::to_string(fd);
    if (offset != current_position) {
        text += " at offset " + std::to_string(offset);
    }
    return text;
}

/// IORING_OP_READ into one buffer, at `offset` or the current position.
struct read_op {
    static constexpr const char* whole_verb = "read_exact";
    static constexpr int ended = ENODATA; // the stream ended before the buffer was full
    int fd;
    std::span<std::byte> buffer;
    std::uint64_t offset = current_position;
    endpoint_copy name{};

    void prepare(io_uring_sqe* sqe) noexcept {
        if (buffer.empty()) {
            io_uring_prep_nop(sqe); // a read of 0 bytes would look like the end: see translate
        } else {
            io_uring_prep_read(sqe, fd, buffer.data(), clamp_size(buffer.size()), offset);
        }
    }
    int translate(int result) const noexcept {
        if (buffer.empty()) {
            return -EINVAL;
        }
        mark_received(buffer.data(), result > 0 ? static_cast<std::size_t>(result) : 0);
        return result;
    }
    std::size_t complete(int result) const noexcept { return static_cast<std::size_t>(result); }
    void advance(std::size_t count) noexcept {
        buffer = buffer.subspan(count);
        offset += offset != current_position ? count : 0;
    }
    std::string describe(const char* verb = "read") const {
        return request_name(verb, "from", fd, offset, name) +
               (buffer.empty() ? " (an empty buffer)" : "");
    }
};

/// IORING_OP_WRITE, or IORING_OP_SEND with MSG_NOSIGNAL on a socket (EPIPE, never SIGPIPE).
struct write_op {
    static constexpr const char* whole_verb = "write_all";
    static constexpr int ended = EIO; // no progress on a non-empty buffer would repeat forever
    int fd;
    std::span<const std::byte> buffer;
    std::uint64_t offset = current_position;
    endpoint_copy name{};
    bool socket = false;

    void prepare(io_uring_sqe* sqe) noexcept {
        if (socket) {
            io_uring_prep_send(sqe, fd, buffer.data(), clamp_size(buffer.size()), MSG_NOSIGNAL);
        } else {
            io_uring_prep_write(sqe, fd, buffer.data(), clamp_size(buffer.size()), offset);
        }
    }
    std::size_t complete(int result) const noexcept { return static_cast<std::size_t>(result); }
    void advance(std::size_t count) noexcept {
        buffer = buffer.subspan(count);
        offset += offset != current_position ? count : 0;
    }
    std::string describe(const char* verb = "write") const {
        return request_name(verb, "to", fd, offset, name);
    }
};

/// Repeats `Op` after each short transfer until its whole buffer has moved.
template <class Op>
struct whole {
    Op op;
    std::size_t total = op.buffer.size();
    std::size_t done = 0;
    bool ended = false;

    void prepare(io_uring_sqe* sqe) noexcept { op.prepare(sqe); }
    int translate(int result) const noexcept {
        if constexpr (requires { op.translate(result); }) {
            return op.translate(result);
        } else {
            return result;
        }
    }
    bool again(int& result) noexcept {
        if (result == 0 && done < total) {
            ended = true;
            result = -Op::ended;
            return false;
        }
        done += static_cast<std::size_t>(result);
        op.advance(static_cast<std::size_t>(result));
        return done < total;
    }
    std::size_t complete(int /*result*/) const noexcept { return done; }
    std::string describe() const {
        return op.describe(Op::whole_verb) +
               (ended ? " (end of stream after " + std::to_string(done) + " of " +
                            std::to_string(total) + " bytes)"
                      : "");
    }
};

} // namespace detail

/// An owned file descriptor whose requests are cancelled when it is closed; move-only.
class descriptor {
public:
    /// Adopts `fd` (-1 for none), to be used through `context`.
    descriptor(io_context& context, int fd) noexcept
        : context_(&context), core_(detail::ring_of(context), fd) {}

    descriptor(descriptor&& other) noexcept = default;
    descriptor& operator=(descriptor&& other) noexcept = default;
    ~descriptor() = default;

    /// The descriptor's number, -1 once closed.
    [[nodiscard]] int native_handle() const noexcept { return core_.fd(); }
    /// True until `close()`.
    [[nodiscard]] bool is_open() const noexcept { return core_.fd() >= 0; }
    /// The context whose ring carries the requests.
    [[nodiscard]] io_context& context() const noexcept { return *context_; }

    /// Cancels every request in flight on it; each completes with `ECANCELED` or its result.
    void cancel() noexcept { core_.cancel(); }
    /// Cancels its requests and closes it, through the ring; idempotent.
    void close() noexcept { core_.close(); }
    /// Gives the descriptor up without closing it (its requests are cancelled).
    [[nodiscard]] int release() noexcept { return core_.release(); }

    /// Reads up to `buffer`'s size; produces the count, 0 at the end.
    template <class R>
    requires detail::mutable_byte_range<std::remove_reference_t<R>>
    auto read(R&& buffer) {
        return operation<detail::read_op>(*this, fd(), detail::writable_bytes_of(buffer),
                                          detail::current_position, name());
    }
    /// Reads at byte `offset` (pread).
    template <class R>
    requires detail::mutable_byte_range<std::remove_reference_t<R>>
    auto read_at(std::uint64_t offset, R&& buffer) {
        return operation<detail::read_op>(*this, fd(), detail::writable_bytes_of(buffer), offset,
                                          name());
    }
    /// Reads until `buffer` is full; ENODATA if the stream ends first.
    template <class R>
    requires detail::mutable_byte_range<std::remove_reference_t<R>>
    auto read_exact(R&& buffer) {
        return operation<detail::whole<detail::read_op>>(
            *this, detail::read_op{fd(), detail::writable_bytes_of(buffer),
                                   detail::current_position, name()});
    }
    /// Reads into `in` until `delimiter`; produces the record without it (nullopt at the end).
    auto read_until(input_buffer& in, std::string_view delimiter) {
        return until(in, detail::delimiter{std::string(delimiter)});
    }
    /// As above, for a one-character delimiter.
    auto read_until(input_buffer& in, char delimiter) {
        return until(in, detail::delimiter{std::string(1, delimiter)});
    }
    /// Reads into `in` until `complete(data)` returns a record's length (0: not yet).
    template <class Predicate>
    requires std::is_invocable_r_v<std::size_t, Predicate&, std::string_view>
    auto read_until(input_buffer& in, Predicate complete) {
        return until(in, detail::predicate<Predicate>{std::move(complete)});
    }
    /// Writes up to `buffer`'s size; produces the count, which may be short.
    template <class R>
    requires detail::byte_range<std::remove_reference_t<R>>
    auto write(R&& buffer) {
        return operation<detail::write_op>(*this, writer(detail::bytes_of(buffer)));
    }
    /// Writes at byte `offset` (pwrite).
    template <class R>
    requires detail::byte_range<std::remove_reference_t<R>>
    auto write_at(std::uint64_t offset, R&& buffer) {
        detail::write_op op = writer(detail::bytes_of(buffer));
        op.offset = offset;
        return operation<detail::write_op>(*this, op);
    }
    /// Writes all of `buffer`, again after each short write.
    template <class R>
    requires detail::byte_range<std::remove_reference_t<R>>
    auto write_all(R&& buffer) {
        return operation<detail::whole<detail::write_op>>(*this, writer(detail::bytes_of(buffer)));
    }

protected:
    /// A socket: its writes are sends, and errors name it by `name` (a peer, a local address).
    descriptor(io_context& context, int fd, const endpoint& name) noexcept
        : context_(&context), core_(detail::ring_of(context), fd), name_(name), socket_(true) {}

    [[nodiscard]] int fd() const noexcept { return core_.fd(); }
    void reset(int fd) noexcept { core_.reset(fd); }
    endpoint name_; // for a socket: its peer, or the address it is bound to

private:
    friend detail::descriptor_core& detail::core_of(descriptor& owner) noexcept;

    detail::endpoint_copy name() const noexcept { return detail::endpoint_copy{name_}; }
    detail::write_op writer(std::span<const std::byte> bytes) const noexcept {
        return {fd(), bytes, detail::current_position, name(), socket_};
    }
    template <class Match>
    operation<detail::until_op<Match>> until(input_buffer& in, Match match) {
        const detail::endpoint_copy who = name();
        return operation<detail::until_op<Match>>(*this, fd(), &in, std::move(match),
                                                  who.empty() ? "fd " + std::to_string(fd())
                                                              : "from " + who.text());
    }

    io_context* context_;
    detail::descriptor_core core_;
    bool socket_ = false;
};

inline detail::descriptor_core& detail::core_of(descriptor& owner) noexcept {
    return owner.core_;
}

/// Reads from descriptor `fd` (not owned: closing it does not cancel the read).
template <class R>
requires detail::mutable_byte_range<std::remove_reference_t<R>>
auto read(io_context& context, int fd, R&& buffer) {
    return operation<detail::read_op>(context, fd, detail::writable_bytes_of(buffer));
}
/// Reads from descriptor `fd` at byte `offset`.
template <class R>
requires detail::mutable_byte_range<std::remove_reference_t<R>>
auto read_at(io_context& context, int fd, std::uint64_t offset, R&& buffer) {
    return operation<detail::read_op>(context, fd, detail::writable_bytes_of(buffer), offset);
}
/// Reads from descriptor `fd` until `buffer` is full.
template <class R>
requires detail::mutable_byte_range<std::remove_reference_t<R>>
auto read_exact(io_context& context, int fd, R&& buffer) {
    return operation<detail::whole<detail::read_op>>(
        context, detail::read_op{fd, detail::writable_bytes_of(buffer)});
}
/// Writes to descriptor `fd`; the count may be short.
template <class R>
requires detail::byte_range<std::remove_reference_t<R>>
auto write(io_context& context, int fd, R&& buffer) {
    return operation<detail::write_op>(context, fd, detail::bytes_of(buffer));
}
/// Writes to descriptor `fd` at byte `offset`.
template <class R>
requires detail::byte_range<std::remove_reference_t<R>>
auto write_at(io_context& context, int fd, std::uint64_t offset, R&& buffer) {
    return operation<detail::write_op>(context, fd, detail::bytes_of(buffer), offset);
}
/// Writes all of `buffer` to descriptor `fd`.
template <class R>
requires detail::byte_range<std::remove_reference_t<R>>
auto write_all(io_context& context, int fd, R&& buffer) {
    return operation<detail::whole<detail::write_op>>(
        context, detail::write_op{fd, detail::bytes_of(buffer)});
}

} // namespace ringio
