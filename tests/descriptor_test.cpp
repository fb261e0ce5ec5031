#include <ringio/descriptor.hpp>

#include <ringio/io_context.hpp>
#include <ringio/task.hpp>
#include <ringio/timer.hpp>

#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdlib>
#include <string>
#include <system_error>
#include <vector>

using namespace std::chrono_literals;
using ringio::testing::bytes_of;
using ringio::testing::elapsed_ms;
using ringio::testing::owned_pipe;
using ringio::testing::text_of;

namespace {

// A temporary file that removes itself.
struct temp_file {
    std::string path;
    ringio::detail::unique_fd fd;

    temp_file() {
        std::string pattern = "/tmp/ringio-descriptor-XXXXXX";
        fd.reset(::mkostemp(pattern.data(), O_CLOEXEC));
        REQUIRE(fd);
        path = pattern;
    }
    ~temp_file() { ::unlink(path.c_str()); }
};

} // namespace

TEST_CASE("read: returns what a pipe holds", "[descriptor]") {
    ringio::io_context context;
    owned_pipe pipe;
    REQUIRE(::write(pipe.write_end.get(), "hello", 5) == 5);
    const std::string got = ringio::sync_wait(context, [&]() -> ringio::task<std::string> {
        std::array<std::byte, 64> buffer{};
        const std::size_t n = co_await ringio::read(context, pipe.read_end.get(), buffer);
        co_return text_of(std::span{buffer}.first(n));
    }());
    CHECK(got == "hello");
}

TEST_CASE("read: zero bytes means the writer closed", "[descriptor]") {
    ringio::io_context context;
    owned_pipe pipe;
    pipe.write_end.reset();
    std::array<std::byte, 8> buffer{};
    auto n = ringio::sync_wait(context, [&]() -> ringio::task<std::size_t> {
        co_return co_await ringio::read(context, pipe.read_end.get(), buffer);
    }());
    CHECK(n == 0);
}

TEST_CASE("read: a timeout that fires completes with ETIME", "[descriptor]") {
    ringio::io_context context;
    owned_pipe pipe;
    std::error_code error;
    const auto start = std::chrono::steady_clock::now();
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        std::array<std::byte, 8> buffer{};
        co_await ringio::read(context, pipe.read_end.get(), buffer, error).with_timeout(30ms);
    }());
    CHECK(error == std::errc::stream_timeout);
    CHECK(error.value() == ETIME);
    CHECK(elapsed_ms(start) >= 25);
}

TEST_CASE("read: a timeout that does not fire changes nothing", "[descriptor]") {
    ringio::io_context context;
    owned_pipe pipe;
    REQUIRE(::write(pipe.write_end.get(), "x", 1) == 1);
    const auto n = ringio::sync_wait(context, [&]() -> ringio::task<std::size_t> {
        std::array<std::byte, 8> buffer{};
        co_return co_await ringio::read(context, pipe.read_end.get(), buffer).with_timeout(10s);
    }());
    CHECK(n == 1);
    // The cancelled timer left nothing behind.
    CHECK(context.in_flight() == 0);
}

TEST_CASE("read: the throwing form names the descriptor", "[descriptor]") {
    ringio::io_context context;
    auto bad = [&]() -> ringio::task<> {
        std::array<std::byte, 8> buffer{};
        co_await ringio::read(context, 9999, buffer);
    };
    try {
        ringio::sync_wait(context, bad());
        FAIL("read of a closed descriptor succeeded");
    } catch (const std::system_error& error) {
        CHECK(error.code() == std::errc::bad_file_descriptor);
        CHECK_THAT(error.what(), Catch::StartsWith("read fd 9999"));
    }
}

TEST_CASE("read: cancel from another coroutine completes it with ECANCELED once", "[descriptor]") {
    ringio::io_context context;
    owned_pipe pipe;
    std::error_code error;
    int resumed = 0;
    ringio::read_operation* pending = nullptr;
    std::array<std::byte, 8> buffer{};
    auto waiter = [&]() -> ringio::task<> {
        auto op = ringio::read(context, pipe.read_end.get(), buffer, error);
        pending = &op;
        co_await op;
        pending = nullptr;
        ++resumed;
    };
    ringio::spawn(context, waiter());
    auto canceller = [&]() -> ringio::task<> {
        co_await ringio::sleep_for(context, 5ms);
        pending->cancel();
    };
    ringio::spawn(context, canceller());
    context.run();
    CHECK(resumed == 1);
    CHECK(error == std::errc::operation_canceled);
}

TEST_CASE("read: a cancel that loses the race still delivers the data", "[descriptor]") {
    ringio::io_context context;
    owned_pipe pipe;
    std::error_code error;
    std::size_t got = 0;
    int resumed = 0;
    std::array<std::byte, 8> buffer{};
    auto reader = [&]() -> ringio::task<> {
        auto op = ringio::read(context, pipe.read_end.get(), buffer, error);
        auto racer = [&]() -> ringio::task<> {
            co_await ringio::sleep_for(context, 2ms);
            // Data first, then the cancel: the read may have completed already.
            REQUIRE(::write(pipe.write_end.get(), "abc", 3) == 3);
            op.cancel();
        };
        ringio::spawn(context, racer());
        got = co_await op;
        ++resumed;
    };
    ringio::spawn(context, reader());
    context.run();
    CHECK(resumed == 1);
    CHECK(((!error && got == 3) || error == std::errc::operation_canceled));
}

TEST_CASE("read_exact: gathers short reads into a full buffer", "[descriptor]") {
    ringio::io_context context;
    owned_pipe pipe;
    std::string got;
    auto reader = [&]() -> ringio::task<> {
        std::array<std::byte, 12> buffer{};
        co_await ringio::read_exact(context, pipe.read_end.get(), buffer);
        got = text_of(buffer);
    };
    ringio::spawn(context, reader());
    auto writer = [&]() -> ringio::task<> {
        for (std::string_view piece : {"hello ", "wor", "ld!"}) {
            co_await ringio::sleep_for(context, 2ms);
            co_await ringio::write(context, pipe.write_end.get(), bytes_of(piece));
        }
    };
    ringio::spawn(context, writer());
    context.run();
    CHECK(got == "hello world!");
}

TEST_CASE("read_exact: an early end of stream is an error that says how far it got",
          "[descriptor]") {
    ringio::io_context context;
    owned_pipe pipe;
    REQUIRE(::write(pipe.write_end.get(), "abc", 3) == 3);
    pipe.write_end.reset();
    auto short_read = [&]() -> ringio::task<> {
        std::array<std::byte, 10> buffer{};
        co_await ringio::read_exact(context, pipe.read_end.get(), buffer);
    };
    try {
        ringio::sync_wait(context, short_read());
        FAIL("read_exact accepted a short stream");
    } catch (const std::system_error& error) {
        CHECK(error.code().value() == ENODATA);
        CHECK_THAT(error.what(), Catch::Contains("after 3 of 10 bytes"));
    }
}

TEST_CASE("write_all: writes a buffer larger than the pipe in several steps", "[descriptor]") {
    ringio::io_context context;
    owned_pipe pipe;
    std::vector<std::byte> data(1 << 20);
    for (std::size_t i = 0; i < data.size(); ++i) {
        data[i] = static_cast<std::byte>(i * 7 + i / 251);
    }
    std::vector<std::byte> received;
    auto writer = [&]() -> ringio::task<> {
        const std::size_t n = co_await ringio::write_all(context, pipe.write_end.get(), data);
        CHECK(n == data.size());
        pipe.write_end.reset();
    };
    ringio::spawn(context, writer());
    auto reader = [&]() -> ringio::task<> {
        std::array<std::byte, 4096> buffer{};
        for (;;) {
            const std::size_t n = co_await ringio::read(context, pipe.read_end.get(), buffer);
            if (n == 0) {
                break;
            }
            received.insert(received.end(), buffer.begin(), buffer.begin() + static_cast<long>(n));
        }
    };
    ringio::spawn(context, reader());
    context.run();
    CHECK(received == data);
}

TEST_CASE("write_all: a timeout stops it part-way with ETIME, not a short count", "[descriptor]") {
    ringio::io_context context;
    owned_pipe pipe; // nobody reads: the pipe fills up
    std::vector<std::byte> data(1 << 20);
    std::error_code error;
    std::size_t n = 123;
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        n = co_await ringio::write_all(context, pipe.write_end.get(), data, error)
                .with_timeout(50ms);
    }());
    CHECK(error.value() == ETIME);
    CHECK(n == 0);
}

TEST_CASE("read_at and write_at address a file by offset", "[descriptor]") {
    ringio::io_context context;
    temp_file file;
    const std::string got = ringio::sync_wait(context, [&]() -> ringio::task<std::string> {
        co_await ringio::write_at(context, file.fd.get(), 0, bytes_of("0123456789"));
        co_await ringio::write_at(context, file.fd.get(), 4, bytes_of("xy"));
        std::array<std::byte, 6> buffer{};
        const std::size_t n = co_await ringio::read_at(context, file.fd.get(), 2, buffer);
        co_return text_of(std::span{buffer}.first(n));
    }());
    CHECK(got == "23xy67");
}

TEST_CASE("write: the throwing form names the descriptor", "[descriptor]") {
    ringio::io_context context;
    auto bad = [&]() -> ringio::task<> {
        co_await ringio::write(context, -1, bytes_of("x"));
    };
    try {
        ringio::sync_wait(context, bad());
        FAIL("write to descriptor -1 succeeded");
    } catch (const std::system_error& error) {
        CHECK(error.code() == std::errc::bad_file_descriptor);
        CHECK_THAT(error.what(), Catch::StartsWith("write fd -1"));
    }
}
