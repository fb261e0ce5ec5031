// Closed-loop echo load generator over plain epoll (it must not share code with what it measures).
//
// Each of N connections sends S bytes, waits until exactly those S bytes have come back, checks
// them byte for byte, and starts its next round. The bytes are a window into a random table at an
// offset that depends on the connection and the round, so an echo from the wrong connection or
// from an earlier round does not match. epoll_wait is polled with a zero timeout so that the
// generator's own wake-ups do not dominate what is measured.
//
// Exits non-zero on a mismatch, a connection closed early, a refused connection, or a stall: a
// connection with a round in flight that has not completed one for --stall seconds.
//
// Modes:
//   default          --warmup W seconds not counted, then --seconds T counted
//   --round-trips K  exactly K round trips in total, then exit (a fixed amount of work); with
//                    --keep-open, hold the connections open after the report line instead,
//                    until SIGTERM, SIGINT or --hold seconds (so that a profile taken then
//                    leaves out the server's clean-up of the connections)
//   --idle           one round trip on each connection, print "idle_ready", then hold the
//                    connections open until SIGTERM, SIGINT or --hold seconds
//   --udp            connected UDP sockets instead of TCP connections (one datagram per round)
//
// Prints one machine-readable line: round_trips=... seconds=... rate=... connections=... size=...
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

namespace {

struct options {
    std::string host = "127.0.0.1";
    int port = 0;
    int connections = 1;
    int size = 128;
    double seconds = 3.0;
    double warmup = 1.0;
    double stall = 5.0;
    double hold = 120.0;
    int cpu = -1;
    long long round_trips = 0; // 0: timed mode
    bool idle = false;
    bool keep_open = false;
    bool udp = false;
};

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "echo_load: FAILED: %s\n", what);
    std::exit(1);
}

[[noreturn]] void fail_errno(const char* what, int err) {
    std::fprintf(stderr, "echo_load: FAILED: %s: %s\n", what, std::strerror(err));
    std::exit(1);
}

[[noreturn]] void usage() {
    std::fprintf(stderr,
                 "usage: echo_load --port P [--host A] [--connections N] [--size S]\n"
                 "                 [--seconds T] [--warmup W] [--round-trips K [--keep-open]]\n"
                 "                 [--idle] [--hold H] [--stall X] [--cpu C] [--udp]\n");
    std::exit(2);
}

options parse(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        auto value = [&]() -> const char* {
            if (i + 1 >= argc) {
                usage();
            }
            return argv[++i];
        };
        if (arg == "--host") {
            o.host = value();
        } else if (arg == "--port") {
            o.port = std::atoi(value());
        } else if (arg == "--connections") {
            o.connections = std::atoi(value());
        } else if (arg == "--size") {
            o.size = std::atoi(value());
        } else if (arg == "--seconds") {
            o.seconds = std::atof(value());
        } else if (arg == "--warmup") {
            o.warmup = std::atof(value());
        } else if (arg == "--stall") {
            o.stall = std::atof(value());
        } else if (arg == "--hold") {
            o.hold = std::atof(value());
        } else if (arg == "--cpu") {
            o.cpu = std::atoi(value());
        } else if (arg == "--round-trips") {
            o.round_trips = std::atoll(value());
        } else if (arg == "--idle") {
            o.idle = true;
        } else if (arg == "--keep-open") {
            o.keep_open = true;
        } else if (arg == "--udp") {
            o.udp = true;
        } else {
            usage();
        }
    }
    if (o.port <= 0 || o.port > 65535 || o.connections <= 0 || o.size <= 0 || o.seconds <= 0 ||
        o.warmup < 0 || o.round_trips < 0 || (o.keep_open && o.round_trips == 0)) {
        usage();
    }
    return o;
}

double now() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// The message of round r on connection c is pattern[offset(c, r) .. offset(c, r) + S).
constexpr std::size_t pattern_slack = 251;

std::vector<unsigned char> make_pattern(std::size_t size) {
    std::vector<unsigned char> pattern(size + pattern_slack);
    std::uint64_t x = 0x9e3779b97f4a7c15ull;
    for (auto& byte : pattern) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        byte = static_cast<unsigned char>(x >> 32);
    }
    return pattern;
}

struct connection {
    int fd = -1;
    std::uint64_t round = 0;
    std::size_t sent = 0;
    std::size_t received = 0;
    double last_progress = 0;
    bool active = false; // a round is in flight
    bool want_out = false;
};

std::size_t offset_of(std::size_t index, std::uint64_t round) {
    return static_cast<std::size_t>((index * 7 + round) % pattern_slack);
}

volatile std::sig_atomic_t stop_requested = 0;

void on_signal(int) {
    stop_requested = 1;
}

class load {
public:
    explicit load(const options& o)
        : o_(o), size_(static_cast<std::size_t>(o.size)), pattern_(make_pattern(size_)),
          scratch_(size_), conns_(static_cast<std::size_t>(o.connections)) {}

    void connect_all() {
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(static_cast<std::uint16_t>(o_.port));
        if (inet_pton(AF_INET, o_.host.c_str(), &addr.sin_addr) != 1) {
            fail("--host must be an IPv4 address");
        }
        ep_ = epoll_create1(EPOLL_CLOEXEC);
        if (ep_ < 0) {
            fail_errno("epoll_create1", errno);
        }
        for (std::size_t i = 0; i < conns_.size(); ++i) {
            int fd = socket(AF_INET, (o_.udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
            if (fd < 0) {
                fail_errno("socket", errno);
            }
            if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
                fail_errno("connect", errno);
            }
            int one = 1;
            if (!o_.udp) {
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            }
            fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
            epoll_event ev{};
            ev.events = EPOLLIN;
            ev.data.u64 = i;
            if (epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev) != 0) {
                fail_errno("epoll_ctl", errno);
            }
            conns_[i].fd = fd;
        }
    }

    // Polls and serves every connection until `done()` is true.
    template <typename Done>
    void run(Done done) {
        std::vector<epoll_event> events(512);
        double next_stall_check = now() + 1.0;
        while (!done()) {
            int n = epoll_wait(ep_, events.data(), static_cast<int>(events.size()), 0);
            if (n < 0) {
                if (errno == EINTR) {
                    continue;
                }
                fail_errno("epoll_wait", errno);
            }
            now_ = now();
            for (int k = 0; k < n; ++k) {
                std::size_t i = events[static_cast<std::size_t>(k)].data.u64;
                std::uint32_t what = events[static_cast<std::size_t>(k)].events;
                if (what & EPOLLOUT) {
                    send_more(i);
                }
                if (what & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                    receive(i);
                }
            }
            if (now_ >= next_stall_check) {
                check_stalls();
                next_stall_check = now_ + 1.0;
            }
        }
    }

    void start_all(std::uint64_t per_connection_limit) {
        limit_per_connection_ = per_connection_limit;
        now_ = now();
        for (std::size_t i = 0; i < conns_.size(); ++i) {
            if (may_start()) {
                start_round(i);
            }
        }
    }

    void set_total_limit(long long limit) { total_limit_ = limit; }
    long long completed() const { return completed_; }
    long long in_flight() const { return started_ - completed_; }
    double clock() const { return now_; }
    void tick() { now_ = now(); }

    void close_all() {
        for (auto& c : conns_) {
            if (c.fd >= 0) {
                close(c.fd);
                c.fd = -1;
            }
        }
        if (ep_ >= 0) {
            close(ep_);
        }
    }

private:
    bool may_start() const { return total_limit_ == 0 || started_ < total_limit_; }

    void start_round(std::size_t i) {
        connection& c = conns_[i];
        if (limit_per_connection_ != 0 && c.round >= limit_per_connection_) {
            c.active = false;
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
        ssize_t n = send(c.fd, message + c.sent, size_ - c.sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno != EAGAIN && errno != EINTR) {
                fail_errno("send", errno);
            }
            n = 0;
        }
        c.sent += static_cast<std::size_t>(n);
        bool want_out = c.sent < size_;
        if (want_out != c.want_out) {
            epoll_event ev{};
            ev.events = EPOLLIN | (want_out ? EPOLLOUT : 0u);
            ev.data.u64 = i;
            epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev);
            c.want_out = want_out;
        }
    }

    void receive(std::size_t i) {
        connection& c = conns_[i];
        // A TCP read never asks for more than is owed, so an extra byte from the server would
        // show up as a mismatch in the next round. A datagram is read whole.
        std::size_t want = o_.udp ? scratch_.size() : size_ - c.received;
        ssize_t n = recv(c.fd, scratch_.data(), want, 0);
        if (n == 0 && !o_.udp) {
            std::fprintf(stderr, "echo_load: connection %zu closed by the server in round %llu\n",
                         i, static_cast<unsigned long long>(c.round));
            fail("connection closed early");
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                return;
            }
            fail_errno("recv", errno);
        }
        if (!c.active) {
            fail("bytes received on a connection with no round in flight");
        }
        auto got = static_cast<std::size_t>(n);
        if (o_.udp && got != size_) {
            std::fprintf(stderr, "echo_load: datagram of %zu bytes, expected %zu\n", got, size_);
            fail("mismatch");
        }
        const unsigned char* expected = pattern_.data() + offset_of(i, c.round) + c.received;
        if (std::memcmp(scratch_.data(), expected, got) != 0) {
            std::fprintf(stderr, "echo_load: connection %zu round %llu bytes %zu..%zu differ\n", i,
                         static_cast<unsigned long long>(c.round), c.received, c.received + got);
            fail("mismatch");
        }
        c.received += got;
        if (c.received == size_) {
            ++completed_;
            ++c.round;
            c.active = false;
            if (may_start()) {
                start_round(i);
            }
        }
    }

    void check_stalls() const {
        for (std::size_t i = 0; i < conns_.size(); ++i) {
            const connection& c = conns_[i];
            if (c.active && now_ - c.last_progress > o_.stall) {
                std::fprintf(stderr,
                             "echo_load: connection %zu stalled in round %llu: sent %zu, "
                             "received %zu of %zu for %.1f s\n",
                             i, static_cast<unsigned long long>(c.round), c.sent, c.received, size_,
                             now_ - c.last_progress);
                fail("stalled connection");
            }
        }
    }

    const options& o_;
    std::size_t size_;
    std::vector<unsigned char> pattern_;
    std::vector<unsigned char> scratch_;
    std::vector<connection> conns_;
    int ep_ = -1;
    double now_ = 0;
    long long started_ = 0;
    long long completed_ = 0;
    long long total_limit_ = 0;
    std::uint64_t limit_per_connection_ = 0;
};

void pin(int cpu) {
    if (cpu < 0) {
        return;
    }
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) {
        fail_errno("sched_setaffinity", errno);
    }
}

void raise_fd_limit(int connections) {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
    getrlimit(RLIMIT_NOFILE, &limit);
    if (limit.rlim_cur != RLIM_INFINITY && static_cast<rlim_t>(connections) + 16 > limit.rlim_cur) {
        std::fprintf(stderr, "echo_load: %d connections need a descriptor limit above %llu\n",
                     connections, static_cast<unsigned long long>(limit.rlim_cur));
        std::exit(2);
    }
}

void report(long long round_trips, double seconds, const options& o) {
    std::printf("round_trips=%lld seconds=%.6f rate=%.1f connections=%d size=%d\n", round_trips,
                seconds, static_cast<double>(round_trips) / seconds, o.connections, o.size);
    std::fflush(stdout);
}

// Waits, connections open, until a signal or --hold seconds.
void hold_open(const options& o) {
    const double until = now() + o.hold;
    while (!stop_requested && now() < until) {
        usleep(50 * 1000);
    }
}

} // namespace

int main(int argc, char** argv) {
    options o = parse(argc, argv);
    pin(o.cpu);
    raise_fd_limit(o.connections);
    std::signal(SIGPIPE, SIG_IGN);
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);

    load l(o);
    l.connect_all();

    if (o.idle) {
        double start = now();
        l.start_all(1);
        l.run([&] { return l.in_flight() == 0; });
        report(l.completed(), now() - start, o);
        std::printf("idle_ready connections=%d\n", o.connections);
        std::fflush(stdout);
        hold_open(o);
        l.close_all();
        return 0;
    }

    if (o.round_trips > 0) {
        l.set_total_limit(o.round_trips);
        double start = now();
        l.start_all(0);
        l.run([&] { return l.completed() == o.round_trips; });
        report(l.completed(), now() - start, o);
        if (o.keep_open) {
            hold_open(o);
        }
        l.close_all();
        return 0;
    }

    double warm_end = now() + o.warmup;
    l.start_all(0);
    l.run([&] { return l.clock() >= warm_end; });
    long long before = l.completed();
    double start = now();
    double end = start + o.seconds;
    l.run([&] { return l.clock() >= end || stop_requested; });
    double elapsed = l.clock() - start;
    report(l.completed() - before, elapsed, o);
    l.close_all();
    return stop_requested ? 1 : 0;
}
