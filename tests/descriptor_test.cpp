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
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using ringio::testing::bytes_of;
using ringio::testing::elapsed_ms;
using ringio::testing::fd_is_open;
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

    // The whole file, read with pread.
    [[nodiscard]] std::string content() const {
        std::string text(4096, '\0');
        const ssize_t n = ::pread(fd.get(), text.data(), text.size(), 0);
        REQUIRE(n >= 0);
        text.resize(static_cast<std::size_t>(n));
        return text;
    }

    // A second descriptor on the same file, with a file position of its own.
    [[nodiscard]] int reopen() const {
        const int other = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
        REQUIRE(other >= 0);
        return other;
    }
};

// Every range a write takes, two characters each: a std::string, a std::string_view, a string
// literal (whose NUL is not sent), a std::vector<std::byte>, a std::array<char>, a C array, a
// std::span<const char> and a std::span<const std::byte>. Produces the bytes written.
template <class Write>
ringio::task<std::size_t> write_every_kind(Write write) {
    std::size_t total = 0;
    total += co_await write(std::string("ab"));
    total += co_await write(std::string_view("cd"));
    total += co_await write("ef");
    // Named: g++ 12 cannot keep an initializer list's array in a coroutine frame.
    const std::vector<std::byte> vector{std::byte{'g'}, std::byte{'h'}};
    total += co_await write(vector);
    const std::array<char, 2> array{'i', 'j'};
    total += co_await write(array);
    char c_array[] = {'k', 'l'};
    total += co_await write(c_array);
    const std::string_view mn = "mn";
    total += co_await write(std::span<const char>(mn.data(), mn.size()));
    total += co_await write(std::as_bytes(std::span<const char>("op", 2)));
    co_return total;
}

constexpr std::string_view every_kind_written = "abcdefghijklmnop";

// Every range a read fills, two bytes at a time: a std::string, a std::vector<std::byte>, a
// std::array<char>, a std::array<std::byte>, a C array, a std::span<char> and a
// std::span<std::byte>. Produces the text read.
template <class Read>
ringio::task<std::string> read_every_kind(Read read) {
    std::string got;
    std::string text(2, '\0');
    got += text.substr(0, co_await read(text));
    std::vector<std::byte> bytes(2);
    got += text_of(std::span{bytes}.first(co_await read(bytes)));
    std::array<char, 2> array{};
    got += std::string_view(array.data(), co_await read(array));
    std::array<std::byte, 2> byte_array{};
    got += text_of(std::span{byte_array}.first(co_await read(byte_array)));
    char c_array[2] = {};
    got += std::string_view(c_array, co_await read(c_array));
    char under_span[2] = {};
    got += std::string_view(under_span, co_await read(std::span<char>(under_span)));
    std::array<std::byte, 2> under_byte_span{};
    got += text_of(
        std::span{under_byte_span}.first(co_await read(std::span<std::byte>(under_byte_span))));
    co_return got;
}

constexpr std::string_view every_kind_read = "abcdefghijklmn";

// A read's destination must be writable: constant ranges, views and literals are refused at
// compile time, and so are ranges of elements that are not bytes.
template <class R>
concept readable_into = requires(ringio::descriptor& d, R&& buffer) { d.read(buffer); };
template <class R>
concept writable_from = requires(ringio::descriptor& d, R&& buffer) { d.write(buffer); };

static_assert(readable_into<std::string&>);
static_assert(readable_into<std::span<std::byte>>);
static_assert(!readable_into<const std::string&>);
static_assert(!readable_into<std::string_view>);
static_assert(!readable_into<const char (&)[3]>);
static_assert(!readable_into<std::span<const std::byte>>);
static_assert(!readable_into<std::vector<int>&>);
static_assert(writable_from<std::string_view>);
static_assert(writable_from<const char (&)[3]>);
static_assert(!writable_from<std::vector<int>&>);
static_assert(!writable_from<int>);

} // namespace

// The functions on a descriptor by number (not owned).

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

TEST_CASE("read: into an empty buffer is EINVAL, not the end of the stream", "[descriptor]") {
    ringio::io_context context;
    owned_pipe pipe;
    REQUIRE(::write(pipe.write_end.get(), "x", 1) == 1);
    std::error_code error;
    const std::size_t n = ringio::sync_wait(context, [&]() -> ringio::task<std::size_t> {
        co_return co_await ringio::read(context, pipe.read_end.get(), std::span<std::byte>{})
            .into(error);
    }());
    CHECK(n == 0);
    CHECK(error == std::errc::invalid_argument);
    auto thrown = [&]() -> ringio::task<> {
        std::string empty;
        co_await ringio::read(context, pipe.read_end.get(), empty);
    };
    CHECK_THROWS_WITH(ringio::sync_wait(context, thrown()),
                      Catch::StartsWith("read fd " + std::to_string(pipe.read_end.get()) +
                                        " (an empty buffer): "));
}

TEST_CASE("read: a timeout that fires completes with ETIME", "[descriptor]") {
    ringio::io_context context;
    owned_pipe pipe;
    std::error_code error;
    const auto start = std::chrono::steady_clock::now();
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        std::array<std::byte, 8> buffer{};
        co_await ringio::read(context, pipe.read_end.get(), buffer).with_timeout(30ms).into(error);
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
        CHECK_THAT(error.what(), Catch::StartsWith("read fd 9999: "));
    }
    auto bad_at = [&]() -> ringio::task<> {
        std::array<std::byte, 8> buffer{};
        co_await ringio::read_at(context, 9999, 8, buffer);
    };
    CHECK_THROWS_WITH(ringio::sync_wait(context, bad_at()),
                      Catch::StartsWith("read fd 9999 at offset 8: "));
}

TEST_CASE("read: cancel from another coroutine completes it with ECANCELED once", "[descriptor]") {
    ringio::io_context context;
    owned_pipe pipe;
    std::error_code error;
    int resumed = 0;
    std::array<std::byte, 8> buffer{};
    using read_operation = decltype(ringio::read(context, 0, buffer));
    read_operation* pending = nullptr;
    auto waiter = [&]() -> ringio::task<> {
        auto op = ringio::read(context, pipe.read_end.get(), buffer);
        pending = &op;
        co_await op.into(error);
        pending = nullptr;
        ++resumed;
    };
    ringio::spawn(context, waiter());
    auto canceller = [&]() -> ringio::task<> {
        co_await ringio::sleep_for(context, 5ms);
        REQUIRE(pending != nullptr);
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
        auto op = ringio::read(context, pipe.read_end.get(), buffer);
        auto racer = [&]() -> ringio::task<> {
            co_await ringio::sleep_for(context, 2ms);
            // Data first, then the cancel: the read may have completed already.
            REQUIRE(::write(pipe.write_end.get(), "abc", 3) == 3);
            op.cancel();
        };
        ringio::spawn(context, racer());
        got = co_await op.into(error);
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
        const std::size_t n = co_await ringio::read_exact(context, pipe.read_end.get(), buffer);
        CHECK(n == 12);
        got = text_of(buffer);
    };
    ringio::spawn(context, reader());
    auto writer = [&]() -> ringio::task<> {
        for (std::string_view piece : {"hello ", "wor", "ld!"}) {
            co_await ringio::sleep_for(context, 2ms);
            co_await ringio::write(context, pipe.write_end.get(), piece);
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
        CHECK_THAT(error.what(),
                   Catch::StartsWith("read_exact fd " + std::to_string(pipe.read_end.get()) +
                                     " (end of stream after 3 of 10 bytes): "));
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
        n = co_await ringio::write_all(context, pipe.write_end.get(), data)
                .with_timeout(50ms)
                .into(error);
    }());
    CHECK(error.value() == ETIME);
    CHECK(n == 0);
}

TEST_CASE("read_at and write_at address a file by offset", "[descriptor]") {
    ringio::io_context context;
    temp_file file;
    const std::string got = ringio::sync_wait(context, [&]() -> ringio::task<std::string> {
        co_await ringio::write_at(context, file.fd.get(), 0, "0123456789");
        co_await ringio::write_at(context, file.fd.get(), 4, "xy");
        std::array<std::byte, 6> buffer{};
        const std::size_t n = co_await ringio::read_at(context, file.fd.get(), 2, buffer);
        co_return text_of(std::span{buffer}.first(n));
    }());
    CHECK(got == "23xy67");
    CHECK(file.content() == "0123xy6789");
}

TEST_CASE("write: the throwing form names the descriptor", "[descriptor]") {
    ringio::io_context context;
    auto bad = [&]() -> ringio::task<> {
        co_await ringio::write(context, -1, "x");
    };
    try {
        ringio::sync_wait(context, bad());
        FAIL("write to descriptor -1 succeeded");
    } catch (const std::system_error& error) {
        CHECK(error.code() == std::errc::bad_file_descriptor);
        CHECK_THAT(error.what(), Catch::StartsWith("write fd -1: "));
    }
    auto bad_at = [&]() -> ringio::task<> {
        co_await ringio::write_at(context, -1, 8, "x");
    };
    CHECK_THROWS_WITH(ringio::sync_wait(context, bad_at()),
                      Catch::StartsWith("write fd -1 at offset 8: "));
}

TEST_CASE("write: every form takes every kind of range, and a literal without its NUL",
          "[descriptor]") {
    ringio::io_context context;
    owned_pipe pipe;
    const int fd = pipe.write_end.get();
    auto drain = [&]() {
        std::string text(256, '\0');
        const ssize_t n = ::read(pipe.read_end.get(), text.data(), text.size());
        REQUIRE(n >= 0);
        text.resize(static_cast<std::size_t>(n));
        return text;
    };
    SECTION("write") {
        CHECK(ringio::sync_wait(context, write_every_kind([&](const auto& buffer) {
                                    return ringio::write(context, fd, buffer);
                                })) == every_kind_written.size());
    }
    SECTION("write_all") {
        CHECK(ringio::sync_wait(context, write_every_kind([&](const auto& buffer) {
                                    return ringio::write_all(context, fd, buffer);
                                })) == every_kind_written.size());
    }
    CHECK(drain() == every_kind_written);
    temp_file file;
    std::uint64_t offset = 0;
    CHECK(ringio::sync_wait(context, write_every_kind([&](const auto& buffer) {
                                return ringio::write_at(context, file.fd.get(),
                                                        std::exchange(offset, offset + 2), buffer);
                            })) == every_kind_written.size());
    CHECK(file.content() == every_kind_written);
}

TEST_CASE("read: every form fills every kind of range", "[descriptor]") {
    ringio::io_context context;
    temp_file file;
    REQUIRE(::pwrite(file.fd.get(), every_kind_read.data(), every_kind_read.size(), 0) ==
            static_cast<ssize_t>(every_kind_read.size()));
    const int fd = file.fd.get();
    SECTION("read") {
        CHECK(ringio::sync_wait(context, read_every_kind([&](auto&& buffer) {
                                    return ringio::read(context, fd, buffer);
                                })) == every_kind_read);
    }
    SECTION("read_exact") {
        CHECK(ringio::sync_wait(context, read_every_kind([&](auto&& buffer) {
                                    return ringio::read_exact(context, fd, buffer);
                                })) == every_kind_read);
    }
    SECTION("read_at") {
        std::uint64_t offset = 0;
        CHECK(ringio::sync_wait(context, read_every_kind([&](auto&& buffer) {
                                    return ringio::read_at(
                                        context, fd, std::exchange(offset, offset + 2), buffer);
                                })) == every_kind_read);
    }
}

// ringio::descriptor: an owned descriptor.

TEST_CASE("descriptor: owns its number and closes it when destroyed", "[descriptor]") {
    ringio::io_context context;
    owned_pipe pipe;
    const int fd = pipe.read_end.release();
    {
        ringio::descriptor owned(context, fd);
        CHECK(owned.native_handle() == fd);
        CHECK(owned.is_open());
        CHECK(&owned.context() == &context);
    }
    context.run(); // the close goes through the ring
    CHECK_FALSE(fd_is_open(fd));
    ringio::descriptor none(context, -1);
    CHECK_FALSE(none.is_open());
}

TEST_CASE("descriptor: close is idempotent and leaves it empty", "[descriptor]") {
    ringio::io_context context;
    owned_pipe pipe;
    ringio::descriptor owned(context, pipe.read_end.release());
    const int fd = owned.native_handle();
    owned.close();
    CHECK_FALSE(owned.is_open());
    CHECK(owned.native_handle() == -1);
    owned.close();
    context.run();
    CHECK_FALSE(fd_is_open(fd));
}

TEST_CASE("descriptor: every member form takes every kind of range", "[descriptor]") {
    ringio::io_context context;
    SECTION("writes") {
        temp_file file;
        ringio::descriptor owned(context, file.reopen());
        SECTION("write") {
            CHECK(ringio::sync_wait(context, write_every_kind([&](const auto& buffer) {
                                        return owned.write(buffer);
                                    })) == every_kind_written.size());
        }
        SECTION("write_all") {
            CHECK(ringio::sync_wait(context, write_every_kind([&](const auto& buffer) {
                                        return owned.write_all(buffer);
                                    })) == every_kind_written.size());
        }
        SECTION("write_at") {
            std::uint64_t offset = 0;
            CHECK(ringio::sync_wait(context, write_every_kind([&](const auto& buffer) {
                                        return owned.write_at(std::exchange(offset, offset + 2),
                                                              buffer);
                                    })) == every_kind_written.size());
        }
        CHECK(file.content() == every_kind_written);
    }
    SECTION("reads") {
        temp_file file;
        REQUIRE(::pwrite(file.fd.get(), every_kind_read.data(), every_kind_read.size(), 0) ==
                static_cast<ssize_t>(every_kind_read.size()));
        ringio::descriptor owned(context, file.reopen());
        SECTION("read") {
            CHECK(ringio::sync_wait(context, read_every_kind([&](auto&& buffer) {
                                        return owned.read(buffer);
                                    })) == every_kind_read);
        }
        SECTION("read_exact") {
            CHECK(ringio::sync_wait(context, read_every_kind([&](auto&& buffer) {
                                        return owned.read_exact(buffer);
                                    })) == every_kind_read);
        }
        SECTION("read_at") {
            std::uint64_t offset = 0;
            CHECK(ringio::sync_wait(context, read_every_kind([&](auto&& buffer) {
                                        return owned.read_at(std::exchange(offset, offset + 2),
                                                             buffer);
                                    })) == every_kind_read);
        }
    }
}

TEST_CASE("descriptor: errors name the operation, the descriptor and the offset", "[descriptor]") {
    ringio::io_context context;
    owned_pipe pipe;
    REQUIRE(::write(pipe.write_end.get(), "abc", 3) == 3);
    pipe.write_end.reset();
    ringio::descriptor owned(context, pipe.read_end.release());
    const std::string fd = std::to_string(owned.native_handle());
    auto read_exact = [&]() -> ringio::task<> {
        std::array<char, 10> buffer{};
        co_await owned.read_exact(buffer);
    };
    CHECK_THROWS_WITH(ringio::sync_wait(context, read_exact()),
                      "read_exact fd " + fd +
                          " (end of stream after 3 of 10 bytes): " + std::strerror(ENODATA));
    auto write_at = [&]() -> ringio::task<> { // the read end of a pipe
        co_await owned.write_at(8, "x");
    };
    CHECK_THROWS_WITH(ringio::sync_wait(context, write_at()),
                      "write fd " + fd + " at offset 8: " + std::strerror(EBADF));
    auto write = [&]() -> ringio::task<> {
        co_await owned.write("x");
    };
    CHECK_THROWS_WITH(ringio::sync_wait(context, write()),
                      "write fd " + fd + ": " + std::strerror(EBADF));
    ringio::descriptor directory(context, ::open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    REQUIRE(directory.is_open());
    auto read_at = [&]() -> ringio::task<> {
        std::array<char, 10> buffer{};
        co_await directory.read_at(8, buffer);
    };
    CHECK_THROWS_WITH(ringio::sync_wait(context, read_at()),
                      "read fd " + std::to_string(directory.native_handle()) +
                          " at offset 8: " + std::strerror(EISDIR));
}

TEST_CASE("descriptor: cancel stops what is in flight and leaves it open", "[descriptor]") {
    ringio::io_context context;
    owned_pipe pipe;
    ringio::descriptor owned(context, pipe.read_end.release());
    std::error_code first_error;
    std::error_code second_error;
    auto reader = [&](std::error_code& error) -> ringio::task<> {
        std::array<char, 8> buffer{};
        co_await owned.read(buffer).into(error);
    };
    ringio::spawn(context, reader(first_error));
    ringio::spawn(context, reader(second_error));
    context.poll();
    owned.cancel();
    context.run();
    CHECK(first_error == std::errc::operation_canceled);
    CHECK(second_error == std::errc::operation_canceled);
    REQUIRE(owned.is_open());
    REQUIRE(::write(pipe.write_end.get(), "more", 4) == 4);
    const std::string got = ringio::sync_wait(context, [&]() -> ringio::task<std::string> {
        std::string buffer(8, '\0');
        buffer.resize(co_await owned.read(buffer));
        co_return buffer;
    }());
    CHECK(got == "more");
}

TEST_CASE("descriptor: close cancels what is in flight on it", "[descriptor]") {
    ringio::io_context context;
    owned_pipe pipe;
    ringio::descriptor owned(context, pipe.read_end.release());
    std::error_code error;
    auto reader = [&]() -> ringio::task<> {
        std::array<char, 8> buffer{};
        co_await owned.read(buffer).with_timeout(10s).into(error);
    };
    ringio::spawn(context, reader());
    context.poll();
    const auto start = std::chrono::steady_clock::now();
    owned.close();
    context.run();
    CHECK(error == std::errc::operation_canceled);
    CHECK(elapsed_ms(start) < 5000);
}

TEST_CASE("descriptor: release gives the number up open, its requests cancelled", "[descriptor]") {
    ringio::io_context context;
    owned_pipe pipe;
    ringio::descriptor owned(context, pipe.read_end.release());
    const int number = owned.native_handle();
    std::error_code error;
    auto reader = [&]() -> ringio::task<> {
        std::array<char, 8> buffer{};
        co_await owned.read(buffer).into(error);
    };
    ringio::spawn(context, reader());
    context.poll();
    const ringio::detail::unique_fd released{owned.release()};
    CHECK(released.get() == number);
    CHECK_FALSE(owned.is_open());
    CHECK(owned.native_handle() == -1);
    context.run();
    CHECK(error == std::errc::operation_canceled);
    // Still open, and still the same pipe.
    REQUIRE(fd_is_open(number));
    REQUIRE(::write(pipe.write_end.get(), "z", 1) == 1);
    char byte = 0;
    CHECK(::read(number, &byte, 1) == 1);
    CHECK(byte == 'z');
}

TEST_CASE("descriptor: a request in flight follows a move", "[descriptor]") {
    ringio::io_context context;
    owned_pipe pipe;
    ringio::descriptor first(context, pipe.read_end.release());
    const int number = first.native_handle();
    std::error_code error;
    std::string got;
    auto reader = [&]() -> ringio::task<> {
        std::string buffer(8, '\0');
        buffer.resize(co_await first.read(buffer).into(error));
        got = buffer;
    };
    ringio::spawn(context, reader());
    context.poll();
    ringio::descriptor second = std::move(first);
    CHECK_FALSE(first.is_open()); // NOLINT(bugprone-use-after-move): moved from, empty
    CHECK(second.native_handle() == number);

    SECTION("it completes normally") {
        REQUIRE(::write(pipe.write_end.get(), "moved", 5) == 5);
        context.run();
        CHECK_FALSE(error);
        CHECK(got == "moved");
    }
    SECTION("the moved-to descriptor's close cancels it") {
        second.close();
        context.run();
        CHECK(error == std::errc::operation_canceled);
    }
    SECTION("closing the moved-from descriptor does not") {
        first.close(); // NOLINT(bugprone-use-after-move): moved from, empty
        context.poll();
        REQUIRE(::write(pipe.write_end.get(), "kept", 4) == 4);
        context.run();
        CHECK_FALSE(error);
        CHECK(got == "kept");
    }
    SECTION("move assignment closes the target and takes the request along") {
        owned_pipe other;
        ringio::descriptor third(context, other.read_end.release());
        const int replaced = third.native_handle();
        third = std::move(second);
        context.poll();
        CHECK_FALSE(fd_is_open(replaced));
        CHECK(third.native_handle() == number);
        third.close();
        context.run();
        CHECK(error == std::errc::operation_canceled);
    }
}

TEST_CASE("descriptor: read_exact goes on after a move between two of its steps", "[descriptor]") {
    ringio::io_context context;
    owned_pipe pipe;
    std::optional<ringio::descriptor> first{std::in_place, context, pipe.read_end.release()};
    std::error_code error;
    std::array<char, 6> buffer{};
    std::size_t got = 0;
    auto reader = [&]() -> ringio::task<> {
        got = co_await first->read_exact(buffer).into(error);
    };
    ringio::spawn(context, reader());
    context.poll();
    ringio::descriptor second = std::move(*first);
    first.reset(); // the moved-from descriptor is gone before the next step is submitted
    REQUIRE(::write(pipe.write_end.get(), "abc", 3) == 3);
    context.poll();
    REQUIRE(::write(pipe.write_end.get(), "def", 3) == 3);
    context.run();
    CHECK_FALSE(error);
    CHECK(got == 6);
    CHECK(std::string_view(buffer.data(), buffer.size()) == "abcdef");

    // And the moved-to descriptor's close still cancels it between steps.
    auto reader_after_move = [&]() -> ringio::task<> {
        got = co_await second.read_exact(buffer).into(error);
    };
    ringio::spawn(context, reader_after_move());
    context.poll();
    ringio::descriptor third = std::move(second);
    REQUIRE(::write(pipe.write_end.get(), "gh", 2) == 2);
    context.poll();
    third.close();
    context.run();
    CHECK(error == std::errc::operation_canceled);
}
