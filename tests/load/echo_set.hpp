#pragma once

// A set of connections that each echo fixed-size messages in rounds: send S bytes, wait until
// exactly those S bytes have come back, check them byte for byte, start the next round. The bytes
// of round r on connection c are a window into a random table at an offset that depends on both,
// so an echo from the wrong connection or from an earlier round does not match. TCP connections
// or connected UDP sockets (one datagram per round).

#include "common.hpp"

#include <functional>

namespace load {

// The message of round r on connection c is pattern[offset(c, r) .. offset(c, r) + S).
constexpr std::size_t pattern_slack = 251;

inline std::vector<unsigned char> make_pattern(std::size_t size) {
    std::vector<unsigned char> pattern(size + pattern_slack);
    byte_stream random(0x9e3779b97f4a7c15ULL);
    random.fill(pattern.data(), pattern.size());
    return pattern;
}

inline std::size_t offset_of(std::size_t index, std::uint64_t round) {
    return static_cast<std::size_t>((index * 7 + round) % pattern_slack);
}

// Handshakes under way at once while a set opens: beyond the listen backlog (4096 by default) a
// burst of connects costs retransmitted SYNs a second later, not speed.
constexpr std::size_t connecting_at_once = 256;

class echo_set {
public:
    echo_set(const address& target, std::size_t size, bool udp, double stall)
        : target_(target), size_(size), udp_(udp), stall_(stall), pattern_(make_pattern(size)),
          scratch_(std::max<std::size_t>(size, 1)), events_(512) {}

    echo_set(const echo_set&) = delete;
    echo_set& operator=(const echo_set&) = delete;
    ~echo_set() { close_all(); }

    // Opens `count` connections, each making `rounds` round trips as soon as it is open; returns
    // once all of them are open and done. With rounds 0 a TCP connection counts as open when its
    // handshake completes, which does not mean that the server has accepted it yet.
    void open(std::size_t count, std::uint64_t rounds) {
        const std::size_t first = conns_.size();
        conns_.resize(first + count);
        std::size_t next = first;
        round_limit_ = rounds;
        now_ = clock_type::now();
        while (next < conns_.size() || connecting_ > 0 || in_flight() > 0) {
            while (next < conns_.size() && connecting_ < connecting_at_once) {
                start(next++);
            }
            poll(100);
        }
        round_limit_ = 0;
    }

    // Starts a round on every connection, then serves them until done() holds; no round starts
    // once draining() holds, and a round under way is finished.
    void run(const std::function<bool()>& done, bool busy) {
        for (std::size_t i = 0; i < conns_.size(); ++i) {
            if (!conns_[i].active) {
                start_round(i);
            }
        }
        while (!done()) {
            poll(busy ? 0 : 100);
        }
    }

    // Lets the rounds under way finish and starts no others.
    void drain() {
        draining_ = true;
        while (in_flight() > 0) {
            poll(0);
        }
        draining_ = false;
    }

    void limit_total(long long limit) { total_limit_ = limit; }
    long long completed() const { return completed_; }
    long long in_flight() const { return started_ - completed_; }
    std::size_t size() const { return conns_.size(); }
    clock_type::time_point clock() const { return now_; }

    // How many connections the server has closed (or sent something unasked on) since they
    // were last served: for a set held idle while another mode runs.
    std::size_t closed_by_server() {
        std::size_t closed = 0;
        for (const connection& c : conns_) {
            closed += was_closed(c.fd) ? 1U : 0U;
        }
        return closed;
    }

    void close_all() {
        for (connection& c : conns_) {
            if (c.fd >= 0) {
                ::close(c.fd);
                c.fd = -1;
            }
        }
    }

private:
    struct connection {
        int fd = -1;
        std::uint64_t round = 0;
        std::size_t sent = 0;
        std::size_t received = 0;
        clock_type::time_point last_progress;
        bool connecting = false;
        bool active = false; // a round is in flight
        bool want_out = false;
    };

    // Whether an idle connection has news: an end, an error, or bytes nobody asked for.
    static bool was_closed(int fd) {
        if (fd < 0) {
            return false;
        }
        unsigned char byte = 0;
        const ssize_t n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
        return n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
    }

    void start(std::size_t i) {
        connection& c = conns_[i];
        c.last_progress = now_;
        if (udp_) {
            c.fd = ::socket(target_.family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (c.fd < 0) {
                fail_errno("socket");
            }
            if (::connect(c.fd, target_.get(), target_.size) != 0) {
                fail_errno("connect");
            }
            poller_.add(c.fd, EPOLLIN, i);
            established(i);
            return;
        }
        c.fd = start_connect(target_, i, {.no_delay = true});
        c.connecting = true;
        ++connecting_;
        poller_.add(c.fd, EPOLLOUT, i);
    }

    void established(std::size_t i) {
        if (round_limit_ > 0) {
            start_round(i);
        }
    }

    void poll(int timeout_ms) {
        const int n = poller_.wait(events_, timeout_ms);
        now_ = clock_type::now();
        for (int k = 0; k < n; ++k) {
            const std::size_t i = events_[static_cast<std::size_t>(k)].data.u64;
            const std::uint32_t what = events_[static_cast<std::size_t>(k)].events;
            connection& c = conns_[i];
            if (c.connecting) {
                const int error = connect_error(c.fd);
                if (error != 0) {
                    fail("connection " + std::to_string(i) + ": connect: " + std::strerror(error));
                }
                c.connecting = false;
                --connecting_;
                poller_.change(c.fd, EPOLLIN, i);
                established(i);
                continue;
            }
            if ((what & EPOLLOUT) != 0) {
                send_more(i);
            }
            if ((what & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0) {
                receive(i);
            }
        }
        if (now_ >= next_stall_check_) {
            check_stalls();
            next_stall_check_ = now_ + std::chrono::seconds(1);
        }
    }

    bool may_start(const connection& c) const {
        return !draining_ && (total_limit_ == 0 || started_ < total_limit_) &&
               (round_limit_ == 0 || c.round < round_limit_);
    }

    void start_round(std::size_t i) {
        connection& c = conns_[i];
        if (!may_start(c)) {
            return;
        }
        c.sent = 0;
        c.received = 0;
        c.active = true;
        c.last_progress = now_;
        ++started_;
        send_more(i);
    }

    void send_more(std::size_t i) {
        connection& c = conns_[i];
        if (!c.active || c.sent == size_) {
            return;
        }
        const unsigned char* message = pattern_.data() + offset_of(i, c.round);
        ssize_t n = ::send(c.fd, message + c.sent, size_ - c.sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno != EAGAIN && errno != EINTR) {
                fail_errno("connection " + std::to_string(i) + ": send");
            }
            n = 0;
        }
        c.sent += static_cast<std::size_t>(n);
        const bool want_out = c.sent < size_;
        if (want_out != c.want_out) {
            poller_.change(c.fd, EPOLLIN | (want_out ? EPOLLOUT : 0u), i);
            c.want_out = want_out;
        }
    }

    void receive(std::size_t i) {
        connection& c = conns_[i];
        // A TCP read never asks for more than is owed, so an extra byte from the server would
        // show up as a mismatch in the next round. A datagram is read whole.
        const std::size_t want =
            udp_ ? scratch_.size() : std::max<std::size_t>(size_ - c.received, 1);
        const ssize_t n = ::recv(c.fd, scratch_.data(), want, udp_ ? MSG_TRUNC : 0);
        if (n == 0 && !udp_) {
            fail("connection " + std::to_string(i) + " closed by the server in round " +
                 std::to_string(c.round));
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                return;
            }
            fail_errno("connection " + std::to_string(i) + ": recv");
        }
        if (!c.active) {
            fail("connection " + std::to_string(i) + ": bytes with no round in flight");
        }
        const auto got = static_cast<std::size_t>(n);
        if (udp_ && got != size_) {
            fail("socket " + std::to_string(i) + ": a datagram of " + std::to_string(got) +
                 " bytes, " + std::to_string(size_) + " sent");
        }
        const unsigned char* expected = pattern_.data() + offset_of(i, c.round) + c.received;
        if (std::memcmp(scratch_.data(), expected, got) != 0) {
            fail("connection " + std::to_string(i) + " round " + std::to_string(c.round) +
                 ": bytes " + std::to_string(c.received) + ".." + std::to_string(c.received + got) +
                 " differ from those sent");
        }
        c.received += got;
        c.last_progress = now_;
        if (c.received == size_) {
            ++completed_;
            ++c.round;
            c.active = false;
            start_round(i);
        }
    }

    void check_stalls() const {
        for (std::size_t i = 0; i < conns_.size(); ++i) {
            const connection& c = conns_[i];
            const double quiet = std::chrono::duration<double>(now_ - c.last_progress).count();
            if ((c.active || c.connecting) && quiet > stall_) {
                fail("connection " + std::to_string(i) + " stalled " +
                     (c.connecting
                          ? std::string("connecting")
                          : "in round " + std::to_string(c.round) + ": sent " +
                                std::to_string(c.sent) + ", received " +
                                std::to_string(c.received) + " of " + std::to_string(size_)) +
                     " for " + std::to_string(quiet) + " s" +
                     (udp_ || c.connecting ? "" : "; " + server_end_of(c.fd)));
            }
        }
    }

    address target_;
    std::size_t size_;
    bool udp_;
    double stall_;
    std::vector<unsigned char> pattern_;
    std::vector<unsigned char> scratch_;
    std::vector<connection> conns_;
    poller poller_;
    std::vector<epoll_event> events_;
    clock_type::time_point now_;
    clock_type::time_point next_stall_check_;
    std::size_t connecting_ = 0;
    long long started_ = 0;
    long long completed_ = 0;
    long long total_limit_ = 0;
    std::uint64_t round_limit_ = 0;
    bool draining_ = false;
};

} // namespace load
