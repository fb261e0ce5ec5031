// channel_bench: records between two processes through ringio's channel and its peers.
//
//   channel_bench all [--quick]                    every method, size and mode below, three
//                                                  rounds of 1 s each (--quick: one of 0.2 s),
//                                                  then a table of medians and ratios
//   channel_bench throughput METHOD SIZE SECONDS   one process sends records for SECONDS, the
//                                                  other receives them; records per second
//   channel_bench pingpong METHOD SIZE SECONDS     a record there and back, for SECONDS; the
//                                                  median and 99th percentile round trip
//   channel_bench futex_peer PATH COUNT DELAY_US   the other side of futex_waiter (below)
//   channel_bench futex_waiter PATH COUNT MODE     waits COUNT times on the integer in PATH,
//                                                  `blocking`, `awaited` or `raw` (a bare
//                                                  io_uring), for callgrind
//   channel_bench local ROUNDS MODE                both ends in this process, ROUNDS times 64
//                                                  sends then 64 receives, `blocking` or
//                                                  `awaited`, for callgrind
//
// METHOD: channel_blocking, channel_batch and channel_in_place (throughput only),
// channel_awaited, unix_socket, pipe, eventfd_shm, shm_floor (throughput only: a hand-written
// spinning ring, the floor of any shared-memory transport), boost_mq. SIZE: 64 or 4096 bytes.
// The parent runs on CPU 0 and its child on CPU 1 (--no-pin: anywhere). Every record carries its
// sequence number in every 8-byte word, checked on arrival: a wrong, torn or missing record fails
// the run (status 1). Output: one JSON object per measurement on stdout.

#include <ringio/channel.hpp>
#include <ringio/futex.hpp>
#include <ringio/io_context.hpp>
#include <ringio/shared_atomic_ref.hpp>
#include <ringio/task.hpp>

#if CHANNEL_BENCH_BOOST
#include <boost/interprocess/ipc/message_queue.hpp>
#endif

#include <fcntl.h>
#include <liburing.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

bool pin = true;

void pin_to(int cpu) {
    if (!pin) {
        return;
    }
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    ::sched_setaffinity(0, sizeof set, &set);
}

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "channel_bench: %s\n", what.c_str());
    std::exit(1);
}

template <std::size_t Size>
struct record {
    std::uint64_t words[Size / 8];
};

template <std::size_t Size>
void fill(record<Size>& r, std::uint64_t n) {
    for (auto& word : r.words) {
        word = n;
    }
}

template <std::size_t Size>
bool holds(const record<Size>& r, std::uint64_t n) {
    for (const auto word : r.words) {
        if (word != n) {
            return false;
        }
    }
    return true;
}

// What the two processes share besides the transport: when the receiver had everything, how
// many records it took, and whether it found a wrong one.
struct shared_result {
    std::int64_t end_ns;
    std::uint64_t records;
    std::int32_t failed;
};

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               clock_type::now().time_since_epoch())
        .count();
}

// Writes all of `size` bytes, or dies.
void write_all(int fd, const void* data, std::size_t size) {
    const auto* bytes = static_cast<const char*>(data);
    while (size > 0) {
        const ssize_t n = ::write(fd, bytes, size);
        if (n <= 0) {
            die(std::string("write: ") + std::strerror(errno));
        }
        bytes += n;
        size -= static_cast<std::size_t>(n);
    }
}

// Reads exactly `size` bytes, or dies.
void read_exact(int fd, void* data, std::size_t size) {
    auto* bytes = static_cast<char*>(data);
    while (size > 0) {
        const ssize_t n = ::read(fd, bytes, size);
        if (n <= 0) {
            die(std::string("read: ") + (n == 0 ? "end of stream" : std::strerror(errno)));
        }
        bytes += n;
        size -= static_cast<std::size_t>(n);
    }
}

// ---------------------------------------------------------------------------------------------
// The transports: one direction each, made before the fork; the child and the parent each take
// their end after it.

// A byte stream (a Unix stream socket or a pipe): one write per record; the receiver reads what
// is there, up to 64 KiB at a time, as a program streaming records would.
template <std::size_t Size>
struct stream_transport {
    int read_fd = -1;
    int write_fd = -1;
    std::vector<char> buffer;
    std::size_t have = 0;
    std::size_t used = 0;

    static stream_transport make(bool socket) {
        int fds[2];
        if (socket ? ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0
                   : ::pipe2(fds, O_CLOEXEC) != 0) {
            die(std::string("socketpair or pipe: ") + std::strerror(errno));
        }
        return {fds[0], fds[1], {}, 0, 0};
    }
    void as_sender() { ::close(read_fd); }
    void as_receiver() {
        ::close(write_fd);
        buffer.resize(65536);
    }
    void send(const record<Size>& r) { write_all(write_fd, &r, sizeof r); }
    void receive(record<Size>& r) {
        if (have - used < sizeof r) {
            std::memmove(buffer.data(), buffer.data() + used, have - used);
            have -= used;
            used = 0;
            while (have < sizeof r) {
                const ssize_t n = ::read(read_fd, buffer.data() + have, buffer.size() - have);
                if (n <= 0) {
                    die(std::string("read: ") + (n == 0 ? "end of stream" : std::strerror(errno)));
                }
                have += static_cast<std::size_t>(n);
            }
        }
        std::memcpy(&r, buffer.data() + used, sizeof r);
        used += sizeof r;
    }
};

// A ring of records in shared memory and two eventfds, the usual way: the sender signals every
// record it publishes; the receiver reads the eventfd when it finds the ring empty, and signals
// space after each batch it takes.
template <std::size_t Size>
struct eventfd_transport {
    static constexpr std::uint64_t slots = 64;
    struct ring_memory {
        alignas(64) std::atomic<std::uint64_t> tail;
        alignas(64) std::atomic<std::uint64_t> head;
        alignas(64) record<Size> records[slots];
    };
    ring_memory* ring = nullptr;
    int data_fd = -1;
    int space_fd = -1;
    std::uint64_t own = 0;

    static eventfd_transport make() {
        void* memory = ::mmap(nullptr, sizeof(ring_memory), PROT_READ | PROT_WRITE,
                              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (memory == MAP_FAILED) {
            die("mmap");
        }
        eventfd_transport t;
        t.ring = new (memory) ring_memory{};
        t.data_fd = ::eventfd(0, EFD_CLOEXEC);
        t.space_fd = ::eventfd(0, EFD_CLOEXEC);
        return t;
    }
    void as_sender() {}
    void as_receiver() {}
    void send(const record<Size>& r) {
        while (own - ring->head.load(std::memory_order_acquire) == slots) {
            std::uint64_t count;
            read_exact(space_fd, &count, sizeof count);
        }
        ring->records[own % slots] = r;
        ring->tail.store(++own, std::memory_order_release);
        const std::uint64_t one = 1;
        write_all(data_fd, &one, sizeof one);
    }
    void receive(record<Size>& r) {
        while (ring->tail.load(std::memory_order_acquire) == own) {
            std::uint64_t count;
            read_exact(data_fd, &count, sizeof count);
        }
        r = ring->records[own % slots];
        ring->head.store(++own, std::memory_order_release);
        const std::uint64_t one = 1;
        write_all(space_fd, &one, sizeof one);
    }
};

#if CHANNEL_BENCH_BOOST
// Boost.Interprocess message_queue: a mutex and two condition variables in shared memory.
template <std::size_t Size>
struct boost_transport {
    std::string name;
    std::unique_ptr<boost::interprocess::message_queue> queue;

    static boost_transport make(const std::string& name) {
        boost::interprocess::message_queue::remove(name.c_str());
        boost::interprocess::message_queue(boost::interprocess::create_only, name.c_str(), 64,
                                           Size);
        return {name, nullptr};
    }
    void open() {
        queue = std::make_unique<boost::interprocess::message_queue>(boost::interprocess::open_only,
                                                                     name.c_str());
    }
    void as_sender() { open(); }
    void as_receiver() { open(); }
    void send(const record<Size>& r) { queue->send(&r, sizeof r, 0); }
    void receive(record<Size>& r) {
        std::size_t got = 0;
        unsigned priority = 0;
        queue->receive(&r, sizeof r, got, priority);
        if (got != sizeof r) {
            die("boost message_queue: a short message");
        }
    }
    void remove() { boost::interprocess::message_queue::remove(name.c_str()); }
};

#endif

// ringio's channel, blocking calls.
template <std::size_t Size>
struct channel_transport {
    std::optional<ringio::channel<record<Size>>> channel;
    std::optional<ringio::channel_sender<record<Size>>> sender;
    std::optional<ringio::channel_receiver<record<Size>>> receiver;

    static channel_transport make() {
        channel_transport t;
        t.channel.emplace(ringio::channel<record<Size>>::anonymous(64));
        return t;
    }
    void as_sender() { sender.emplace(std::move(*channel)); }
    void as_receiver() { receiver.emplace(std::move(*channel)); }
    void send(const record<Size>& r) { sender->send(r); }
    void receive(record<Size>& r) {
        auto got = receiver->receive();
        if (!got) {
            die("channel: ended early");
        }
        r = *got;
    }
};

// ringio's channel, records in batches where they are there: the sender publishes what it has
// queued at once (up to 64), the receiver takes all that is there; either blocks on one record
// only when the channel is full or empty.
template <std::size_t Size>
struct channel_batch_transport : channel_transport<Size> {
    static constexpr std::size_t batch = 64;
    std::vector<record<Size>> queued;
    std::vector<record<Size>> taken;
    std::size_t next = 0;

    static channel_batch_transport make() {
        channel_batch_transport t;
        t.channel.emplace(ringio::channel<record<Size>>::anonymous(64));
        return t;
    }
    void send(const record<Size>& r) {
        queued.push_back(r);
        if (queued.size() == batch) {
            flush();
        }
    }
    void flush() {
        std::span<const record<Size>> rest(queued);
        while (!rest.empty()) {
            const std::size_t n = this->sender->try_send(rest);
            if (n == 0) {
                this->sender->send(rest.front()); // full: wait for room for one
                rest = rest.subspan(1);
            } else {
                rest = rest.subspan(n);
            }
        }
        queued.clear();
    }
    void receive(record<Size>& r) {
        if (next == taken.size()) {
            taken.resize(batch);
            next = 0;
            const std::size_t n = this->receiver->try_receive(std::span(taken));
            if (n == 0) {
                channel_transport<Size>::receive(r); // empty: wait for one
                taken.clear();
                return;
            }
            taken.resize(n);
        }
        r = taken[next++];
    }
};

// ---------------------------------------------------------------------------------------------
// The runs. Each lasts about `seconds`, then the sender sends a record of zeros, which no
// sequence number (they start at 1) is: the other process stops at it.

struct measurement {
    std::string mode;
    std::string method;
    std::size_t size = 0;
    std::uint64_t count = 0; // records received, or round trips timed
    double seconds = 0;      // throughput: from the first send to the last receive
    std::int64_t p50_ns = 0; // ping-pong: round trip percentiles
    std::int64_t p99_ns = 0;
    [[nodiscard]] double per_second() const { return static_cast<double>(count) / seconds; }
};

void print_json(const measurement& m) {
    if (m.mode == "throughput") {
        std::printf("{\"mode\": \"throughput\", \"method\": \"%s\", \"size\": %zu, "
                    "\"count\": %llu, \"seconds\": %.6f, \"records_per_second\": %.1f}\n",
                    m.method.c_str(), m.size, static_cast<unsigned long long>(m.count), m.seconds,
                    m.per_second());
    } else {
        std::printf("{\"mode\": \"pingpong\", \"method\": \"%s\", \"size\": %zu, \"count\": %llu, "
                    "\"p50_ns\": %lld, \"p99_ns\": %lld}\n",
                    m.method.c_str(), m.size, static_cast<unsigned long long>(m.count),
                    static_cast<long long>(m.p50_ns), static_cast<long long>(m.p99_ns));
    }
    std::fflush(stdout);
}

template <class Transport>
void remove_transport(Transport& t) {
    if constexpr (requires { t.remove(); }) {
        t.remove();
    }
}

shared_result* shared_block() {
    void* memory = ::mmap(nullptr, sizeof(shared_result), PROT_READ | PROT_WRITE,
                          MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) {
        die("mmap");
    }
    return new (memory) shared_result{0, 0, 0};
}

int wait_for(pid_t child) {
    int status = 0;
    ::waitpid(child, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::int64_t to_ns(double seconds) {
    return static_cast<std::int64_t>(seconds * 1e9);
}

// A process that waits on a peer which died would wait for ever with some of the peers (an
// eventfd, a message queue): every process of a measurement ends by this alarm at the latest.
void bound_time(double seconds) {
    ::alarm(static_cast<unsigned>(seconds) + 60);
}

measurement throughput_of(const char* method, std::size_t size, std::uint64_t count,
                          std::int64_t start, const shared_result& result) {
    measurement m{"throughput", method, size};
    m.count = count;
    m.seconds = static_cast<double>(result.end_ns - start) / 1e9;
    return m;
}

measurement latency_of(const char* method, std::size_t size, std::vector<std::int64_t>& samples) {
    std::sort(samples.begin(), samples.end());
    const auto at = [&samples](double q) {
        return samples[std::min(samples.size() - 1, static_cast<std::size_t>(q * samples.size()))];
    };
    measurement m{"pingpong", method, size};
    m.count = samples.size();
    m.p50_ns = at(0.5);
    m.p99_ns = at(0.99);
    return m;
}

// Receives until the record of zeros, checking each sequence number; how many it received.
template <std::size_t Size, class Receive>
void receive_until_end(Receive receive, shared_result& result) {
    record<Size> r;
    std::uint64_t n = 0;
    for (;;) {
        receive(r);
        if (holds(r, 0)) {
            break;
        }
        if (!holds(r, ++n)) {
            result.failed = 1;
            break;
        }
    }
    result.records = n;
    result.end_ns = now_ns();
}

template <std::size_t Size, class Transport>
measurement throughput(const char* method, Transport transport, double seconds) {
    shared_result* result = shared_block();
    const pid_t child = ::fork();
    if (child == 0) {
        bound_time(seconds);
        pin_to(1);
        transport.as_receiver();
        receive_until_end<Size>([&transport](record<Size>& r) { transport.receive(r); }, *result);
        std::fflush(nullptr);
        ::_exit(0);
    }
    pin_to(0);
    transport.as_sender();
    record<Size> r;
    const std::int64_t start = now_ns();
    const std::int64_t stop = start + to_ns(seconds);
    std::uint64_t n = 0;
    do {
        for (int i = 0; i < 64; ++i) { // the clock read once per 64 records
            fill(r, ++n);
            transport.send(r);
        }
    } while (now_ns() < stop);
    fill(r, 0);
    transport.send(r);
    if constexpr (requires { transport.flush(); }) {
        transport.flush();
    }
    if (wait_for(child) != 0 || result->failed != 0 || result->records != n) {
        die(std::string(method) + ": the receiver failed or found a wrong record");
    }
    remove_transport(transport);
    const measurement m = throughput_of(method, Size, n, start, *result);
    ::munmap(result, sizeof *result);
    return m;
}

// The timing side of a ping-pong: a tenth of the time to warm up, then round trips timed one by
// one until the time is up (at most `cap`).
struct pingpong_clock {
    std::int64_t warm;
    std::int64_t stop;
    std::vector<std::int64_t> samples;
    static constexpr std::size_t cap = 4'000'000;

    explicit pingpong_clock(double seconds) {
        const std::int64_t start = now_ns();
        warm = start + to_ns(seconds / 10);
        stop = warm + to_ns(seconds);
        samples.reserve(cap);
    }
    // Records one round trip; false when the time is up.
    bool record_trip(std::int64_t start, std::int64_t end) {
        if (start >= warm) {
            samples.push_back(end - start);
        }
        return end < stop && samples.size() < cap;
    }
};

template <std::size_t Size, class Transport>
measurement pingpong(const char* method, Transport there, Transport back, double seconds) {
    const pid_t child = ::fork();
    if (child == 0) {
        bound_time(seconds);
        pin_to(1);
        there.as_receiver();
        back.as_sender();
        record<Size> r;
        do {
            there.receive(r);
            back.send(r);
        } while (!holds(r, 0));
        ::_exit(0);
    }
    pin_to(0);
    there.as_sender();
    back.as_receiver();
    pingpong_clock timer(seconds);
    record<Size> r;
    for (std::uint64_t n = 1;; ++n) {
        fill(r, n);
        const std::int64_t start = now_ns();
        there.send(r);
        back.receive(r);
        const std::int64_t end = now_ns();
        if (!holds(r, n)) {
            die(std::string(method) + ": a wrong record came back");
        }
        if (!timer.record_trip(start, end)) {
            break;
        }
    }
    fill(r, 0);
    there.send(r);
    back.receive(r);
    if (wait_for(child) != 0) {
        die(std::string(method) + ": the echoing process failed");
    }
    remove_transport(there);
    remove_transport(back);
    return latency_of(method, Size, timer.samples);
}

// The channel, awaited on both sides: each process runs a loop of its own.
template <std::size_t Size>
ringio::task<> send_for(ringio::io_context& context, ringio::channel_sender<record<Size>>& out,
                        std::int64_t stop, std::uint64_t& sent) {
    record<Size> r;
    std::uint64_t n = 0;
    do {
        for (int i = 0; i < 64; ++i) {
            fill(r, ++n);
            co_await out.send(context, r);
        }
    } while (now_ns() < stop);
    fill(r, 0);
    co_await out.send(context, r);
    sent = n;
}

template <std::size_t Size>
ringio::task<> receive_all(ringio::io_context& context, ringio::channel_receiver<record<Size>>& in,
                           shared_result& result) {
    std::uint64_t n = 0;
    for (;;) {
        const auto r = co_await in.receive(context);
        if (!r) {
            result.failed = 1;
            break;
        }
        if (holds(*r, 0)) {
            break;
        }
        if (!holds(*r, ++n)) {
            result.failed = 1;
            break;
        }
    }
    result.records = n;
    result.end_ns = now_ns();
}

// A throughput run over a channel of 64 records: `receive(receiver, result)` in a forked child on
// CPU 1, `send(sender, stop)` here on CPU 0, which sends until `stop`, then the record of zeros,
// and returns how many records it sent before it.
template <std::size_t Size, class Receive, class Send>
measurement channel_throughput(const char* method, Receive receive, Send send, double seconds) {
    shared_result* result = shared_block();
    auto channel = ringio::channel<record<Size>>::anonymous(64);
    const pid_t child = ::fork();
    if (child == 0) {
        bound_time(seconds);
        pin_to(1);
        ringio::channel_receiver in(std::move(channel));
        receive(in, *result);
        ::_exit(0);
    }
    pin_to(0);
    std::uint64_t sent = 0;
    std::int64_t start = 0;
    {
        ringio::channel_sender out(std::move(channel));
        start = now_ns();
        sent = send(out, start + to_ns(seconds));
    }
    if (wait_for(child) != 0 || result->failed != 0 || result->records != sent) {
        die(std::string(method) + ": the receiver failed or found a wrong record");
    }
    const measurement m = throughput_of(method, Size, sent, start, *result);
    ::munmap(result, sizeof *result);
    return m;
}

template <std::size_t Size>
measurement throughput_awaited(double seconds) {
    const auto receive = [](ringio::channel_receiver<record<Size>>& in, shared_result& result) {
        ringio::io_context context;
        ringio::sync_wait(context, receive_all<Size>(context, in, result));
    };
    const auto send = [](ringio::channel_sender<record<Size>>& out, std::int64_t stop) {
        ringio::io_context context;
        std::uint64_t sent = 0;
        ringio::sync_wait(context, send_for<Size>(context, out, stop, sent));
        return sent;
    };
    return channel_throughput<Size>("channel_awaited", receive, send, seconds);
}

// ringio's channel in place: the sender fills each record in the slot it is sent from and
// commits a span at once, the receiver checks them where they lie and consumes them at once;
// either blocks only when the channel is full or empty.
template <std::size_t Size>
measurement throughput_in_place(double seconds) {
    const auto receive = [](ringio::channel_receiver<record<Size>>& in, shared_result& result) {
        std::uint64_t n = 0;
        for (bool end = false; !end;) {
            const std::span<const record<Size>> records = in.peek();
            for (const record<Size>& r : records) {
                if (holds(r, 0)) { // the last
                    end = true;
                    break;
                }
                if (!holds(r, ++n)) {
                    result.failed = 1;
                    end = true;
                    break;
                }
            }
            in.consume(records.size());
            end = end || records.empty();
        }
        result.records = n;
        result.end_ns = now_ns();
    };
    const auto send = [](ringio::channel_sender<record<Size>>& out, std::int64_t stop) {
        std::uint64_t n = 0;
        do {
            // Spans of up to 16 of the 64 slots: the receiver checks one while this fills another.
            const std::span<record<Size>> slots = out.prepare(16);
            for (record<Size>& slot : slots) {
                fill(slot, ++n);
            }
            out.commit(slots.size());
        } while (now_ns() < stop);
        fill(out.prepare(1)[0], 0);
        out.commit(1);
        return n;
    };
    return channel_throughput<Size>("channel_in_place", receive, send, seconds);
}

// The floor of any shared-memory transport, for comparison: a ring of 64 slots in anonymous
// shared memory, written by hand, both ends spinning (no system call at all, no liveness, no
// closing), records written and checked in place in spans of up to 16, each end's count
// published once a span: what is left is writing each record, reading it, and moving its cache
// lines between the cores.
template <std::size_t Size>
struct spin_ring {
    alignas(64) std::atomic<std::uint64_t> sent{0};
    alignas(64) std::atomic<std::uint64_t> taken{0};
    alignas(64) record<Size> slots[64];
};

inline void spin_pause() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

template <std::size_t Size>
measurement throughput_floor(double seconds) {
    shared_result* result = shared_block();
    void* memory = ::mmap(nullptr, sizeof(spin_ring<Size>), PROT_READ | PROT_WRITE,
                          MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) {
        die("shm_floor: mmap");
    }
    auto* ring = ::new (memory) spin_ring<Size>;
    const pid_t child = ::fork();
    if (child == 0) {
        bound_time(seconds);
        pin_to(1);
        std::uint64_t n = 0;
        std::uint64_t at = 0;
        for (bool end = false; !end;) {
            std::uint64_t sent = 0;
            while ((sent = ring->sent.load(std::memory_order_acquire)) == at) {
                spin_pause();
            }
            const std::uint64_t upto = std::min(sent, at + 16);
            for (; at < upto && !end; ++at) {
                const record<Size>& r = ring->slots[at % 64];
                if (holds(r, 0)) {
                    end = true;
                } else if (!holds(r, ++n)) {
                    result->failed = 1;
                    end = true;
                }
            }
            ring->taken.store(at, std::memory_order_release);
        }
        result->records = n;
        result->end_ns = now_ns();
        ::_exit(0);
    }
    pin_to(0);
    const std::int64_t start = now_ns();
    const std::int64_t stop = start + to_ns(seconds);
    std::uint64_t n = 0;
    std::uint64_t at = 0;
    const auto room = [ring, &at] {
        std::uint64_t taken = 0;
        while (at - (taken = ring->taken.load(std::memory_order_acquire)) == 64) {
            spin_pause();
        }
        return taken + 64;
    };
    do {
        const std::uint64_t upto = std::min(room(), at + 16);
        for (; at < upto; ++at) {
            fill(ring->slots[at % 64], ++n);
        }
        ring->sent.store(at, std::memory_order_release);
    } while (now_ns() < stop);
    room();
    fill(ring->slots[at % 64], 0);
    ring->sent.store(++at, std::memory_order_release);
    if (wait_for(child) != 0 || result->failed != 0 || result->records != n) {
        die("shm_floor: the receiver failed or found a wrong record");
    }
    const measurement m = throughput_of("shm_floor", Size, n, start, *result);
    ::munmap(result, sizeof *result);
    ::munmap(memory, sizeof(spin_ring<Size>));
    return m;
}

template <std::size_t Size>
ringio::task<> echo_awaited(ringio::io_context& context, ringio::channel_receiver<record<Size>>& in,
                            ringio::channel_sender<record<Size>>& out) {
    for (;;) {
        const auto r = co_await in.receive(context);
        if (!r) {
            die("channel_awaited: ended early");
        }
        co_await out.send(context, *r);
        if (holds(*r, 0)) {
            break;
        }
    }
}

template <std::size_t Size>
ringio::task<> time_awaited(ringio::io_context& context, ringio::channel_sender<record<Size>>& out,
                            ringio::channel_receiver<record<Size>>& in, pingpong_clock& timer) {
    record<Size> r;
    for (std::uint64_t n = 1;; ++n) {
        fill(r, n);
        const std::int64_t start = now_ns();
        co_await out.send(context, r);
        const auto back = co_await in.receive(context);
        const std::int64_t end = now_ns();
        if (!back || !holds(*back, n)) {
            die("channel_awaited: a wrong record came back");
        }
        if (!timer.record_trip(start, end)) {
            break;
        }
    }
    fill(r, 0);
    co_await out.send(context, r);
    (void)co_await in.receive(context);
}

template <std::size_t Size>
measurement pingpong_awaited(double seconds) {
    auto there = ringio::channel<record<Size>>::anonymous(64);
    auto back = ringio::channel<record<Size>>::anonymous(64);
    const pid_t child = ::fork();
    if (child == 0) {
        bound_time(seconds);
        pin_to(1);
        ringio::channel_receiver in(std::move(there));
        ringio::channel_sender out(std::move(back));
        ringio::io_context context;
        ringio::sync_wait(context, echo_awaited<Size>(context, in, out));
        ::_exit(0);
    }
    pin_to(0);
    pingpong_clock timer(seconds);
    {
        ringio::channel_sender out(std::move(there));
        ringio::channel_receiver in(std::move(back));
        ringio::io_context context;
        ringio::sync_wait(context, time_awaited<Size>(context, out, in, timer));
    }
    if (wait_for(child) != 0) {
        die("channel_awaited: the echoing process failed");
    }
    return latency_of("channel_awaited", Size, timer.samples);
}

constexpr std::string_view methods[] = {
    "channel_blocking", "channel_batch", "channel_in_place", "channel_awaited",
    "unix_socket",      "pipe",          "eventfd_shm",      "shm_floor",
#if CHANNEL_BENCH_BOOST
    "boost_mq",
#endif
};

template <std::size_t Size>
measurement run(std::string_view mode, std::string_view method, double seconds) {
    const bool through = mode == "throughput";
    bound_time(seconds);
    const std::string queue = "ringio_bench_" + std::to_string(::getpid());
    if (method == "channel_awaited") {
        return through ? throughput_awaited<Size>(seconds) : pingpong_awaited<Size>(seconds);
    }
    if (method == "channel_blocking") {
        return through
                   ? throughput<Size>("channel_blocking", channel_transport<Size>::make(), seconds)
                   : pingpong<Size>("channel_blocking", channel_transport<Size>::make(),
                                    channel_transport<Size>::make(), seconds);
    }
    if (method == "channel_in_place") {
        if (!through) {
            die("channel_in_place measures throughput only: a ping-pong has one record to send");
        }
        return throughput_in_place<Size>(seconds);
    }
    if (method == "shm_floor") {
        if (!through) {
            die("shm_floor measures throughput only");
        }
        return throughput_floor<Size>(seconds);
    }
    if (method == "channel_batch") {
        if (!through) {
            die("channel_batch measures throughput only: a ping-pong has one record to send");
        }
        return throughput<Size>("channel_batch", channel_batch_transport<Size>::make(), seconds);
    }
    if (method == "unix_socket" || method == "pipe") {
        const bool socket = method == "unix_socket";
        const char* name = socket ? "unix_socket" : "pipe";
        return through ? throughput<Size>(name, stream_transport<Size>::make(socket), seconds)
                       : pingpong<Size>(name, stream_transport<Size>::make(socket),
                                        stream_transport<Size>::make(socket), seconds);
    }
    if (method == "eventfd_shm") {
        return through ? throughput<Size>("eventfd_shm", eventfd_transport<Size>::make(), seconds)
                       : pingpong<Size>("eventfd_shm", eventfd_transport<Size>::make(),
                                        eventfd_transport<Size>::make(), seconds);
    }
#if CHANNEL_BENCH_BOOST
    if (method == "boost_mq") {
        return through
                   ? throughput<Size>("boost_mq", boost_transport<Size>::make(queue + "a"), seconds)
                   : pingpong<Size>("boost_mq", boost_transport<Size>::make(queue + "a"),
                                    boost_transport<Size>::make(queue + "b"), seconds);
    }
#endif
    die("unknown method " + std::string(method));
}

measurement run_sized(std::string_view mode, std::string_view method, std::size_t size,
                      double seconds) {
    if (mode != "throughput" && mode != "pingpong") {
        die("MODE must be throughput or pingpong");
    }
    if (size == 64) {
        return run<64>(mode, method, seconds);
    }
    if (size == 4096) {
        return run<4096>(mode, method, seconds);
    }
    die("SIZE must be 64 or 4096");
}

template <class T>
T median_of(std::vector<T> values) {
    std::sort(values.begin(), values.end());
    return values[values.size() / 2];
}

// Every method, size and mode, `rounds` times interleaved; one JSON line per measurement, then a
// table of the medians with their ratios to the Unix socket's.
void run_all(double seconds, int rounds) {
    std::vector<measurement> all;
    for (int round = 0; round < rounds; ++round) {
        for (const std::size_t size : {64, 4096}) {
            for (const std::string_view mode : {"throughput", "pingpong"}) {
                for (const std::string_view method : methods) {
                    if (mode == "pingpong" &&
                        (method == "channel_batch" || method == "channel_in_place" ||
                         method == "shm_floor")) {
                        continue;
                    }
                    all.push_back(run_sized(mode, method, size, seconds));
                    print_json(all.back());
                }
            }
        }
    }
    const auto pick = [&all](std::string_view mode, std::string_view method, std::size_t size,
                             auto value) {
        std::vector<double> values;
        for (const auto& m : all) {
            if (m.mode == mode && m.method == method && m.size == size) {
                values.push_back(value(m));
            }
        }
        return values.empty() ? std::nan("") : median_of(values);
    };
    const auto rate = [](const measurement& m) {
        return m.per_second();
    };
    const auto p50 = [](const measurement& m) {
        return static_cast<double>(m.p50_ns);
    };
    const auto p99 = [](const measurement& m) {
        return static_cast<double>(m.p99_ns);
    };
    std::printf("\nmedians of %d round(s) of %.1f s each; ratios to the Unix stream socket's\n",
                rounds, seconds);
    std::printf("%-5s %-17s %14s %10s %9s | %10s %10s %10s\n", "size", "method", "records/s",
                "MB/s", "x socket", "p50 ns", "p99 ns", "p50/socket");
    for (const std::size_t size : {64, 4096}) {
        const double socket_rate = pick("throughput", "unix_socket", size, rate);
        const double socket_p50 = pick("pingpong", "unix_socket", size, p50);
        for (const std::string_view method : methods) {
            const double r = pick("throughput", method, size, rate);
            const double l = pick("pingpong", method, size, p50);
            std::printf("%-5zu %-17.*s %14.0f %10.1f %9.2f | %10.0f %10.0f %10.2f\n", size,
                        static_cast<int>(method.size()), method.data(), r,
                        r * static_cast<double>(size) / 1e6, r / socket_rate, l,
                        pick("pingpong", method, size, p99), l / socket_p50);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The futex wait, for callgrind: the waiter (measured) waits for the peer's odd numbers and
// writes the even ones; the peer lets DELAY_US pass before each of its writes, so that the waiter
// is surely asleep when it comes.

std::uint32_t* map_word(const char* path) {
    const int fd = ::open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || ::ftruncate(fd, 4096) != 0) {
        die(std::string("open ") + path);
    }
    void* memory = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ::close(fd);
    if (memory == MAP_FAILED) {
        die("mmap");
    }
    return static_cast<std::uint32_t*>(memory);
}

void futex_peer(const char* path, std::uint32_t count, unsigned delay_us) {
    ringio::shared_atomic_ref word{*map_word(path)};
    pin_to(1);
    for (std::uint32_t i = 0; i < count; ++i) {
        ::usleep(delay_us);
        word.store(2 * i + 1, std::memory_order_release);
        word.notify_all();
        word.wait(2 * i + 1, std::memory_order_acquire); // until the waiter's even number
    }
}

ringio::task<> wait_awaited(ringio::io_context& context,
                            ringio::shared_atomic_ref<std::uint32_t> word, std::uint32_t count) {
    for (std::uint32_t i = 0; i < count; ++i) {
        while (word.load(std::memory_order_acquire) != 2 * i + 1) {
            co_await ringio::wait(context, word, 2 * i, std::memory_order_acquire);
        }
        word.store(2 * i + 2, std::memory_order_release);
        word.notify_all();
    }
}

// The floor of any wait through io_uring, for comparison: the same waits on a bare ring, written
// by hand with no loop, coroutine or error reporting around them: one SQE filled from the
// kernel's ABI (IORING_OP_FUTEX_WAIT, FUTEX2_SIZE_U32, shared), one submit-and-wait, one CQE.
void wait_raw(std::uint32_t* word, std::uint32_t count) {
    constexpr int op_futex_wait = 51;
    constexpr int futex2_u32 = 0x02;
    io_uring ring;
    if (::io_uring_queue_init(8, &ring, 0) != 0) {
        die("io_uring_queue_init");
    }
    for (std::uint32_t i = 0; i < count; ++i) {
        while (__atomic_load_n(word, __ATOMIC_ACQUIRE) != 2 * i + 1) {
            io_uring_sqe* sqe = ::io_uring_get_sqe(&ring);
            ::io_uring_prep_rw(op_futex_wait, sqe, futex2_u32, word, 0, 2 * i);
            sqe->addr3 = FUTEX_BITSET_MATCH_ANY;
            io_uring_cqe* cqe = nullptr;
            if (::io_uring_submit_and_wait(&ring, 1) < 0 || ::io_uring_peek_cqe(&ring, &cqe) != 0) {
                die("io_uring_submit_and_wait");
            }
            const int result = cqe->res;
            ::io_uring_cqe_seen(&ring, cqe);
            if (result < 0 && result != -EAGAIN) {
                die("IORING_OP_FUTEX_WAIT: " + std::string(std::strerror(-result)));
            }
        }
        __atomic_store_n(word, 2 * i + 2, __ATOMIC_RELEASE);
        ::syscall(SYS_futex, word, FUTEX_WAKE, INT32_MAX, nullptr, nullptr, 0);
    }
    ::io_uring_queue_exit(&ring);
}

void futex_waiter(const char* path, std::uint32_t count, std::string_view how) {
    ringio::shared_atomic_ref word{*map_word(path)};
    pin_to(0);
    if (how == "blocking") {
        for (std::uint32_t i = 0; i < count; ++i) {
            word.wait(2 * i, std::memory_order_acquire);
            word.store(2 * i + 2, std::memory_order_release);
            word.notify_all();
        }
    } else if (how == "raw") {
        wait_raw(word.address(), count);
    } else {
        ringio::io_context context;
        ringio::sync_wait(context, wait_awaited(context, word, count));
    }
    std::printf("{\"mode\": \"futex_waiter\", \"how\": \"%.*s\", \"count\": %u, \"native\": %s}\n",
                static_cast<int>(how.size()), how.data(), count,
                ringio::detail::futex_support::available() ? "true" : "false");
}

// ---------------------------------------------------------------------------------------------
// Both ends in one process, for callgrind: ROUNDS times, 64 sends then 64 receives through a
// channel of 64, so that no call waits; the slope between two counts of rounds is what a send and
// a receive cost in user-space instructions.

ringio::task<> local_awaited(ringio::io_context& context, ringio::channel_sender<record<64>>& out,
                             ringio::channel_receiver<record<64>>& in, std::uint64_t rounds,
                             std::uint64_t& sum) {
    record<64> r{};
    for (std::uint64_t k = 0; k < rounds; ++k) {
        for (std::uint64_t i = 0; i < 64; ++i) {
            r.words[0] = i;
            co_await out.send(context, r);
        }
        for (int i = 0; i < 64; ++i) {
            sum += (co_await in.receive(context))->words[0];
        }
    }
}

void local_pairs(std::uint64_t rounds, std::string_view how) {
    auto first = ringio::channel<record<64>>::memfd("channel_bench", 64);
    auto second = ringio::channel<record<64>>::open(first.fd());
    ringio::channel_sender out(std::move(first));
    ringio::channel_receiver in(std::move(second));
    std::uint64_t sum = 0;
    if (how == "awaited") {
        ringio::io_context context;
        ringio::sync_wait(context, local_awaited(context, out, in, rounds, sum));
    } else {
        record<64> r{};
        for (std::uint64_t k = 0; k < rounds; ++k) {
            for (std::uint64_t i = 0; i < 64; ++i) {
                r.words[0] = i;
                out.send(r);
            }
            for (int i = 0; i < 64; ++i) {
                sum += in.receive()->words[0];
            }
        }
    }
    if (sum != rounds * (63 * 64 / 2)) {
        die("local: a record went missing");
    }
    std::printf("{\"mode\": \"local\", \"how\": \"%.*s\", \"rounds\": %llu}\n",
                static_cast<int>(how.size()), how.data(), static_cast<unsigned long long>(rounds));
}

} // namespace

int main(int argc, char* argv[]) {
    std::vector<std::string_view> args(argv + 1, argv + argc);
    if (!args.empty() && args.back() == "--no-pin") {
        pin = false;
        args.pop_back();
    }
    ::signal(SIGPIPE, SIG_IGN); // a peer that ended is an error from write, not a silent exit
    try {
        if (!args.empty() && args[0] == "all" &&
            (args.size() == 1 || (args.size() == 2 && args[1] == "--quick"))) {
            const bool quick = args.size() == 2;
            run_all(quick ? 0.2 : 1.0, quick ? 1 : 3);
            return 0;
        }
        if (args.size() == 4 && (args[0] == "throughput" || args[0] == "pingpong")) {
            print_json(run_sized(args[0], args[1], std::strtoull(argv[3], nullptr, 10),
                                 std::strtod(argv[4], nullptr)));
            return 0;
        }
        if (args.size() == 4 && args[0] == "futex_peer") {
            futex_peer(argv[2], static_cast<std::uint32_t>(std::strtoul(argv[3], nullptr, 10)),
                       static_cast<unsigned>(std::strtoul(argv[4], nullptr, 10)));
            return 0;
        }
        if (args.size() == 3 && args[0] == "local" &&
            (args[2] == "blocking" || args[2] == "awaited")) {
            local_pairs(std::strtoull(argv[2], nullptr, 10), args[2]);
            return 0;
        }
        if (args.size() == 4 && args[0] == "futex_waiter") {
            futex_waiter(argv[2], static_cast<std::uint32_t>(std::strtoul(argv[3], nullptr, 10)),
                         args[3]);
            return 0;
        }
    } catch (const std::exception& e) {
        die(e.what());
    }
    std::fputs("usage: channel_bench all [--quick] [--no-pin]\n"
               "       channel_bench throughput|pingpong METHOD 64|4096 SECONDS [--no-pin]\n"
               "       channel_bench futex_peer PATH COUNT DELAY_US\n"
               "       channel_bench futex_waiter PATH COUNT blocking|awaited|raw\n"
               "       channel_bench local ROUNDS blocking|awaited\n",
               stderr);
    return 2;
}
