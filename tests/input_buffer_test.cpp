#include <ringio/input_buffer.hpp>

#include <ringio/cancellation.hpp>
#include <ringio/descriptor.hpp>
#include <ringio/io_context.hpp>
#include <ringio/task.hpp>
#include <ringio/tcp_listener.hpp>
#include <ringio/tcp_stream.hpp>
#include <ringio/timer.hpp>

#include "accepted_pair.hpp"
#include "allocation_counter.hpp"
#include "temp_dir.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

using namespace std::chrono_literals;
using ringio::endpoint;
using ringio::testing::accepted_pair;
using ringio::testing::elapsed_ms;
using ringio::testing::owned_pipe;

namespace {

// A pipe whose read end is a ringio descriptor; the test writes into the other end.
struct pipe_source {
    owned_pipe pipe;
    ringio::descriptor reader;

    explicit pipe_source(ringio::io_context& context) : reader(context, pipe.read_end.release()) {}

    void write(std::string_view text) const {
        REQUIRE(::write(pipe.write_end.get(), text.data(), text.size()) ==
                static_cast<ssize_t>(text.size()));
    }
    void close_writer() { pipe.write_end.reset(); }
    [[nodiscard]] int unread() const {
        int waiting = 0;
        REQUIRE(::ioctl(reader.native_handle(), FIONREAD, &waiting) == 0);
        return waiting;
    }
};

// What read_until produced: the record's text, or "(end)" for nullopt.
std::string shown(const std::optional<std::string_view>& record) {
    return record ? std::string(*record) : std::string("(end)");
}

// Reads records with `delimiter` until the end of the stream.
template <class Delimiter>
ringio::task<std::vector<std::string>> all_records(ringio::descriptor& source,
                                                   ringio::input_buffer& in, Delimiter delimiter) {
    std::vector<std::string> records;
    while (const auto record = co_await source.read_until(in, delimiter)) {
        records.emplace_back(*record);
    }
    co_return records;
}

// Writes each piece into `fd`, `pause` apart: each arrives as a read of its own.
ringio::task<> pieces(ringio::io_context& context, int fd, std::vector<std::string> parts,
                      std::chrono::milliseconds pause) {
    for (const std::string& part : parts) {
        co_await ringio::sleep_for(context, pause);
        co_await ringio::write_all(context, fd, part);
    }
}

// The length of a whole frame at the start of `data`: a two-byte big-endian length and that
// many bytes, the prefix included; 0 while incomplete.
std::size_t whole_frame(std::string_view data) {
    if (data.size() < 2) {
        return 0;
    }
    const std::size_t length = 2 + (std::size_t{static_cast<unsigned char>(data[0])} << 8U |
                                    static_cast<unsigned char>(data[1]));
    return data.size() >= length ? length : 0;
}

std::string frame(std::string_view body) {
    std::string out(2, '\0');
    out[0] = static_cast<char>(body.size() >> 8U);
    out[1] = static_cast<char>(body.size() & 0xffU);
    return out + std::string(body);
}

// A Unix stream connection: a ringio client and the stream the listener accepted.
struct unix_pair {
    ringio::testing::temp_dir dir;
    ringio::tcp_listener listener;
    ringio::tcp_stream client;
    ringio::tcp_stream server;

    explicit unix_pair(ringio::io_context& context)
        : listener(context, endpoint::unix_path((dir / "s").string())), client(context),
          server(context) {
        ringio::sync_wait(context, [&]() -> ringio::task<> {
            co_await client.connect(listener.local_endpoint());
            server = co_await listener.accept();
        }());
    }
};

} // namespace

TEST_CASE("read_until: splits records on a character, without it", "[input_buffer]") {
    ringio::io_context context;
    pipe_source source(context);
    std::array<char, 64> storage;
    ringio::input_buffer in(storage);
    source.write("one\ntwo\n\nthree\n");
    source.close_writer();
    const auto records = ringio::sync_wait(context, all_records(source.reader, in, '\n'));
    CHECK(records == std::vector<std::string>{"one", "two", "", "three"});
    CHECK(in.data().empty());
}

TEST_CASE("read_until: what follows a record stays for the next call, which needs no request "
          "when a record is there",
          "[input_buffer]") {
    ringio::io_context context;
    pipe_source source(context);
    std::array<char, 64> storage;
    ringio::input_buffer in(storage);
    source.write("a\nb\nc");
    std::string first;
    std::string second;
    std::string left;
    std::error_code error;
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        first = shown(co_await source.reader.read_until(in, '\n'));
        left = in.data();
        // The pipe is empty and open: a read would wait, and a deadline already past would end
        // it. The record is at hand, so there is no read.
        const auto past = std::chrono::steady_clock::now() - 1ms;
        second = shown(co_await source.reader.read_until(in, '\n').with_deadline(past).into(error));
    }());
    CHECK(first == "a");
    CHECK(left == "b\nc");
    CHECK_FALSE(error);
    CHECK(second == "b");
    CHECK(in.data() == "c");
}

TEST_CASE("read_until: a string delimiter split across two reads is found", "[input_buffer]") {
    ringio::io_context context;
    pipe_source source(context);
    std::array<char, 64> storage;
    ringio::input_buffer in(storage);
    ringio::spawn(context,
                  pieces(context, source.pipe.write_end.get(),
                         {"ab\r", "\ncd\r\n", "x\ry\r", "\n", "tail E", "ND", "more"}, 10ms));
    std::vector<std::string> records;
    auto reader = [&]() -> ringio::task<> {
        for (int i = 0; i < 3; ++i) {
            records.push_back(shown(co_await source.reader.read_until(in, "\r\n")));
        }
        records.push_back(shown(co_await source.reader.read_until(in, "END")));
    };
    ringio::spawn(context, reader());
    context.run();
    CHECK(records == std::vector<std::string>{"ab", "cd", "x\ry", "tail "});
}

TEST_CASE("read_until: with '\\n', a CRLF line keeps its '\\r'", "[input_buffer]") {
    ringio::io_context context;
    pipe_source source(context);
    std::array<char, 64> storage;
    ringio::input_buffer in(storage);
    source.write("line\r\n");
    source.close_writer();
    CHECK(ringio::sync_wait(context, all_records(source.reader, in, '\n')) ==
          std::vector<std::string>{"line\r"});
}

TEST_CASE("read_until: a predicate gives the length of a whole record, its prefix included",
          "[input_buffer]") {
    ringio::io_context context;
    pipe_source source(context);
    std::array<char, 64> storage;
    ringio::input_buffer in(storage);
    const std::string stream = frame("hello") + frame("") + frame("world!");
    // Byte by byte, then two frames in one piece.
    std::vector<std::string> parts;
    for (const char c : frame("first")) {
        parts.emplace_back(1, c);
    }
    parts.push_back(stream);
    ringio::spawn(context, pieces(context, source.pipe.write_end.get(), parts, 2ms));
    std::vector<std::string> records;
    auto reader = [&]() -> ringio::task<> {
        for (int i = 0; i < 4; ++i) {
            records.push_back(shown(co_await source.reader.read_until(in, whole_frame)));
        }
    };
    ringio::spawn(context, reader());
    context.run();
    CHECK(records ==
          std::vector<std::string>{frame("first"), frame("hello"), frame(""), frame("world!")});
}

TEST_CASE("read_until: at the end of the stream, the last record comes without its delimiter, "
          "then nullopt",
          "[input_buffer]") {
    ringio::io_context context;
    std::array<char, 64> storage;

    SECTION("an unfinished last record") {
        pipe_source source(context);
        ringio::input_buffer in(storage);
        source.write("x\ny");
        source.close_writer();
        std::vector<std::string> got;
        ringio::sync_wait(context, [&]() -> ringio::task<> {
            for (int i = 0; i < 4; ++i) {
                got.push_back(shown(co_await source.reader.read_until(in, '\n')));
            }
        }());
        CHECK(got == std::vector<std::string>{"x", "y", "(end)", "(end)"});
    }
    SECTION("a stream that ends after a delimiter has no empty last record") {
        pipe_source source(context);
        ringio::input_buffer in(storage);
        source.write("x\n");
        source.close_writer();
        CHECK(ringio::sync_wait(context, all_records(source.reader, in, '\n')) ==
              std::vector<std::string>{"x"});
    }
    SECTION("an empty stream") {
        pipe_source source(context);
        ringio::input_buffer in(storage);
        source.close_writer();
        CHECK(ringio::sync_wait(context, all_records(source.reader, in, "\r\n")).empty());
    }
    SECTION("a predicate's last bytes") {
        pipe_source source(context);
        ringio::input_buffer in(storage);
        source.write(frame("ok") + "\x01");
        source.close_writer();
        CHECK(ringio::sync_wait(context, all_records(source.reader, in, whole_frame)) ==
              std::vector<std::string>{frame("ok"), "\x01"});
    }
}

TEST_CASE("read_until: a record longer than the storage is EMSGSIZE, again at the next call "
          "without reading, until clear()",
          "[input_buffer]") {
    ringio::io_context context;
    pipe_source source(context);
    std::array<char, 8> storage;
    ringio::input_buffer in(storage);
    source.write("0123456789\nnext\n");
    std::error_code first;
    std::error_code again;
    std::string message;
    std::string kept;
    int unread_after = -1;
    std::vector<std::string> after_clear;
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        const auto record = co_await source.reader.read_until(in, '\n').into(first);
        CHECK_FALSE(record);
        kept = in.data();
        const auto repeated = co_await source.reader.read_until(in, '\n').into(again);
        CHECK_FALSE(repeated); // never a record made up at the storage's end
        unread_after = source.unread();
        try {
            co_await source.reader.read_until(in, '\n');
        } catch (const std::system_error& e) {
            message = e.what();
        }
        in.clear();
        for (int i = 0; i < 2; ++i) {
            after_clear.push_back(shown(co_await source.reader.read_until(in, '\n')));
        }
    }());
    CHECK(first == std::errc::message_size);
    CHECK(again == std::errc::message_size);
    CHECK(kept == "01234567");
    CHECK(unread_after == 8); // "89\nnext\n": nothing more was read
    CHECK(message == "read_until fd " + std::to_string(source.reader.native_handle()) +
                         " (8 bytes without the end of a record): Message too long");
    // clear() goes on from where the descriptor is: the long record's end, then the next.
    CHECK(after_clear == std::vector<std::string>{"89", "next"});
}

TEST_CASE("read_until: what is left of the storage after a record counts toward EMSGSIZE",
          "[input_buffer]") {
    ringio::io_context context;
    pipe_source source(context);
    std::array<char, 8> storage;
    ringio::input_buffer in(storage);
    source.write("ab\ncdefghijkl\n");
    std::string first;
    std::error_code error;
    std::string kept;
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        first = shown(co_await source.reader.read_until(in, '\n'));
        co_await source.reader.read_until(in, '\n').into(error);
        kept = in.data();
    }());
    CHECK(first == "ab");
    CHECK(error == std::errc::message_size);
    CHECK(kept == "cdefghij"); // moved to the storage's start, then filled
}

TEST_CASE("input_buffer: made with a capacity, it owns its storage, allocated once",
          "[input_buffer]") {
    ringio::io_context context;
    pipe_source source(context);
    const long before = ringio::testing::allocations.load();
    ringio::input_buffer in(16);
    const long made = ringio::testing::allocations.load() - before;
    CHECK(in.capacity() == 16);
    CHECK(in.data().empty());
    if (RINGIO_TEST_COUNTS_ALLOCATIONS) {
        CHECK(made == 1);
    }
    source.write("first\nsecond\n0123456789abcdef");
    source.close_writer();
    std::vector<std::string> got;
    std::error_code error;
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        got.push_back(shown(co_await source.reader.read_until(in, '\n')));
        got.push_back(shown(co_await source.reader.read_until(in, '\n')));
        co_await source.reader.read_until(in, '\n').into(error);
    }());
    CHECK(got == std::vector<std::string>{"first", "second"});
    CHECK(error == std::errc::message_size);
    CHECK(in.data() == "0123456789abcdef");
}

TEST_CASE("read_until: errors name the descriptor, or the peer of a socket", "[input_buffer]") {
    ringio::io_context context;
    std::array<char, 16> storage;
    const auto message_of = [&](ringio::descriptor& source) {
        ringio::input_buffer in(storage);
        std::string message;
        ringio::sync_wait(context, [&]() -> ringio::task<> {
            try {
                co_await source.read_until(in, '\n').with_timeout(1ms);
            } catch (const std::system_error& e) {
                message = e.what();
            }
        }());
        return message;
    };

    SECTION("a pipe") {
        pipe_source source(context);
        CHECK(message_of(source.reader) ==
              "read_until fd " + std::to_string(source.reader.native_handle()) + ": Timer expired");
    }
    SECTION("a TCP stream") {
        accepted_pair connection(context);
        CHECK(message_of(connection.server) == "read_until from " +
                                                   connection.server.remote_endpoint().to_string() +
                                                   ": Timer expired");
    }
    SECTION("a Unix stream: the peer's path, or the number for an unnamed peer") {
        unix_pair connection(context);
        CHECK(message_of(connection.client) ==
              "read_until from " + connection.listener.local_endpoint().to_string() +
                  ": Timer expired");
        CHECK(message_of(connection.server) ==
              "read_until fd " + std::to_string(connection.server.native_handle()) +
                  ": Timer expired");
    }
}

TEST_CASE("read_until: cancelled, timed out or closed while waiting, it keeps what it read",
          "[input_buffer]") {
    ringio::io_context context;
    pipe_source source(context);
    std::array<char, 32> storage;
    ringio::input_buffer in(storage);
    ringio::cancellation stop;
    std::error_code timed_out;
    std::error_code cancelled;
    std::string kept;
    std::string record;
    auto reader = [&]() -> ringio::task<> {
        source.write("par");
        co_await source.reader.read_until(in, '\n').with_timeout(20ms).into(timed_out);
        kept = in.data();
        co_await source.reader.read_until(in, '\n').cancel_on(stop).into(cancelled);
        source.write("t\n");
        record = shown(co_await source.reader.read_until(in, '\n'));
    };
    auto cancel = [&]() -> ringio::task<> {
        co_await ringio::sleep_for(context, 50ms);
        stop.cancel();
    };
    ringio::spawn(context, reader());
    ringio::spawn(context, cancel());
    context.run();
    CHECK(timed_out == std::errc::stream_timeout);
    CHECK(kept == "par");
    CHECK(cancelled == std::errc::operation_canceled);
    CHECK(record == "part");

    // Closed while it waits: ECANCELED; made before the close and awaited after: EBADF.
    std::error_code closed;
    std::error_code stale;
    auto waiter = [&]() -> ringio::task<> {
        co_await source.reader.read_until(in, '\n').into(closed);
    };
    auto closer = [&]() -> ringio::task<> {
        co_await ringio::sleep_for(context, 5ms);
        auto made_before = source.reader.read_until(in, '\n');
        source.reader.close();
        co_await made_before.into(stale);
    };
    ringio::spawn(context, waiter());
    ringio::spawn(context, closer());
    context.run();
    CHECK(closed == std::errc::operation_canceled);
    CHECK(stale == std::errc::bad_file_descriptor);
}

TEST_CASE("read_until: one deadline covers every read of a record", "[input_buffer]") {
    ringio::io_context context;
    pipe_source source(context);
    std::array<char, 32> storage;
    ringio::input_buffer in(storage);
    std::vector<std::string> bytes;
    for (const char c : std::string("abcdefgh\n")) {
        bytes.emplace_back(1, c);
    }
    ringio::spawn(context, pieces(context, source.pipe.write_end.get(), bytes, 20ms));
    std::error_code deadline_error;
    std::error_code timeout_error;
    long long deadline_waited = -1;
    long long timeout_waited = -1;
    auto reader = [&]() -> ringio::task<> {
        auto start = std::chrono::steady_clock::now();
        co_await source.reader.read_until(in, '\n')
            .with_deadline(start + 50ms)
            .into(deadline_error);
        deadline_waited = elapsed_ms(start);
        start = std::chrono::steady_clock::now();
        co_await source.reader.read_until(in, '\n').with_timeout(50ms).into(timeout_error);
        timeout_waited = elapsed_ms(start);
    };
    ringio::spawn(context, reader());
    context.run();
    CHECK(deadline_error == std::errc::stream_timeout);
    CHECK(deadline_waited < 150);
    CHECK(timeout_error == std::errc::stream_timeout);
    CHECK(timeout_waited < 150);
}

TEST_CASE("read_until: on a TCP stream, CRLF records split across segments", "[input_buffer]") {
    ringio::io_context context;
    accepted_pair connection(context);
    std::array<char, 64> storage;
    ringio::input_buffer in(storage);
    std::vector<std::string> records;
    auto reader = [&]() -> ringio::task<> {
        while (const auto record = co_await connection.server.read_until(in, "\r\n")) {
            records.emplace_back(*record);
        }
    };
    auto writer = [&]() -> ringio::task<> {
        for (const std::string_view part : {"GET / HTTP/1.1\r\nHost: x\r", "\n\r", "\n"}) {
            co_await ringio::sleep_for(context, 10ms);
            connection.send(part);
        }
        REQUIRE(::shutdown(connection.client.get(), SHUT_WR) == 0);
    };
    ringio::spawn(context, reader());
    ringio::spawn(context, writer());
    context.run();
    CHECK(records == std::vector<std::string>{"GET / HTTP/1.1", "Host: x", ""});
}

TEST_CASE("read_until: on a Unix stream, records both ways", "[input_buffer]") {
    ringio::io_context context;
    unix_pair connection(context);
    std::array<char, 64> client_storage;
    std::array<char, 64> server_storage;
    ringio::input_buffer client_in(client_storage);
    ringio::input_buffer server_in(server_storage);
    std::string request;
    std::string reply;
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        co_await connection.client.write_all("ping\n");
        request = shown(co_await connection.server.read_until(server_in, '\n'));
        co_await connection.server.write_all("pong\n");
        reply = shown(co_await connection.client.read_until(client_in, '\n'));
    }());
    CHECK(request == "ping");
    CHECK(reply == "pong");
}

TEST_CASE("read_until: no heap allocation per record", "[input_buffer]") {
    if (!RINGIO_TEST_COUNTS_ALLOCATIONS) {
        WARN("SKIPPED: a sanitizer replaces operator new; the other builds count");
        return;
    }
    ringio::io_context context;
    pipe_source source(context);
    std::array<char, 64> storage;
    ringio::input_buffer in(storage);
    std::string batch;
    for (int i = 0; i < 50; ++i) {
        batch += "record\r\n";
    }
    long counted = -1;
    std::size_t records = 0;
    auto loop = [&]() -> ringio::task<> {
        std::error_code error;
        const long before = ringio::testing::allocations.load();
        for (int round = 0; round < 20; ++round) {
            co_await ringio::write_all(context, source.pipe.write_end.get(), batch);
            for (int i = 0; i < 25; ++i) {
                records += (co_await source.reader.read_until(in, '\n')) ? 1U : 0U;
                records += (co_await source.reader.read_until(in, "\r\n").into(error)) ? 1U : 0U;
            }
            co_await source.reader.read_until(in, whole_frame).with_timeout(0ms).into(error);
        }
        counted = ringio::testing::allocations.load() - before;
    };
    ringio::sync_wait(context, loop());
    CHECK(records == 1000);
    CHECK(counted == 0);
}
