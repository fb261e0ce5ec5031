#include <ringio/timer.hpp>

#include <ringio/io_context.hpp>
#include <ringio/task.hpp>

#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <system_error>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using ringio::testing::elapsed_ms;

namespace {

// The awaitable sleep_for returns, for a coroutine that cancels another's sleep.
using sleep_operation =
    decltype(ringio::sleep_for(std::declval<ringio::io_context&>(), std::chrono::hours(1)));

} // namespace

TEST_CASE("sleep_for: resumes after the duration", "[timer]") {
    ringio::io_context context;
    const auto start = std::chrono::steady_clock::now();
    ringio::sync_wait(context, [](ringio::io_context& ctx) -> ringio::task<> {
        co_await ringio::sleep_for(ctx, 30ms);
    }(context));
    CHECK(elapsed_ms(start) >= 30);
}

TEST_CASE("sleep_for: a zero or negative duration completes at once", "[timer]") {
    ringio::io_context context;
    const auto start = std::chrono::steady_clock::now();
    ringio::sync_wait(context, [](ringio::io_context& ctx) -> ringio::task<> {
        co_await ringio::sleep_for(ctx, 0s);
        co_await ringio::sleep_for(ctx, -5s);
    }(context));
    CHECK(elapsed_ms(start) < 1000);
}

TEST_CASE("sleep_for: many timers complete in deadline order", "[timer]") {
    ringio::io_context context;
    std::vector<int> order;
    for (int i : {5, 1, 4, 2, 3}) {
        ringio::spawn(context,
                      [](ringio::io_context& ctx, int n, std::vector<int>& out) -> ringio::task<> {
                          co_await ringio::sleep_for(ctx, std::chrono::milliseconds(20 * n));
                          out.push_back(n);
                      }(context, i, order));
    }
    context.run();
    CHECK(order == std::vector<int>{1, 2, 3, 4, 5});
}

TEST_CASE("sleep_for: cancel completes it early with ECANCELED", "[timer]") {
    ringio::io_context context;
    std::error_code error;
    sleep_operation* pending = nullptr;
    const auto start = std::chrono::steady_clock::now();
    ringio::spawn(context,
                  [](ringio::io_context& ctx, sleep_operation*& handle,
                     std::error_code& ec) -> ringio::task<> {
                      auto sleep = ringio::sleep_for(ctx, 1h);
                      handle = &sleep;
                      co_await sleep.into(ec);
                      handle = nullptr;
                  }(context, pending, error));
    ringio::spawn(context, [](ringio::io_context& ctx, sleep_operation*& handle) -> ringio::task<> {
        co_await ringio::sleep_for(ctx, 5ms);
        REQUIRE(handle != nullptr);
        CHECK(handle->pending());
        handle->cancel();
        handle->cancel(); // a second request is ignored
    }(context, pending));
    context.run();
    CHECK(error == std::errc::operation_canceled);
    CHECK(pending == nullptr);
    CHECK(elapsed_ms(start) < 5000);
}

TEST_CASE("sleep_for: the throwing form names the operation", "[timer]") {
    ringio::io_context context;
    auto cancelled = [](ringio::io_context& ctx) -> ringio::task<> {
        auto sleep = ringio::sleep_for(ctx, 1h);
        ringio::spawn(ctx, [](ringio::io_context& c, sleep_operation& s) -> ringio::task<> {
            co_await ringio::sleep_for(c, 1ms);
            s.cancel();
        }(ctx, sleep));
        co_await sleep;
    };
    CHECK_THROWS_WITH(ringio::sync_wait(context, cancelled(context)),
                      Catch::StartsWith("sleep_for"));
}

// Each form of with_timeout that docs/reference.md shows must compile with both compilers and
// time out: on a temporary, on a variable awaited through the call, and set before awaiting,
// each with `.into(error)` before or after it.
TEST_CASE("with_timeout: every documented form compiles and expires", "[timer]") {
    ringio::io_context context;
    auto forms = [](ringio::io_context& ctx) -> ringio::task<int> {
        int expired = 0;
        std::error_code error;
        co_await ringio::sleep_for(ctx, 10s).with_timeout(5ms).into(error);
        expired += error == std::errc::stream_timeout ? 1 : 0;
        error.clear();
        co_await ringio::sleep_for(ctx, 10s).into(error).with_timeout(5ms);
        expired += error == std::errc::stream_timeout ? 1 : 0;
        error.clear();
        auto named = ringio::sleep_for(ctx, 10s);
        co_await named.with_timeout(5ms).into(error);
        expired += error == std::errc::stream_timeout ? 1 : 0;
        error.clear();
        auto named_into_first = ringio::sleep_for(ctx, 10s);
        co_await named_into_first.into(error).with_timeout(5ms);
        expired += error == std::errc::stream_timeout ? 1 : 0;
        error.clear();
        auto set_first = ringio::sleep_for(ctx, 10s);
        set_first.with_timeout(5ms);
        co_await set_first.into(error);
        expired += error == std::errc::stream_timeout ? 1 : 0;
        try {
            co_await ringio::sleep_for(ctx, 10s).with_timeout(5ms);
        } catch (const std::system_error& thrown) {
            expired += thrown.code() == std::errc::stream_timeout ? 1 : 0;
        }
        co_return expired;
    };
    const auto start = std::chrono::steady_clock::now();
    CHECK(ringio::sync_wait(context, forms(context)) == 6);
    CHECK(elapsed_ms(start) < 5000);
}

TEST_CASE("sleep_for: a timeout longer than the sleep changes nothing", "[timer]") {
    ringio::io_context context;
    std::error_code error = std::make_error_code(std::errc::io_error);
    ringio::sync_wait(context, [](ringio::io_context& ctx, std::error_code& ec) -> ringio::task<> {
        co_await ringio::sleep_for(ctx, 2ms).with_timeout(10s).into(ec);
    }(context, error));
    CHECK_FALSE(error); // cleared on success
    CHECK(context.in_flight() == 0);
}
