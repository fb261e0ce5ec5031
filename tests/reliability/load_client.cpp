// load_client: drives an echo server (TCP or UDP) with many concurrent peers, and checks every
// byte that comes back. Plain non-blocking sockets and epoll, no ringio: the server is what is
// under test.
//
// load_client tcp PORT [--connections N] [--messages N] [--max-size BYTES] [--buffer BYTES]
//                      [--duration SECONDS] [--seed N] [--stall SECONDS]
//   Opens N connections (alternately to 127.0.0.1 and ::1), waits until all of them are open at
//   once, then each sends --messages messages one after another, each waiting for its whole
//   echo. Sizes are log-uniform from 1 byte to --max-size (connection 0 sends one of exactly
//   --max-size, connection 1 one of 1 byte), so most are small and a few are large. --buffer
//   shrinks SO_SNDBUF and SO_RCVBUF so that reads and writes are cut short on both sides. Every
//   connection ends with a half-close and expects the server to close in turn. With --duration,
//   each finished connection is replaced by a new one until that many seconds have passed (a
//   soak).
//
// load_client udp PORT [--sockets N] [--datagrams N] [--max-size BYTES] [--window N]
//                      [--in-flight BYTES] [--max-loss FRACTION] [--seed N]
//   N sockets (alternately IPv4 and IPv6) each send --datagrams datagrams, at most --window
//   unanswered at a time per socket and --in-flight bytes in all, of log-uniform sizes from 16
//   bytes to --max-size. Each answer must be the datagram sent, byte for byte; one not answered
//   within a second is lost. Loopback UDP drops what a full receive buffer cannot take: losses
//   are counted, and fail the run only above --max-loss.
//
// Exit status: 0 when every byte was verified, 1 on a mismatch, an early close, a stall or too
// many losses (the first problems are described on stderr), 2 on a usage error.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

[[noreturn]] void fail(const std::string& text) {
    std::fprintf(stderr, "load_client: %s\n", text.c_str());
    std::exit(1);
}

[[noreturn]] void fail_errno(const std::string& what) {
    fail(what + ": " + std::strerror(errno));
}

double seconds_since(clock_type::time_point start) {
    return std::chrono::duration<double>(clock_type::now() - start).count();
}

std::uint64_t mix(std::uint64_t x) {
    // splitmix64's finaliser: neighbouring seeds give unrelated streams.
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

std::uint64_t key(std::uint64_t seed, std::uint64_t a, std::uint64_t b) {
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
std::size_t log_uniform(byte_stream& random, std::size_t low, std::size_t high) {
    const double unit = static_cast<double>(random.next() >> 11) / 9007199254740992.0;
    const double value = std::exp(
        std::log(static_cast<double>(low)) +
        unit * (std::log(static_cast<double>(high) + 1.0) - std::log(static_cast<double>(low))));
    return std::clamp(static_cast<std::size_t>(value), low, high);
}

bool parse(std::string_view text, double& value) {
    const std::string copy(text);
    char* end = nullptr;
    value = std::strtod(copy.c_str(), &end);
    return !copy.empty() && end == copy.c_str() + copy.size() && value >= 0;
}

bool parse(std::string_view text, std::size_t& value) {
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    return error == std::errc{} && end == text.data() + text.size();
}

struct address {
    sockaddr_storage storage{};
    socklen_t size = 0;
    int family = AF_INET;
};

address loopback(bool v6, std::uint16_t port) {
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

void raise_descriptor_limit(std::size_t needed) {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) {
        fail_errno("getrlimit");
    }
    if (limit.rlim_cur < needed) {
        limit.rlim_cur = std::min<rlim_t>(std::max<rlim_t>(limit.rlim_max, needed), limit.rlim_max);
        if (limit.rlim_cur < needed) {
            limit.rlim_cur = limit.rlim_max = needed; // root may raise the hard limit too
        }
        if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) {
            fail_errno("setrlimit RLIMIT_NOFILE " + std::to_string(needed));
        }
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

// ---------------------------------------------------------------------------------------------
// TCP

struct tcp_options {
    std::uint16_t port = 0;
    std::size_t connections = 1000;
    std::size_t messages = 3;
    std::size_t max_size = std::size_t{1} << 20;
    std::size_t buffer = 0;
    double duration = 0;
    std::size_t seed = 1;
    double stall = 20;
};

enum class phase { connecting, waiting, sending, closing, closed };

struct connection {
    int fd = -1;
    std::size_t id = 0; // which connection of the run, for the seeds and the messages
    phase state = phase::connecting;
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

class tcp_run {
public:
    explicit tcp_run(const tcp_options& options)
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
        std::printf("load_client tcp: %zu connections open at once (%zu in all), %zu messages "
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
    connection& at(std::size_t slot) { return slots_[slot]; }

    void open(std::size_t slot) {
        connection& c = at(slot);
        c = connection{};
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
        connection& c = at(slot);
        switch (c.state) {
        case phase::connecting:
            connected(slot);
            return;
        case phase::waiting:
            if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) != 0) {
                fail("connection " + std::to_string(c.id) +
                     " had news from the server before it sent anything");
            }
            return;
        case phase::sending:
            if ((events & EPOLLOUT) != 0) {
                write_some(slot);
            }
            if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0 && c.state == phase::sending) {
                read_some(slot);
            }
            return;
        case phase::closing:
            read_end(slot);
            return;
        case phase::closed:
            return;
        }
    }

    void connected(std::size_t slot) {
        connection& c = at(slot);
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
            c.state = phase::waiting;
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
        connection& c = at(slot);
        c.state = phase::sending;
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
        connection& c = at(slot);
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
        connection& c = at(slot);
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
                    c.state = phase::closing;
                    poller_.change(c.fd, EPOLLIN | EPOLLRDHUP, slot);
                }
                return;
            }
        }
    }

    void read_end(std::size_t slot) {
        connection& c = at(slot);
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
        c.state = phase::closed;
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
        for (const connection& c : slots_) {
            if (c.state == phase::closed) {
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

    tcp_options options_;
    std::vector<connection> slots_;
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

// ---------------------------------------------------------------------------------------------
// UDP

struct udp_options {
    std::uint16_t port = 0;
    std::size_t sockets = 64;
    std::size_t datagrams = 200;
    std::size_t max_size = 65507;
    std::size_t window = 4;
    std::size_t in_flight = 64 * 1024;
    double max_loss = 0.01;
    std::size_t seed = 1;
};

constexpr std::uint32_t magic = 0x52494e47; // "RING"
constexpr std::size_t header_size = 16;

struct datagram_header {
    std::uint32_t magic;
    std::uint32_t socket;
    std::uint32_t sequence;
    std::uint32_t size;
};

struct udp_peer {
    int fd = -1;
    std::size_t next = 0; // sequence of the next datagram to send
    byte_stream sizes;
    std::vector<std::uint32_t> sizes_sent;
    std::vector<clock_type::time_point> sent_at;
    std::vector<unsigned char> state; // per sequence: 0 unanswered, 1 answered, 2 given up
    std::size_t outstanding = 0;
    std::size_t oldest = 0; // every datagram before it is answered or given up
};

class udp_run {
public:
    explicit udp_run(const udp_options& options) : options_(options), peers_(options.sockets) {}

    int run() {
        raise_descriptor_limit(options_.sockets + 64);
        const auto start = clock_type::now();
        for (std::size_t i = 0; i < peers_.size(); ++i) {
            open(i);
        }
        std::vector<epoll_event> events(256);
        std::vector<unsigned char> buffer(65536);
        std::vector<unsigned char> expected(65536);
        std::size_t finished = 0;
        while (finished < peers_.size()) {
            for (std::size_t i = 0; i < peers_.size(); ++i) {
                send_some(i);
            }
            const int count = poller_.wait(events, 10);
            for (int e = 0; e < count; ++e) {
                const std::size_t i = events[static_cast<std::size_t>(e)].data.u64;
                receive(i, buffer, expected);
            }
            finished = 0;
            const auto now = clock_type::now();
            for (udp_peer& peer : peers_) {
                expire(peer, now);
                finished += peer.next == options_.datagrams && peer.outstanding == 0 ? 1 : 0;
            }
            if (seconds_since(start) > 120) {
                fail("udp: not finished after 120 s");
            }
        }
        const std::size_t sent = options_.sockets * options_.datagrams;
        std::printf("load_client udp: %zu sockets, %zu datagrams from %zu to %zu bytes: %zu "
                    "answered byte for byte, %zu lost (%zu answered late), %zu corrupted; %.1f s\n",
                    options_.sockets, sent, header_size, options_.max_size, answered_, lost_, late_,
                    corrupted_, seconds_since(start));
        if (corrupted_ > 0) {
            fail(std::to_string(corrupted_) + " answers were not what was sent");
        }
        if (static_cast<double>(lost_) > options_.max_loss * static_cast<double>(sent)) {
            fail(std::to_string(lost_) + " of " + std::to_string(sent) +
                 " datagrams lost, more than the " + std::to_string(options_.max_loss) +
                 " allowed");
        }
        return 0;
    }

private:
    void open(std::size_t i) {
        udp_peer& peer = peers_[i];
        const address target = loopback(i % 2 == 1, static_cast<std::uint16_t>(options_.port));
        peer.fd = ::socket(target.family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (peer.fd < 0) {
            fail_errno("socket");
        }
        // Room for every answer in flight: what the client drops is not the server's loss.
        const int size = 4 << 20;
        if (::setsockopt(peer.fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0) {
            ::setsockopt(peer.fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
        }
        // Connected: only the server's answers arrive, and an unreachable server is reported.
        if (::connect(peer.fd, reinterpret_cast<const sockaddr*>(&target.storage), target.size) !=
            0) {
            fail_errno("udp connect");
        }
        peer.sizes = byte_stream(key(options_.seed, i, ~std::uint64_t{0}));
        peer.sizes_sent.resize(options_.datagrams);
        peer.sent_at.resize(options_.datagrams);
        peer.state.assign(options_.datagrams, 0);
        poller_.add(peer.fd, EPOLLIN, i);
    }

    void send_some(std::size_t i) {
        udp_peer& peer = peers_[i];
        while (peer.next < options_.datagrams && peer.outstanding < options_.window) {
            const std::size_t sequence = peer.next;
            if (peer.sizes_sent[sequence] == 0) {
                peer.sizes_sent[sequence] = static_cast<std::uint32_t>(
                    sequence == 0 && i == 0 ? options_.max_size
                    : sequence == 0 && i == 1
                        ? header_size
                        : log_uniform(peer.sizes, header_size, options_.max_size));
            }
            const std::size_t size = peer.sizes_sent[sequence];
            if (in_flight_ > 0 && in_flight_ + size > options_.in_flight) {
                return; // the server's receive buffer is finite: a flood would only be dropped
            }
            const datagram_header header{magic, static_cast<std::uint32_t>(i),
                                         static_cast<std::uint32_t>(sequence),
                                         static_cast<std::uint32_t>(size)};
            std::memcpy(out_, &header, sizeof header);
            byte_stream payload(key(options_.seed, i, sequence));
            payload.fill(out_ + header_size, size - header_size);
            const ssize_t n = ::send(peer.fd, out_, size, 0);
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
                    return; // the next turn tries again
                }
                fail_errno("udp socket " + std::to_string(i) + ": send of " + std::to_string(size) +
                           " bytes");
            }
            peer.sent_at[sequence] = clock_type::now();
            in_flight_ += size;
            ++peer.next;
            ++peer.outstanding;
        }
    }

    void corrupted(const std::string& text) {
        if (corrupted_++ < 5) {
            std::fprintf(stderr, "load_client: udp: %s\n", text.c_str());
        }
    }

    void receive(std::size_t i, std::vector<unsigned char>& buffer,
                 std::vector<unsigned char>& expected) {
        udp_peer& peer = peers_[i];
        for (;;) {
            const ssize_t n = ::recv(peer.fd, buffer.data(), buffer.size(), MSG_TRUNC);
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                    return;
                }
                fail_errno("udp socket " + std::to_string(i) + ": recv");
            }
            const auto size = static_cast<std::size_t>(n);
            datagram_header header{};
            if (size < header_size) {
                corrupted("socket " + std::to_string(i) + ": an answer of " + std::to_string(size) +
                          " bytes, shorter than any datagram sent");
                continue;
            }
            std::memcpy(&header, buffer.data(), sizeof header);
            if (header.magic != magic || header.socket != i || header.sequence >= peer.next) {
                corrupted("socket " + std::to_string(i) + ": an answer of " + std::to_string(size) +
                          " bytes whose header was never sent");
                continue;
            }
            const std::size_t sequence = header.sequence;
            if (size != peer.sizes_sent[sequence] || header.size != size) {
                corrupted("socket " + std::to_string(i) + ": datagram " + std::to_string(sequence) +
                          " sent with " + std::to_string(peer.sizes_sent[sequence]) +
                          " bytes came back with " + std::to_string(size));
                continue;
            }
            byte_stream payload(key(options_.seed, i, sequence));
            payload.fill(expected.data(), size - header_size);
            if (std::memcmp(buffer.data() + header_size, expected.data(), size - header_size) !=
                0) {
                corrupted("socket " + std::to_string(i) + ": datagram " + std::to_string(sequence) +
                          " came back with different bytes");
                continue;
            }
            if (peer.state[sequence] == 1) {
                corrupted("socket " + std::to_string(i) + ": datagram " + std::to_string(sequence) +
                          " answered twice");
                continue;
            }
            if (peer.state[sequence] == 2) {
                ++late_; // already counted lost, and its window slot reused
                peer.state[sequence] = 1;
                continue;
            }
            peer.state[sequence] = 1;
            --peer.outstanding;
            in_flight_ -= size;
            ++answered_;
        }
    }

    void expire(udp_peer& peer, clock_type::time_point now) {
        if (peer.outstanding == 0) {
            return;
        }
        while (peer.oldest < peer.next && peer.state[peer.oldest] != 0) {
            ++peer.oldest;
        }
        for (std::size_t sequence = peer.oldest; sequence < peer.next; ++sequence) {
            if (peer.state[sequence] == 0 &&
                now - peer.sent_at[sequence] > std::chrono::seconds(1)) {
                peer.state[sequence] = 2;
                --peer.outstanding;
                in_flight_ -= peer.sizes_sent[sequence];
                ++lost_;
            }
        }
    }

    udp_options options_;
    std::vector<udp_peer> peers_;
    poller poller_;
    std::size_t answered_ = 0;
    std::size_t lost_ = 0;
    std::size_t late_ = 0;
    std::size_t corrupted_ = 0;
    std::size_t in_flight_ = 0; // bytes sent and neither answered nor given up
    unsigned char out_[65536];
};

int usage() {
    std::fputs(
        "usage: load_client tcp PORT [--connections N] [--messages N] [--max-size BYTES]\n"
        "                  [--buffer BYTES] [--duration SECONDS] [--seed N] "
        "[--stall SECONDS]\n"
        "       load_client udp PORT [--sockets N] [--datagrams N] [--max-size BYTES]\n"
        "                  [--window N] [--in-flight BYTES] [--max-loss FRACTION] [--seed N]\n",
        stderr);
    return 2;
}

} // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        return usage();
    }
    const std::string_view mode = argv[1];
    std::size_t port = 0;
    if (!parse(argv[2], port) || port == 0 || port > 65535) {
        return usage();
    }
    tcp_options tcp;
    udp_options udp;
    tcp.port = udp.port = static_cast<std::uint16_t>(port);
    for (int i = 3; i < argc; i += 2) {
        if (i + 1 >= argc) {
            return usage();
        }
        const std::string_view name = argv[i];
        const std::string_view value = argv[i + 1];
        const bool ok = name == "--connections" ? parse(value, tcp.connections)
                        : name == "--messages"  ? parse(value, tcp.messages)
                        : name == "--max-size"
                            ? parse(value, tcp.max_size) && parse(value, udp.max_size)
                        : name == "--buffer"    ? parse(value, tcp.buffer)
                        : name == "--duration"  ? parse(value, tcp.duration)
                        : name == "--seed"      ? parse(value, tcp.seed) && parse(value, udp.seed)
                        : name == "--stall"     ? parse(value, tcp.stall)
                        : name == "--sockets"   ? parse(value, udp.sockets)
                        : name == "--datagrams" ? parse(value, udp.datagrams)
                        : name == "--window"    ? parse(value, udp.window)
                        : name == "--in-flight" ? parse(value, udp.in_flight)
                        : name == "--max-loss"  ? parse(value, udp.max_loss)
                                                : false;
        if (!ok) {
            return usage();
        }
    }
    if (mode == "tcp" && tcp.connections >= 2 && tcp.messages >= 1 && tcp.max_size >= 1) {
        return tcp_run(tcp).run();
    }
    if (mode == "udp" && udp.sockets >= 2 && udp.datagrams >= 1 && udp.window >= 1 &&
        udp.max_size >= header_size && udp.max_size <= 65507) {
        return udp_run(udp).run();
    }
    return usage();
}
