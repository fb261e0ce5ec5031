#pragma once

// descriptor: an owned file descriptor whose reads and writes are io_uring requests, and the same
// reads and writes on any descriptor by number.

#include <ringio/detail/bytes.hpp>
#include <ringio/detail/socket_name.hpp>
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

/// The endpoint `name` holds (empty if none).
inline endpoint endpoint_of(const socket_name& name) noexcept {
    std::error_code ignored; // a name is only ever kept from a valid endpoint
    return {name.data(), name.size(), ignored};
}

/// "read fd 5", "read fd 5 at offset 8", or "read from 127.0.0.1:80" for a named socket
/// (`subject`, a socket_name).
inline std::string request_name(const char* verb, const char* preposition, int fd,
                                std::uint64_t offset, const void* subject) {
    if (subject != nullptr) {
        const endpoint name = endpoint_of(*static_cast<const socket_name*>(subject));
        if (!name.empty() && !(name.is_unix() && name.unix_name().empty())) {
            return std::string(verb) + ' ' + preposition + ' ' + name.to_string();
        }
    }
    static constexpr const char* standard[] = {"standard input", "standard output",
                                               "standard error"};
    std::string text = std::string(verb) + ' ' +
                       (fd >= 0 && fd <= 2 ? std::string(preposition) + ' ' + standard[fd]
                                           : "fd " + std::to_string(fd));
    if (offset != current_position) {
        text += " at offset " + std::to_string(offset);
    }
    return text;
}

/// Reports a failed request's `result` (a negative errno) through `error`, or throws it, naming
/// the request as request_name does: the end of a multishot stream.
inline void report_request(int result, std::error_code* error, const char* verb,
                           const char* preposition, int fd, const void* subject) {
    report(error_from_result(result), error,
           [&] { return request_name(verb, preposition, fd, current_position, subject); });
}

/// IORING_OP_READ into one buffer, at `offset` or the current position.
struct read_op {
    static constexpr const char* whole_verb = "read_exact";
    static constexpr int ended = ENODATA; // the stream ended before the buffer was full
    int fd;
    std::span<std::byte> buffer;
    std::uint64_t offset = current_position;

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
    std::string describe(const void* subject = nullptr, const char* verb = "read") const {
        return request_name(verb, "from", fd, offset, subject) +
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
    bool socket = false;

    void prepare(io_uring_sqe* sqe) noexcept {
        if (socket) {
            io_uring_prep_send(sqe, fd, buffer.data(), clamp_size(buffer.size()), MSG_NOSIGNAL);
        } else {
            io_uring_prep_write(sqe, fd, buffer.data(), clamp_size(buffer.size()), offset);
        }
    }
    [[nodiscard]] static int translate(int result) noexcept { return result; }
    std::size_t complete(int result) const noexcept { return static_cast<std::size_t>(result); }
    std::string describe(const void* subject = nullptr, const char* verb = "write") const {
        return request_name(verb, "to", fd, offset, subject);
    }
};

/// IORING_OP_READ into an input_buffer until `Match` finds a record: produces it without its
/// delimiter (nullopt at the end of the stream); EMSGSIZE when the buffer fills without one.
template <class Match>
struct until_op {
    int fd;
    input_buffer* in;
    Match match;
    bool full = false; // no room left to read a delimiter into: a NOP, failed with EMSGSIZE

    bool ready() { return in->find_next(match); }
    void prepare(io_uring_sqe* sqe) noexcept {
        const std::span<char> room = in->room();
        full = room.empty();
        if (full) {
            io_uring_prep_nop(sqe);
        } else {
            io_uring_prep_read(sqe, fd, room.data(), clamp_size(room.size()), current_position);
        }
    }
    int translate(int result) const noexcept { return full ? -EMSGSIZE : result; }
    bool again(int& result) {
        in->filled(static_cast<std::size_t>(result));
        const bool found = result == 0 ? in->find_last() : in->find(match);
        full = !found && in->full();
        result = full ? -EMSGSIZE : result;
        return !found && !full && result > 0;
    }
    std::optional<std::string_view> complete(int /*result*/) noexcept { return in->take(); }
    std::string describe(const void* subject = nullptr) const {
        return request_name("read_until", "from", fd, current_position, subject) +
               (full ? " (" + std::to_string(in->capacity()) + " bytes without the end of a record)"
                     : "");
    }
};

/// Repeats `Op` past the bytes each short transfer moved, until its whole buffer has moved.
template <class Op>
struct whole {
    Op op;
    std::size_t total = op.buffer.size();
    std::size_t done = 0;
    bool ended = false;

    void prepare(io_uring_sqe* sqe) noexcept { op.prepare(sqe); }
    int translate(int result) const noexcept { return op.translate(result); }
    bool again(int& result) noexcept {
        if (result == 0 && done < total) {
            ended = true;
            result = -Op::ended;
            return false;
        }
        const auto count = static_cast<std::size_t>(result);
        done += count;
        op.buffer = op.buffer.subspan(count);
        op.offset += op.offset != current_position ? count : 0;
        return done < total;
    }
    std::size_t complete(int /*result*/) const noexcept { return done; }
    std::string describe(const void* subject = nullptr) const {
        return op.describe(subject, Op::whole_verb) +
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

    descriptor(descriptor&& other) noexcept
        : name_(std::move(other.name_)), context_(other.context_), core_(std::move(other.core_)) {
        core_.set_subject(other.core_.subject() != nullptr ? &name_ : nullptr);
    }
    descriptor& operator=(descriptor&& other) noexcept {
        if (this != &other) {
            context_ = other.context_;
            core_ = std::move(other.core_);
            name_ = std::move(other.name_);
            core_.set_subject(other.core_.subject() != nullptr ? &name_ : nullptr);
        }
        return *this;
    }
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
    template <detail::mutable_byte_range R>
    auto read(R&& buffer) {
        return operation<detail::read_op>(*this, fd(), detail::writable_bytes_of(buffer));
    }
    /// Reads at byte `offset` (pread).
    template <detail::mutable_byte_range R>
    auto read_at(std::uint64_t offset, R&& buffer) {
        return operation<detail::read_op>(*this, fd(), detail::writable_bytes_of(buffer), offset);
    }
    /// Reads until `buffer` is full; ENODATA if the stream ends first.
    template <detail::mutable_byte_range R>
    auto read_exact(R&& buffer) {
        return operation<detail::whole<detail::read_op>>(
            *this, detail::read_op{fd(), detail::writable_bytes_of(buffer)});
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
    template <detail::byte_range R>
    auto write(R&& buffer) {
        return operation<detail::write_op>(*this, writer(detail::bytes_of(buffer)));
    }
    /// Writes at byte `offset` (pwrite).
    template <detail::byte_range R>
    auto write_at(std::uint64_t offset, R&& buffer) {
        detail::write_op op = writer(detail::bytes_of(buffer));
        op.offset = offset;
        return operation<detail::write_op>(*this, op);
    }
    /// Writes all of `buffer`, again after each short write.
    template <detail::byte_range R>
    auto write_all(R&& buffer) {
        return operation<detail::whole<detail::write_op>>(*this, writer(detail::bytes_of(buffer)));
    }

protected:
    /// A socket: its writes are sends, and errors name it by `name` (a peer, a local address).
    descriptor(io_context& context, int fd, const endpoint& name) noexcept
        : name_(name.data(), name.size()), context_(&context), core_(detail::ring_of(context), fd) {
        core_.set_subject(&name_); // which also says that it is a socket
    }

    /// The address a socket is known by (its peer, or the address it is bound to).
    [[nodiscard]] endpoint name() const noexcept { return detail::endpoint_of(name_); }
    void rename(const endpoint& name) noexcept { name_ = {name.data(), name.size()}; }

    detail::socket_name name_; // small: every connection's frame holds one

    [[nodiscard]] int fd() const noexcept { return core_.fd(); }
    void reset(int fd) noexcept { core_.reset(fd); }

private:
    friend detail::descriptor_core& detail::core_of(descriptor& owner) noexcept;

    detail::write_op writer(std::span<const std::byte> bytes) const noexcept {
        return {fd(), bytes, detail::current_position, core_.subject() != nullptr};
    }
    template <class Match>
    operation<detail::until_op<Match>> until(input_buffer& in, Match match) {
        return operation<detail::until_op<Match>>(*this, fd(), &in, std::move(match));
    }

    io_context* context_;
    detail::descriptor_core core_;
};

inline detail::descriptor_core& detail::core_of(descriptor& owner) noexcept {
    return owner.core_;
}

// The same on any descriptor by number, not owned: closing it does not cancel them.

/// Reads from descriptor `fd`.
template <detail::mutable_byte_range R>
auto read(io_context& context, int fd, R&& buffer) {
    return operation<detail::read_op>(context, fd, detail::writable_bytes_of(buffer));
}
/// Writes to descriptor `fd`; the count may be short.
template <detail::byte_range R>
auto write(io_context& context, int fd, R&& buffer) {
    return operation<detail::write_op>(context, fd, detail::bytes_of(buffer));
}
/// Reads from descriptor `fd` at byte `offset`.
template <detail::mutable_byte_range R>
auto read_at(io_context& context, int fd, std::uint64_t offset, R&& buffer) {
    return operation<detail::read_op>(context, fd, detail::writable_bytes_of(buffer), offset);
}
/// Writes to descriptor `fd` at byte `offset`.
template <detail::byte_range R>
auto write_at(io_context& context, int fd, std::uint64_t offset, R&& buffer) {
    return operation<detail::write_op>(context, fd, detail::bytes_of(buffer), offset);
}
/// Reads from descriptor `fd` until `buffer` is full.
template <detail::mutable_byte_range R>
auto read_exact(io_context& context, int fd, R&& buffer) {
    return operation<detail::whole<detail::read_op>>(
        context, detail::read_op{fd, detail::writable_bytes_of(buffer)});
}
/// Writes all of `buffer` to descriptor `fd`.
template <detail::byte_range R>
auto write_all(io_context& context, int fd, R&& buffer) {
    return operation<detail::whole<detail::write_op>>(
        context, detail::write_op{fd, detail::bytes_of(buffer)});
}

} // namespace ringio
