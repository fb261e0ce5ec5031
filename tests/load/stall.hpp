#pragma once

// Hostile peers and a healthy client: N connections send without pause and never read what
// comes back, so that every buffer between them and the server fills; meanwhile one healthy
// client, on a thread of its own, echoes messages one at a time and times each.

#include "echo_set.hpp"

#include <poll.h>

#include <thread>

namespace load {

class stalled_peers {
public:
    stalled_peers(const address& target, double stall)
        : target_(target), stall_(stall), chunk_(64 * 1024), events_(512) {
        byte_stream(7).fill(chunk_.data(), chunk_.size());
    }

    stalled_peers(const stalled_peers&) = delete;
    stalled_peers& operator=(const stalled_peers&) = delete;
    ~stalled_peers() {
        for (peer& p : peers_) {
            if (p.fd >= 0) {
                ::close(p.fd);
            }
        }
    }

    // Connects `count` peers; each starts sending as soon as it is connected.
    void open(std::size_t count) {
        peers_.resize(count);
        std::size_t next = 0;
        const auto start = clock_type::now();
        while (next < count || connecting_ > 0) {
            while (next < count && connecting_ < connecting_at_once) {
                connect_one(next++);
            }
            serve(100);
            if (connecting_ > 0 &&
                seconds_since(start) > stall_ + static_cast<double>(count) / 100) {
                fail(std::to_string(connecting_) + " stalled peers still connecting after " +
                     std::to_string(seconds_since(start)) + " s");
            }
        }
    }

    // Sends on every peer that has room, waiting at most `timeout_ms` for one to have some.
    void serve(int timeout_ms) {
        const int n = poller_.wait(events_, timeout_ms);
        for (int k = 0; k < n; ++k) {
            const std::size_t i = events_[static_cast<std::size_t>(k)].data.u64;
            peer& p = peers_[i];
            if (p.connecting) {
                const int error = connect_error(p.fd);
                if (error != 0) {
                    fail("stalled peer " + std::to_string(i) +
                         ": connect: " + std::strerror(error));
                }
                p.connecting = false;
                --connecting_;
            }
            const ssize_t sent = ::send(p.fd, chunk_.data(), chunk_.size(), MSG_NOSIGNAL);
            if (sent > 0) {
                bytes_ += static_cast<std::size_t>(sent);
                last_sent_ = clock_type::now();
            } else if (sent < 0 && (errno == EPIPE || errno == ECONNRESET)) {
                // A server may drop a peer that never reads: counted, not a failure.
                ::close(p.fd);
                p.fd = -1;
                ++closed_;
            } else if (sent < 0 && errno != EAGAIN && errno != EINTR) {
                fail_errno("stalled peer " + std::to_string(i) + ": send");
            }
        }
    }

    // Sends until no peer has been able to send for `quiet` seconds, or `limit` seconds have
    // passed (a server that reads without bound never stops them); returns whether they stopped.
    bool settle(double quiet, double limit) {
        const auto start = clock_type::now();
        last_sent_ = start;
        while (seconds_since(start) < limit) {
            serve(50);
            if (seconds_since(last_sent_) >= quiet) {
                return true;
            }
        }
        return false;
    }

    std::size_t bytes_sent() const { return bytes_; }
    std::size_t closed_by_server() const { return closed_; }

private:
    struct peer {
        int fd = -1;
        bool connecting = false;
    };

    void connect_one(std::size_t i) {
        peer& p = peers_[i];
        // Small buffers and an Ethernet-sized segment on the peers' side: the server's replies
        // back up at once, and the kernel holds tens of KiB for each peer rather than the
        // megabytes that loopback's 64 KiB segments let a send buffer grow to (a thousand of
        // those push the whole machine into TCP memory pressure).
        p.fd = start_connect(target_, i,
                             {.receive_buffer = 4096, .send_buffer = 16384, .segment = 1460});
        p.connecting = true;
        ++connecting_;
        poller_.add(p.fd, EPOLLOUT, i);
    }

    address target_;
    double stall_;
    std::vector<unsigned char> chunk_;
    std::vector<peer> peers_;
    poller poller_;
    std::vector<epoll_event> events_;
    std::size_t connecting_ = 0;
    std::size_t bytes_ = 0;
    std::size_t closed_ = 0;
    clock_type::time_point last_sent_;
};

// What the healthy client saw.
struct echo_latencies {
    std::vector<double> seconds; // of each echo that came back whole
    double connect_seconds = 0;
    std::string failure; // why it stopped early: an echo that timed out, or worse
};

// Waits until `fd` is ready for `events`, at most until `deadline`; false if it is not.
inline bool wait_ready(int fd, short events, clock_type::time_point deadline) {
    for (;;) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now())
                .count();
        if (left <= 0) {
            return false;
        }
        pollfd one{fd, events, 0};
        const int n = ::poll(&one, 1, static_cast<int>(left));
        if (n > 0) {
            return true;
        }
        if (n < 0 && errno != EINTR) {
            fail_errno("poll");
        }
    }
}

// One connection that echoes `count` messages of `size` bytes, one at a time with `gap` seconds
// between them, each checked and timed; gives up at the first that takes longer than `timeout`.
inline echo_latencies healthy_echoes(const address& target, std::size_t size, std::size_t count,
                                     double gap, double timeout) {
    echo_latencies result;
    const auto span =
        std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(timeout));
    const std::vector<unsigned char> pattern = make_pattern(size);
    std::vector<unsigned char> back(size);
    auto begin = clock_type::now();
    const int fd = start_connect(target, 0, {.no_delay = true});
    if (!wait_ready(fd, POLLOUT, begin + span) || connect_error(fd) != 0) {
        result.failure =
            "the healthy client could not connect within " + std::to_string(timeout) + " s";
        ::close(fd);
        return result;
    }
    result.connect_seconds = seconds_since(begin);
    for (std::size_t e = 0; e < count && result.failure.empty(); ++e) {
        const unsigned char* message = pattern.data() + offset_of(0, e);
        std::size_t sent = 0;
        std::size_t received = 0;
        begin = clock_type::now();
        while (received < size) {
            const short want = sent < size ? POLLIN | POLLOUT : POLLIN;
            if (!wait_ready(fd, want, begin + span)) {
                result.failure = "echo " + std::to_string(e) + " not back after " +
                                 std::to_string(timeout) + " s (" + std::to_string(received) +
                                 " of " + std::to_string(size) + " bytes)";
                break;
            }
            if (sent < size) {
                const ssize_t n = ::send(fd, message + sent, size - sent, MSG_NOSIGNAL);
                sent += n > 0 ? static_cast<std::size_t>(n) : 0;
            }
            const ssize_t n = ::recv(fd, back.data() + received, size - received, MSG_DONTWAIT);
            if (n == 0) {
                result.failure = "the server closed the healthy client's connection";
            } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                result.failure = std::string("the healthy client's recv: ") + std::strerror(errno);
            }
            if (!result.failure.empty()) {
                break;
            }
            received += n > 0 ? static_cast<std::size_t>(n) : 0;
        }
        if (result.failure.empty()) {
            if (std::memcmp(back.data(), message, size) != 0) {
                fail("the healthy client's echo " + std::to_string(e) + " differs");
            }
            result.seconds.push_back(seconds_since(begin));
            ::usleep(static_cast<useconds_t>(gap * 1e6));
        }
    }
    ::close(fd);
    return result;
}

} // namespace load
