#include <ringio/futex.hpp>

#include <ringio/cancellation.hpp>
#include <ringio/io_context.hpp>
#include <ringio/mapped.hpp>
#include <ringio/shared_atomic_ref.hpp>
#include <ringio/task.hpp>
#include <ringio/timer.hpp>

#include "allocation_counter.hpp"
#include "child_process.hpp"
#include "futex_fallback.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <system_error>
#include <thread>

using namespace std::chrono_literals;
using namespace ringio::testing;
using ringio::testing::fallback_forced;
using ringio::testing::runs;

namespace {

struct shared_words {
    std::uint32_t value;
    std::uint32_t ready; // the child says it is about to wait
};

// A child that stores `value` after `delay` and wakes every waiter.
pid_t store_later(ringio::shared_atomic_ref<std::uint32_t> ref, std::uint32_t value,
                  std::chrono::milliseconds delay) {
    return fork_child([=] {
        std::this_thread::sleep_for(delay);
        ref.store(value, std::memory_order_release);
        ref.notify_all();
        return 0;
    });
}

void woken_across_fork(bool fallback) {
    if (!runs(fallback)) {
        return;
    }
    const fallback_forced mode(fallback);
    auto shared = ringio::mapped<shared_words>::anonymous();
    ringio::shared_atomic_ref value{shared->value};
    ringio::io_context context;
    const auto start = std::chrono::steady_clock::now();
    const pid_t child = store_later(value, 7, 50ms);
    std::uint32_t seen = 0;
    ringio::sync_wait(context,
                      [](ringio::io_context& ctx, ringio::shared_atomic_ref<std::uint32_t> ref,
                         std::uint32_t& out) -> ringio::task<> {
                          out = co_await ringio::wait(ctx, ref, 0U, std::memory_order_acquire);
                      }(context, value, seen));
    CHECK(seen == 7);
    CHECK(elapsed_ms(start) >= 50);
    CHECK(wait_child(child) == 0);
}

void times_out(bool fallback) {
    if (!runs(fallback)) {
        return;
    }
    const fallback_forced mode(fallback);
    auto shared = ringio::mapped<shared_words>::anonymous();
    ringio::shared_atomic_ref value{shared->value};
    ringio::io_context context;
    std::error_code error;
    std::string message;
    const auto start = std::chrono::steady_clock::now();
    ringio::sync_wait(context,
                      [](ringio::io_context& ctx, ringio::shared_atomic_ref<std::uint32_t> ref,
                         std::error_code& ec, std::string& text) -> ringio::task<> {
                          const std::uint32_t got =
                              co_await ringio::wait(ctx, ref, 0U).with_timeout(40ms).into(ec);
                          CHECK(got == 0);
                          try {
                              co_await ringio::wait(ctx, ref, 0U)
                                  .with_deadline(std::chrono::steady_clock::now() + 10ms);
                          } catch (const std::system_error& e) {
                              text = e.what();
                          }
                      }(context, value, error, message));
    CHECK(error == std::errc::stream_timeout);
    CHECK(elapsed_ms(start) >= 50);
    CHECK(message == "wait on a shared integer holding 0: Timer expired");
    CHECK(context.in_flight() == 0);
}

void cancelled(bool fallback) {
    if (!runs(fallback)) {
        return;
    }
    const fallback_forced mode(fallback);
    auto shared = ringio::mapped<shared_words>::anonymous();
    ringio::shared_atomic_ref value{shared->value};
    ringio::io_context context;
    ringio::cancellation stop;
    std::error_code by_signal;
    std::error_code by_cancel;
    using wait_operation = decltype(ringio::wait(context, value, 0U));
    wait_operation* pending = nullptr;
    ringio::spawn(context,
                  [](ringio::io_context& ctx, ringio::shared_atomic_ref<std::uint32_t> ref,
                     ringio::cancellation& signal, std::error_code& ec) -> ringio::task<> {
                      co_await ringio::wait(ctx, ref, 0U).cancel_on(signal).into(ec);
                  }(context, value, stop, by_signal));
    ringio::spawn(context,
                  [](ringio::io_context& ctx, ringio::shared_atomic_ref<std::uint32_t> ref,
                     wait_operation*& handle, std::error_code& ec) -> ringio::task<> {
                      auto op = ringio::wait(ctx, ref, 0U);
                      handle = &op;
                      co_await op.into(ec);
                      handle = nullptr;
                  }(context, value, pending, by_cancel));
    ringio::spawn(context,
                  [](ringio::io_context& ctx, ringio::cancellation& signal,
                     wait_operation*& handle) -> ringio::task<> {
                      co_await ringio::sleep_for(ctx, 20ms);
                      signal.cancel();
                      REQUIRE(handle != nullptr);
                      handle->cancel();
                  }(context, stop, pending));
    context.run();
    CHECK(by_signal == std::errc::operation_canceled);
    CHECK(by_cancel == std::errc::operation_canceled);
    CHECK(context.in_flight() == 0);
    CHECK(value.load() == 0);
}

void destroyed_while_waiting(bool fallback) {
    if (!runs(fallback)) {
        return;
    }
    const fallback_forced mode(fallback);
    auto shared = ringio::mapped<shared_words>::anonymous();
    ringio::shared_atomic_ref value{shared->value};
    bool resumed = false;
    auto flag = std::make_shared<int>(0); // held by the frame: released when it is destroyed
    {
        ringio::io_context context;
        ringio::spawn(context,
                      [](ringio::io_context& ctx, ringio::shared_atomic_ref<std::uint32_t> ref,
                         bool& after, std::shared_ptr<int> held) -> ringio::task<> {
                          co_await ringio::wait(ctx, ref, 0U);
                          after = held != nullptr;
                      }(context, value, resumed, flag));
        context.poll(); // submitted, and waiting
        CHECK(context.in_flight() >= 1);
    } // the context cancels the wait and destroys the frame
    CHECK_FALSE(resumed);
    CHECK(flag.use_count() == 1);
}

void allocates_nothing(bool fallback) {
    if (!RINGIO_TEST_COUNTS_ALLOCATIONS) {
        WARN("SKIPPED: a sanitizer replaces operator new; the other builds count");
        return;
    }
    if (!runs(fallback)) {
        return;
    }
    const fallback_forced mode(fallback);
    auto shared = ringio::mapped<shared_words>::anonymous();
    ringio::shared_atomic_ref value{shared->value};
    ringio::io_context context;
    long counted = -1;
    // Two coroutines take turns: each waits for the other's number, then writes its own.
    auto player = [](ringio::io_context& ctx, ringio::shared_atomic_ref<std::uint32_t> ref,
                     std::uint32_t parity) -> ringio::task<> {
        for (std::uint32_t turn = parity; turn < 2000; turn += 2) {
            std::uint32_t now = ref.load();
            while (now != turn) {
                now = co_await ringio::wait(ctx, ref, now);
            }
            ref.store(turn + 1);
            co_await ringio::notify_all(ctx, ref);
        }
    };
    auto counter = [](ringio::io_context& ctx, ringio::shared_atomic_ref<std::uint32_t> ref,
                      long& out) -> ringio::task<> {
        co_await ringio::wait(ctx, ref, 0U); // warmed up: the first turn is taken
        const long before = allocations.load();
        std::uint32_t now = ref.load();
        while (now < 2000) {
            now = co_await ringio::wait(ctx, ref, now);
        }
        out = allocations.load() - before;
    };
    ringio::spawn(context, counter(context, value, counted));
    ringio::spawn(context, player(context, value, 0));
    ringio::spawn(context, player(context, value, 1));
    context.run();
    CHECK(value.load() == 2000);
    CHECK(counted == 0);
}

} // namespace

TEST_CASE("wait: completes at once, with no request, when the value already differs", "[futex]") {
    auto shared = ringio::mapped<shared_words>::anonymous();
    ringio::shared_atomic_ref value{shared->value};
    value.store(5);
    ringio::io_context context;
    std::uint32_t seen = 0;
    std::size_t in_flight = 99;
    ringio::sync_wait(context,
                      [](ringio::io_context& ctx, ringio::shared_atomic_ref<std::uint32_t> ref,
                         std::uint32_t& out, std::size_t& flight) -> ringio::task<> {
                          out = co_await ringio::wait(ctx, ref, 4U);
                          flight = ctx.in_flight();
                      }(context, value, seen, in_flight));
    CHECK(seen == 5);
    CHECK(in_flight == 0);
}

TEST_CASE("wait: woken by a notify from another process", "[futex]") {
    woken_across_fork(false);
}

TEST_CASE("wait (fallback): woken by a notify from another process", "[futex]") {
    woken_across_fork(true);
}

TEST_CASE("wait: a wake-up without a change waits on", "[futex]") {
    if (!runs(false)) {
        return;
    }
    auto shared = ringio::mapped<shared_words>::anonymous();
    ringio::shared_atomic_ref value{shared->value};
    ringio::io_context context;
    const pid_t child = fork_child([value] {
        for (int i = 0; i < 5; ++i) {
            std::this_thread::sleep_for(10ms);
            value.notify_all(); // nothing changed
        }
        value.store(2);
        value.notify_all();
        return 0;
    });
    const auto start = std::chrono::steady_clock::now();
    std::uint32_t seen = 0;
    ringio::sync_wait(context,
                      [](ringio::io_context& ctx, ringio::shared_atomic_ref<std::uint32_t> ref,
                         std::uint32_t& out) -> ringio::task<> {
                          out = co_await ringio::wait(ctx, ref, 0U);
                      }(context, value, seen));
    CHECK(seen == 2);
    CHECK(elapsed_ms(start) >= 50);
    CHECK(wait_child(child) == 0);
}

TEST_CASE("wait: with_timeout and with_deadline fail with ETIME while the value stays", "[futex]") {
    times_out(false);
}

TEST_CASE("wait (fallback): with_timeout and with_deadline fail with ETIME", "[futex]") {
    times_out(true);
}

TEST_CASE("wait: cancel_on and cancel() end it with ECANCELED", "[futex]") {
    cancelled(false);
}

TEST_CASE("wait (fallback): cancel_on and cancel() end it with ECANCELED", "[futex]") {
    cancelled(true);
}

TEST_CASE("wait: destroying the context while a wait is pending cancels it", "[futex]") {
    destroyed_while_waiting(false);
}

TEST_CASE("wait (fallback): destroying the context while a wait is pending cancels it", "[futex]") {
    destroyed_while_waiting(true);
}

TEST_CASE("wait: no heap allocation per wait or notify", "[futex]") {
    allocates_nothing(false);
}

TEST_CASE("wait (fallback): no heap allocation per wait or notify", "[futex]") {
    allocates_nothing(true);
}

TEST_CASE("notify_one: wakes a blocked waiter in another process and says how many it woke",
          "[futex]") {
    for (const bool fallback : {false, true}) {
        if (!fallback && !ringio::detail::futex_support::available()) {
            continue; // the system call, below, wakes alike
        }
        const fallback_forced mode(fallback);
        auto shared = ringio::mapped<shared_words>::anonymous();
        ringio::shared_atomic_ref value{shared->value};
        ringio::io_context context;
        const pid_t child = fork_child([value] {
            value.wait(0, std::memory_order_acquire); // a notify alone wakes it to sleep again
            return value.load() == 1 ? 0 : 1;
        });
        std::size_t first = 0;
        std::size_t last = 99;
        ringio::sync_wait(context,
                          [](ringio::io_context& ctx, ringio::shared_atomic_ref<std::uint32_t> ref,
                             std::size_t& woken, std::size_t& after) -> ringio::task<> {
                              // Until the child sleeps, nobody is woken.
                              const auto end = std::chrono::steady_clock::now() + 10s;
                              while (woken == 0 && std::chrono::steady_clock::now() < end) {
                                  co_await ringio::sleep_for(ctx, 1ms);
                                  woken = co_await ringio::notify_one(ctx, ref);
                              }
                              ref.store(1, std::memory_order_release);
                              co_await ringio::notify_all(ctx, ref);
                              co_await ringio::sleep_for(ctx, 20ms);
                              after =
                                  co_await ringio::notify_all(ctx, ref); // nobody waits any more
                          }(context, value, first, last));
        CHECK(first == 1);
        CHECK(last == 0);
        CHECK(wait_child(child) == 0);
    }
}
