// load_client: the load generator of the benchmarks and of the reliability tests. Plain
// non-blocking sockets and epoll, no ringio: the server is what is measured or tested, and every
// byte that comes back is checked.
//
// load_client MODE PORT [options]; every mode exits 0 when all was verified, 1 on a wrong byte,
// an early close, a stall or too many losses (described on stderr), 2 on a usage error. `--help`
// prints the modes and their options.

#include "cycle.hpp"
#include "datagrams.hpp"
#include "echo_set.hpp"
#include "messages.hpp"
#include "stall.hpp"

#include <atomic>
#include <charconv>
#include <functional>
#include <set>
#include <string_view>

namespace {

using namespace load;

constexpr const char* usage_text = R"(usage: load_client MODE PORT [options]

Modes (TCP to 127.0.0.1 unless said otherwise):
  rate       --connections N echo --size S bytes in a closed loop, every byte checked: for
             --warmup W seconds, then --seconds T counted (with --pause, the rounds stop after
             the warm-up, `paused` is printed, and they go on when a line arrives on stdin),
             or --round-trips K in all. --keep-open holds the connections afterwards until
             SIGTERM or --hold H seconds. --udp: connected UDP sockets, a datagram a round.
             Prints round_trips= seconds= rate= connections= size=
  idle       opens --connections N, makes one round trip of --size S bytes on each (S 0: none,
             for servers that do not echo), prints `idle_ready`, and holds them until SIGTERM
             or --hold H seconds.
  cycle      connect, echo --size S bytes, close, again; --connections N at a time, --cycles K
             in all or for --seconds T. Prints cycles= seconds= rate=, and with --server-pid P
             the server's CPU time (user and system) over the cycles and per cycle.
  stall      --peers N connections send without pause and never read; once they have stopped
             (no byte for 0.5 s, or after --settle T seconds) a healthy client echoes --echoes E
             messages of --size S bytes, --gap G seconds apart, each timed (one that takes
             --echo-timeout X seconds ends it; peers the server drops are counted in
             peers_closed=). Prints p50_us= p99_us= max_us=, and with
             --server-pid P the server's resident KiB before, with the peers stalled, and after.
  messages   --connections N, alternately IPv4 and IPv6, all open before any traffic, each
             sending --messages M messages of log-uniform sizes from 1 byte to --max-size B,
             then a half-close; --buffer B shrinks both socket buffers so that reads and writes
             are cut short; --duration T replaces each finished connection until T seconds have
             passed (a soak); --seed.
  datagrams  --sockets N UDP sockets, alternately IPv4 and IPv6, each sending --datagrams D of
             log-uniform sizes from 16 bytes to --max-size B, at most --window W unanswered per
             socket and --in-flight B bytes in all; fails above --max-loss F lost; --seed.

Also: --idle N (rate, cycle, stall) opens N idle connections as the idle mode does, prints
`idle_ready`, then runs the mode and checks that the server closed none of them; --stall X
fails a run in which a connection makes no progress for X seconds; --cpu C pins the client;
--host A connects to another IPv4 address.
)";

[[noreturn]] void usage() {
    std::fputs(usage_text, stderr);
    std::exit(2);
}

struct options {
    std::string mode;
    std::uint16_t port = 0;
    std::string host = "127.0.0.1";
    std::size_t connections = 0; // 0: the mode's default
    std::size_t size = 128;
    double seconds = 3;
    double warmup = 1;
    long long round_trips = 0;
    bool keep_open = false;
    bool pause = false;
    bool udp = false;
    double hold = 600;
    double stall = 0; // 0: the mode's default
    int cpu = -1;
    std::size_t idle = 0;
    long long cycles = 0;
    long server_pid = 0;
    std::size_t peers = 1000;
    std::size_t echoes = 50;
    double gap = 0.005;
    double settle = 10;
    double echo_timeout = 10;
    messages_options messages;
    datagrams_options datagrams;
};

bool parse(std::string_view text, double& value) {
    const std::string copy(text);
    char* end = nullptr;
    value = std::strtod(copy.c_str(), &end);
    return !copy.empty() && end == copy.c_str() + copy.size() && value >= 0;
}

template <typename Integer>
bool parse(std::string_view text, Integer& value) {
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    return error == std::errc{} && end == text.data() + text.size() && !(value < Integer{0});
}

// One option: the modes that take it (space-separated), and how it reads its value; a flag
// takes none.
struct option_spec {
    std::string_view name;
    std::string_view modes;
    std::function<bool(std::string_view)> set;
    bool flag = false;
};

options parse_arguments(int argc, char** argv) {
    if (argc < 3) {
        usage();
    }
    options o;
    o.mode = argv[1];
    std::size_t port = 0;
    if (!parse(std::string_view(argv[2]), port) || port == 0 || port > 65535) {
        usage();
    }
    o.port = o.messages.port = o.datagrams.port = static_cast<std::uint16_t>(port);
    auto value = [](auto& field) {
        return [&field](std::string_view text) {
            return parse(text, field);
        };
    };
    const std::vector<option_spec> specs = {
        {"--host", "rate idle cycle stall",
         [&](std::string_view t) {
             return !(o.host = t).empty();
         }},
        {"--connections", "rate idle cycle messages", value(o.connections)},
        {"--size", "rate idle cycle stall", value(o.size)},
        {"--seconds", "rate cycle", value(o.seconds)},
        {"--warmup", "rate", value(o.warmup)},
        {"--round-trips", "rate", value(o.round_trips)},
        {"--keep-open", "rate", [&](std::string_view) { return o.keep_open = true; }, true},
        {"--pause", "rate", [&](std::string_view) { return o.pause = true; }, true},
        {"--udp", "rate", [&](std::string_view) { return o.udp = true; }, true},
        {"--hold", "rate idle", value(o.hold)},
        {"--stall", "rate idle cycle stall messages", value(o.stall)},
        {"--cpu", "rate idle cycle stall", value(o.cpu)},
        {"--idle", "rate cycle stall", value(o.idle)},
        {"--cycles", "cycle", value(o.cycles)},
        {"--server-pid", "cycle stall", value(o.server_pid)},
        {"--peers", "stall", value(o.peers)},
        {"--echoes", "stall", value(o.echoes)},
        {"--gap", "stall", value(o.gap)},
        {"--settle", "stall", value(o.settle)},
        {"--echo-timeout", "stall", value(o.echo_timeout)},
        {"--messages", "messages", value(o.messages.messages)},
        {"--buffer", "messages", value(o.messages.buffer)},
        {"--duration", "messages", value(o.messages.duration)},
        {"--sockets", "datagrams", value(o.datagrams.sockets)},
        {"--datagrams", "datagrams", value(o.datagrams.datagrams)},
        {"--window", "datagrams", value(o.datagrams.window)},
        {"--in-flight", "datagrams", value(o.datagrams.in_flight)},
        {"--max-loss", "datagrams", value(o.datagrams.max_loss)},
        {"--max-size", "messages datagrams",
         [&](std::string_view t) {
             return parse(t, o.messages.max_size) && parse(t, o.datagrams.max_size);
         }},
        {"--seed", "messages datagrams",
         [&](std::string_view t) {
             return parse(t, o.messages.seed) && parse(t, o.datagrams.seed);
         }},
    };
    for (int i = 3; i < argc; ++i) {
        const std::string_view name = argv[i];
        const auto spec = std::find_if(specs.begin(), specs.end(),
                                       [&](const option_spec& s) { return s.name == name; });
        if (spec == specs.end() ||
            (" " + std::string(spec->modes) + " ").find(" " + o.mode + " ") == std::string::npos) {
            std::fprintf(stderr, "load_client: %s is not an option of mode %s\n", argv[i],
                         o.mode.c_str());
            usage();
        }
        if (!spec->flag && i + 1 >= argc) {
            usage();
        }
        if (!spec->set(spec->flag ? std::string_view() : std::string_view(argv[++i]))) {
            std::fprintf(stderr, "load_client: bad value for %s\n", argv[i - 1]);
            usage();
        }
    }
    if (o.connections == 0) {
        o.connections = o.mode == "messages" ? 1000 : 1;
    }
    o.messages.connections = o.connections;
    if (o.stall == 0) {
        o.stall = o.mode == "messages" ? 20 : 5;
    }
    o.messages.stall = o.stall;
    return o;
}

// The idle connections held beside a mode, if --idle asks for them: open, each having made one
// round trip (so the server has surely accepted it), before the mode begins.
std::unique_ptr<echo_set> open_idle(const options& o, const address& target, std::size_t count) {
    if (count == 0) {
        return nullptr;
    }
    auto idle = std::make_unique<echo_set>(target, o.size, false, o.stall);
    idle->open(count, o.size > 0 ? 1 : 0);
    std::printf("idle_ready connections=%zu\n", count);
    std::fflush(stdout);
    return idle;
}

void check_idle(echo_set* idle) {
    if (idle == nullptr) {
        return;
    }
    const std::size_t closed = idle->closed_by_server();
    if (closed > 0) {
        fail("the server closed " + std::to_string(closed) + " of the " +
             std::to_string(idle->size()) + " idle connections");
    }
}

int run_rate(const options& o, const address& target) {
    if (o.size == 0 || o.seconds <= 0) {
        usage();
    }
    auto idle = open_idle(o, target, o.idle);
    echo_set load(target, o.size, o.udp, o.stall);
    load.open(o.connections, 0);
    long long before = 0;
    bool interrupted = false;
    auto start = clock_type::now();
    if (o.round_trips > 0) {
        load.limit_total(o.round_trips);
        load.run([&] { return load.completed() == o.round_trips; }, true);
    } else {
        const auto warm_end = start + std::chrono::duration_cast<clock_type::duration>(
                                          std::chrono::duration<double>(o.warmup));
        load.run([&] { return load.clock() >= warm_end || stop_requested != 0; }, true);
        if (o.pause) {
            load.drain();
            std::printf("paused round_trips=%lld\n", load.completed());
            std::fflush(stdout);
            char line[64];
            if (std::fgets(line, sizeof line, stdin) == nullptr) {
                fail("stdin closed while paused");
            }
        }
        before = load.completed();
        start = clock_type::now();
        const auto end = start + std::chrono::duration_cast<clock_type::duration>(
                                     std::chrono::duration<double>(o.seconds));
        load.run([&] { return load.clock() >= end || stop_requested != 0; }, true);
        interrupted = stop_requested != 0;
        // The rounds under way are finished and counted, so that the count is exact.
        load.drain();
    }
    const double elapsed = seconds_since(start);
    const long long done = load.completed() - before;
    std::printf("round_trips=%lld seconds=%.6f rate=%.1f connections=%zu size=%zu\n", done, elapsed,
                static_cast<double>(done) / elapsed, o.connections, o.size);
    std::fflush(stdout);
    check_idle(idle.get());
    if (o.keep_open) {
        hold_open(o.hold);
    }
    return interrupted ? 1 : 0;
}

int run_idle(const options& o, const address& target) {
    auto idle = open_idle(o, target, o.connections);
    hold_open(o.hold);
    return 0;
}

int run_cycle(const options& o, const address& target) {
    if (o.size == 0) {
        usage();
    }
    auto idle = open_idle(o, target, o.idle);
    cycles load(target, o.connections, o.size, o.stall);
    const process_usage before = o.server_pid > 0 ? usage_of(o.server_pid) : process_usage{};
    const auto start = clock_type::now();
    const long long done = load.run(o.cycles, o.seconds);
    const double elapsed = seconds_since(start);
    std::printf("cycles=%lld seconds=%.6f rate=%.1f connections=%zu size=%zu idle=%zu", done,
                elapsed, static_cast<double>(done) / elapsed, o.connections, o.size, o.idle);
    if (o.server_pid > 0) {
        // The server handles the last closes after the client has counted them.
        ::usleep(200 * 1000);
        const double cpu = usage_of(o.server_pid).cpu_seconds - before.cpu_seconds;
        std::printf(" server_cpu_seconds=%.3f server_cpu_us_per_cycle=%.3f", cpu,
                    cpu * 1e6 / static_cast<double>(std::max(done, 1LL)));
    }
    std::printf("\n");
    std::fflush(stdout);
    check_idle(idle.get());
    return 0;
}

int run_stall(const options& o, const address& target) {
    if (o.size == 0 || o.echoes == 0) {
        usage();
    }
    const process_usage before = o.server_pid > 0 ? usage_of(o.server_pid) : process_usage{};
    auto idle = open_idle(o, target, o.idle);
    stalled_peers peers(target, o.stall);
    peers.open(o.peers);
    const bool settled = peers.settle(0.5, o.settle);
    const process_usage stalled = o.server_pid > 0 ? usage_of(o.server_pid) : process_usage{};
    echo_latencies healthy;
    std::atomic<bool> done = false;
    std::thread client([&] {
        healthy = healthy_echoes(target, o.size, o.echoes, o.gap, o.echo_timeout);
        done = true;
    });
    // The peers go on sending whenever the server makes room, while the healthy client echoes.
    while (!done) {
        peers.serve(10);
    }
    client.join();
    const process_usage after = o.server_pid > 0 ? usage_of(o.server_pid) : process_usage{};
    auto us = [&](double q) {
        return quantile(healthy.seconds, q) * 1e6;
    };
    std::printf("peers=%zu echoes=%zu completed=%zu p50_us=%.0f p99_us=%.0f max_us=%.0f "
                "connect_us=%.0f peer_mib=%.1f peers_closed=%zu settled=%d timed_out=%d",
                o.peers, o.echoes, healthy.seconds.size(), us(0.5), us(0.99), us(1.0),
                healthy.connect_seconds * 1e6,
                static_cast<double>(peers.bytes_sent()) / (1024.0 * 1024.0),
                peers.closed_by_server(), settled ? 1 : 0, healthy.failure.empty() ? 0 : 1);
    if (o.server_pid > 0) {
        std::printf(
            " server_rss_before_kib=%ld server_rss_stalled_kib=%ld server_rss_after_kib=%ld",
            before.resident_kib, stalled.resident_kib, after.resident_kib);
    }
    std::printf("\n");
    std::fflush(stdout);
    if (!healthy.failure.empty()) {
        std::fprintf(stderr, "load_client: stall: %s\n", healthy.failure.c_str());
    }
    check_idle(idle.get());
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    if (argc == 2 && std::string_view(argv[1]) == "--help") {
        std::fputs(usage_text, stdout);
        return 0;
    }
    const options o = parse_arguments(argc, argv);
    std::signal(SIGPIPE, SIG_IGN);
    if (o.mode == "messages") {
        if (o.messages.connections < 2 || o.messages.messages < 1 || o.messages.max_size < 1) {
            usage();
        }
        return messages_run(o.messages).run();
    }
    if (o.mode == "datagrams") {
        const datagrams_options& d = o.datagrams;
        if (d.sockets < 2 || d.datagrams < 1 || d.window < 1 || d.max_size < header_size ||
            d.max_size > 65507) {
            usage();
        }
        return datagrams_run(d).run();
    }
    pin(o.cpu);
    std::signal(SIGINT, on_stop_signal);
    std::signal(SIGTERM, on_stop_signal);
    const address target = ipv4(o.host, o.port);
    if (o.mode == "rate") {
        raise_descriptor_limit(o.connections + o.idle + 64);
        return run_rate(o, target);
    }
    if (o.mode == "idle") {
        raise_descriptor_limit(o.connections + 64);
        return run_idle(o, target);
    }
    if (o.mode == "cycle") {
        raise_descriptor_limit(o.connections + o.idle + 64);
        return run_cycle(o, target);
    }
    if (o.mode == "stall") {
        raise_descriptor_limit(o.peers + o.idle + 64);
        return run_stall(o, target);
    }
    usage();
}
