#include <ringio/operation.hpp>

#include <ringio/descriptor.hpp>
#include <ringio/io_context.hpp>
#include <ringio/task.hpp>
#include <ringio/timer.hpp>

#include "allocation_counter.hpp"
#include "child_process.hpp"
#include "temp_dir.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using ringio::testing::elapsed_ms;
using ringio::testing::fd_is_open;
using ringio::testing::open_fd_count;
using ringio::testing::owned_pipe;

namespace {

// IORING_OP_NOP: the smallest request, which ringio does not wrap.
struct nop_op {
    int* prepared = nullptr; // counts the SQEs it fills

    void prepare(io_uring_sqe* sqe) noexcept {
        io_uring_prep_nop(sqe);
        if (prepared != nullptr) {
            ++*prepared;
        }
    }
    void complete(int /*result*/) const noexcept {}
    [[nodiscard]] static std::string describe() { return "nop"; }
};

// IORING_OP_OPENAT: the result, a new descriptor, becomes an owned ringio::descriptor.
struct openat_op {
    ringio::io_context* context;
    std::string path; // the kernel reads it: it lives in the operation, in the frame
    int flags;

    void prepare(io_uring_sqe* sqe) noexcept {
        io_uring_prep_openat(sqe, AT_FDCWD, path.c_str(), flags | O_CLOEXEC, 0600);
    }
    [[nodiscard]] ringio::descriptor complete(int fd) const { return {*context, fd}; }
    // What `co_await op.into(error)` produces on failure: a descriptor has no default.
    [[nodiscard]] ringio::descriptor failed() const { return {*context, -1}; }
    [[nodiscard]] std::string describe() const { return "openat " + path; }
};

ringio::operation<openat_op> open_file(ringio::io_context& context, std::string path, int flags) {
    return ringio::operation<openat_op>(context, &context, std::move(path), flags);
}

// IORING_OP_POLL_ADD on a descriptor, tracked by it: the events that are ready.
struct poll_op {
    int fd;
    unsigned events;

    void prepare(io_uring_sqe* sqe) noexcept { io_uring_prep_poll_add(sqe, fd, events); }
    [[nodiscard]] static unsigned complete(int ready) noexcept {
        return static_cast<unsigned>(ready);
    }
    [[nodiscard]] std::string describe() const { return "poll fd " + std::to_string(fd); }
};

ringio::operation<poll_op> poll_in(ringio::descriptor& d) {
    return ringio::operation<poll_op>(d, d.native_handle(), unsigned{POLLIN});
}

// What the concept refuses.
struct no_describe {
    void prepare(io_uring_sqe* /*sqe*/) noexcept {}
    void complete(int /*result*/) const noexcept {}
};
struct throwing_prepare {
    void prepare(io_uring_sqe* /*sqe*/) {}
    void complete(int /*result*/) const noexcept {}
    [[nodiscard]] static std::string describe() { return "x"; }
};

static_assert(ringio::io_operation<nop_op>);
static_assert(ringio::io_operation<openat_op>);
static_assert(ringio::io_operation<poll_op>);
static_assert(!ringio::io_operation<no_describe>);
static_assert(!ringio::io_operation<throwing_prepare>);
static_assert(std::is_void_v<ringio::operation<nop_op>::value_type>);
static_assert(std::is_same_v<ringio::operation<poll_op>::value_type, unsigned>);
static_assert(!std::is_copy_constructible_v<ringio::operation<nop_op>>);
static_assert(!std::is_move_constructible_v<ringio::operation<nop_op>>);

std::string content_of(const std::filesystem::path& path) {
    std::string text(4096, '\0');
    ringio::detail::unique_fd fd{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
    REQUIRE(fd);
    const ssize_t n = ::read(fd.get(), text.data(), text.size());
    REQUIRE(n >= 0);
    text.resize(static_cast<std::size_t>(n));
    return text;
}

} // namespace

TEST_CASE("operation: runs a request ringio does not wrap (IORING_OP_NOP)", "[operation]") {
    ringio::io_context context;
    int prepared = 0;
    ringio::sync_wait(context, [](ringio::io_context& ctx, int& count) -> ringio::task<> {
        co_await ringio::operation<nop_op>(ctx, &count);
        auto named = ringio::operation<nop_op>(ctx, &count);
        co_await named;
    }(context, prepared));
    CHECK(prepared == 2);
    CHECK(context.in_flight() == 0);
}

TEST_CASE("operation: nothing is submitted until it is awaited", "[operation]") {
    ringio::io_context context;
    int prepared = 0;
    {
        auto never = ringio::operation<nop_op>(context, &prepared);
        CHECK_FALSE(never.pending());
        CHECK(context.in_flight() == 0);
        never.cancel(); // not pending: nothing to cancel
        CHECK(context.in_flight() == 0);
    }
    context.run();
    CHECK(prepared == 0);
}

TEST_CASE("operation: a request maps its result to a value of its own", "[operation]") {
    ringio::io_context context;
    ringio::testing::temp_dir dir;
    const std::string path = dir / "opened";
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        ringio::descriptor file = co_await open_file(context, path, O_WRONLY | O_CREAT);
        CHECK(file.is_open());
        co_await file.write_all("through the ring");
    }());
    CHECK(content_of(path) == "through the ring");

    const std::string missing = dir / "missing" / "file";
    CHECK_THROWS_WITH(ringio::sync_wait(context,
                                        [&]() -> ringio::task<> {
                                            co_await open_file(context, missing, O_RDONLY);
                                        }()),
                      "openat " + missing + ": " + std::strerror(ENOENT));
    std::error_code error;
    const bool opened = ringio::sync_wait(context, [&]() -> ringio::task<bool> {
        ringio::descriptor file = co_await open_file(context, missing, O_RDONLY).into(error);
        co_return file.is_open();
    }());
    CHECK_FALSE(opened);
    CHECK(error == std::errc::no_such_file_or_directory);
}

TEST_CASE("operation: a request on a descriptor is cancelled when it closes", "[operation]") {
    ringio::io_context context;
    owned_pipe pipe;
    ringio::descriptor readable(context, pipe.read_end.release());
    std::error_code error;
    unsigned ready = 0;
    auto poller = [&]() -> ringio::task<> {
        ready = co_await poll_in(readable).with_timeout(10s).into(error);
    };
    ringio::spawn(context, poller());
    context.poll();
    const auto start = std::chrono::steady_clock::now();
    readable.close();
    context.run();
    CHECK(error == std::errc::operation_canceled);
    CHECK(ready == 0);
    CHECK(elapsed_ms(start) < 5000);

    // The same request, completed: its value is the poll mask.
    owned_pipe full;
    REQUIRE(::write(full.write_end.get(), "x", 1) == 1);
    ringio::descriptor other(context, full.read_end.release());
    CHECK((ringio::sync_wait(context,
                             [&]() -> ringio::task<unsigned> {
                                 co_return co_await poll_in(other);
                             }()) &
           POLLIN) != 0);
}

TEST_CASE("into: stores the error instead of throwing, on a temporary and a named operation",
          "[operation]") {
    ringio::io_context context;
    owned_pipe pipe;
    const int fd = pipe.read_end.get();
    std::array<std::byte, 8> buffer{};
    auto forms = [&]() -> ringio::task<std::vector<std::error_code>> {
        std::vector<std::error_code> seen;
        std::error_code error;
        co_await ringio::read(context, -1, buffer).into(error);
        seen.push_back(error);
        auto named = ringio::read(context, -1, buffer);
        co_await named.into(error);
        seen.push_back(error);
        // A success clears it.
        co_await ringio::operation<nop_op>(context).into(error);
        seen.push_back(error);
        error = std::make_error_code(std::errc::io_error);
        auto named_nop = ringio::operation<nop_op>(context);
        co_await named_nop.into(error);
        seen.push_back(error);
        // Without it, the same failure throws.
        try {
            co_await ringio::read(context, -1, buffer);
        } catch (const std::system_error& thrown) {
            seen.push_back(thrown.code());
        }
        // With it, a timeout is an error like any other.
        co_await ringio::read(context, fd, buffer).with_timeout(1ms).into(error);
        seen.push_back(error);
        co_return seen;
    };
    const auto seen = ringio::sync_wait(context, forms());
    REQUIRE(seen.size() == 6);
    CHECK(seen[0] == std::errc::bad_file_descriptor);
    CHECK(seen[1] == std::errc::bad_file_descriptor);
    CHECK_FALSE(seen[2]);
    CHECK_FALSE(seen[3]);
    CHECK(seen[4] == std::errc::bad_file_descriptor);
    CHECK(seen[5] == std::errc::stream_timeout);
}

TEST_CASE("into: composes with with_timeout in either order", "[operation]") {
    ringio::io_context context;
    owned_pipe pipe;
    ringio::descriptor readable(context, pipe.read_end.release());
    std::array<char, 8> buffer{};
    auto expiring = [&]() -> ringio::task<int> {
        int expired = 0;
        std::error_code error;
        co_await readable.read(buffer).into(error).with_timeout(5ms);
        expired += error == std::errc::stream_timeout ? 1 : 0;
        error.clear();
        co_await readable.read(buffer).with_timeout(5ms).into(error);
        expired += error == std::errc::stream_timeout ? 1 : 0;
        error.clear();
        auto into_first = readable.read(buffer);
        co_await into_first.into(error).with_timeout(5ms);
        expired += error == std::errc::stream_timeout ? 1 : 0;
        error.clear();
        auto timeout_first = readable.read(buffer);
        co_await timeout_first.with_timeout(5ms).into(error);
        expired += error == std::errc::stream_timeout ? 1 : 0;
        co_return expired;
    };
    CHECK(ringio::sync_wait(context, expiring()) == 4);

    // When the request wins, the value comes through and the error is cleared.
    auto completing = [&]() -> ringio::task<std::size_t> {
        std::size_t total = 0;
        std::error_code error = std::make_error_code(std::errc::io_error);
        REQUIRE(::write(pipe.write_end.get(), "ab", 2) == 2);
        total += co_await readable.read(std::span{buffer}.first(1)).into(error).with_timeout(10s);
        CHECK_FALSE(error);
        error = std::make_error_code(std::errc::io_error);
        auto named = readable.read(std::span{buffer}.first(1));
        total += co_await named.with_timeout(10s).into(error);
        CHECK_FALSE(error);
        co_return total;
    };
    CHECK(ringio::sync_wait(context, completing()) == 2);
    CHECK(context.in_flight() == 0);
}

TEST_CASE("cancel: completes a pending request once with ECANCELED", "[operation]") {
    ringio::io_context context;
    owned_pipe pipe;
    ringio::descriptor readable(context, pipe.read_end.release());
    std::array<char, 8> buffer{};
    using read_operation = decltype(readable.read(buffer));
    read_operation* pending = nullptr;
    std::error_code error;
    int resumed = 0;
    auto waiter = [&]() -> ringio::task<> {
        auto op = readable.read(buffer);
        pending = &op;
        co_await op.with_timeout(10s).into(error);
        CHECK_FALSE(op.pending());
        pending = nullptr;
        ++resumed;
    };
    ringio::spawn(context, waiter());
    context.poll();
    REQUIRE(pending != nullptr);
    CHECK(pending->pending());
    pending->cancel();
    pending->cancel(); // a second request is ignored
    context.run();
    CHECK(resumed == 1);
    CHECK(error == std::errc::operation_canceled);
    CHECK(context.in_flight() == 0);
    // The descriptor is still open and usable: only that request was cancelled.
    REQUIRE(::write(pipe.write_end.get(), "ok", 2) == 2);
    CHECK(ringio::sync_wait(context, [&]() -> ringio::task<std::size_t> {
              co_return co_await readable.read(buffer);
          }()) == 2);
}

TEST_CASE("operation: after its descriptor is closed, it fails with EBADF and never touches "
          "the number, even when another file has it",
          "[operation]") {
    ringio::io_context context;
    ringio::testing::temp_dir dir;
    const std::string first = dir / "first";
    const std::string second = dir / "second";
    ringio::descriptor closed(context, ::open(first.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
    REQUIRE(closed.is_open());
    const int number = closed.native_handle();
    std::vector<std::error_code> errors;
    auto attempt = [&](auto& op) -> ringio::task<> {
        std::error_code error;
        co_await op.into(error);
        errors.push_back(error);
    };
    auto plain = closed.write("written to the wrong file");
    auto whole = closed.write_all("written to the wrong file");
    auto timed = closed.write("written to the wrong file");
    (void)timed.with_timeout(10s);
    closed.close();
    context.poll(); // the close runs: the number is free
    const ringio::detail::unique_fd reused{
        ::open(second.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600)};
    REQUIRE(reused.get() == number); // the lowest free number
    ringio::sync_wait(context, attempt(plain));
    ringio::sync_wait(context, attempt(whole));
    ringio::sync_wait(context, attempt(timed));
    REQUIRE(errors.size() == 3);
    for (const std::error_code& error : errors) {
        CHECK(error == std::errc::bad_file_descriptor);
    }
    CHECK(content_of(first).empty());
    CHECK(content_of(second).empty());

    // Thrown, it names the number the descriptor had when the operation was made.
    ringio::descriptor another(context, ::open(first.c_str(), O_RDONLY | O_CLOEXEC));
    const std::string old_number = std::to_string(another.native_handle());
    std::array<char, 4> buffer{};
    auto late = another.read(buffer);
    another.close();
    CHECK_THROWS_WITH(ringio::sync_wait(context,
                                        [](auto& op) -> ringio::task<> {
                                            co_await op;
                                        }(late)),
                      "read fd " + old_number + ": " + std::strerror(EBADF));
}

// g++ 12 at -O3 loses track of which section engaged the optional and warns of a read it
// cannot see happen.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
TEST_CASE("operation: on a closed descriptor, it does not hold on to the descriptor",
          "[operation]") {
    // The failed request completes later: by then the descriptor may be gone, and another
    // built in its place, whose requests its close must still cancel.
    ringio::io_context context;
    owned_pipe first_pipe;
    owned_pipe second_pipe;
    std::optional<ringio::descriptor> place;
    std::array<char, 8> buffer{};
    std::error_code refused;
    auto closed_first = [&]() -> ringio::task<> {
        auto op = place->read(buffer);
        place->close();
        co_await op.into(refused);
    };
    auto never_open = [&]() -> ringio::task<> {
        co_await place->read(buffer).into(refused);
    };
    SECTION("closed after the operation was made") {
        place.emplace(context, first_pipe.read_end.release());
        ringio::spawn(context, closed_first());
    }
    SECTION("never open") {
        place.emplace(context, -1);
        ringio::spawn(context, never_open());
    }
    place.reset();
    place.emplace(context, second_pipe.read_end.release());
    std::error_code cancelled;
    auto reader = [&]() -> ringio::task<> {
        std::array<char, 8> other{};
        co_await place->read(other).with_timeout(5s).into(cancelled);
    };
    ringio::spawn(context, reader());
    context.poll(); // the failed request completes
    place->close();
    context.run();
    CHECK(refused == std::errc::bad_file_descriptor);
    CHECK(cancelled == std::errc::operation_canceled);
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

TEST_CASE("descriptor: closing one cancels exactly its own requests", "[operation]") {
    ringio::io_context context;
    owned_pipe closing_pipe;
    owned_pipe other_pipe;
    owned_pipe raw_pipe;
    ringio::descriptor closing(context, closing_pipe.read_end.release());
    ringio::descriptor other(context, other_pipe.read_end.release());
    std::vector<std::error_code> closing_errors(2);
    std::error_code other_error;
    std::error_code raw_error;
    std::string other_got;
    std::string raw_got;
    auto read_closing = [&](std::error_code& error) -> ringio::task<> {
        std::array<char, 8> buffer{};
        co_await closing.read(buffer).with_timeout(10s).into(error);
    };
    ringio::spawn(context, read_closing(closing_errors[0]));
    ringio::spawn(context, read_closing(closing_errors[1]));
    auto read_other = [&]() -> ringio::task<> {
        std::string buffer(8, '\0');
        buffer.resize(co_await other.read(buffer).with_timeout(10s).into(other_error));
        other_got = buffer;
    };
    ringio::spawn(context, read_other());
    auto read_raw = [&]() -> ringio::task<> {
        std::string buffer(8, '\0');
        buffer.resize(co_await ringio::read(context, raw_pipe.read_end.get(), buffer)
                          .with_timeout(10s)
                          .into(raw_error));
        raw_got = buffer;
    };
    ringio::spawn(context, read_raw());
    context.poll();
    closing.close();
    context.poll();
    context.poll();
    REQUIRE(::write(other_pipe.write_end.get(), "other", 5) == 5);
    REQUIRE(::write(raw_pipe.write_end.get(), "raw", 3) == 3);
    context.run();
    CHECK(closing_errors[0] == std::errc::operation_canceled);
    CHECK(closing_errors[1] == std::errc::operation_canceled);
    CHECK_FALSE(other_error);
    CHECK(other_got == "other");
    CHECK_FALSE(raw_error);
    CHECK(raw_got == "raw");
}

TEST_CASE("io_context: destroying it with requests in flight is safe", "[operation]") {
    struct tracer {
        int* destroyed;
        ~tracer() { ++*destroyed; }
    };
    int destroyed = 0;
    int started = 0;
    const int fds_before = open_fd_count();
    {
        owned_pipe raw;
        std::vector<owned_pipe> pipes(10); // their write ends stay open: nothing ends a read
        ringio::io_context context;
        for (auto& pipe : pipes) {
            // Requests of every shape: tracked by a descriptor the frame owns, untracked, with
            // a linked timeout, half-done read_exact, a request of the user's own, a timer.
            ringio::spawn(
                context,
                [](ringio::io_context& ctx, int fd, int raw_fd, int* count,
                   int* begun) -> ringio::task<> {
                    tracer trace{count};
                    ringio::descriptor owned(ctx, fd);
                    std::array<char, 16> buffer{};
                    ++*begun;
                    co_await owned.read_exact(buffer);
                    co_await ringio::read(ctx, raw_fd, buffer);
                }(context, pipe.read_end.release(), raw.read_end.get(), &destroyed, &started));
            REQUIRE(::write(pipe.write_end.get(), "half", 4) == 4);
            ringio::spawn(
                context,
                [](ringio::io_context& ctx, int fd, int* count, int* begun) -> ringio::task<> {
                    tracer trace{count};
                    std::array<char, 16> buffer{};
                    ++*begun;
                    co_await ringio::read(ctx, fd, buffer).with_timeout(1h);
                }(context, raw.read_end.get(), &destroyed, &started));
            ringio::spawn(
                context,
                [](ringio::io_context& ctx, int fd, int* count, int* begun) -> ringio::task<> {
                    tracer trace{count};
                    ringio::descriptor owned(ctx, ::dup(fd));
                    ++*begun;
                    co_await poll_in(owned);
                }(context, raw.read_end.get(), &destroyed, &started));
            ringio::spawn(context,
                          [](ringio::io_context& ctx, int* count, int* begun) -> ringio::task<> {
                              tracer trace{count};
                              ++*begun;
                              co_await ringio::sleep_for(ctx, 1h);
                          }(context, &destroyed, &started));
        }
        context.poll(); // submitted, now truly in the kernel
        context.poll();
        CHECK(started == 40);
        CHECK(context.in_flight() >= 40);
    }
    CHECK(destroyed == 40);
    CHECK(open_fd_count() == fds_before);
}

TEST_CASE("operation: destroying one in flight ends the program with a message", "[operation]") {
    // The kernel would write into freed memory: better to stop, saying why.
    owned_pipe messages;
    const int status = ringio::testing::run_in_child([&] {
        ::dup2(messages.write_end.get(), STDERR_FILENO);
        ::signal(SIGABRT, SIG_DFL); // not the test framework's handler, which would report it
        ringio::io_context context;
        owned_pipe pipe;
        auto frame = [](ringio::io_context& ctx, int fd) -> ringio::task<> {
            std::array<char, 8> buffer{};
            co_await ringio::read(ctx, fd, buffer);
        }(context, pipe.read_end.get())
                                                                .release();
        frame.resume(); // suspended on the read
        context.poll();
        frame.destroy();
        return 0;
    });
    messages.write_end.reset();
    std::string text(256, '\0');
    const ssize_t n = ::read(messages.read_end.get(), text.data(), text.size());
    text.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    CHECK(status == 128 + SIGABRT);
    CHECK_THAT(text, Catch::Contains("operation destroyed while in flight"));
}

TEST_CASE("operation: no heap allocation per operation", "[operation]") {
    if (!RINGIO_TEST_COUNTS_ALLOCATIONS) {
        WARN("SKIPPED: a sanitizer replaces operator new; the other builds count");
        return;
    }
    ringio::io_context context;
    const ringio::detail::unique_fd null_fd{::open("/dev/null", O_WRONLY | O_CLOEXEC)};
    REQUIRE(null_fd);
    ringio::descriptor null(context, ::open("/dev/null", O_RDWR | O_CLOEXEC));
    owned_pipe idle;
    ringio::descriptor waiting(context, idle.read_end.release());
    long counted = -1;
    auto loop = [&]() -> ringio::task<> {
        std::array<std::byte, 64> buffer{};
        std::error_code error;
        const long before = ringio::testing::allocations.load();
        for (int i = 0; i < 10'000; ++i) {
            co_await ringio::write(context, null_fd.get(), buffer);
            co_await null.write(buffer);
        }
        for (int i = 0; i < 100; ++i) {
            co_await ringio::write(context, null_fd.get(), buffer).with_timeout(1s);
            co_await null.write_all(buffer).with_timeout(1s).into(error);
            co_await null.read(buffer).into(error);
            co_await ringio::operation<nop_op>(context).into(error);
            co_await ringio::sleep_for(context, 0ns);
            co_await waiting.read(buffer).with_timeout(0ns).into(error); // times out
            auto named = waiting.read(buffer);
            co_await named.into(error).with_timeout(0ns);
        }
        counted = ringio::testing::allocations.load() - before;
    };
    ringio::sync_wait(context, loop());
    CHECK(counted == 0);
}

namespace {

// Writes `text` into `fd` one byte at a time, `pause` apart: a reader gets one short read per
// byte.
ringio::task<> trickle(ringio::io_context& context, int fd, std::string text,
                       std::chrono::milliseconds pause) {
    for (const char c : text) {
        co_await ringio::sleep_for(context, pause);
        co_await ringio::write(context, fd, std::span{&c, 1});
    }
}

// Reads `fd` in blocks of `block` bytes, `pause` apart, until the end: a writer gets one short
// write per block once the pipe is full.
ringio::task<> drain_slowly(ringio::io_context& context, int fd, std::size_t block,
                            std::chrono::milliseconds pause) {
    std::vector<char> buffer(block);
    for (;;) {
        co_await ringio::sleep_for(context, pause);
        std::error_code error;
        if (co_await ringio::read(context, fd, buffer).into(error) == 0) {
            co_return;
        }
    }
}

} // namespace

TEST_CASE("with_deadline: a deadline already past fails at once with ETIME, naming the request",
          "[operation]") {
    ringio::io_context context;
    owned_pipe pipe;
    ringio::descriptor idle(context, pipe.read_end.release());
    const auto past = std::chrono::steady_clock::now() - 1s;
    std::error_code error;
    std::string message;
    const auto start = std::chrono::steady_clock::now();
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        std::array<char, 8> buffer{};
        const std::size_t n = co_await idle.read(buffer).with_deadline(past).into(error);
        CHECK(n == 0);
        try {
            co_await idle.read(buffer).with_deadline(past);
        } catch (const std::system_error& e) {
            message = e.what();
        }
    }());
    CHECK(elapsed_ms(start) < 1000);
    CHECK(error == std::errc::stream_timeout);
    CHECK(message == "read fd " + std::to_string(idle.native_handle()) + ": Timer expired");
}

TEST_CASE("with_deadline: a deadline already past lets a request that completes as submitted "
          "succeed",
          "[operation]") {
    ringio::io_context context;
    owned_pipe pipe;
    ringio::descriptor source(context, pipe.read_end.release());
    ringio::descriptor null(context, ::open("/dev/null", O_WRONLY | O_CLOEXEC));
    REQUIRE(null.is_open());
    REQUIRE(::write(pipe.write_end.get(), "ready", 5) == 5);
    const auto past = std::chrono::steady_clock::now() - 1h;
    std::error_code error = std::make_error_code(std::errc::io_error);
    std::string got;
    std::size_t written = 0;
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        std::array<char, 8> buffer{};
        const std::size_t n = co_await source.read(buffer).with_deadline(past).into(error);
        got.assign(buffer.data(), n);
        written = co_await null.write_all("sink").with_deadline(past);
        co_await ringio::operation<nop_op>(context).with_deadline(past);
    }());
    CHECK_FALSE(error);
    CHECK(got == "ready");
    CHECK(written == 4);
}

TEST_CASE("with_deadline: a future deadline that passes gives ETIME then, and one that is met "
          "changes nothing",
          "[operation]") {
    ringio::io_context context;
    owned_pipe pipe;
    ringio::descriptor source(context, pipe.read_end.release());
    std::error_code expired;
    long long waited = -1;
    std::error_code met = std::make_error_code(std::errc::io_error);
    std::string got;
    auto expiring = [&]() -> ringio::task<> {
        std::array<char, 8> buffer{};
        const auto start = std::chrono::steady_clock::now();
        co_await source.read(buffer).with_deadline(start + 50ms).into(expired);
        waited = elapsed_ms(start);
        // A deadline far enough away is met: the data comes 5 ms from now.
        ringio::spawn(context, trickle(context, pipe.write_end.get(), "x", 5ms));
        const std::size_t n = co_await source.read(buffer)
                                  .with_deadline(std::chrono::steady_clock::now() + 10s)
                                  .into(met);
        got.assign(buffer.data(), n);
    };
    ringio::sync_wait(context, expiring());
    CHECK(expired == std::errc::stream_timeout);
    CHECK(waited >= 45);
    CHECK(waited < 3000);
    CHECK_FALSE(met);
    CHECK(got == "x");
    CHECK(context.in_flight() == 0); // the timer of the request that won was cancelled
}

TEST_CASE("with_deadline: one deadline covers every step of read_exact", "[operation]") {
    // One byte every 20 ms: each step is short and quick, the whole is not.
    ringio::io_context context;
    owned_pipe pipe;
    ringio::descriptor source(context, pipe.read_end.release());
    ringio::spawn(context, trickle(context, pipe.write_end.get(), "0123456789", 20ms));
    std::error_code error;
    std::size_t n = 99;
    long long waited = -1;
    auto reader = [&]() -> ringio::task<> {
        std::array<char, 10> buffer{};
        const auto start = std::chrono::steady_clock::now();
        n = co_await source.read_exact(buffer).with_deadline(start + 70ms).into(error);
        waited = elapsed_ms(start);
    };
    ringio::spawn(context, reader());
    context.run();
    CHECK(error == std::errc::stream_timeout);
    CHECK(n == 0); // never the partial count
    CHECK(waited >= 65);
    CHECK(waited < 180);
}

TEST_CASE("with_timeout: one limit covers every step of read_exact", "[operation]") {
    ringio::io_context context;
    owned_pipe pipe;
    ringio::descriptor source(context, pipe.read_end.release());
    ringio::spawn(context, trickle(context, pipe.write_end.get(), "0123456789", 20ms));
    std::error_code error;
    long long waited = -1;
    auto reader = [&]() -> ringio::task<> {
        std::array<char, 10> buffer{};
        const auto start = std::chrono::steady_clock::now();
        co_await source.read_exact(buffer).with_timeout(70ms).into(error);
        waited = elapsed_ms(start);
    };
    ringio::spawn(context, reader());
    context.run();
    CHECK(error == std::errc::stream_timeout);
    CHECK(waited >= 65);
    CHECK(waited < 180);
}

TEST_CASE("with_deadline: one deadline covers every step of write_all", "[operation]") {
    // A pipe of one page that a reader empties a page every 20 ms: each write is short.
    ringio::io_context context;
    owned_pipe pipe;
    const long page = ::sysconf(_SC_PAGESIZE);
    REQUIRE(::fcntl(pipe.write_end.get(), F_SETPIPE_SZ, static_cast<int>(page)) >= page);
    ringio::descriptor sink(context, pipe.write_end.release());
    ringio::spawn(context,
                  drain_slowly(context, pipe.read_end.get(), static_cast<std::size_t>(page), 20ms));
    const std::vector<std::byte> data(static_cast<std::size_t>(page) * 32);
    std::error_code deadline_error;
    std::error_code timeout_error;
    long long deadline_waited = -1;
    long long timeout_waited = -1;
    auto writer = [&]() -> ringio::task<> {
        auto start = std::chrono::steady_clock::now();
        std::size_t n =
            co_await sink.write_all(data).with_deadline(start + 70ms).into(deadline_error);
        CHECK(n == 0);
        deadline_waited = elapsed_ms(start);
        start = std::chrono::steady_clock::now();
        n = co_await sink.write_all(data).with_timeout(70ms).into(timeout_error);
        CHECK(n == 0);
        timeout_waited = elapsed_ms(start);
        sink.close(); // the reader sees the end
    };
    ringio::spawn(context, writer());
    context.run();
    CHECK(deadline_error == std::errc::stream_timeout);
    CHECK(deadline_waited >= 65);
    CHECK(deadline_waited < 180);
    CHECK(timeout_error == std::errc::stream_timeout);
    CHECK(timeout_waited >= 65);
    CHECK(timeout_waited < 180);
}

TEST_CASE("with_deadline: composes with into and cancel_on in any order", "[operation]") {
    ringio::io_context context;
    ringio::cancellation stop;
    owned_pipe pipe;
    ringio::descriptor idle(context, pipe.read_end.release());
    std::array<char, 8> buffer{};
    const auto soon = [] {
        return std::chrono::steady_clock::now() + 5ms;
    };
    const auto never = [] {
        return std::chrono::steady_clock::now() + 1h;
    };

    // The deadline passes first: ETIME, whatever the order of the adaptors.
    auto expiring = [&]() -> ringio::task<int> {
        int expired = 0;
        std::error_code error;
        co_await idle.read(buffer).with_deadline(soon()).cancel_on(stop).into(error);
        expired += error == std::errc::stream_timeout ? 1 : 0;
        co_await idle.read(buffer).into(error).with_deadline(soon()).cancel_on(stop);
        expired += error == std::errc::stream_timeout ? 1 : 0;
        co_await idle.read(buffer).cancel_on(stop).into(error).with_deadline(soon());
        expired += error == std::errc::stream_timeout ? 1 : 0;
        auto named = idle.read(buffer);
        co_await named.cancel_on(stop).with_deadline(soon()).into(error);
        expired += error == std::errc::stream_timeout ? 1 : 0;
        co_return expired;
    };
    CHECK(ringio::sync_wait(context, expiring()) == 4);

    // The cancellation comes first: ECANCELED, in every order.
    std::array<std::error_code, 4> errors;
    auto cancelled = [&](int order) -> ringio::task<> {
        std::error_code& error = errors[static_cast<std::size_t>(order)];
        std::array<char, 8> own{};
        if (order == 0) {
            co_await idle.read(own).with_deadline(never()).cancel_on(stop).into(error);
        } else if (order == 1) {
            co_await idle.read(own).into(error).with_deadline(never()).cancel_on(stop);
        } else if (order == 2) {
            co_await idle.read(own).cancel_on(stop).into(error).with_deadline(never());
        } else {
            auto named = idle.read(own);
            co_await named.into(error).cancel_on(stop).with_deadline(never());
        }
    };
    auto cancel = [&]() -> ringio::task<> {
        co_await ringio::sleep_for(context, 5ms);
        stop.cancel();
    };
    for (int order = 0; order < 4; ++order) {
        ringio::spawn(context, cancelled(order));
    }
    ringio::spawn(context, cancel());
    context.run();
    for (const std::error_code& error : errors) {
        CHECK(error == std::errc::operation_canceled);
    }
}

TEST_CASE("with_deadline: closing the descriptor while it waits is ECANCELED, not ETIME",
          "[operation]") {
    ringio::io_context context;
    owned_pipe pipe;
    ringio::descriptor idle(context, pipe.read_end.release());
    std::error_code error;
    auto reader = [&]() -> ringio::task<> {
        std::array<char, 8> buffer{};
        co_await idle.read(buffer).with_deadline(std::chrono::steady_clock::now() + 1h).into(error);
    };
    auto closer = [&]() -> ringio::task<> {
        co_await ringio::sleep_for(context, 5ms);
        idle.close();
    };
    ringio::spawn(context, reader());
    ringio::spawn(context, closer());
    context.run();
    CHECK(error == std::errc::operation_canceled);
}

TEST_CASE("with_deadline: no heap allocation per operation", "[operation]") {
    if (!RINGIO_TEST_COUNTS_ALLOCATIONS) {
        WARN("SKIPPED: a sanitizer replaces operator new; the other builds count");
        return;
    }
    ringio::io_context context;
    ringio::descriptor null(context, ::open("/dev/null", O_RDWR | O_CLOEXEC));
    owned_pipe pipe;
    ringio::descriptor idle(context, pipe.read_end.release());
    long counted = -1;
    auto loop = [&]() -> ringio::task<> {
        std::array<std::byte, 64> buffer{};
        std::error_code error;
        const long before = ringio::testing::allocations.load();
        for (int i = 0; i < 200; ++i) {
            const auto now = std::chrono::steady_clock::now();
            co_await null.write(buffer).with_deadline(now + 1s);
            co_await null.write_all(buffer).with_deadline(now - 1s).into(error);
            co_await idle.read(buffer).with_deadline(now).into(error); // expires
            auto named = idle.read(buffer);
            co_await named.into(error).with_deadline(now - 1ms);
        }
        counted = ringio::testing::allocations.load() - before;
    };
    ringio::sync_wait(context, loop());
    CHECK(counted == 0);
}

TEST_CASE("with_deadline: a deadline before the clock's start counts as already past",
          "[operation]") {
    // steady_clock counts from boot: on a machine up for less than an hour, now - 1h is there.
    ringio::io_context context;
    owned_pipe pipe;
    ringio::descriptor source(context, pipe.read_end.release());
    const auto before_start = std::chrono::steady_clock::time_point{} - 1500ms;
    std::error_code idle_error;
    std::error_code ready_error = std::make_error_code(std::errc::io_error);
    std::size_t n = 0;
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        std::array<char, 8> buffer{};
        co_await source.read(buffer).with_deadline(before_start).into(idle_error);
        REQUIRE(::write(pipe.write_end.get(), "ok", 2) == 2);
        n = co_await source.read(buffer).with_deadline(before_start).into(ready_error);
    }());
    CHECK(idle_error == std::errc::stream_timeout);
    CHECK_FALSE(ready_error);
    CHECK(n == 2);
}

TEST_CASE("with_timeout: a negative limit that reaches before the clock's start expires at once",
          "[operation]") {
    ringio::io_context context;
    owned_pipe pipe;
    ringio::descriptor source(context, pipe.read_end.release());
    const auto long_ago = -std::chrono::hours(24 * 365 * 100);
    std::error_code idle_error;
    std::error_code ready_error = std::make_error_code(std::errc::io_error);
    std::size_t n = 0;
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        std::array<char, 8> buffer{};
        co_await source.read(buffer).with_timeout(long_ago).into(idle_error);
        REQUIRE(::write(pipe.write_end.get(), "ok", 2) == 2);
        n = co_await source.read(buffer).with_timeout(long_ago).into(ready_error);
    }());
    CHECK(idle_error == std::errc::stream_timeout);
    CHECK_FALSE(ready_error);
    CHECK(n == 2);
}
