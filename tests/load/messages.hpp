#pragma once

// Connections that each send messages of log-uniform sizes, from 1 byte to a maximum, one after
// another, and check every byte of every echo against a seeded byte stream. All of them are open
// at once before any traffic, alternately over IPv4 and IPv6; each ends with a half-close and
// expects the server to close in turn. With a duration, each finished connection is replaced by a
// new one until it has passed (a soak).

#include "common.hpp"

#include <memory>

namespace load {

struct messages_options {
    std::uint16_t port = 0;
    std::size_t connections = 1000;
    std::size_t messages = 3;
    std::size_t max_size = std::size_t{1} << 20;
    std::size_t buffer = 0;
    double duration = 0;
    std::size_t seed = 1;
    double stall = 20;
};

enum class message_phase { connecting, waiting, sending, closing, closed };

struct message_connection {
    int fd = -1;
    std::size_t id = 0; // which connection of the run, for the seeds and the messages
    message_phase state = message_phase::connecting;
    std::size_t message = 0;
    std::size_t size = 0;      // of the current message
    std::size_t generated = 0; // bytes of it drawn from `send`
    std::size_t sent = 0;
    std::size_t received = 0;
    byte_stream sizes;
    byte_stream send;
    byte_stream expect;
    std::unique_ptr<unsigned char[]> pending; // drawn and not yet written
    std::size_t pending_from = 0;
    std::size_t pending_to = 0;
    bool want_write = false;
};

constexpr std::size_t send_chunk = 16 * 1024;
constexpr std::size_t receive_chunk = 64 * 1024;

class messages_run {
public:
    explicit messages_run(const messages_options& options)
        : options_(options), slots_(options.connections), events_(1024) {}

    int run() {
        raise_descriptor_limit(options_.connections + 64);
        start_ = clock_type::now();
        last_progress_ = start_;
        for (std::size_t slot = 0; slot < slots_.size(); ++slot) {
            open(slot);
        }
        while (active_ > 0) {
            const int count = poller_.wait(events_, 200);
            for (int i = 0; i < count; ++i) {
                handle(static_cast<std::size_t>(events_[static_cast<std::size_t>(i)].data.u64),
                       events_[static_cast<std::size_t>(i)].events);
            }
            if (seconds_since(last_progress_) > options_.stall) {
                describe_stall();
            }
        }
        const double elapsed = seconds_since(start_);
        std::printf("load_client messages: %zu connections open at once (%zu in all), %zu messages "
                    "from 1 byte to %zu bytes, %.1f MiB each way, every byte verified; %zu short "
                    "writes, %zu short reads; %.1f s\n",
                    peak_open_, opened_, messages_done_, largest_,
                    static_cast<double>(bytes_) / (1024.0 * 1024.0), short_writes_, short_reads_,
                    elapsed);
        if (options_.buffer > 0 && (short_writes_ == 0 || short_reads_ == 0)) {
            fail("small socket buffers were set but no read or write was cut short");
        }
        return 0;
    }

private:
    message_connection& at(std::size_t slot) { return slots_[slot]; }

    void open(std::size_t slot) {
        message_connection& c = at(slot);
        c = message_connection{};
        c.id = opened_++;
        const bool v6 = c.id % 2 == 1;
        const address target = loopback(v6, static_cast<std::uint16_t>(options_.port));
        c.fd = ::socket(target.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c.fd < 0) {
            fail_errno("socket");
        }
        if (options_.buffer > 0) {
            const int size = static_cast<int>(options_.buffer);
            ::setsockopt(c.fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
            ::setsockopt(c.fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
        }
        c.sizes = byte_stream(key(options_.seed, c.id, ~std::uint64_t{0}));
        if (::connect(c.fd, reinterpret_cast<const sockaddr*>(&target.storage), target.size) != 0 &&
            errno != EINPROGRESS) {
            fail_errno("connect " + std::string(v6 ? "[::1]" : "127.0.0.1"));
        }
        ++active_;
        ++connecting_;
        poller_.add(c.fd, EPOLLOUT, slot);
    }

    void handle(std::size_t slot, std::uint32_t events) {
        message_connection& c = at(slot);
        switch (c.state) {
        case message_phase::connecting:
            connected(slot);
            return;
        case message_phase::waiting:
            if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) != 0) {
                fail("connection " + std::to_string(c.id) +
                     " had news from the server before it sent anything");
            }
            return;
        case message_phase::sending:
            if ((events & EPOLLOUT) != 0) {
                write_some(slot);
            }
            if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0 &&
                c.state == message_phase::sending) {
                read_some(slot);
            }
            return;
        case message_phase::closing:
            read_end(slot);
            return;
        case message_phase::closed:
            return;
        }
    }

    void connected(std::size_t slot) {
        message_connection& c = at(slot);
        int error = 0;
        socklen_t size = sizeof error;
        ::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &error, &size);
        if (error != 0) {
            fail("connection " + std::to_string(c.id) + ": connect: " + std::strerror(error));
        }
        --connecting_;
        ++open_;
        peak_open_ = std::max(peak_open_, open_);
        progress();
        if (!traffic_started_) {
            // The first connections wait until all are open: the server holds them all at once.
            c.state = message_phase::waiting;
            poller_.change(c.fd, EPOLLIN | EPOLLRDHUP, slot);
            if (connecting_ == 0) {
                traffic_started_ = true;
                for (std::size_t each = 0; each < slots_.size(); ++each) {
                    begin_message(each);
                }
            }
            return;
        }
        begin_message(slot);
    }

    void begin_message(std::size_t slot) {
        message_connection& c = at(slot);
        c.state = message_phase::sending;
        c.size = log_uniform(c.sizes, 1, options_.max_size);
        if (c.message == 0 && c.id == 0) {
            c.size = options_.max_size;
        } else if (c.message == 0 && c.id == 1) {
            c.size = 1;
        }
        largest_ = std::max(largest_, c.size);
        c.generated = c.sent = c.received = 0;
        c.send = byte_stream(key(options_.seed, c.id, c.message));
        c.expect = c.send;
        if (!c.pending) {
            c.pending = std::make_unique<unsigned char[]>(send_chunk);
        }
        c.pending_from = c.pending_to = 0;
        c.want_write = true;
        poller_.change(c.fd, EPOLLIN | EPOLLOUT, slot);
        write_some(slot);
    }

    void write_some(std::size_t slot) {
        message_connection& c = at(slot);
        while (c.sent < c.size) {
            if (c.pending_from == c.pending_to) {
                const std::size_t draw = std::min(send_chunk, c.size - c.generated);
                c.send.fill(c.pending.get(), draw);
                c.generated += draw;
                c.pending_from = 0;
                c.pending_to = draw;
            }
            const std::size_t want = c.pending_to - c.pending_from;
            const ssize_t n = ::send(c.fd, c.pending.get() + c.pending_from, want, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                    ++short_writes_;
                    break;
                }
                fail_errno("connection " + std::to_string(c.id) + ": send, message " +
                           std::to_string(c.message) + " at byte " + std::to_string(c.sent));
            }
            if (static_cast<std::size_t>(n) < want) {
                ++short_writes_;
            }
            c.pending_from += static_cast<std::size_t>(n);
            c.sent += static_cast<std::size_t>(n);
            progress();
        }
        const bool want = c.sent < c.size;
        if (want != c.want_write) {
            c.want_write = want;
            poller_.change(c.fd, want ? EPOLLIN | EPOLLOUT : EPOLLIN, slot);
        }
    }

    void read_some(std::size_t slot) {
        message_connection& c = at(slot);
        for (;;) {
            const std::size_t want = std::min(receive_chunk, c.size - c.received);
            const ssize_t n = ::recv(c.fd, received_, want, 0);
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                    return;
                }
                fail_errno("connection " + std::to_string(c.id) + ": recv, message " +
                           std::to_string(c.message) + " of " + std::to_string(c.size) +
                           " bytes, after " + std::to_string(c.received));
            }
            if (n == 0) {
                fail("connection " + std::to_string(c.id) + ": the server closed it after " +
                     std::to_string(c.received) + " of " + std::to_string(c.size) +
                     " bytes of message " + std::to_string(c.message));
            }
            const auto got = static_cast<std::size_t>(n);
            if (got < want) {
                ++short_reads_;
            }
            c.expect.fill(expected_, got);
            if (std::memcmp(received_, expected_, got) != 0) {
                std::size_t at = 0;
                while (received_[at] == expected_[at]) {
                    ++at;
                }
                char text[160];
                std::snprintf(text, sizeof text,
                              "connection %zu: message %zu of %zu bytes differs at byte %zu: "
                              "expected 0x%02x, received 0x%02x",
                              c.id, c.message, c.size, c.received + at, expected_[at],
                              received_[at]);
                fail(text);
            }
            c.received += got;
            bytes_ += got;
            progress();
            if (c.received == c.size) {
                ++messages_done_;
                if (++c.message < options_.messages) {
                    begin_message(slot);
                } else {
                    // Half-close: the server must echo what is left, then close its side.
                    if (::shutdown(c.fd, SHUT_WR) != 0) {
                        fail_errno("shutdown");
                    }
                    c.state = message_phase::closing;
                    poller_.change(c.fd, EPOLLIN | EPOLLRDHUP, slot);
                }
                return;
            }
        }
    }

    void read_end(std::size_t slot) {
        message_connection& c = at(slot);
        unsigned char byte = 0;
        const ssize_t n = ::recv(c.fd, &byte, 1, 0);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        }
        if (n < 0) {
            fail_errno("connection " + std::to_string(c.id) + ": recv after the half-close");
        }
        if (n > 0) {
            fail("connection " + std::to_string(c.id) + ": a byte more than was sent");
        }
        ::close(c.fd);
        c.fd = -1;
        c.state = message_phase::closed;
        --open_;
        --active_;
        progress();
        if (options_.duration > 0 && seconds_since(start_) < options_.duration) {
            open(slot);
        }
    }

    void progress() { last_progress_ = clock_type::now(); }

    void describe_stall() {
        std::size_t shown = 0;
        std::size_t stuck = 0;
        std::string text;
        for (const message_connection& c : slots_) {
            if (c.state == message_phase::closed) {
                continue;
            }
            ++stuck;
            if (shown++ < 5) {
                static const char* const names[] = {"connecting", "waiting", "sending", "closing",
                                                    "closed"};
                text += "\n  connection " + std::to_string(c.id) + " " +
                        names[static_cast<int>(c.state)] + ", message " +
                        std::to_string(c.message) + " of " + std::to_string(c.size) +
                        " bytes: sent " + std::to_string(c.sent) + ", received " +
                        std::to_string(c.received);
            }
        }
        fail("nothing moved for " + std::to_string(options_.stall) + " s; " +
             std::to_string(stuck) + " connections unfinished:" + text);
    }

    messages_options options_;
    std::vector<message_connection> slots_;
    poller poller_;
    std::vector<epoll_event> events_;
    clock_type::time_point start_;
    clock_type::time_point last_progress_;
    bool traffic_started_ = false;
    std::size_t active_ = 0;
    std::size_t connecting_ = 0;
    std::size_t open_ = 0;
    std::size_t peak_open_ = 0;
    std::size_t opened_ = 0;
    std::size_t messages_done_ = 0;
    std::size_t largest_ = 0;
    std::size_t bytes_ = 0;
    std::size_t short_writes_ = 0;
    std::size_t short_reads_ = 0;
    unsigned char received_[receive_chunk];
    unsigned char expected_[receive_chunk];
};

} // namespace load
