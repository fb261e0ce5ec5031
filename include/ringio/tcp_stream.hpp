#pragma once

// tcp_stream: a TCP connection whose connect, reads and writes are io_uring requests, with
// receives into a shared buffer_ring and sends of the buffers received.

#include <ringio/buffer_ring.hpp>
#include <ringio/descriptor.hpp>
#include <ringio/detail/send_queue.hpp>
#include <ringio/endpoint.hpp>
#include <ringio/multishot.hpp>
#include <ringio/operation.hpp>
#include <ringio/socket.hpp>

#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <coroutine>
#include <string>
#include <system_error>
#include <utility>

namespace ringio {

namespace detail {

/// IORING_OP_CONNECT; `error` (the socket could not be opened) completes it through a NOP.
struct connect_op {
    int fd;
    endpoint target;
    int error = 0;

    void prepare(io_uring_sqe* sqe) noexcept {
        if (error != 0) {
            io_uring_prep_nop(sqe);
        } else {
            io_uring_prep_connect(sqe, fd, target.data(), target.size());
        }
    }
    int translate(int result) const noexcept { return error != 0 ? -error : result; }
    void complete(int /*result*/) const noexcept {}
    [[nodiscard]] std::string describe() const { return "connect " + describe_endpoint(target); }
};

/// The end of a stream's receives, or a wait's cancellation: the first end or error is the
/// stream's for good (`end`: 1 until then), reported once, then EBADF if the stream is closed.
[[gnu::noinline]] inline void stream_end(slot& self, int& end, const entry& got,
                                         std::error_code* error) {
    const bool cancelled = (got.flags & wait_cancelled) != 0; // this wait, not the stream
    if (end > 0 && !cancelled) {
        end = got.result;
        if (end <= 0) {
            self.end(); // every next() is ready with it from now on
        }
    }
    const int code = cancelled ? got.result : end;
    if (code >= 0) {
        clear(error);
        return;
    }
    if (!cancelled && self.closed()) {
        end = -EBADF;
    }
    report_request(code, error, "recv", "from", self.fd(), self.subject());
}

/// A stream's receives: one recv into a ring buffer per chunk, armed again while the connection
/// holds fewer chunks than its budget (a multishot recv could take the whole ring).
template <>
struct multishot_policy<buffer_lease> {
    struct state {
        int end = 1; // 1 while data may come; 0 at the end; else the error, for good
    };
    static void arm(slot& self, io_uring_sqe* sqe) noexcept {
        io_uring_prep_recv(sqe, self.fd(), nullptr, 0, 0);
        buffer_pool::select(self, sqe);
    }
    static constexpr slot_kind kind = buffer_pool::kind(&arm, false);

    static multishot<buffer_lease> open(descriptor_core& socket, buffer_pool& pool, unsigned budget,
                                        state initial) {
        return {socket, &pool, budget, initial};
    }
    static buffer_lease take(slot& self, state& s, const entry& got, std::error_code* error) {
        buffer_lease lease;
        if ((got.flags & IORING_CQE_F_BUFFER) != 0) [[likely]] {
            lent_of(lease) = lent_buffer::of(self, got.flags >> IORING_CQE_BUFFER_SHIFT, 0,
                                             static_cast<std::uint32_t>(got.result));
            mark_received(lent_of(lease).data, lent_of(lease).size);
            clear(error);
        } else {
            stream_end(self, s.end, got, error);
        }
        return lease;
    }
};

} // namespace detail

/// A TCP connection. Move-only; closing or destroying it cancels what is in flight on it.
class tcp_stream : public descriptor {
public:
    /// A stream that is not connected yet: `connect` opens its socket.
    explicit tcp_stream(io_context& context) noexcept : descriptor(context, -1, endpoint{}) {}

    /// Adopts `fd`, a connected stream socket whose peer is `peer`.
    tcp_stream(io_context& context, int fd, const endpoint& peer) noexcept
        : descriptor(context, fd, peer) {}

    // The base moves only its own part, so `other.sends_` is still ours to take.
    tcp_stream(tcp_stream&& other) noexcept
        // NOLINTNEXTLINE(bugprone-use-after-move)
        : descriptor(std::move(other)), sends_(std::exchange(other.sends_, nullptr)) {}
    tcp_stream& operator=(tcp_stream&& other) noexcept {
        if (this != &other) {
            drop_sends();
            descriptor::operator=(std::move(other));
            sends_ = std::exchange(other.sends_, nullptr); // NOLINT(bugprone-use-after-move)
        }
        return *this;
    }
    tcp_stream(const tcp_stream&) = delete;
    tcp_stream& operator=(const tcp_stream&) = delete;
    ~tcp_stream() { drop_sends(); }

    /// The peer: the one accepted from, or given to `connect`.
    [[nodiscard]] endpoint remote_endpoint() const noexcept { return name(); }
    /// The local address (`getsockname`).
    [[nodiscard]] endpoint local_endpoint() const { return detail::local_endpoint_of(fd()); }

    /// Connects to `target`, opening a socket of its family first.
    auto connect(const endpoint& target) {
        rename(target);
        drop_sends();
        int failure = 0;
        if (!is_open() || detail::family_of(fd()) != target.family()) {
            const int fd = ::socket(target.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
            failure = fd < 0 ? errno : 0;
            reset(fd);
        }
        return operation<detail::connect_op>(*this, fd(), target, failure);
    }

    /// Chunks as they arrive, each in a buffer of `buffers`; at most `budget` held at once.
    multishot<buffer_lease> receive(buffer_ring& buffers, unsigned budget = 2) {
        using policy = detail::multishot_policy<buffer_lease>;
        return policy::open(detail::core_of(*this), detail::pool_of(buffers), budget, {});
    }

    /// Sends `chunk` after the chunks sent before, without waiting; its buffer goes back once
    /// the kernel has taken it all. Errors: an earlier send's, or EBADF once closed.
    void send(buffer_lease&& chunk) {
        if (!fast_send(chunk)) [[unlikely]] {
            slow_send(chunk, nullptr);
        }
    }
    /// As above, storing an error in `error`.
    void send(buffer_lease&& chunk, std::error_code& error) {
        if (fast_send(chunk)) [[likely]] {
            detail::clear(&error);
        } else {
            slow_send(chunk, &error);
        }
    }

    /// Waits until every chunk given to `send` is sent; produces its error, if any.
    auto flush() { return flush_operation{*this}; }

    /// The chunks given to `send` whose bytes the kernel has not all taken yet.
    [[nodiscard]] std::size_t pending_sends() const noexcept {
        return sends_ != nullptr ? sends_->pending() : 0;
    }

    /// Ends one or both directions at once (`shutdown(2)`, `SHUT_WR` by default).
    void shutdown(int how = SHUT_WR) { check(::shutdown(fd(), how), "shutdown"); }
    /// Turns Nagle's algorithm off (`TCP_NODELAY`) or on.
    void set_no_delay(bool on) {
        std::error_code error;
        set_no_delay(on, error);
        check(error ? -1 : 0, "setsockopt TCP_NODELAY", error);
    }
    /// As above, storing an error in `error`.
    void set_no_delay(bool on, std::error_code& error) noexcept {
        const int value = on ? 1 : 0;
        error = ::setsockopt(fd(), IPPROTO_TCP, TCP_NODELAY, &value, sizeof value) == 0
                    ? std::error_code{}
                    : detail::last_error();
    }

private:
    friend detail::multishot_policy<buffer_lease>;

    // The awaitable of `flush`: a few pointers until awaited, as a multishot's next() is;
    // `waiting` holds what it needs while it waits.
    class [[nodiscard]] flush_operation : public detail::adaptors<flush_operation> {
        class [[nodiscard]] waiting {
        public:
            explicit waiting(const flush_operation& from) noexcept
                : owner_(from.owner_), wait_(from.error_, from.signal_) {}

            bool await_ready() const noexcept { return owner_->pending_sends() == 0; }
            void await_suspend(std::coroutine_handle<> waiter) noexcept {
                owner_->sends_->on_drained(waiter);
                if (wait_.signal != nullptr) {
                    wait_.link.cancel = &on_cancel;
                    wait_.link.target = owner_->sends_;
                    if (!detail::watch(*wait_.signal, wait_.link)) {
                        on_cancel(owner_->sends_);
                    }
                }
            }
            void await_resume() {
                detail::cancellation_list::unlink(wait_.link);
                owner_->report_sends(wait_.error);
            }

        private:
            static void on_cancel(void* sends) noexcept {
                static_cast<detail::send_queue*>(sends)->cancel();
            }

            tcp_stream* owner_;
            detail::adapted_wait wait_;
        };

    public:
        explicit flush_operation(tcp_stream& owner) noexcept : owner_(&owner) {}
        waiting operator co_await() const noexcept { return waiting{*this}; }

    private:
        tcp_stream* owner_;
    };

    // Nothing in flight, no error, the stream open: send at once.
    bool fast_send(buffer_lease& chunk) noexcept {
        detail::lent_buffer& lent = detail::lent_of(chunk);
        if (sends_ != nullptr && sends_->idle() && lent.from != nullptr) {
            sends_->start(lent);
            return true;
        }
        return false;
    }

    // The first send, a queue behind the send in flight, an empty lease, or an error.
    [[gnu::noinline]] void slow_send(buffer_lease& chunk, std::error_code* error) {
        if (sends_ == nullptr) {
            sends_ = detail::send_queue::create(detail::core_of(*this));
        }
        detail::lent_buffer& lent = detail::lent_of(chunk);
        if (lent.from == nullptr || sends_->send(lent)) {
            detail::clear(error);
        } else {
            report_sends(error);
        }
    }

    // The first error of the sends, which every later send and flush reports.
    void report_sends(std::error_code* error) const {
        const int code = sends_ != nullptr ? sends_->error() : 0;
        if (code == 0) {
            detail::clear(error);
            return;
        }
        detail::report(detail::error_from_result(code), error, [&] {
            return detail::request_name("send", "to", sends_->fd(), detail::current_position,
                                        &name_);
        });
    }

    void check(int result, const char* what, std::error_code error = {}) const {
        if (result != 0) {
            error = error ? error : detail::last_error();
            // Named as its requests are: by the peer's address, else (none, or a Unix client
            // that never bound) by number.
            const endpoint peer = name();
            const bool named = !peer.empty() && !(peer.is_unix() && peer.unix_name().empty());
            detail::throw_error(error,
                                std::string(what) + ' ' +
                                    (named ? peer.to_string() : "fd " + std::to_string(fd())));
        }
    }

    void drop_sends() noexcept {
        if (sends_ != nullptr) {
            std::exchange(sends_, nullptr)->orphan();
        }
    }

    detail::send_queue* sends_ = nullptr;
};

} // namespace ringio
