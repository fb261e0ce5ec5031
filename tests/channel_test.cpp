#include <ringio/channel.hpp>

#include <ringio/cancellation.hpp>
#include <ringio/futex.hpp>
#include <ringio/io_context.hpp>
#include <ringio/task.hpp>
#include <ringio/timer.hpp>

#include "allocation_counter.hpp"
#include "channel_peer.hpp"
#include "child_process.hpp"
#include "futex_fallback.hpp"
#include "temp_dir.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using namespace ringio::testing;

extern char** environ;

namespace {

using record_channel = ringio::channel<peer_record>;
using sender = ringio::channel_sender<peer_record>;
using receiver = ringio::channel_receiver<peer_record>;
using ringio::testing::fallback_forced;
using ringio::testing::runs;

// A 4 KiB record, every word of which repeats its sequence number.
struct page_record {
    std::uint64_t words[512];
};

// What an awaited receive ended with: the records, in order and whole, then the end or an error.
struct received {
    std::uint64_t count = 0;
    bool in_order = true;
    bool ended = false;
    std::error_code error;
    std::string message;
};

ringio::task<> receive_all(ringio::io_context& context, receiver& in, received& out) {
    for (;;) {
        std::optional<peer_record> record;
        try {
            record = co_await in.receive(context);
        } catch (const std::system_error& e) {
            out.error = e.code();
            out.message = e.what();
            co_return;
        }
        if (!record) {
            out.ended = true;
            co_return;
        }
        out.in_order = out.in_order && record->sequence == out.count + 1 && whole(*record);
        ++out.count;
    }
}

// As `receive_all`, reading the records where they lie: an awaited peek, then a consume.
ringio::task<> peek_all(ringio::io_context& context, receiver& in, received& out) {
    for (;;) {
        std::span<const peer_record> records;
        try {
            records = co_await in.peek(context);
        } catch (const std::system_error& e) {
            out.error = e.code();
            out.message = e.what();
            co_return;
        }
        if (records.empty()) {
            out.ended = true;
            co_return;
        }
        for (const peer_record& r : records) {
            out.in_order = out.in_order && r.sequence == out.count + 1 && whole(r);
            ++out.count;
        }
        in.consume(records.size());
    }
}

// Receives with the blocking calls, as `receive_all` does awaited.
received receive_blocking(receiver& in, std::uint64_t already = 0) {
    received out;
    out.count = already;
    try {
        while (const auto record = in.receive()) {
            out.in_order = out.in_order && record->sequence == out.count + 1 && whole(*record);
            ++out.count;
        }
        out.ended = true;
    } catch (const std::system_error& e) {
        out.error = e.code();
        out.message = e.what();
    }
    return out;
}

// Runs `program` with `args` and returns its standard output and exit status.
std::pair<std::string, int> run_peer(const std::vector<std::string>& args,
                                     std::chrono::seconds timeout = 20s) {
    int pipe_fds[2];
    REQUIRE(::pipe2(pipe_fds, O_CLOEXEC) == 0);
    posix_spawn_file_actions_t actions;
    ::posix_spawn_file_actions_init(&actions);
    ::posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
    std::vector<char*> argv;
    std::string program = RINGIO_CHANNEL_PEER;
    argv.push_back(program.data());
    std::vector<std::string> copies = args;
    for (std::string& arg : copies) {
        argv.push_back(arg.data());
    }
    argv.push_back(nullptr);
    pid_t pid = -1;
    const int spawned =
        ::posix_spawn(&pid, program.c_str(), &actions, nullptr, argv.data(), environ);
    ::posix_spawn_file_actions_destroy(&actions);
    ::close(pipe_fds[1]);
    REQUIRE(spawned == 0);
    std::string output;
    char chunk[256];
    for (ssize_t n; (n = ::read(pipe_fds[0], chunk, sizeof chunk)) > 0;) {
        output.append(chunk, static_cast<std::size_t>(n));
    }
    ::close(pipe_fds[0]);
    return {output, wait_child(pid, timeout)};
}

pid_t spawn_peer(const std::vector<std::string>& args) {
    std::vector<char*> argv;
    std::string program = RINGIO_CHANNEL_PEER;
    argv.push_back(program.data());
    std::vector<std::string> copies = args;
    for (std::string& arg : copies) {
        argv.push_back(arg.data());
    }
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions; // its output says nothing these tests check
    ::posix_spawn_file_actions_init(&actions);
    ::posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    pid_t pid = -1;
    const int spawned =
        ::posix_spawn(&pid, program.c_str(), &actions, nullptr, argv.data(), environ);
    ::posix_spawn_file_actions_destroy(&actions);
    REQUIRE(spawned == 0);
    return pid;
}

// A sender that never stops (until killed): the channel stays full.
pid_t endless_sender(record_channel& channel) {
    return fork_child([&channel] {
        sender out(std::move(channel));
        for (std::uint64_t n = 1;; ++n) {
            out.send(record_number(n));
        }
        return 0;
    });
}

// A receiver that takes `count` records, then sleeps until killed.
pid_t stalled_receiver(record_channel& channel, int count) {
    return fork_child([&channel, count] {
        receiver in(std::move(channel));
        for (int i = 0; i < count; ++i) {
            (void)in.receive();
        }
        for (;;) {
            ::pause();
        }
        return 0;
    });
}

void sender_killed(bool awaited, bool fallback, bool in_place = false) {
    if (!runs(fallback || !awaited)) {
        return;
    }
    const fallback_forced mode(fallback);
    auto channel = record_channel::anonymous(16);
    const pid_t child = endless_sender(channel);
    receiver in(std::move(channel));
    // Some records first, so that the sender surely runs; then its death, mid-stream.
    for (std::uint64_t n = 1; n <= 1000; ++n) {
        const auto record = in.receive();
        REQUIRE(record);
        REQUIRE(record->sequence == n);
    }
    ::kill(child, SIGKILL);
    const auto start = std::chrono::steady_clock::now();
    received out;
    out.count = 1000;
    if (awaited) {
        ringio::io_context context;
        ringio::sync_wait(context,
                          in_place ? peek_all(context, in, out) : receive_all(context, in, out));
    } else {
        out = receive_blocking(in, 1000);
    }
    CHECK(elapsed_ms(start) < 5000);
    CHECK(out.in_order);
    CHECK(out.count >= 1000);
    CHECK_FALSE(out.ended);
    CHECK(out.error == std::errc::connection_reset);
    CHECK_THAT(out.message, Catch::StartsWith("receive from channel anonymous (the sender, pid " +
                                              std::to_string(child) + ", ended without closing)"));
    CHECK(wait_child(child) == 128 + SIGKILL); // a zombie until here: seen as ended all the same
}

void receiver_killed(bool awaited, bool fallback) {
    if (!runs(fallback || !awaited)) {
        return;
    }
    const fallback_forced mode(fallback);
    auto channel = record_channel::anonymous(8);
    const pid_t child = stalled_receiver(channel, 3);
    sender out(std::move(channel));
    std::error_code error;
    std::string message;
    std::uint64_t sent = 0;
    ringio::io_context context;
    ringio::spawn(context, [](ringio::io_context& ctx, pid_t peer) -> ringio::task<> {
        co_await ringio::sleep_for(ctx, 200ms); // the channel is full by then
        ::kill(peer, SIGKILL);
    }(context, child));
    if (awaited) {
        ringio::sync_wait(context,
                          [](ringio::io_context& ctx, sender& to, std::uint64_t& n,
                             std::error_code& ec, std::string& text) -> ringio::task<> {
                              try {
                                  for (;;) {
                                      const peer_record record = record_number(n + 1);
                                      co_await to.send(ctx, record);
                                      ++n;
                                  }
                              } catch (const std::system_error& e) {
                                  ec = e.code();
                                  text = e.what();
                              }
                          }(context, out, sent, error, message));
    } else {
        std::thread killer([&context] { context.run(); });
        try {
            for (;;) {
                out.send(record_number(sent + 1));
                ++sent;
            }
        } catch (const std::system_error& e) {
            error = e.code();
            message = e.what();
        }
        killer.join();
    }
    CHECK(sent == 3 + 8);
    CHECK(error == std::errc::broken_pipe);
    CHECK(message == "send to channel anonymous (the receiver, pid " + std::to_string(child) +
                         ", ended without closing): Broken pipe");
    CHECK(wait_child(child) == 128 + SIGKILL);
}

// Both ends in this process: a memfd mapped twice, once for each end.
struct local_pair {
    sender out;
    receiver in;
};

local_pair local_ends(std::size_t capacity) {
    auto first = record_channel::memfd("channel-test", capacity);
    auto second = record_channel::open(first.fd());
    return {sender(std::move(first)), receiver(std::move(second))};
}

void closed_while_waiting(bool fallback) {
    if (!runs(fallback)) {
        return;
    }
    const fallback_forced mode(fallback);
    {
        // The receiver waits, awaited; the sender sends one record, then closes.
        auto [out, in] = local_ends(4);
        ringio::io_context context;
        received got;
        ringio::spawn(context, receive_all(context, in, got));
        ringio::spawn(context, [](ringio::io_context& ctx, sender& to) -> ringio::task<> {
            co_await ringio::sleep_for(ctx, 20ms);
            to.send(record_number(1));
            co_await ringio::sleep_for(ctx, 20ms);
            to.close();
        }(context, out));
        context.run();
        CHECK(got.count == 1);
        CHECK(got.in_order);
        CHECK(got.ended);
        CHECK_FALSE(got.error);
    }
    {
        // The sender waits on a full channel, awaited; the receiver closes.
        auto [out, in] = local_ends(2);
        ringio::io_context context;
        std::error_code error;
        std::string message;
        ringio::spawn(context,
                      [](ringio::io_context& ctx, sender& to, std::error_code& ec,
                         std::string& text) -> ringio::task<> {
                          try {
                              for (std::uint64_t n = 1;; ++n) {
                                  const peer_record record = record_number(n);
                                  co_await to.send(ctx, record);
                              }
                          } catch (const std::system_error& e) {
                              ec = e.code();
                              text = e.what();
                          }
                      }(context, out, error, message));
        ringio::spawn(context, [](ringio::io_context& ctx, receiver& from) -> ringio::task<> {
            co_await ringio::sleep_for(ctx, 20ms);
            from.close();
        }(context, in));
        context.run();
        CHECK(error == std::errc::broken_pipe);
        CHECK(message ==
              "send to channel memfd:channel-test (the receiver has closed): Broken pipe");
        CHECK(context.in_flight() == 0);
    }
}

void awaited_timeouts_and_cancellation(bool fallback) {
    if (!runs(fallback)) {
        return;
    }
    const fallback_forced mode(fallback);
    auto [out, in] = local_ends(2);
    ringio::io_context context;
    ringio::cancellation stop;
    std::error_code timed_out;
    std::error_code cancelled;
    std::error_code send_timed_out;
    std::string message;
    std::optional<peer_record> after;
    ringio::spawn(
        context,
        [](ringio::io_context& ctx, receiver& from, sender& to, ringio::cancellation& signal,
           std::error_code& timeout, std::error_code& cancel, std::error_code& send_timeout,
           std::string& text, std::optional<peer_record>& last) -> ringio::task<> {
            const auto nothing = co_await from.receive(ctx).with_timeout(30ms).into(timeout);
            CHECK_FALSE(nothing);
            co_await from.receive(ctx).cancel_on(signal).into(cancel);
            try {
                co_await from.receive(ctx).with_timeout(5ms);
            } catch (const std::system_error& e) {
                text = e.what();
            }
            const peer_record one = record_number(1);
            const peer_record two = record_number(2);
            const peer_record three = record_number(3);
            co_await to.send(ctx, one);
            co_await to.send(ctx, two);
            co_await to.send(ctx, three).with_timeout(10ms).into(send_timeout); // full
            last = co_await from.receive(ctx);                                  // still usable
        }(context, in, out, stop, timed_out, cancelled, send_timed_out, message, after));
    ringio::spawn(context,
                  [](ringio::io_context& ctx, ringio::cancellation& signal) -> ringio::task<> {
                      co_await ringio::sleep_for(ctx, 50ms);
                      signal.cancel();
                  }(context, stop));
    context.run();
    CHECK(timed_out == std::errc::stream_timeout);
    CHECK(cancelled == std::errc::operation_canceled);
    CHECK(message == "receive from channel " + in.name() + ": Timer expired");
    CHECK(send_timed_out == std::errc::stream_timeout);
    REQUIRE(after);
    CHECK(after->sequence == 1);
    CHECK(context.in_flight() == 0);
}

} // namespace

TEST_CASE("channel: records cross from a forked sender in order, across the ring's wrap-around",
          "[channel]") {
    auto channel = record_channel::anonymous(8);
    CHECK(channel.capacity() == 8);
    const pid_t child = fork_child([&channel] {
        sender out(std::move(channel));
        for (std::uint64_t n = 1; n <= 100'000; ++n) {
            out.send(record_number(n));
        }
        return 0; // the sender's destructor closes it
    });
    receiver in(std::move(channel));
    const received out = receive_blocking(in);
    CHECK(out.count == 100'000);
    CHECK(out.in_order);
    CHECK(out.ended);
    CHECK_FALSE(out.error);
    CHECK(wait_child(child) == 0);
}

TEST_CASE("channel: an awaited receive takes records from a forked sender, then the end",
          "[channel]") {
    for (const bool fallback : {false, true}) {
        if (!runs(fallback)) {
            continue;
        }
        const fallback_forced mode(fallback);
        auto channel = record_channel::anonymous(16);
        const pid_t child = fork_child([&channel] {
            sender out(std::move(channel));
            for (std::uint64_t n = 1; n <= 20'000; ++n) {
                out.send(record_number(n));
                if (n % 5000 == 0) {
                    std::this_thread::sleep_for(20ms); // the receiver sleeps meanwhile
                }
            }
            return 0;
        });
        receiver in(std::move(channel));
        ringio::io_context context;
        received out;
        ringio::sync_wait(context, receive_all(context, in, out));
        CHECK(out.count == 20'000);
        CHECK(out.in_order);
        CHECK(out.ended);
        CHECK(wait_child(child) == 0);
    }
}

// Pins the calling thread to `cpu` if the machine has it (else leaves it be).
void pin_to_cpu(std::size_t cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    (void)::sched_setaffinity(0, sizeof set, &set);
}

// Pins the calling thread to `cpu` for its lifetime, then gives it back the CPUs it had.
class cpu_pin {
public:
    explicit cpu_pin(std::size_t cpu) {
        CPU_ZERO(&before_);
        had_ = ::sched_getaffinity(0, sizeof before_, &before_) == 0;
        pin_to_cpu(cpu);
    }
    cpu_pin(const cpu_pin&) = delete;
    cpu_pin& operator=(const cpu_pin&) = delete;
    ~cpu_pin() {
        if (had_) {
            (void)::sched_setaffinity(0, sizeof before_, &before_);
        }
    }

private:
    cpu_set_t before_;
    bool had_ = false;
};

// Sends records 1 to `count`, awaited.
ringio::task<> send_awaited(ringio::io_context& context, sender& out, std::uint64_t count) {
    for (std::uint64_t n = 1; n <= count; ++n) {
        const peer_record record = record_number(n);
        co_await out.send(context, record);
    }
}

// Receives awaited until the end, as `receive_all` does, but gives up on a record that takes
// longer than `patience` to come (ETIME in `out.error`): both ends asleep at once is a hang.
ringio::task<> receive_patiently(ringio::io_context& context, receiver& in, received& out,
                                 std::chrono::milliseconds patience) {
    for (;;) {
        std::error_code error;
        const auto record = co_await in.receive(context).with_timeout(patience).into(error);
        if (error) {
            out.error = error;
            co_return;
        }
        if (!record) {
            out.ended = true;
            co_return;
        }
        out.in_order = out.in_order && record->sequence == out.count + 1 && whole(*record);
        ++out.count;
    }
}

TEST_CASE("channel: both ends awaited in two processes: neither sleeps through a record",
          "[channel]") {
    // A wake-up meant for a record the receiver has taken already can clear the flag of its
    // next sleep: that sleep must end, not wait on a ring that came before it.
    if (!runs(false)) {
        return;
    }
    constexpr std::uint64_t count = 400'000;
    for (int round = 0; round < 3; ++round) {
        auto channel = record_channel::anonymous(64);
        // Each on a core of its own where there are two: the race needs both running at once.
        const pid_t child = fork_child([&channel] {
            pin_to_cpu(1);
            sender out(std::move(channel));
            ringio::io_context context;
            ringio::sync_wait(context, send_awaited(context, out, count));
            return 0;
        });
        const cpu_pin pinned(0);
        receiver in(std::move(channel));
        ringio::io_context context;
        received out;
        ringio::sync_wait(context, receive_patiently(context, in, out, 5s));
        INFO("round " << round << ": " << out.count << " records, then " << out.error.message());
        CHECK(out.count == count);
        CHECK(out.in_order);
        CHECK(out.ended);
        CHECK_FALSE(out.error);
        CHECK(wait_child(child, 5s) == 0);
    }
}

// Round trips through two channels: the awaited side pings, a blocking thread answers.
ringio::task<> ping(ringio::io_context& context, sender& out, receiver& in, std::uint64_t count,
                    received& got) {
    for (std::uint64_t n = 1; n <= count; ++n) {
        co_await out.send(context, record_number(n));
        const auto back = co_await in.receive(context);
        got.in_order = got.in_order && back && back->sequence == n && whole(*back);
        ++got.count;
    }
    out.close();
}

TEST_CASE("channel: an awaited receive whose loop is idle spins: a quick answer needs no wake-up",
          "[channel]") {
    if (std::thread::hardware_concurrency() < 2) {
        WARN("SKIPPED: one CPU: the answer cannot come while the receiver spins");
        return;
    }
    constexpr std::uint64_t count = 2'000;
    // Wake-ups of the awaited receiver in `count` round trips with a blocking echo.
    auto wakes_in_round_trips = [&] {
        auto there = record_channel::memfd("there", 64);
        auto back = record_channel::memfd("back", 64);
        const ringio::detail::unique_fd back_memory(::dup(back.fd())); // its bells count wake-ups
        receiver echo_in(record_channel::open(there.fd()));
        sender echo_out(record_channel::open(back.fd()));
        std::thread echoing([&echo_in, &echo_out] {
            pin_to_cpu(1);
            while (const auto record = echo_in.receive()) {
                echo_out.send(*record);
            }
        });
        received got;
        {
            const cpu_pin pinned(0);
            sender out(std::move(there));
            receiver in(std::move(back));
            ringio::io_context context;
            ringio::sync_wait(context, ping(context, out, in, count, got));
        }
        echoing.join();
        CHECK(got.count == count);
        CHECK(got.in_order);
        ringio::detail::channel_header header{};
        REQUIRE(::pread(back_memory.get(), &header, sizeof header, 0) ==
                static_cast<ssize_t>(sizeof header));
        return header.bell[0].rings + header.bell[1].rings;
    };
    // Without the spin, each of the awaited receives sleeps and its answer wakes it, in every
    // attempt; with it, a loaded machine that keeps the echo off its CPU past the spin can still
    // cost one attempt many wake-ups, so up to three are made.
    std::uint32_t wakes = wakes_in_round_trips();
    for (int attempt = 1; attempt < 3 && wakes >= count / 2; ++attempt) {
        wakes = wakes_in_round_trips();
    }
    INFO(wakes << " wake-ups in " << count << " round trips");
    CHECK(wakes < count / 2);
}

TEST_CASE("channel: 4 KiB records arrive whole", "[channel]") {
    auto channel = ringio::channel<page_record>::anonymous(4);
    const pid_t child = fork_child([&channel] {
        ringio::channel_sender out(std::move(channel));
        page_record record;
        for (std::uint64_t n = 1; n <= 20'000; ++n) {
            for (std::uint64_t& word : record.words) {
                word = n;
            }
            out.send(record);
        }
        return 0;
    });
    ringio::channel_receiver in(std::move(channel));
    std::uint64_t count = 0;
    bool whole_records = true;
    while (const auto record = in.receive()) {
        ++count;
        for (const std::uint64_t word : record->words) {
            whole_records = whole_records && word == count;
        }
    }
    CHECK(count == 20'000);
    CHECK(whole_records);
    CHECK(wait_child(child) == 0);
}

TEST_CASE("channel: an independent program maps the channel by its path", "[channel]") {
    const temp_dir dir;
    const auto path = dir / "records";
    {
        auto channel = record_channel::create(path, 32);
        const pid_t peer = spawn_peer({"receive", path.string()});
        sender out(std::move(channel));
        for (std::uint64_t n = 1; n <= 50'000; ++n) {
            out.send(record_number(n));
        }
        out.close();
        CHECK(wait_child(peer) == 0);
    }
    {
        // The other way: the program sends, and this process receives, awaited.
        auto channel = record_channel::create(path, 32, {.replace_existing = true});
        receiver in(std::move(channel));
        const pid_t peer = spawn_peer({"send", path.string(), "30000"});
        ringio::io_context context;
        received out;
        ringio::sync_wait(context, receive_all(context, in, out));
        CHECK(out.count == 30'000);
        CHECK(out.in_order);
        CHECK(out.ended);
        CHECK(wait_child(peer) == 0);
    }
}

TEST_CASE("channel: the program's output names what it received", "[channel]") {
    const temp_dir dir;
    const auto path = dir / "records";
    auto channel = record_channel::create(path, 4);
    sender out(std::move(channel));
    for (std::uint64_t n = 1; n <= 4; ++n) {
        out.send(record_number(n));
    }
    out.close();
    const auto [text, status] = run_peer({"receive", path.string()});
    CHECK(status == 0);
    CHECK(text == "4 10\n");
}

TEST_CASE("channel: a sender killed mid-stream: what it published, then ECONNRESET (blocking)",
          "[channel]") {
    sender_killed(false, false);
}

TEST_CASE("channel: a sender killed mid-stream: what it published, then ECONNRESET (awaited)",
          "[channel]") {
    sender_killed(true, false);
}

TEST_CASE("channel (fallback): a sender killed mid-stream: ECONNRESET (awaited)", "[channel]") {
    sender_killed(true, true);
}

TEST_CASE("channel: a sender killed mid-stream: what it published, then ECONNRESET (awaited "
          "peek)",
          "[channel]") {
    sender_killed(true, false, true);
    sender_killed(true, true, true);
}

TEST_CASE("channel: a receiver killed: a sender blocked on a full channel gets EPIPE (blocking)",
          "[channel]") {
    receiver_killed(false, false);
}

TEST_CASE("channel: a receiver killed: a sender blocked on a full channel gets EPIPE (awaited)",
          "[channel]") {
    receiver_killed(true, false);
}

TEST_CASE("channel (fallback): a receiver killed: EPIPE (awaited)", "[channel]") {
    receiver_killed(true, true);
}

TEST_CASE("channel: full and empty, one record and batches, across the wrap-around", "[channel]") {
    auto [out, in] = local_ends(3); // rounded up to 4
    std::array<peer_record, 6> batch{};
    std::array<peer_record, 6> taken{};
    std::uint64_t next = 1;
    std::uint64_t expected = 1;
    for (int round = 0; round < 100; ++round) {
        CHECK_FALSE(in.try_receive());
        CHECK(in.try_receive(std::span{taken}) == 0);
        CHECK(out.try_send(record_number(next++)));
        for (auto& r : batch) {
            r = record_number(next++);
        }
        CHECK(out.try_send(std::span<const peer_record>{batch}) == 3); // only 3 fit
        next -= 3;
        CHECK_FALSE(out.try_send(record_number(next))); // full
        const auto first = in.try_receive();
        REQUIRE(first);
        CHECK(first->sequence == expected++);
        REQUIRE(in.try_receive(std::span{taken}) == 3);
        for (std::size_t i = 0; i < 3; ++i) {
            CHECK(taken[i].sequence == expected++);
            CHECK(whole(taken[i]));
        }
    }
    CHECK(next == expected); // 400 records through 4 slots: the indices wrapped 100 times
}

TEST_CASE("channel: records written and read in place cross from a forked sender, in chunks of "
          "every size, across the wrap-around",
          "[channel]") {
    auto channel = record_channel::anonymous(8);
    constexpr std::uint64_t total = 100'000;
    const pid_t child = fork_child([&channel] {
        sender out(std::move(channel));
        std::uint64_t next = 1;
        for (std::size_t chunk = 1; next <= total; chunk = chunk % 9 + 1) {
            const std::span<peer_record> slots = out.prepare(chunk); // waits while full
            const std::size_t n = std::min<std::size_t>(slots.size(), total + 1 - next);
            for (std::size_t i = 0; i < n; ++i) {
                slots[i] = record_number(next++);
            }
            out.commit(n);
        }
        return 0;
    });
    receiver in(std::move(channel));
    std::uint64_t expected = 1;
    bool in_order = true;
    for (std::size_t chunk = 1;; chunk = chunk % 7 + 1) {
        const std::span<const peer_record> records = in.peek(chunk);
        if (records.empty()) {
            break; // the sender has closed and every record was consumed
        }
        CHECK(records.size() <= chunk);
        for (const peer_record& r : records) {
            in_order = in_order && r.sequence == expected++ && whole(r);
        }
        in.consume(records.size());
    }
    CHECK(in_order);
    CHECK(expected == total + 1);
    CHECK(wait_child(child) == 0);
}

TEST_CASE("channel: in place, a span stops at the ring's last slot; committing or consuming more "
          "than was lent is EINVAL and loses nothing",
          "[channel]") {
    auto [out, in] = local_ends(4);
    const auto einval = Catch::Matchers::Predicate<std::system_error>([](const auto& e) {
        return e.code() == std::errc::invalid_argument &&
               std::string(e.what()).find("lent in place") != std::string::npos;
    });
    CHECK(in.try_peek().empty());
    std::span<peer_record> slots = out.try_prepare();
    REQUIRE(slots.size() == 4);
    slots[0] = record_number(1);
    slots[1] = record_number(2);
    out.commit(2);
    CHECK_THROWS_MATCHES(out.commit(3), std::system_error, einval); // 2 of the 4 are left
    out.commit(0);
    slots = out.try_prepare(1);
    REQUIRE(slots.size() == 1);
    slots[0] = record_number(3);
    out.commit(1);
    std::span<const peer_record> records = in.try_peek();
    REQUIRE(records.size() == 3);
    CHECK(records[2].sequence == 3);
    in.consume(1);
    CHECK_THROWS_MATCHES(in.consume(3), std::system_error, einval);
    // Slots 3, 0 and 1 are free: the next span is slot 3 alone, then slots 0 and 1.
    slots = out.try_prepare();
    REQUIRE(slots.size() == 1);
    slots[0] = record_number(4);
    out.commit(1);
    slots = out.try_prepare();
    REQUIRE(slots.size() == 2);
    slots[0] = record_number(5);
    out.commit(1);
    CHECK(out.try_prepare().size() == 1); // full but for one slot
    // A record taken another way moves the end: nothing peeked before is lent any more.
    records = in.try_peek();
    REQUIRE(records.size() == 2);
    CHECK(records[0].sequence == 2);
    const auto taken = in.try_receive();
    REQUIRE(taken);
    CHECK(taken->sequence == 2);
    CHECK_THROWS_MATCHES(in.consume(1), std::system_error, einval);
    records = in.peek(); // slot 3 alone, then what follows the wrap
    REQUIRE(records.size() == 1);
    CHECK(records[0].sequence == 3);
    in.consume(1);
    records = in.peek();
    REQUIRE(records.size() == 2);
    CHECK((records[0].sequence == 4 && records[1].sequence == 5 && whole(records[1])));
    in.consume(2);
    CHECK(out.prepare(0).empty()); // nothing asked: no wait
    out.close();
    CHECK(in.peek().empty()); // the end
    in.close();
    CHECK_THROWS_MATCHES(in.try_peek(), std::system_error,
                         Catch::Matchers::Predicate<std::system_error>([](const auto& e) {
                             return e.code() == std::errc::bad_file_descriptor;
                         }));
}

TEST_CASE("channel: in place and awaited, both ends on one loop through a channel of 4: each "
          "sleeps and the other wakes it",
          "[channel]") {
    for (const bool fallback : {false, true}) {
        if (!runs(fallback)) {
            continue;
        }
        const fallback_forced mode(fallback);
        auto [out, in] = local_ends(4);
        ringio::io_context context;
        received got;
        ringio::spawn(context, peek_all(context, in, got));
        ringio::spawn(context, [](ringio::io_context& ctx, sender& to) -> ringio::task<> {
            constexpr std::uint64_t total = 10'000;
            std::uint64_t n = 1;
            for (std::size_t chunk = 1; n <= total; chunk = chunk % 5 + 1) {
                const std::span<peer_record> slots = co_await to.prepare(ctx, chunk);
                const std::size_t k = std::min<std::size_t>(slots.size(), total + 1 - n);
                for (std::size_t i = 0; i < k; ++i) {
                    slots[i] = record_number(n++);
                }
                to.commit(k);
            }
            to.close();
        }(context, out));
        context.run();
        CHECK(got.count == 10'000);
        CHECK(got.in_order);
        CHECK(got.ended);
        CHECK_FALSE(got.error);
    }
}

TEST_CASE("channel: in place and awaited: a closed receiver is EPIPE, a timeout ETIME",
          "[channel]") {
    auto [out, in] = local_ends(2);
    ringio::io_context context;
    std::error_code error;
    ringio::sync_wait(
        context,
        [](ringio::io_context& ctx, receiver& from, std::error_code& ec) -> ringio::task<> {
            const auto records = co_await from.peek(ctx).with_timeout(20ms).into(ec);
            CHECK(records.empty());
        }(context, in, error));
    CHECK(error == std::errc::stream_timeout);
    out.commit(out.try_prepare().size()); // full, written with zeros
    ringio::sync_wait(
        context, [](ringio::io_context& ctx, sender& to, std::error_code& ec) -> ringio::task<> {
            co_await to.prepare(ctx).with_timeout(20ms).into(ec);
        }(context, out, error));
    CHECK(error == std::errc::stream_timeout);
    in.close();
    ringio::sync_wait(
        context, [](ringio::io_context& ctx, sender& to, std::error_code& ec) -> ringio::task<> {
            co_await to.prepare(ctx).into(ec);
        }(context, out, error));
    CHECK(error == std::errc::broken_pipe);
}

TEST_CASE("channel: in place, a closed receiver is EPIPE to prepare and to commit", "[channel]") {
    auto [out, in] = local_ends(4);
    std::span<peer_record> slots = out.try_prepare();
    REQUIRE(slots.size() == 4);
    slots[0] = record_number(1);
    in.close();
    const auto epipe = Catch::Matchers::Predicate<std::system_error>(
        [](const auto& e) { return e.code() == std::errc::broken_pipe; });
    CHECK_THROWS_MATCHES(out.commit(1), std::system_error, epipe);
    CHECK_THROWS_MATCHES(out.prepare(), std::system_error, epipe);
}

TEST_CASE("channel: the capacity is rounded up to a power of two; 0 is EINVAL", "[channel]") {
    CHECK(record_channel::anonymous(1).capacity() == 1);
    CHECK(record_channel::anonymous(5).capacity() == 8);
    CHECK(record_channel::anonymous(1024).capacity() == 1024);
    CHECK_THROWS_MATCHES(record_channel::anonymous(0), std::system_error,
                         Catch::Matchers::Predicate<std::system_error>([](const auto& e) {
                             return e.code() == std::errc::invalid_argument;
                         }));
}

TEST_CASE("channel: the receiver takes what was sent before the close, then sees the end",
          "[channel]") {
    auto [out, in] = local_ends(8);
    out.send(record_number(1));
    out.send(record_number(2));
    out.close();
    CHECK_FALSE(out.is_open());
    const received got = receive_blocking(in);
    CHECK(got.count == 2);
    CHECK(got.ended);
    CHECK_FALSE(in.receive()); // and stays ended
}

TEST_CASE("channel: a closed or moved-from end fails with EBADF; a closed receiver is EPIPE",
          "[channel]") {
    auto [out, in] = local_ends(8);
    sender moved(std::move(out));
    CHECK(moved.is_open());
    CHECK_FALSE(out.is_open()); // NOLINT(bugprone-use-after-move): what the test is about
    std::string message;
    try {
        out.send(record_number(1));
    } catch (const std::system_error& e) {
        CHECK(e.code() == std::errc::bad_file_descriptor);
        message = e.what();
    }
    CHECK(message.find("(this sender is closed)") != std::string::npos);
    moved.send(record_number(1));
    in.close();
    CHECK_THROWS_MATCHES(moved.try_send(record_number(2)), std::system_error,
                         Catch::Matchers::Predicate<std::system_error>([](const auto& e) {
                             return e.code() == std::errc::broken_pipe &&
                                    std::string(e.what()).find("(the receiver has closed)") !=
                                        std::string::npos;
                         }));
    CHECK_THROWS_MATCHES(in.receive(), std::system_error,
                         Catch::Matchers::Predicate<std::system_error>([](const auto& e) {
                             return e.code() == std::errc::bad_file_descriptor;
                         }));
    ringio::io_context context;
    std::error_code error;
    ringio::sync_wait(
        context,
        [](ringio::io_context& ctx, receiver& from, std::error_code& ec) -> ringio::task<> {
            co_await from.receive(ctx).into(ec);
        }(context, in, error));
    CHECK(error == std::errc::bad_file_descriptor);
}

TEST_CASE("channel: each end is claimed once; an empty channel has none", "[channel]") {
    const temp_dir dir;
    const auto path = dir / "records";
    sender first(record_channel::create(path, 4));
    std::string message;
    try {
        sender second(record_channel::open(path));
    } catch (const std::system_error& e) {
        CHECK(e.code() == std::errc::device_or_resource_busy);
        message = e.what();
    }
    CHECK(message == "channel \"" + path.string() + "\": the sender end is attached already (pid " +
                         std::to_string(::getpid()) + "): Device or resource busy");
    first.close();
    CHECK_THROWS_MATCHES(sender(record_channel::open(path)), std::system_error,
                         Catch::Matchers::Predicate<std::system_error>([](const auto& e) {
                             return e.code() == std::errc::device_or_resource_busy;
                         }));
    CHECK_THROWS_MATCHES(receiver(record_channel{}), std::system_error,
                         Catch::Matchers::Predicate<std::system_error>([](const auto& e) {
                             return e.code() == std::errc::invalid_argument;
                         }));
}

TEST_CASE("channel: a file of other records is EINVAL, a file that is no channel EPROTO, both "
          "naming the path",
          "[channel]") {
    const temp_dir dir;
    const auto path = dir / "records";
    { auto created = record_channel::create(path, 4); }
    auto refused = [](auto&& open) {
        try {
            open();
        } catch (const std::system_error& e) {
            return std::to_string(e.code().value()) + " " + e.what();
        }
        return std::string("opened");
    };
    const std::string quoted = "\"" + path.string() + "\"";
    CHECK(refused([&] { (void)ringio::channel<page_record>::open(path); }) ==
          std::to_string(EINVAL) + " channel: open " + quoted +
              ": it holds records of 64 bytes aligned to 8, this program's are 4096 bytes aligned "
              "to 8: Invalid argument");
    // The same size, another alignment, seen by another program.
    const auto [text, status] = run_peer({"open_other", path.string()});
    CHECK(status == 0);
    CHECK(text == std::to_string(EINVAL) + " channel: open " + quoted +
                      ": it holds records of 64 bytes aligned to 8, this program's are 64 bytes "
                      "aligned to 4: Invalid argument\n");
    // Not a channel at all.
    const auto plain = dir / "plain";
    std::ofstream(plain) << std::string(4096, 'x');
    CHECK(refused([&] { (void)record_channel::open(plain); }) ==
          std::to_string(EPROTO) + " channel: open \"" + plain.string() +
              "\": not a ringio channel (no magic number): Protocol error");
    const auto tiny = dir / "tiny";
    std::ofstream(tiny) << "x";
    CHECK_THAT(refused([&] { (void)record_channel::open(tiny); }),
               Catch::StartsWith(std::to_string(EPROTO) + " channel: open"));
    // Another version of the format.
    {
        auto bytes = ringio::mapped<std::byte[]>::open(path);
        bytes[8] = std::byte{2};
    }
    CHECK(refused([&] { (void)record_channel::open(path); }) ==
          std::to_string(EPROTO) + " channel: open " + quoted +
              ": channel format version 2, this program reads version 1: Protocol error");
}

TEST_CASE("channel: shared as a memfd through its descriptor", "[channel]") {
    auto channel = record_channel::memfd("records", 8);
    const int fd = channel.fd();
    REQUIRE(fd >= 0);
    const pid_t child = fork_child([fd] {
        // Maps it again from the descriptor, as a process that received the descriptor would.
        receiver in(record_channel::open(fd));
        const received got = receive_blocking(in);
        return got.count == 1000 && got.in_order && got.ended ? 0 : 1;
    });
    sender out(std::move(channel));
    for (std::uint64_t n = 1; n <= 1000; ++n) {
        out.send(record_number(n));
    }
    out.close();
    CHECK(wait_child(child) == 0);
}

TEST_CASE("channel: closing one end wakes the other while it waits", "[channel]") {
    closed_while_waiting(false);
}

TEST_CASE("channel (fallback): closing one end wakes the other while it waits", "[channel]") {
    closed_while_waiting(true);
}

TEST_CASE("channel: a blocking receive that waits is woken by a close from another thread",
          "[channel]") {
    auto [out, in] = local_ends(4);
    received got;
    std::thread receiving([&in, &got] { got = receive_blocking(in); });
    std::this_thread::sleep_for(30ms);
    out.send(record_number(1));
    std::this_thread::sleep_for(30ms);
    out.close();
    receiving.join();
    CHECK(got.count == 1);
    CHECK(got.ended);
}

TEST_CASE("channel: awaited: with_timeout gives ETIME, cancel_on ECANCELED, and it goes on",
          "[channel]") {
    awaited_timeouts_and_cancellation(false);
}

TEST_CASE("channel (fallback): awaited: with_timeout gives ETIME, cancel_on ECANCELED",
          "[channel]") {
    awaited_timeouts_and_cancellation(true);
}

TEST_CASE("channel: blocking receive_for and send_for give ETIME", "[channel]") {
    auto [out, in] = local_ends(1);
    const auto start = std::chrono::steady_clock::now();
    CHECK_THROWS_MATCHES(in.receive_for(30ms), std::system_error,
                         Catch::Matchers::Predicate<std::system_error>(
                             [](const auto& e) { return e.code() == std::errc::stream_timeout; }));
    CHECK(elapsed_ms(start) >= 30);
    out.send_for(record_number(1), 10ms);
    CHECK_THROWS_MATCHES(out.send_for(record_number(2), 20ms), std::system_error,
                         Catch::Matchers::Predicate<std::system_error>([](const auto& e) {
                             return e.code() == std::errc::stream_timeout &&
                                    std::string(e.what()) ==
                                        "send to channel memfd:channel-test: Timer expired";
                         }));
    const auto one = in.receive_for(10ms);
    REQUIRE(one);
    CHECK(one->sequence == 1);
}

TEST_CASE("channel: an awaited send waits while full and goes on when the receiver takes",
          "[channel]") {
    auto [out, in] = local_ends(2);
    ringio::io_context context;
    std::uint64_t sent = 0;
    ringio::spawn(context,
                  [](ringio::io_context& ctx, sender& to, std::uint64_t& n) -> ringio::task<> {
                      for (; n < 10;) {
                          const peer_record record = record_number(n + 1);
                          co_await to.send(ctx, record);
                          ++n;
                      }
                      to.close();
                  }(context, out, sent));
    received got;
    std::thread receiving([&in, &got] {
        std::this_thread::sleep_for(30ms); // the sender fills the channel and waits
        got = receive_blocking(in);
    });
    context.run();
    receiving.join();
    CHECK(sent == 10);
    CHECK(got.count == 10);
    CHECK(got.in_order);
    CHECK(got.ended);
}

TEST_CASE("channel: a full sender (blocking or awaited) fills the one slot freed without waiting "
          "for more",
          "[channel]") {
    // While it spins, a full sender waits for a stretch of free slots; once asleep, or once the
    // spin ends, a single one will do.
    for (const bool awaited : {false, true}) {
        auto [out, in] = local_ends(64);
        for (std::uint64_t n = 1; n <= 64; ++n) {
            out.send(record_number(n));
        }
        std::atomic<bool> done{false};
        std::thread sending([&out, &done, awaited] {
            if (awaited) {
                ringio::io_context context;
                ringio::sync_wait(context,
                                  [](ringio::io_context& ctx, sender& to) -> ringio::task<> {
                                      co_await to.send(ctx, record_number(65));
                                  }(context, out));
            } else {
                out.send(record_number(65));
            }
            done.store(true);
        });
        std::this_thread::sleep_for(30ms);
        CHECK_FALSE(done.load());
        const auto first = in.receive();
        REQUIRE(first);
        CHECK(first->sequence == 1);
        const auto until = std::chrono::steady_clock::now() + 5s;
        while (!done.load() && std::chrono::steady_clock::now() < until) {
            std::this_thread::sleep_for(1ms);
        }
        CHECK(done.load());
        bool in_order = true;
        for (std::uint64_t n = 2; n <= 65; ++n) { // frees a stuck sender too, before the join
            const auto record = in.receive();
            in_order = in_order && record && record->sequence == n && whole(*record);
        }
        sending.join();
        CHECK(in_order);
    }
}

TEST_CASE("channel: destroying the context while a receive awaits cancels it", "[channel]") {
    for (const bool fallback : {false, true}) {
        if (!runs(fallback)) {
            continue;
        }
        const fallback_forced mode(fallback);
        auto channel = record_channel::anonymous(4);
        // A sender in another process that lives (and sends nothing) for the whole test: the
        // receive waits on it and watches it.
        const pid_t child = fork_child([&channel] {
            sender out(std::move(channel));
            ::pause();
            return 0;
        });
        receiver in(std::move(channel));
        {
            ringio::io_context context;
            received got;
            ringio::spawn(context, receive_all(context, in, got));
            for (int i = 0; i < 20; ++i) {
                context.poll();
                std::this_thread::sleep_for(5ms); // the child attaches, the watch is armed
            }
            CHECK(context.in_flight() >= 1);
            CHECK(got.count == 0);
        } // cancels the wait and the watch, and destroys the frame
        ::kill(child, SIGKILL);
        CHECK(wait_child(child) == 128 + SIGKILL);
        CHECK_THROWS_MATCHES(in.receive(), std::system_error,
                             Catch::Matchers::Predicate<std::system_error>([](const auto& e) {
                                 return e.code() == std::errc::connection_reset;
                             }));
    }
}

TEST_CASE("channel: threads send and receive through one channel", "[channel]") {
    auto [out, in] = local_ends(16);
    std::thread sending([&out] {
        for (std::uint64_t n = 1; n <= 200'000; ++n) {
            out.send(record_number(n));
        }
        out.close();
    });
    const received got = receive_blocking(in);
    sending.join();
    CHECK(got.count == 200'000);
    CHECK(got.in_order);
    CHECK(got.ended);
}

TEST_CASE("channel: threads, one awaited and one blocking, and batches", "[channel]") {
    auto [out, in] = local_ends(8);
    std::thread sending([&out] {
        std::array<peer_record, 5> batch{};
        std::uint64_t n = 1;
        while (n <= 50'000) {
            for (auto& r : batch) {
                r = record_number(n++);
            }
            std::span<const peer_record> left{batch};
            while (!left.empty()) {
                const std::size_t sent = out.try_send(left);
                left = left.subspan(sent);
                if (sent == 0) {
                    std::this_thread::yield();
                }
            }
        }
        out.close();
    });
    ringio::io_context context;
    received got;
    ringio::sync_wait(context, receive_all(context, in, got));
    sending.join();
    CHECK(got.count == 50'000);
    CHECK(got.in_order);
    CHECK(got.ended);
}

// What one of several coroutines receiving on one end took: its records' numbers, and whether it
// saw the end only after the sender closed.
struct share {
    std::vector<std::uint64_t> numbers;
    bool whole = true;
    bool ended_after_close = true;
};

ringio::task<> receive_share(ringio::io_context& context, receiver& in,
                             const std::atomic<bool>& closing, share& out) {
    while (const auto record = co_await in.receive(context)) {
        out.numbers.push_back(record->sequence);
        out.whole = out.whole && whole(*record);
        if (record->sequence % 3 == 0) {
            co_await ringio::sleep_for(context, 1us); // the other one's turn
        }
    }
    out.ended_after_close = closing.load();
}

TEST_CASE("channel: two coroutines awaiting receive on one end take each record once, in order, "
          "and see the end only after the close",
          "[channel]") {
    // Both sleep on the same bell and wake together: the one resumed first must not leave the
    // other a record that is gone, nor give it one twice.
    constexpr std::uint64_t total = 20'000;
    auto [out, in] = local_ends(4);
    std::atomic<bool> closing{false};
    std::thread sending([&out, &closing] {
        for (std::uint64_t n = 1; n <= total; ++n) {
            out.send(record_number(n));
        }
        closing.store(true);
        out.close();
    });
    ringio::io_context context;
    std::array<share, 2> shares;
    for (share& s : shares) {
        ringio::spawn(context, receive_share(context, in, closing, s));
    }
    context.run();
    sending.join();
    std::vector<std::uint64_t> all;
    for (const share& s : shares) {
        CHECK(s.whole);
        CHECK(s.ended_after_close);
        CHECK(!s.numbers.empty());
        CHECK(std::is_sorted(s.numbers.begin(), s.numbers.end()));
        all.insert(all.end(), s.numbers.begin(), s.numbers.end());
    }
    std::sort(all.begin(), all.end());
    REQUIRE(all.size() == total);
    for (std::uint64_t n = 1; n <= total; ++n) {
        REQUIRE(all[n - 1] == n);
    }
}

TEST_CASE("channel: no heap allocation per record, blocking, awaited or in place", "[channel]") {
    if (!RINGIO_TEST_COUNTS_ALLOCATIONS) {
        WARN("SKIPPED: a sanitizer replaces operator new; the other builds count");
        return;
    }
    for (const bool fallback : {false, true}) {
        if (!fallback && !ringio::detail::futex_support::available()) {
            continue;
        }
        const fallback_forced mode(fallback);
        auto [out, in] = local_ends(4);
        ringio::io_context context;
        long counted = -1;
        // Awaited on both ends, through a channel small enough that both sleep often.
        auto producer = [](ringio::io_context& ctx, sender& to) -> ringio::task<> {
            for (std::uint64_t n = 1; n <= 3000; ++n) {
                const peer_record record = record_number(n);
                co_await to.send(ctx, record);
            }
        };
        auto consumer = [](ringio::io_context& ctx, receiver& from,
                           long& result) -> ringio::task<> {
            for (int i = 0; i < 100; ++i) {
                co_await from.receive(ctx); // warm-up: the watch's storage is made
            }
            const long before = allocations.load();
            for (int i = 100; i < 2000; ++i) {
                co_await from.receive(ctx);
            }
            for (int i = 2000; i < 3000;) { // in place
                const std::span<const peer_record> records = co_await from.peek(ctx, 1);
                i += static_cast<int>(records.size());
                from.consume(records.size());
            }
            std::array<peer_record, 4> batch{};
            (void)from.try_receive(std::span{batch});
            result = allocations.load() - before;
        };
        ringio::spawn(context, consumer(context, in, counted));
        ringio::spawn(context, producer(context, out));
        context.run();
        CHECK(counted == 0);
    }
    // Blocking, between two threads, counted once both run.
    auto [out, in] = local_ends(4);
    std::atomic<long> before{-1};
    long counted = -1;
    std::thread sending([&out, &before] {
        while (before.load() < 0) {
            std::this_thread::yield();
        }
        for (std::uint64_t n = 1; n <= 20'000; ++n) {
            out.send(record_number(n));
        }
    });
    before.store(allocations.load());
    for (int i = 0; i < 20'000; ++i) {
        (void)in.receive();
    }
    counted = allocations.load() - before.load();
    sending.join();
    CHECK(counted == 0);
    // In place, blocking, between two threads.
    auto [into, from] = local_ends(4);
    std::atomic<long> ready{-1};
    std::thread preparing([&into, &ready] {
        while (ready.load() < 0) {
            std::this_thread::yield();
        }
        for (std::uint64_t n = 1; n <= 20'000;) {
            const std::span<peer_record> slots = into.prepare(20'001 - n);
            for (peer_record& slot : slots) {
                slot = record_number(n++);
            }
            into.commit(slots.size());
        }
    });
    ready.store(allocations.load());
    for (std::size_t taken = 0; taken < 20'000;) {
        const std::span<const peer_record> records = from.peek();
        taken += records.size();
        from.consume(records.size());
    }
    counted = allocations.load() - ready.load();
    preparing.join();
    CHECK(counted == 0);
}

TEST_CASE("channel: closing, moving or destroying an end while a receive awaits on it",
          "[channel]") {
    for (const bool fallback : {false, true}) {
        if (!runs(fallback)) {
            continue;
        }
        const fallback_forced mode(fallback);
        auto [out, in] = local_ends(4);
        std::optional<receiver> held(std::move(in));
        ringio::io_context context;
        std::error_code closed;
        std::string closed_text;
        std::error_code destroyed;
        std::string destroyed_text;
        std::optional<peer_record> moved_got;
        auto waiter = [](ringio::io_context& ctx, receiver& from, std::error_code& ec,
                         std::string& text) -> ringio::task<> {
            try {
                co_await from.receive(ctx);
            } catch (const std::system_error& e) {
                ec = e.code();
                text = e.what();
            }
        };
        // Closed: it wakes and fails with EBADF, naming the channel.
        ringio::spawn(context, waiter(context, *held, closed, closed_text));
        ringio::spawn(context, [](ringio::io_context& ctx, receiver& from) -> ringio::task<> {
            co_await ringio::sleep_for(ctx, 20ms);
            from.close();
        }(context, *held));
        context.run();
        CHECK(closed == std::errc::bad_file_descriptor);
        CHECK(closed_text == "receive from channel " + held->name() +
                                 " (this receiver is closed): Bad file descriptor");

        // Moved: the operation follows the end, and takes the record sent later.
        auto [out2, in2] = local_ends(4);
        std::optional<receiver> first(std::move(in2));
        std::optional<receiver> second;
        ringio::spawn(context,
                      [](ringio::io_context& ctx, receiver& from,
                         std::optional<peer_record>& got) -> ringio::task<> {
                          got = co_await from.receive(ctx);
                      }(context, *first, moved_got));
        ringio::spawn(context,
                      [](ringio::io_context& ctx, std::optional<receiver>& a,
                         std::optional<receiver>& b, sender& to) -> ringio::task<> {
                          co_await ringio::sleep_for(ctx, 20ms);
                          b.emplace(std::move(*a));
                          a.reset();
                          co_await ringio::sleep_for(ctx, 20ms);
                          to.send(record_number(1));
                      }(context, first, second, out2));
        context.run();
        REQUIRE(moved_got);
        CHECK(moved_got->sequence == 1);

        // Destroyed: it wakes and fails with EBADF.
        ringio::spawn(context, waiter(context, *second, destroyed, destroyed_text));
        ringio::spawn(context,
                      [](ringio::io_context& ctx, std::optional<receiver>& end) -> ringio::task<> {
                          co_await ringio::sleep_for(ctx, 20ms);
                          end.reset();
                      }(context, second));
        context.run();
        CHECK(destroyed == std::errc::bad_file_descriptor);
        CHECK(destroyed_text == "receive from channel (the end was destroyed while it waited): "
                                "Bad file descriptor");
        CHECK(context.in_flight() == 0);
    }
}
