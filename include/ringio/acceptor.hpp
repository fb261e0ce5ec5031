#pragma once

#include <ringio/detail/error.hpp>
#include <ringio/detail/fd.hpp>
#include <ringio/detail/multishot.hpp>
#include <ringio/endpoint.hpp>
#include <ringio/tcp_listener.hpp>
#include <ringio/tcp_stream.hpp>

#include <liburing.h>
#include <sys/socket.h>
#include <unistd.h>

#include <coroutine>
#include <system_error>

namespace ringio {

/// A stream of accepted connections: one multishot accept, armed once, delivering every new
/// connection without a submission per accept.
///
/// An error (`EMFILE`, `ENFILE`, `ECONNABORTED`, ...) is reported by the `next()` that meets
/// it; the kernel ends the multishot accept there, and the following `next()` arms it again,
/// so a server survives running out of descriptors: catch, back off, go on.
///
/// Several coroutines may wait on one acceptor: each connection goes to one of them, and an
/// error reaches every one waiting.
///
/// Lifetime: the listener outlives the acceptor, and the acceptor the coroutines waiting on
/// it. Destroying an acceptor while its accept is armed cancels it, and closes any connection
/// accepted meanwhile.
/// Kernel: 5.19 for multishot (older kernels get one accept per `next()`). See:
/// io_uring_prep_multishot_accept(3).
class acceptor {
public:
    /// Prepares to accept on `listener`; nothing is submitted until `next()`.
    explicit acceptor(tcp_listener& listener)
        : slot_(detail::multishot_slot::create(listener.context(), listener, &arm, &release,
                                               nullptr, nullptr)),
          context_(&listener.context()), local_(&listener.address()) {}

    acceptor(const acceptor&) = delete;
    acceptor& operator=(const acceptor&) = delete;

    ~acceptor() { slot_->orphan(); }

    /// The awaitable of `next()`: `co_await` produces `accepted`.
    using next_operation = detail::multishot_next<acceptor>;

    /// The next connection (close-on-exec).
    /// Completes with: `accepted`. Errors: e.g. `EMFILE`; the message names the listener.
    next_operation next() noexcept { return {*this, nullptr}; }

    /// As `next` above; an error is stored in `error` instead of thrown, and the stream
    /// produced is not open.
    next_operation next(std::error_code& error) noexcept { return {*this, &error}; }

private:
    friend next_operation;

    bool ready() const noexcept { return !slot_->empty(); }
    detail::multishot_slot& slot() const noexcept { return *slot_; }

    static void arm(detail::multishot_slot& slot, io_uring_sqe* sqe) noexcept {
        // No address: a multishot accept shares one buffer among all its completions, so
        // each connection's peer is asked for (getpeername) as it is taken.
        if (slot.single_shot()) {
            io_uring_prep_accept(sqe, slot.fd(), nullptr, nullptr, SOCK_CLOEXEC);
        } else {
            io_uring_prep_multishot_accept(sqe, slot.fd(), nullptr, nullptr, SOCK_CLOEXEC);
        }
    }

    static void release(detail::multishot_slot& /*slot*/,
                        const detail::multishot_entry& entry) noexcept {
        if (entry.result >= 0) {
            ::close(entry.result);
        }
    }

    accepted take(detail::multishot_waiter& waiter, std::error_code* error) {
        const detail::multishot_entry entry = waiter.take(*slot_);
        if (entry.result < 0) {
            const std::error_code ec = detail::error_from_result(entry.result);
            if (error == nullptr) {
                detail::throw_error(ec, "accept on " + detail::describe_endpoint(*local_));
            }
            *error = ec;
            return {tcp_stream{*context_}, endpoint{}};
        }
        detail::unique_fd fd{entry.result};
        endpoint peer;
        socklen_t size = endpoint::capacity();
        std::error_code ignored; // a peer that already left has no name; the stream says so
        if (::getpeername(fd.get(), peer.mutable_data(), &size) == 0) {
            peer.resize(size, ignored);
        }
        detail::clear(error);
        return {tcp_stream{*context_, std::move(fd), peer}, peer};
    }

    detail::multishot_slot* slot_;
    io_context* context_;
    const endpoint* local_;
};

} // namespace ringio
