#pragma once

// What every mode of load_client shares: failing with a message, the clock, reproducible bytes,
// loopback addresses, the descriptor limit, an epoll set, and what a server process uses.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace load {

using clock_type = std::chrono::steady_clock;

[[noreturn]] inline void fail(const std::string& text) {
    std::fprintf(stderr, "load_client: FAILED: %s\n", text.c_str());
    std::exit(1);
}

[[noreturn]] inline void fail_errno(const std::string& what) {
    fail(what + ": " + std::strerror(errno));
}

// What the kernel says of the server's end of TCP connection `fd`, for a stall's report: its
// state, the bytes it has not read, and whether a process holds it (inode 0: still in the
// listener's accept queue), and how often listeners dropped a handshake for a full queue.
inline std::string server_end_of(int fd) {
    sockaddr_storage mine{};
    sockaddr_storage peer{};
    socklen_t size = sizeof mine;
    socklen_t peer_size = sizeof peer;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&mine), &size) != 0 ||
        ::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_size) != 0) {
        return "no server end: " + std::string(std::strerror(errno));
    }
    const auto port = [](const sockaddr_storage& a) {
        return ntohs(a.ss_family == AF_INET6 ? reinterpret_cast<const sockaddr_in6&>(a).sin6_port
                                             : reinterpret_cast<const sockaddr_in&>(a).sin_port);
    };
    char wanted[32];
    std::snprintf(wanted, sizeof wanted, ":%04X", port(peer));
    char remote[32];
    std::snprintf(remote, sizeof remote, ":%04X", port(mine));
    std::string found = "no server end in /proc/net/tcp{,6}";
    for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
        std::ifstream in(table);
        std::string line;
        while (std::getline(in, line)) {
            char local[64];
            char rem[64];
            unsigned state = 0;
            char queues[32];
            unsigned long inode = 0;
            if (std::sscanf(line.c_str(), "%*d: %63s %63s %x %31s %*s %*s %*d %*d %lu", local, rem,
                            &state, queues, &inode) == 5 &&
                std::string_view(local).ends_with(wanted) &&
                std::string_view(rem).ends_with(remote)) {
                found = "server end: state " + std::to_string(state) + " (1 established, 3 " +
                        "syn_recv), tx:rx queues " + queues + ", inode " + std::to_string(inode) +
                        (inode == 0 ? " (not accepted)" : " (accepted)");
            }
        }
    }
    std::ifstream netstat("/proc/net/netstat");
    std::string names;
    std::string values;
    while (std::getline(netstat, names) && std::getline(netstat, values)) {
        if (names.starts_with("TcpExt:")) {
            std::istringstream n(names);
            std::istringstream v(values);
            for (std::string name, value; n >> name && v >> value;) {
                if (name == "ListenOverflows" || name == "ListenDrops") {
                    found += ", " + name + " " + value;
                }
            }
        }
    }
    return found;
}

inline double seconds_since(clock_type::time_point start) {
    return std::chrono::duration<double>(clock_type::now() - start).count();
}

// Set by SIGINT or SIGTERM: the modes that hold connections open let go of them.
inline volatile std::sig_atomic_t stop_requested = 0;

inline void on_stop_signal(int) {
    stop_requested = 1;
}

// Waits, connections open, until SIGINT, SIGTERM or `hold` seconds.
inline void hold_open(double hold) {
    const auto start = clock_type::now();
    while (stop_requested == 0 && seconds_since(start) < hold) {
        ::usleep(20 * 1000);
    }
}

inline std::uint64_t mix(std::uint64_t x) {
    // splitmix64's finaliser: neighbouring seeds give unrelated streams.
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

inline std::uint64_t key(std::uint64_t seed, std::uint64_t a, std::uint64_t b) {
    return mix(mix(mix(seed) ^ a) ^ b);
}

// A reproducible byte stream: the sender and the checker each hold one with the same key and
// draw the same bytes, however differently they cut them up.
class byte_stream {
public:
    byte_stream() = default;
    explicit byte_stream(std::uint64_t key) : state_(key) {}

    void fill(unsigned char* out, std::size_t size) {
        while (size > 0 && left_ > 0) {
            *out++ = static_cast<unsigned char>(word_);
            word_ >>= 8;
            --left_;
            --size;
        }
        while (size >= 8) {
            const std::uint64_t word = next();
            std::memcpy(out, &word, 8);
            out += 8;
            size -= 8;
        }
        if (size > 0) {
            word_ = next();
            left_ = 8;
            fill(out, size);
        }
    }

    std::uint64_t next() {
        state_ += 0x9e3779b97f4a7c15ULL;
        return mix(state_);
    }

private:
    std::uint64_t state_ = 0;
    std::uint64_t word_ = 0;
    int left_ = 0;
};

// Log-uniform from `low` to `high`: as many sizes from 1 to 10 bytes as from 100 KiB to 1 MiB.
inline std::size_t log_uniform(byte_stream& random, std::size_t low, std::size_t high) {
    const double unit = static_cast<double>(random.next() >> 11) / 9007199254740992.0;
    const double value = std::exp(
        std::log(static_cast<double>(low)) +
        unit * (std::log(static_cast<double>(high) + 1.0) - std::log(static_cast<double>(low))));
    return std::clamp(static_cast<std::size_t>(value), low, high);
}

struct address {
    sockaddr_storage storage{};
    socklen_t size = 0;
    int family = AF_INET;

    const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
};

inline address loopback(bool v6, std::uint16_t port) {
    address result;
    if (v6) {
        auto& in6 = reinterpret_cast<sockaddr_in6&>(result.storage);
        in6.sin6_family = AF_INET6;
        in6.sin6_port = htons(port);
        in6.sin6_addr = in6addr_loopback;
        result.size = sizeof in6;
        result.family = AF_INET6;
    } else {
        auto& in4 = reinterpret_cast<sockaddr_in&>(result.storage);
        in4.sin_family = AF_INET;
        in4.sin_port = htons(port);
        in4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        result.size = sizeof in4;
    }
    return result;
}

inline address ipv4(const std::string& host, std::uint16_t port) {
    address result;
    auto& in4 = reinterpret_cast<sockaddr_in&>(result.storage);
    in4.sin_family = AF_INET;
    in4.sin_port = htons(port);
    if (::inet_pton(AF_INET, host.c_str(), &in4.sin_addr) != 1) {
        fail("--host must be an IPv4 address, not " + host);
    }
    result.size = sizeof in4;
    return result;
}

// A non-blocking TCP socket whose connect to `target` is under way. Connections to 127.0.0.1
// leave from 127.0.0.2 to 127.0.0.251 in turn, `number` choosing which: every source address has
// its own ephemeral ports, so that tens of thousands of connections, and the TIME_WAIT that each
// closed one leaves for a minute, do not run out of them.
// What a connection sets before its handshake; 0 leaves the kernel's default.
struct socket_options {
    bool no_delay = false;
    int receive_buffer = 0;
    int send_buffer = 0;
    int segment = 0; // TCP_MAXSEG: the MSS announced in the SYN
};

inline void set_option(int fd, int level, int name, int value) {
    if (value != 0 && ::setsockopt(fd, level, name, &value, sizeof value) != 0) {
        fail_errno("setsockopt");
    }
}

inline int start_connect(const address& target, std::size_t number, const socket_options& options) {
    const int fd = ::socket(target.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fail_errno("socket");
    }
    const auto& in4 = reinterpret_cast<const sockaddr_in&>(target.storage);
    if (target.family == AF_INET && in4.sin_addr.s_addr == htonl(INADDR_LOOPBACK)) {
        int one = 1;
        // The port is chosen at connect, for the whole address pair, not at bind.
        ::setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        sockaddr_in source{};
        source.sin_family = AF_INET;
        source.sin_addr.s_addr =
            htonl(INADDR_LOOPBACK + 1 + static_cast<std::uint32_t>(number % 250));
        if (::bind(fd, reinterpret_cast<const sockaddr*>(&source), sizeof source) != 0) {
            fail_errno("bind to a loopback source address");
        }
    }
    set_option(fd, IPPROTO_TCP, TCP_NODELAY, options.no_delay ? 1 : 0);
    set_option(fd, SOL_SOCKET, SO_RCVBUF, options.receive_buffer);
    set_option(fd, SOL_SOCKET, SO_SNDBUF, options.send_buffer);
    set_option(fd, IPPROTO_TCP, TCP_MAXSEG, options.segment);
    if (::connect(fd, target.get(), target.size) != 0 && errno != EINPROGRESS) {
        fail_errno("connect");
    }
    return fd;
}

// The error a non-blocking connect ended with, 0 once it is established.
inline int connect_error(int fd) {
    int error = 0;
    socklen_t size = sizeof error;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size);
    return error;
}

// Raises RLIMIT_NOFILE to `needed` (to the hard limit first, then beyond it if privileged);
// exits with status 2 and says so if that is not allowed.
inline void raise_descriptor_limit(std::size_t needed) {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) {
        fail_errno("getrlimit");
    }
    if (limit.rlim_cur >= needed) {
        return;
    }
    limit.rlim_cur = std::min<rlim_t>(needed, limit.rlim_max);
    if (limit.rlim_cur < needed) {
        limit.rlim_cur = limit.rlim_max = needed; // root may raise the hard limit too
    }
    if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) {
        std::fprintf(stderr, "load_client: %zu descriptors needed, RLIMIT_NOFILE allows fewer\n",
                     needed);
        std::exit(2);
    }
}

inline void pin(int cpu) {
    if (cpu < 0) {
        return;
    }
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(static_cast<std::size_t>(cpu), &set);
    if (::sched_setaffinity(0, sizeof set, &set) != 0) {
        fail_errno("sched_setaffinity");
    }
}

class poller {
public:
    poller() : fd_(::epoll_create1(EPOLL_CLOEXEC)) {
        if (fd_ < 0) {
            fail_errno("epoll_create1");
        }
    }
    poller(const poller&) = delete;
    poller& operator=(const poller&) = delete;
    ~poller() { ::close(fd_); }

    void add(int fd, std::uint32_t events, std::uint64_t data) {
        control(EPOLL_CTL_ADD, fd, events, data);
    }
    void change(int fd, std::uint32_t events, std::uint64_t data) {
        control(EPOLL_CTL_MOD, fd, events, data);
    }
    void remove(int fd) { ::epoll_ctl(fd_, EPOLL_CTL_DEL, fd, nullptr); }

    int wait(std::vector<epoll_event>& events, int timeout_ms) {
        const int count =
            ::epoll_wait(fd_, events.data(), static_cast<int>(events.size()), timeout_ms);
        if (count < 0 && errno != EINTR) {
            fail_errno("epoll_wait");
        }
        return count < 0 ? 0 : count;
    }

private:
    void control(int op, int fd, std::uint32_t events, std::uint64_t data) {
        epoll_event event{};
        event.events = events;
        event.data.u64 = data;
        if (::epoll_ctl(fd_, op, fd, &event) != 0) {
            fail_errno("epoll_ctl");
        }
    }

    int fd_;
};

// What a server process has used: CPU (user and system) and resident memory, from /proc, so that
// a mode can measure the server over exactly the work it gave it.
struct process_usage {
    double cpu_seconds = 0;
    long resident_kib = 0;
};

inline process_usage usage_of(long pid) {
    process_usage usage;
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    const std::size_t end = text.rfind(')');
    if (end == std::string::npos) {
        fail("no /proc/" + std::to_string(pid) + "/stat: is the server running?");
    }
    // After the command's closing parenthesis: state is field 3, utime 14 and stime 15.
    std::vector<std::string> fields;
    std::size_t at = end + 2;
    while (at < text.size() && fields.size() < 13) {
        const std::size_t space = text.find(' ', at);
        fields.push_back(text.substr(at, space - at));
        at = space == std::string::npos ? text.size() : space + 1;
    }
    if (fields.size() < 13) {
        fail("unreadable /proc/" + std::to_string(pid) + "/stat");
    }
    const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
    usage.cpu_seconds = (std::stod(fields[11]) + std::stod(fields[12])) / ticks;
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("VmRSS:", 0) == 0) {
            usage.resident_kib = std::stol(line.substr(6));
        }
    }
    return usage;
}

// The q-quantile (0 to 1) of `values`, interpolated between neighbours as numpy's default does.
inline double quantile(std::vector<double> values, double q) {
    if (values.empty()) {
        return 0;
    }
    std::sort(values.begin(), values.end());
    const double at = q * static_cast<double>(values.size() - 1);
    const auto low = static_cast<std::size_t>(at);
    const std::size_t high = std::min(low + 1, values.size() - 1);
    return values[low] + (values[high] - values[low]) * (at - static_cast<double>(low));
}

} // namespace load
