#include <ringio/signal_set.hpp>

#include <ringio/cancellation.hpp>
#include <ringio/descriptor.hpp>
#include <ringio/io_context.hpp>
#include <ringio/task.hpp>
#include <ringio/timer.hpp>

#include "allocation_counter.hpp"
#include "child_process.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using ringio::testing::owned_pipe;

// Every test that blocks, sends or reads a signal does it in a forked child: the mask and the
// pending signals would otherwise outlive the test and reach the next one.

namespace {

// What went wrong in a child, in words: a child cannot report through the test framework.
class verdict {
public:
    void check(bool ok, std::string_view what) {
        if (!ok) {
            failures_ += what;
            failures_ += "; ";
        }
    }
    [[nodiscard]] const std::string& failures() const noexcept { return failures_; }

private:
    std::string failures_;
};

// Runs `body(verdict&)` in a forked child and returns what it found wrong, or how the child
// ended if it did not end by itself: empty when all went well.
template <class Body>
std::string in_child(Body body) {
    owned_pipe report;
    const int status = ringio::testing::run_in_child([&] {
        report.read_end.reset();
        verdict v;
        try {
            body(v);
        } catch (const std::exception& e) {
            v.check(false, std::string("threw: ") + e.what());
        }
        const std::string& text = v.failures();
        std::size_t done = 0;
        while (done < text.size()) {
            const ssize_t n =
                ::write(report.write_end.get(), text.data() + done, text.size() - done);
            if (n <= 0) {
                break;
            }
            done += static_cast<std::size_t>(n);
        }
        return text.empty() ? 0 : 1;
    });
    report.write_end.reset();
    std::string text;
    std::array<char, 512> buffer;
    for (;;) {
        const ssize_t n = ::read(report.read_end.get(), buffer.data(), buffer.size());
        if (n <= 0) {
            break;
        }
        text.append(buffer.data(), static_cast<std::size_t>(n));
    }
    if (status != 0 && text.empty()) {
        text = "the child ended with status " + std::to_string(status);
    }
    return text;
}

// True when `signal` is blocked in the calling thread.
bool blocked(int signal) {
    sigset_t mask;
    ::pthread_sigmask(SIG_BLOCK, nullptr, &mask);
    return ::sigismember(&mask, signal) == 1;
}

void block(int signal) {
    sigset_t one;
    ::sigemptyset(&one);
    ::sigaddset(&one, signal);
    ::pthread_sigmask(SIG_BLOCK, &one, nullptr);
}

// Waits for one signal of `set`; 0 and the error in `error` if it fails.
ringio::task<int> wait_for(ringio::signal_set& set, std::error_code& error) {
    co_return co_await set.wait().into(error);
}

// Sends `signal` to this process once `delay` has passed.
ringio::task<> send_after(ringio::io_context& context, int signal,
                          std::chrono::milliseconds delay) {
    co_await ringio::sleep_for(context, delay);
    ::kill(::getpid(), signal);
}

} // namespace

TEST_CASE("signal_set: wait produces the number of the signal that arrives", "[signal_set]") {
    const std::string failures = in_child([](verdict& v) {
        ringio::io_context context;
        ringio::signal_set set(context, {SIGUSR1, SIGUSR2});
        v.check(blocked(SIGUSR1) && blocked(SIGUSR2), "the set blocks its signals");
        std::error_code error;
        ::kill(::getpid(), SIGUSR2); // to the process
        v.check(ringio::sync_wait(context, wait_for(set, error)) == SIGUSR2, "SIGUSR2");
        v.check(!error, "no error");
        ::raise(SIGUSR1); // to this thread
        v.check(ringio::sync_wait(context, wait_for(set, error)) == SIGUSR1, "SIGUSR1");
        // One that arrives while the wait is pending.
        ringio::spawn(context, send_after(context, SIGUSR2, 5ms));
        v.check(ringio::sync_wait(context, wait_for(set, error)) == SIGUSR2,
                "SIGUSR2 while waiting");
    });
    CHECK(failures == "");
}

TEST_CASE("signal_set: several waits pending at once each read one signal", "[signal_set]") {
    const std::string failures = in_child([](verdict& v) {
        ringio::io_context context;
        ringio::signal_set set(context, {SIGUSR1, SIGUSR2});
        std::array<int, 2> got{};
        std::array<std::error_code, 2> errors;
        auto waiter = [&](std::size_t i) -> ringio::task<> {
            got[i] = co_await set.wait().into(errors[i]);
        };
        ringio::spawn(context, waiter(0));
        ringio::spawn(context, waiter(1));
        context.poll();
        ::kill(::getpid(), SIGUSR1);
        ::kill(::getpid(), SIGUSR2);
        context.run();
        v.check(!errors[0] && !errors[1], "no error");
        v.check(got[0] + got[1] == SIGUSR1 + SIGUSR2 && got[0] != got[1],
                "each wait read one signal");
    });
    CHECK(failures == "");
}

TEST_CASE("signal_set: a wait is cancelled by cancel_on and timed out by with_timeout, and "
          "loses no signal",
          "[signal_set]") {
    const std::string failures = in_child([](verdict& v) {
        ringio::io_context context;
        ringio::signal_set set(context, {SIGUSR1});
        std::error_code error;
        std::string message;
        ringio::sync_wait(context, [&]() -> ringio::task<> {
            co_await set.wait().with_timeout(5ms).into(error);
            try {
                co_await set.wait().with_timeout(1ms);
            } catch (const std::system_error& e) {
                message = e.what();
            }
        }());
        v.check(error == std::errc::stream_timeout, "ETIME");
        v.check(message.starts_with("wait for a signal, fd ") &&
                    message.ends_with(": Timer expired"),
                "the message: " + message);

        ringio::cancellation stop;
        std::error_code cancelled;
        auto waiter = [&]() -> ringio::task<> {
            co_await set.wait().cancel_on(stop).into(cancelled);
        };
        auto cancel = [&]() -> ringio::task<> {
            co_await ringio::sleep_for(context, 5ms);
            stop.cancel();
        };
        ringio::spawn(context, waiter());
        ringio::spawn(context, cancel());
        context.run();
        v.check(cancelled == std::errc::operation_canceled, "ECANCELED");

        // The set goes on: the waits that ended read nothing.
        ::kill(::getpid(), SIGUSR1);
        std::error_code last;
        v.check(ringio::sync_wait(context, wait_for(set, last)) == SIGUSR1 && !last,
                "a signal after the cancelled waits");
    });
    CHECK(failures == "");
}

TEST_CASE("signal_set: destroying the set cancels a pending wait and restores the mask",
          "[signal_set]") {
    const std::string failures = in_child([](verdict& v) {
        ringio::io_context context;
        auto set =
            std::make_unique<ringio::signal_set>(context, std::initializer_list<int>{SIGUSR1});
        std::error_code error;
        int got = -1;
        auto waiter = [&]() -> ringio::task<> {
            got = co_await set->wait().into(error);
        };
        auto destroy = [&]() -> ringio::task<> {
            co_await ringio::sleep_for(context, 5ms);
            set.reset();
        };
        ringio::spawn(context, waiter());
        ringio::spawn(context, destroy());
        context.run();
        v.check(error == std::errc::operation_canceled, "ECANCELED");
        v.check(got == 0, "0 in the .into form");
        v.check(!blocked(SIGUSR1), "SIGUSR1 unblocked");
    });
    CHECK(failures == "");
}

TEST_CASE("signal_set: destroying the context while a frame that owns a set waits is safe",
          "[signal_set]") {
    const std::string failures = in_child([](verdict& v) {
        {
            ringio::io_context context;
            ringio::spawn(context, [](ringio::io_context& ctx) -> ringio::task<> {
                ringio::signal_set set(ctx, {SIGUSR1});
                co_await set.wait();
            }(context));
            context.poll();
            v.check(blocked(SIGUSR1), "blocked while the frame waits");
        }
        v.check(!blocked(SIGUSR1), "unblocked when the frame is destroyed");
    });
    CHECK(failures == "");
}

TEST_CASE("signal_set: a number that is not a signal is EINVAL, and no mask changes",
          "[signal_set]") {
    const std::string failures = in_child([](verdict& v) {
        ringio::io_context context;
        for (const int bad : {999, 0, -1}) {
            try {
                ringio::signal_set set(context, {SIGUSR1, bad});
                v.check(false, "signal " + std::to_string(bad) + " accepted");
            } catch (const std::system_error& e) {
                v.check(e.code() == std::errc::invalid_argument, "EINVAL");
                v.check(std::string(e.what()) ==
                            "signal_set: signal " + std::to_string(bad) + ": Invalid argument",
                        std::string("the message: ") + e.what());
            }
            v.check(!blocked(SIGUSR1), "SIGUSR1 left unblocked");
        }
    });
    CHECK(failures == "");
}

TEST_CASE("signal_set: a signalfd that cannot be opened is reported, and the mask restored",
          "[signal_set]") {
    const std::string failures = in_child([](verdict& v) {
        ringio::io_context context;
        std::optional<ringio::testing::descriptor_exhaustion> exhausted;
        exhausted.emplace();
        std::error_code code;
        std::string message = "(no error)";
        try { // nothing is compared while the table is full: see descriptor_exhaustion
            ringio::signal_set set(context, {SIGUSR1});
        } catch (const std::system_error& e) {
            code = e.code();
            message = e.what();
        }
        exhausted.reset();
        v.check(code == std::errc::too_many_files_open, "EMFILE");
        v.check(message == "signal_set: signalfd: Too many open files", "the message: " + message);
        v.check(!blocked(SIGUSR1), "SIGUSR1 unblocked again");
    });
    CHECK(failures == "");
}

TEST_CASE("signal_set: destruction unblocks what it blocked, not what was blocked before it",
          "[signal_set]") {
    const std::string failures = in_child([](verdict& v) {
        ringio::io_context context;
        block(SIGUSR2);
        {
            ringio::signal_set set(context, {SIGUSR1, SIGUSR2});
            v.check(blocked(SIGUSR1) && blocked(SIGUSR2), "both blocked");
        }
        v.check(!blocked(SIGUSR1), "SIGUSR1 unblocked");
        v.check(blocked(SIGUSR2), "SIGUSR2 still blocked, as before the set");
    });
    CHECK(failures == "");
}

TEST_CASE("signal_set: two sets on one signal keep it blocked until both are gone, in either "
          "order",
          "[signal_set]") {
    for (const bool first_goes_first : {true, false}) {
        const std::string failures = in_child([first_goes_first](verdict& v) {
            ringio::io_context context;
            auto first =
                std::make_unique<ringio::signal_set>(context, std::initializer_list<int>{SIGUSR1});
            auto second =
                std::make_unique<ringio::signal_set>(context, std::initializer_list<int>{SIGUSR1});
            auto& gone = first_goes_first ? first : second;
            auto& kept = first_goes_first ? second : first;
            gone.reset();
            v.check(blocked(SIGUSR1), "still blocked while a set has it");
            if (blocked(SIGUSR1)) { // else the signal would end the child
                ::kill(::getpid(), SIGUSR1);
                std::error_code error;
                v.check(ringio::sync_wait(context, wait_for(*kept, error)) == SIGUSR1,
                        "the set left reads it");
            }
            kept.reset();
            v.check(!blocked(SIGUSR1), "unblocked when the last set is gone");
        });
        CHECK(failures == "");
    }
}

TEST_CASE("signal_set: a forked child starts with the sets' signals unblocked", "[signal_set]") {
    const std::string failures = in_child([](verdict& v) {
        ringio::io_context context;
        block(SIGUSR2); // blocked before any set: the program's own choice
        ringio::signal_set set(context, {SIGUSR1, SIGUSR2});
        const int status = ringio::testing::run_in_child(
            [] { return !blocked(SIGUSR1) && blocked(SIGUSR2) ? 0 : 1; });
        v.check(status == 0, "the grandchild's mask: status " + std::to_string(status));
        v.check(blocked(SIGUSR1), "the parent's mask is unchanged");
    });
    CHECK(failures == "");
}

TEST_CASE("cancel_on_signal: a signal cancels every operation waiting under the cancellation",
          "[signal_set]") {
    const std::string failures = in_child([](verdict& v) {
        ringio::io_context context;
        ringio::signal_set signals(context, {SIGUSR1, SIGTERM});
        ringio::cancellation stop;
        owned_pipe pipe;
        ringio::descriptor idle(context, pipe.read_end.release());
        std::error_code read_error;
        std::error_code sleep_error;
        auto reader = [&]() -> ringio::task<> {
            std::array<char, 8> buffer{};
            co_await idle.read(buffer).cancel_on(stop).into(read_error);
        };
        auto sleeper = [&]() -> ringio::task<> {
            co_await ringio::sleep_for(context, 1h).cancel_on(stop).into(sleep_error);
        };
        ringio::spawn(context, ringio::cancel_on_signal(signals, stop));
        ringio::spawn(context, reader());
        ringio::spawn(context, sleeper());
        ringio::spawn(context, send_after(context, SIGTERM, 5ms));
        const auto start = std::chrono::steady_clock::now();
        context.run();
        v.check(ringio::testing::elapsed_ms(start) < 5000, "run() returned soon");
        v.check(stop.cancelled(), "stop cancelled");
        v.check(read_error == std::errc::operation_canceled, "the read cancelled");
        v.check(sleep_error == std::errc::operation_canceled, "the sleep cancelled");
    });
    CHECK(failures == "");
}

TEST_CASE("cancel_on_signal: ends with the error of wait(), cancelling nothing", "[signal_set]") {
    const std::string failures = in_child([](verdict& v) {
        ringio::io_context context;
        auto signals =
            std::make_unique<ringio::signal_set>(context, std::initializer_list<int>{SIGUSR1});
        ringio::cancellation stop;
        ringio::spawn(context, ringio::cancel_on_signal(*signals, stop));
        context.poll();
        signals.reset();
        try {
            context.run();
            v.check(false, "run() did not rethrow the wait's error");
        } catch (const std::system_error& e) {
            v.check(e.code() == std::errc::operation_canceled, "ECANCELED");
            v.check(std::string(e.what()).starts_with("wait for a signal, fd "),
                    std::string("the message: ") + e.what());
        }
        v.check(!stop.cancelled(), "stop not cancelled");
    });
    CHECK(failures == "");
}

TEST_CASE("signal_set: contexts on several threads, each with its own set: one signal wakes one",
          "[signal_set]") {
    const std::string failures = in_child([](verdict& v) {
        constexpr int threads = 3;
        block(SIGUSR1); // this thread takes none, and the others start with it blocked
        std::atomic<int> ready{0};
        std::atomic<int> woken{0};
        std::array<std::atomic<int>, threads> got{};
        std::vector<std::thread> runners;
        for (std::size_t i = 0; i < threads; ++i) {
            runners.emplace_back([&, i] {
                ringio::io_context context;
                ringio::signal_set set(context, {SIGUSR1});
                ++ready;
                std::error_code error;
                got[i] = ringio::sync_wait(context, [&]() -> ringio::task<int> {
                    co_return co_await set.wait().with_timeout(10s).into(error);
                }());
                ++woken;
                // Keep the set (and so the mask) until every thread has had its signal.
                const auto start = std::chrono::steady_clock::now();
                while (woken < threads && ringio::testing::elapsed_ms(start) < 10000) {
                    std::this_thread::sleep_for(1ms);
                }
            });
        }
        const auto wait_until = [](auto done) {
            const auto start = std::chrono::steady_clock::now();
            while (!done() && ringio::testing::elapsed_ms(start) < 5000) {
                std::this_thread::sleep_for(1ms);
            }
            return done();
        };
        v.check(wait_until([&] { return ready == threads; }), "every set made");
        std::this_thread::sleep_for(20ms); // every wait submitted
        for (int sent = 1; sent <= threads; ++sent) {
            ::kill(::getpid(), SIGUSR1);
            v.check(wait_until([&] { return woken >= sent; }), "a thread woken");
            std::this_thread::sleep_for(30ms);
            v.check(woken == sent, "one signal wakes one thread, not more");
        }
        for (std::thread& runner : runners) {
            runner.join();
        }
        for (const auto& signal : got) {
            v.check(signal == SIGUSR1, "each thread read SIGUSR1");
        }
    });
    CHECK(failures == "");
}

TEST_CASE("signal_set: no heap allocation per wait", "[signal_set]") {
    if (!RINGIO_TEST_COUNTS_ALLOCATIONS) {
        WARN("SKIPPED: a sanitizer replaces operator new; the other builds count");
        return;
    }
    const std::string failures = in_child([](verdict& v) {
        ringio::io_context context;
        ringio::signal_set set(context, {SIGUSR1});
        long counted = -1;
        auto loop = [&]() -> ringio::task<> {
            std::error_code error;
            long before = 0;
            for (int i = 0; i <= 100; ++i) {
                if (i == 1) {
                    before = ringio::testing::allocations.load();
                }
                ::kill(::getpid(), SIGUSR1);
                co_await set.wait();
                co_await set.wait().with_timeout(0ms).into(error);
            }
            counted = ringio::testing::allocations.load() - before;
        };
        ringio::sync_wait(context, loop());
        v.check(counted == 0, std::to_string(counted) + " allocations");
    });
    CHECK(failures == "");
}
