#pragma once

// Datagrams from many connected UDP sockets, alternately IPv4 and IPv6, of log-uniform sizes,
// with a bound on what is in flight. Each answer must be the datagram sent, byte for byte; one
// not answered within a second is lost. Loopback UDP drops what a full receive buffer cannot
// take: losses are counted apart from corruption, which fails at once.

#include "common.hpp"

namespace load {

struct datagrams_options {
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

struct datagram_socket {
    int fd = -1;
    std::size_t next = 0; // sequence of the next datagram to send
    byte_stream sizes;
    std::vector<std::uint32_t> sizes_sent;
    std::vector<clock_type::time_point> sent_at;
    std::vector<unsigned char> state; // per sequence: 0 unanswered, 1 answered, 2 given up
    std::size_t outstanding = 0;
    std::size_t oldest = 0; // every datagram before it is answered or given up
};

class datagrams_run {
public:
    explicit datagrams_run(const datagrams_options& options)
        : options_(options), peers_(options.sockets) {}

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
            for (datagram_socket& peer : peers_) {
                expire(peer, now);
                finished += peer.next == options_.datagrams && peer.outstanding == 0 ? 1 : 0;
            }
            if (seconds_since(start) > 120) {
                fail("udp: not finished after 120 s");
            }
        }
        const std::size_t sent = options_.sockets * options_.datagrams;
        std::printf("load_client datagrams: %zu sockets, %zu datagrams from %zu to %zu bytes: %zu "
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
        datagram_socket& peer = peers_[i];
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
        datagram_socket& peer = peers_[i];
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
            std::fprintf(stderr, "load_client: datagrams: %s\n", text.c_str());
        }
    }

    void receive(std::size_t i, std::vector<unsigned char>& buffer,
                 std::vector<unsigned char>& expected) {
        datagram_socket& peer = peers_[i];
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

    void expire(datagram_socket& peer, clock_type::time_point now) {
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

    datagrams_options options_;
    std::vector<datagram_socket> peers_;
    poller poller_;
    std::size_t answered_ = 0;
    std::size_t lost_ = 0;
    std::size_t late_ = 0;
    std::size_t corrupted_ = 0;
    std::size_t in_flight_ = 0; // bytes sent and neither answered nor given up
    unsigned char out_[65536];
};

} // namespace load
