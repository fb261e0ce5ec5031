#include <ringio/io_context.hpp>

#include <ringio/descriptor.hpp>
#include <ringio/task.hpp>
#include <ringio/timer.hpp>

#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <exception>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using ringio::testing::open_fd_count;
using ringio::testing::owned_pipe;

namespace {

ringio::detail::unique_fd open_dev_null() {
    ringio::detail::unique_fd fd{::open("/dev/null", O_WRONLY | O_CLOEXEC)};
    REQUIRE(fd);
    return fd;
}

ringio::task<> write_many(ringio::io_context& context, int fd, int count, int& done) {
    std::array<std::byte, 16> buffer{};
    for (int i = 0; i < count; ++i) {
        co_await ringio::write(context, fd, buffer);
        ++done;
    }
}

// Runs `body` in a child process under a seccomp filter that fails io_uring_setup with
// `error`, and returns what the child reports: 0 when the io_context constructor threw a
// system_error carrying that error and a message naming the cause.
int construct_under_seccomp(int error, const char* expected_words) {
    const pid_t child = ::fork();
    if (child == 0) {
        sock_filter filter[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_io_uring_setup, 0, 1),
            BPF_STMT(BPF_RET | BPF_K,
                     SECCOMP_RET_ERRNO | (static_cast<unsigned>(error) & SECCOMP_RET_DATA)),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        sock_fprog program{static_cast<unsigned short>(std::size(filter)), filter};
        if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
            ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) != 0) {
            ::_exit(10);
        }
        try {
            ringio::io_context context;
        } catch (const std::system_error& failure) {
            const std::string text = failure.what();
            ::_exit(failure.code().value() == error &&
                            text.find(expected_words) != std::string::npos
                        ? 0
                        : 11);
        }
        ::_exit(12);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

} // namespace

TEST_CASE("io_context: the default completion queue gives the kernel its largest table of armed "
          "requests; a given size is kept",
          "[io_context]") {
    // The kernel's table has 2^(log2(CQ) - 5) buckets, at most 256: 8,192 entries reach it.
    const auto cq_size = [](ringio::io_context& context) {
        return ringio::detail::ring_of(context).native().cq.ring_entries;
    };
    ringio::io_context plain;
    CHECK(cq_size(plain) >= 8192);
    ringio::io_context large{{.entries = 4096}};
    CHECK(cq_size(large) >= 4 * 4096);
    ringio::io_context small{{.entries = 4, .cq_entries = 8}};
    CHECK(cq_size(small) == 8);
}

TEST_CASE("io_context: sets up the fastest ring the kernel accepts", "[io_context]") {
    io_uring probe{};
    io_uring_params params{};
    params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    const bool kernel_has_defer = io_uring_queue_init_params(8, &probe, &params) == 0;
    if (kernel_has_defer) {
        io_uring_queue_exit(&probe);
    }
    ringio::io_context fast;
    if (kernel_has_defer) {
        CHECK((fast.setup_flags() & IORING_SETUP_DEFER_TASKRUN) != 0);
        CHECK((fast.setup_flags() & IORING_SETUP_SINGLE_ISSUER) != 0);
    } else {
        WARN("SKIPPED: this kernel has no DEFER_TASKRUN; checked the fallback only");
        CHECK((fast.setup_flags() & IORING_SETUP_DEFER_TASKRUN) == 0);
    }

    ringio::io_context plain{{.fast_flags = false}};
    CHECK((plain.setup_flags() & (IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_COOP_TASKRUN)) == 0);
}

TEST_CASE("io_context: run returns at once when nothing is in flight", "[io_context]") {
    ringio::io_context context;
    context.run();
    CHECK(context.in_flight() == 0);
    CHECK_FALSE(context.poll());
}

TEST_CASE("io_context: carries many more operations than it has SQ entries", "[io_context]") {
    ringio::io_context context{{.entries = 4}};
    const auto null = open_dev_null();
    int done = 0;
    for (int i = 0; i < 200; ++i) {
        ringio::spawn(context, write_many(context, null.get(), 5, done));
    }
    context.run();
    CHECK(done == 1000);
    CHECK(context.in_flight() == 0);
}

TEST_CASE("io_context: a completion queue overflow loses no completion", "[io_context]") {
    // Writes to /dev/null complete at submission: with 4 SQ and 8 CQ entries, hundreds of
    // them overflow the CQ long before the loop reaps.
    ringio::io_context context{{.entries = 4, .cq_entries = 8}};
    const auto null = open_dev_null();
    int done = 0;
    for (int i = 0; i < 500; ++i) {
        ringio::spawn(context, write_many(context, null.get(), 1, done));
    }
    context.run();
    CHECK(done == 500);
}

TEST_CASE("io_context: stop makes run return while work is pending", "[io_context]") {
    ringio::io_context context;
    bool long_sleep_finished = false;
    ringio::spawn(context, [](ringio::io_context& ctx, bool& finished) -> ringio::task<> {
        co_await ringio::sleep_for(ctx, 1h);
        finished = true;
    }(context, long_sleep_finished));
    ringio::spawn(context, [](ringio::io_context& ctx) -> ringio::task<> {
        co_await ringio::sleep_for(ctx, 5ms);
        ctx.stop();
    }(context));
    const auto start = std::chrono::steady_clock::now();
    context.run();
    CHECK(ringio::testing::elapsed_ms(start) < 5000);
    CHECK_FALSE(long_sleep_finished);
    CHECK(context.in_flight() > 0);
    CHECK_FALSE(context.stopped());
}

TEST_CASE("io_context: restart clears a stop that no run consumed", "[io_context]") {
    ringio::io_context context;
    context.stop();
    CHECK(context.stopped());
    context.restart();
    CHECK_FALSE(context.stopped());
    bool slept = false;
    ringio::spawn(context, [](ringio::io_context& ctx, bool& done) -> ringio::task<> {
        co_await ringio::sleep_for(ctx, 1ms);
        done = true;
    }(context, slept));
    context.run(); // runs to the end: the stop was cleared
    CHECK(slept);

    // A stop that no run consumed makes the next run return at once, and is consumed by it.
    bool second = false;
    ringio::spawn(context, [](ringio::io_context& ctx, bool& done) -> ringio::task<> {
        co_await ringio::sleep_for(ctx, 20ms);
        done = true;
    }(context, second));
    context.stop();
    context.run();
    CHECK_FALSE(second);
    CHECK_FALSE(context.stopped());
    context.run();
    CHECK(second);
}

TEST_CASE("io_context: in_flight counts requests until their completion is reaped",
          "[io_context]") {
    ringio::io_context context;
    CHECK(context.in_flight() == 0);
    ringio::spawn(context, [](ringio::io_context& ctx) -> ringio::task<> {
        co_await ringio::sleep_for(ctx, 5ms);
    }(context));
    CHECK(context.in_flight() == 1); // prepared, not yet submitted
    ringio::spawn(context, [](ringio::io_context& ctx) -> ringio::task<> {
        co_await ringio::sleep_for(ctx, 5ms).with_timeout(1h); // and its linked timeout
    }(context));
    CHECK(context.in_flight() == 3);
    CHECK(context.poll());
    CHECK(context.in_flight() == 3);
    context.run();
    CHECK(context.in_flight() == 0);
}

// Waits until the kernel has posted `count` completions that nobody has reaped yet.
void wait_for_completions(ringio::detail::ring& ring, unsigned count) {
    const auto end = std::chrono::steady_clock::now() + 5s;
    while (io_uring_cq_ready(&ring.native()) < count) {
        REQUIRE(std::chrono::steady_clock::now() < end);
        std::this_thread::yield();
    }
}

TEST_CASE("ring: idle only while no completion that resumes anything waits to be dispatched",
          "[io_context]") {
    ringio::io_context context;
    ringio::detail::ring& ring = ringio::detail::ring_of(context);
    CHECK(ring.idle());
    struct flag : ringio::detail::completion {
        bool done = false;
    } nop{{[](ringio::detail::completion* self, const io_uring_cqe&) noexcept {
        static_cast<flag*>(self)->done = true;
    }}};
    io_uring_sqe* sqe = ring.get_sqe();
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data64(sqe, nop.user_data());
    CHECK(ring.unsubmitted());
    ring.submit_pending();
    CHECK_FALSE(ring.unsubmitted());
    wait_for_completions(ring, 1);
    CHECK_FALSE(ring.idle()); // a wait that spun now would keep this completion waiting
    context.run_once();
    CHECK(nop.done);
    CHECK(ring.idle());
    // A completion that resumes nothing (a cancel's own) is no reason to stop spinning.
    ring.cancel(nop.user_data());
    ring.submit_pending();
    wait_for_completions(ring, 1);
    CHECK(ring.idle());
    context.poll();
    CHECK(io_uring_cq_ready(&ring.native()) == 0);
}

TEST_CASE("ring: each completion is counted as reaped in order, across the queue's wrap",
          "[io_context]") {
    // A small ring: each batch is more than the SQ holds, and its CQEs meet the CQ's end.
    ringio::io_context context(ringio::context_options{.entries = 8, .cq_entries = 16});
    ringio::detail::ring& ring = ringio::detail::ring_of(context);
    struct seen : ringio::detail::completion {
        ringio::detail::ring* ring;
        std::vector<unsigned> positions; // after this completion, counted from the first
        std::vector<std::size_t> in_flight;
    } nops{{[](ringio::detail::completion* self, const io_uring_cqe&) noexcept {
               auto& s = *static_cast<seen*>(self);
               s.positions.push_back(s.ring->dispatched());
               s.in_flight.push_back(s.ring->in_flight());
           }},
           &ring,
           {},
           {}};
    constexpr unsigned batch = 12;
    const unsigned start = ring.dispatched();
    for (unsigned round = 0; round < 6; ++round) {
        for (unsigned i = 0; i < batch; ++i) {
            io_uring_sqe* sqe = ring.get_sqe();
            io_uring_prep_nop(sqe);
            io_uring_sqe_set_data64(sqe, nops.user_data());
        }
        CHECK(ring.in_flight() == batch);
        context.run();
        REQUIRE(nops.positions.size() == (round + 1) * batch);
        for (unsigned i = 0; i < batch; ++i) {
            const unsigned n = round * batch + i;
            CHECK(nops.positions[n] - start == n + 1);
            CHECK(nops.in_flight[n] == batch - i - 1);
        }
    }
    CHECK(ring.dispatched() - start == 6 * batch); // 72 CQEs: past the 16-entry CQ's end 4 times
    CHECK(context.in_flight() == 0);
}

TEST_CASE("io_context: destruction cancels pending operations and frees their frames",
          "[io_context]") {
    struct tracer {
        int* destroyed;
        ~tracer() { ++*destroyed; }
    };
    int destroyed = 0;
    const int fds_before = open_fd_count();
    {
        owned_pipe pipe;
        ringio::io_context context;
        for (int i = 0; i < 50; ++i) {
            ringio::spawn(context,
                          [](ringio::io_context& ctx, int fd, int* count) -> ringio::task<> {
                              tracer trace{count};
                              std::array<std::byte, 32> buffer{};
                              co_await ringio::read(ctx, fd, buffer); // nobody ever writes
                              co_await ringio::sleep_for(ctx, 1h);
                          }(context, pipe.read_end.get(), &destroyed));
            ringio::spawn(context, [](ringio::io_context& ctx, int* count) -> ringio::task<> {
                tracer trace{count};
                co_await ringio::sleep_for(ctx, 1h);
            }(context, &destroyed));
        }
        context.poll(); // submitted, now truly in the kernel
        CHECK(context.in_flight() == 100);
    }
    CHECK(destroyed == 100);
    CHECK(open_fd_count() == fds_before);
}

TEST_CASE("io_context: an exception from a spawned task is rethrown by run", "[io_context]") {
    ringio::io_context context;
    int finished = 0;
    ringio::spawn(context, [](ringio::io_context& ctx) -> ringio::task<> {
        co_await ringio::sleep_for(ctx, 1ms);
        throw std::runtime_error("spawned failure");
    }(context));
    ringio::spawn(context, [](ringio::io_context& ctx, int& count) -> ringio::task<> {
        co_await ringio::sleep_for(ctx, 20ms);
        ++count;
    }(context, finished));
    CHECK_THROWS_WITH(context.run(), "spawned failure");
    context.run(); // the other task goes on
    CHECK(finished == 1);
}

TEST_CASE("io_context: can be built on one thread and run on another", "[io_context]") {
    ringio::io_context context;
    bool slept = false;
    std::thread runner([&] {
        ringio::sync_wait(context, [](ringio::io_context& ctx, bool& done) -> ringio::task<> {
            co_await ringio::sleep_for(ctx, 1ms);
            done = true;
        }(context, slept));
    });
    runner.join();
    CHECK(slept);
    if ((context.setup_flags() & IORING_SETUP_SINGLE_ISSUER) == 0) {
        WARN("SKIPPED: without SINGLE_ISSUER any thread may submit");
        return;
    }
    // The ring now belongs to the runner thread: this one gets a clear error, not a hang.
    try {
        ringio::sync_wait(context, [](ringio::io_context& ctx) -> ringio::task<> {
            co_await ringio::sleep_for(ctx, 1ms);
        }(context));
        FAIL("a second thread was able to submit");
    } catch (const std::system_error& error) {
        CHECK(error.code().value() == EEXIST);
        CHECK_THAT(error.what(), Catch::Contains("thread other than its own"));
    }
}

TEST_CASE("io_context: reports io_uring being forbidden in plain words", "[io_context]") {
    CHECK(construct_under_seccomp(EPERM, "not permitted here") == 0);
    CHECK(construct_under_seccomp(ENOSYS, "no io_uring") == 0);
    CHECK(construct_under_seccomp(ENOMEM, "locked memory") == 0);
}

TEST_CASE("io_context: a ring without the fast flags runs operations too", "[io_context]") {
    ringio::io_context context{{.fast_flags = false}};
    const auto null = open_dev_null();
    int done = 0;
    ringio::spawn(context, write_many(context, null.get(), 100, done));
    context.run();
    CHECK(done == 100);
    ringio::sync_wait(context, [](ringio::io_context& ctx) -> ringio::task<> {
        co_await ringio::sleep_for(ctx, 1ms);
    }(context));
}

namespace {

// Fails at once, before its first suspension.
ringio::task<> fail_now(std::string what) {
    throw std::runtime_error(what);
    co_return;
}

// Fails after `delay`.
ringio::task<> fail_after(ringio::io_context& context, std::chrono::milliseconds delay,
                          std::string what) {
    co_await ringio::sleep_for(context, delay);
    throw std::runtime_error(what);
}

// Fails three tasks in one turn, once `delay` has passed.
ringio::task<> fail_three_at_once(ringio::io_context& context, std::chrono::milliseconds delay) {
    co_await ringio::sleep_for(context, delay);
    ringio::spawn(context, fail_now("one"));
    ringio::spawn(context, fail_now("two"));
    ringio::spawn(context, fail_now("three"));
}

ringio::task<> finish_after(ringio::io_context& context, std::chrono::milliseconds delay,
                            int& finished) {
    co_await ringio::sleep_for(context, delay);
    ++finished;
}

std::string message_of(const std::exception_ptr& error) {
    try {
        std::rethrow_exception(error);
    } catch (const std::exception& e) {
        return e.what();
    }
}

} // namespace

TEST_CASE("on_error: exceptions of spawned tasks go to the handler, and run() goes on",
          "[io_context]") {
    ringio::io_context context;
    std::vector<std::string> handled;
    context.on_error(
        [&handled](std::exception_ptr error) { handled.push_back(message_of(error)); });
    int finished = 0;
    ringio::spawn(context, fail_after(context, 1ms, "first"));
    ringio::spawn(context, fail_after(context, 5ms, "second"));
    ringio::spawn(context, finish_after(context, 20ms, finished));
    ringio::spawn(context, fail_three_at_once(context, 10ms));
    CHECK_NOTHROW(context.run());
    CHECK(handled == std::vector<std::string>{"first", "second", "one", "two", "three"});
    CHECK(finished == 1);
}

TEST_CASE("on_error: a task that fails before it suspends reaches the handler at the next run",
          "[io_context]") {
    ringio::io_context context;
    std::vector<std::string> handled;
    context.on_error(
        [&handled](std::exception_ptr error) { handled.push_back(message_of(error)); });
    ringio::spawn(context, fail_now("at once"));
    CHECK(context.in_flight() == 0);
    context.run();
    CHECK(handled == std::vector<std::string>{"at once"});
}

TEST_CASE("on_error: a handler that throws makes run() throw; the other errors wait for the "
          "next run",
          "[io_context]") {
    ringio::io_context context;
    std::vector<std::string> handled;
    context.on_error([&handled](std::exception_ptr error) {
        const std::string message = message_of(error);
        if (message == "one") {
            throw std::logic_error("the handler failed on one");
        }
        handled.push_back(message);
    });
    int finished = 0;
    const bool more_work = GENERATE(false, true); // something still in flight, or nothing
    ringio::spawn(context, fail_three_at_once(context, 1ms));
    if (more_work) {
        ringio::spawn(context, finish_after(context, 30ms, finished));
    }
    CHECK_THROWS_WITH(context.run(), "the handler failed on one");
    CHECK(handled.empty());
    CHECK_NOTHROW(context.run());
    CHECK(handled == std::vector<std::string>{"two", "three"});
    CHECK(finished == (more_work ? 1 : 0));
}

TEST_CASE("io_context: without a handler, run() rethrows one exception per call", "[io_context]") {
    ringio::io_context context;
    ringio::spawn(context, fail_three_at_once(context, 1ms));
    CHECK_THROWS_WITH(context.run(), "one");
    CHECK_THROWS_WITH(context.run(), "two");
    CHECK_THROWS_WITH(context.run(), "three");
    CHECK_NOTHROW(context.run());
    ringio::spawn(context, fail_now("at once"));
    CHECK_THROWS_WITH(context.run(), "at once");
}

TEST_CASE("on_error: a second handler replaces the first; the context destroys the last",
          "[io_context]") {
    struct counted {
        int* destroyed;
        std::vector<std::string>* handled;
        std::string name;
        counted(int* count, std::vector<std::string>* seen, std::string label)
            : destroyed(count), handled(seen), name(std::move(label)) {}
        counted(counted&& other) noexcept
            : destroyed(std::exchange(other.destroyed, nullptr)), handled(other.handled),
              name(std::move(other.name)) {}
        counted(const counted&) = delete;
        counted& operator=(const counted&) = delete;
        counted& operator=(counted&&) = delete;
        ~counted() {
            if (destroyed != nullptr) {
                ++*destroyed;
            }
        }
        void operator()(const std::exception_ptr& error) const {
            handled->push_back(name + ": " + message_of(error));
        }
    };
    int destroyed_first = 0;
    int destroyed_second = 0;
    std::vector<std::string> handled;
    {
        ringio::io_context context;
        context.on_error(counted(&destroyed_first, &handled, "first"));
        ringio::spawn(context, fail_after(context, 1ms, "a"));
        context.run();
        CHECK(destroyed_first == 0);
        context.on_error(counted(&destroyed_second, &handled, "second"));
        CHECK(destroyed_first == 1);
        ringio::spawn(context, fail_after(context, 1ms, "b"));
        context.run();
        CHECK(destroyed_second == 0);
    }
    CHECK(destroyed_second == 1);
    CHECK(handled == std::vector<std::string>{"first: a", "second: b"});
}

TEST_CASE("on_error: the handler runs on the loop and may spawn or stop", "[io_context]") {
    ringio::io_context context;
    int finished = 0;
    int calls = 0;
    context.on_error([&](const std::exception_ptr& /*error*/) {
        if (++calls == 1) {
            ringio::spawn(context, finish_after(context, 1ms, finished)); // a retry, say
        } else {
            context.stop();
        }
    });
    ringio::spawn(context, fail_after(context, 1ms, "first"));
    ringio::spawn(context, fail_after(context, 10ms, "second"));
    ringio::spawn(context, finish_after(context, 1h, finished)); // stop() leaves it pending
    context.run();
    CHECK(calls == 2);
    CHECK(finished == 1);
    CHECK(context.in_flight() > 0);
}
