#pragma once

// Connections that live for one message each: connect, send S bytes, wait for exactly those S
// bytes back and check them, close, and start over, `concurrent` of them at a time. What a server
// spends per connection (accept, set-up, the end of the stream, close) rather than per byte.

#include "echo_set.hpp"

namespace load {

class cycles {
public:
    cycles(const address& target, std::size_t concurrent, std::size_t size, double stall)
        : target_(target), size_(size), stall_(stall), pattern_(make_pattern(size)), scratch_(size),
          slots_(concurrent), events_(64) {}

    cycles(const cycles&) = delete;
    cycles& operator=(const cycles&) = delete;
    ~cycles() {
        for (slot& s : slots_) {
            if (s.fd >= 0) {
                ::close(s.fd);
            }
        }
    }

    // Runs until `count` cycles are done (count > 0) or, when count is 0, for `seconds`; the
    // cycles under way at the end are finished and counted. Returns the cycles done.
    long long run(long long count, double seconds) {
        const auto start = clock_type::now();
        const auto end = start + std::chrono::duration_cast<clock_type::duration>(
                                     std::chrono::duration<double>(seconds));
        now_ = start;
        count_ = count;
        for (std::size_t i = 0; i < slots_.size(); ++i) {
            begin(i);
        }
        while (busy_ > 0) {
            const int n = poller_.wait(events_, 0);
            now_ = clock_type::now();
            stopping_ = count == 0 && (now_ >= end || stop_requested != 0);
            for (int k = 0; k < n; ++k) {
                handle(events_[static_cast<std::size_t>(k)].data.u64);
            }
            if (now_ >= next_stall_check_) {
                check_stalls();
                next_stall_check_ = now_ + std::chrono::seconds(1);
            }
        }
        return completed_;
    }

private:
    struct slot {
        int fd = -1;
        long long number = 0; // which cycle of the run: its source address and its bytes
        bool connecting = false;
        std::size_t sent = 0;
        std::size_t received = 0;
        clock_type::time_point last_progress;
    };

    void begin(std::size_t i) {
        slot& s = slots_[i];
        if (stopping_ || (count_ > 0 && started_ >= count_)) {
            return;
        }
        s.number = started_++;
        s.fd = start_connect(target_, static_cast<std::size_t>(s.number), {.no_delay = true});
        s.connecting = true;
        s.sent = s.received = 0;
        s.last_progress = now_;
        poller_.add(s.fd, EPOLLOUT, i);
        ++busy_;
    }

    const unsigned char* message(const slot& s) const {
        return pattern_.data() + offset_of(static_cast<std::size_t>(s.number), 0);
    }

    void handle(std::size_t i) {
        slot& s = slots_[i];
        if (s.connecting) {
            const int error = connect_error(s.fd);
            if (error != 0) {
                fail("cycle " + std::to_string(s.number) + ": connect: " + std::strerror(error));
            }
            s.connecting = false;
            s.last_progress = now_;
            poller_.change(s.fd, EPOLLIN, i);
        }
        if (s.sent < size_) {
            const ssize_t n = ::send(s.fd, message(s) + s.sent, size_ - s.sent, MSG_NOSIGNAL);
            if (n < 0 && errno != EAGAIN && errno != EINTR) {
                fail_errno("cycle " + std::to_string(s.number) + ": send");
            }
            s.sent += n > 0 ? static_cast<std::size_t>(n) : 0;
            poller_.change(s.fd, EPOLLIN | (s.sent < size_ ? EPOLLOUT : 0u), i);
        }
        const ssize_t n = ::recv(s.fd, scratch_.data(), size_ - s.received, MSG_DONTWAIT);
        if (n == 0) {
            fail("cycle " + std::to_string(s.number) + ": closed by the server after " +
                 std::to_string(s.received) + " of " + std::to_string(size_) + " bytes");
        }
        if (n < 0) {
            if (errno != EAGAIN && errno != EINTR) {
                fail_errno("cycle " + std::to_string(s.number) + ": recv");
            }
            return;
        }
        const auto got = static_cast<std::size_t>(n);
        if (std::memcmp(scratch_.data(), message(s) + s.received, got) != 0) {
            fail("cycle " + std::to_string(s.number) + ": the echo differs from what was sent");
        }
        s.received += got;
        s.last_progress = now_;
        if (s.received == size_) {
            // An orderly close: the server reads the end of the stream and closes in turn.
            ::close(s.fd);
            s.fd = -1;
            ++completed_;
            --busy_;
            begin(i);
        }
    }

    void check_stalls() const {
        for (const slot& s : slots_) {
            const double quiet = std::chrono::duration<double>(now_ - s.last_progress).count();
            if (s.fd >= 0 && quiet > stall_) {
                fail("cycle " + std::to_string(s.number) + " stalled " +
                     (s.connecting ? "connecting"
                                   : "with " + std::to_string(s.received) + " of " +
                                         std::to_string(size_) + " bytes back") +
                     " for " + std::to_string(quiet) + " s");
            }
        }
    }

    address target_;
    std::size_t size_;
    double stall_;
    std::vector<unsigned char> pattern_;
    std::vector<unsigned char> scratch_;
    std::vector<slot> slots_;
    poller poller_;
    std::vector<epoll_event> events_;
    clock_type::time_point now_;
    clock_type::time_point next_stall_check_;
    long long count_ = 0;
    long long started_ = 0;
    long long completed_ = 0;
    std::size_t busy_ = 0;
    bool stopping_ = false;
};

} // namespace load
