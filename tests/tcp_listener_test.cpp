#include <ringio/tcp_listener.hpp>

#include <ringio/io_context.hpp>
#include <ringio/multishot.hpp>
#include <ringio/task.hpp>
#include <ringio/tcp_stream.hpp>
#include <ringio/timer.hpp>

#include "allocation_counter.hpp"
#include "temp_dir.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using ringio::endpoint;
using ringio::testing::blocking_connect;
using ringio::testing::open_fd_count;

namespace {

// The address the client side of `fd` has, as the server sees it.
endpoint local_of(int fd) {
    endpoint local;
    socklen_t size = endpoint::capacity();
    REQUIRE(::getsockname(fd, local.mutable_data(), &size) == 0);
    local.resize(size);
    return local;
}

// A TCP socket opened now, to connect later: while descriptors are exhausted, none can be
// opened, but one opened before can still connect.
ringio::detail::unique_fd unconnected() {
    ringio::detail::unique_fd fd{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
    REQUIRE(fd);
    return fd;
}

// While alive, at most `spare` more descriptors can be opened than are open now
// (RLIMIT_NOFILE, restored by the destructor).
class descriptor_limit {
public:
    explicit descriptor_limit(int spare) {
        REQUIRE(::getrlimit(RLIMIT_NOFILE, &saved_) == 0);
        int lowest_free = 0;
        while (::fcntl(lowest_free, F_GETFD) != -1) {
            ++lowest_free;
        }
        rlimit tight = saved_;
        tight.rlim_cur = static_cast<rlim_t>(lowest_free + spare);
        REQUIRE(::setrlimit(RLIMIT_NOFILE, &tight) == 0);
    }
    descriptor_limit(const descriptor_limit&) = delete;
    descriptor_limit& operator=(const descriptor_limit&) = delete;
    ~descriptor_limit() { ::setrlimit(RLIMIT_NOFILE, &saved_); }

private:
    rlimit saved_{};
};

} // namespace

TEST_CASE("tcp_listener: port 0 gives a real port", "[tcp_listener]") {
    ringio::io_context context;
    ringio::tcp_listener listener(context, endpoint::loopback_v4(0));
    CHECK(listener.local_endpoint().port() != 0);
    CHECK(listener.local_endpoint() == local_of(listener.native_handle()));
    CHECK((::fcntl(listener.native_handle(), F_GETFD) & FD_CLOEXEC) != 0);
}

TEST_CASE("accept: gives the stream and the peer's address", "[tcp_listener]") {
    ringio::io_context context;
    ringio::tcp_listener listener(context, endpoint::loopback_v4(0));
    const auto client = blocking_connect(listener.local_endpoint());
    ringio::tcp_stream got = ringio::sync_wait(context, [&]() -> ringio::task<ringio::tcp_stream> {
        co_return co_await listener.accept();
    }());
    CHECK(got.remote_endpoint() == local_of(client.get()));
    CHECK(got.local_endpoint() == listener.local_endpoint());
    CHECK((::fcntl(got.native_handle(), F_GETFD) & FD_CLOEXEC) != 0);
}

TEST_CASE("accept: running out of descriptors is an error the server survives", "[tcp_listener]") {
    ringio::io_context context;
    ringio::tcp_listener listener(context, endpoint::loopback_v4(0));
    const auto first = blocking_connect(listener.local_endpoint());
    const auto second = blocking_connect(listener.local_endpoint());

    auto exhausted = std::make_optional<ringio::testing::descriptor_exhaustion>();
    std::error_code error;
    bool opened = true;
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        opened = (co_await listener.accept().into(error)).is_open();
    }());
    exhausted.reset();
    CHECK(error == std::errc::too_many_files_open);
    CHECK_FALSE(opened);

    // With descriptors free again, the connections still queued are accepted.
    auto accept_two = [&]() -> ringio::task<int> {
        int count = 0;
        for (int i = 0; i < 2; ++i) {
            const ringio::tcp_stream got = co_await listener.accept();
            count += got.is_open() ? 1 : 0;
        }
        co_return count;
    };
    CHECK(ringio::sync_wait(context, accept_two()) == 2);
}

TEST_CASE("accept: the error names the listener", "[tcp_listener]") {
    ringio::io_context context;
    ringio::tcp_listener listener(context, endpoint::loopback_v4(0));
    const std::string where = listener.local_endpoint().to_string();
    auto cancelled = [&]() -> ringio::task<> {
        auto op = listener.accept();
        ringio::spawn(context, [](ringio::io_context& ctx, decltype(op)& a) -> ringio::task<> {
            co_await ringio::sleep_for(ctx, 1ms);
            a.cancel();
        }(context, op));
        co_await op;
    };
    try {
        ringio::sync_wait(context, cancelled());
        FAIL("a cancelled accept succeeded");
    } catch (const std::system_error& error) {
        CHECK(error.code() == std::errc::operation_canceled);
        CHECK_THAT(error.what(), Catch::StartsWith("accept on " + where));
    }
}

TEST_CASE("accept: a timeout completes it with ETIME and the listener goes on", "[tcp_listener]") {
    ringio::io_context context;
    ringio::tcp_listener listener(context, endpoint::loopback_v4(0));
    std::error_code error;
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        co_await listener.accept().with_timeout(10ms).into(error);
    }());
    CHECK(error.value() == ETIME);
    const auto client = blocking_connect(listener.local_endpoint());
    auto got = ringio::sync_wait(context, [&]() -> ringio::task<ringio::tcp_stream> {
        co_return co_await listener.accept().with_timeout(5s);
    }());
    CHECK(got.is_open());
}

TEST_CASE("accept: destroying the context with accepts pending leaks nothing", "[tcp_listener]") {
    const int before = open_fd_count();
    {
        ringio::io_context context;
        ringio::tcp_listener listener(context, endpoint::loopback_v4(0));
        for (int i = 0; i < 4; ++i) {
            ringio::spawn(context, [](ringio::tcp_listener& l) -> ringio::task<> {
                ringio::tcp_stream got = co_await l.accept();
                std::array<std::byte, 8> buffer{};
                co_await got.read(buffer); // the client never writes
            }(listener));
        }
        const auto client = blocking_connect(listener.local_endpoint());
        context.poll();
        context.poll();
    }
    CHECK(open_fd_count() == before);
}

TEST_CASE("accept: on a closed listener is EBADF naming the listener", "[tcp_listener]") {
    ringio::io_context context;
    ringio::tcp_listener listener(context, endpoint::loopback_v4(0));
    const std::string where = listener.local_endpoint().to_string();
    listener.close();
    context.run();
    try {
        ringio::sync_wait(context, [](ringio::tcp_listener& l) -> ringio::task<> {
            co_await l.accept();
        }(listener));
        FAIL("accept on a closed listener succeeded");
    } catch (const std::system_error& error) {
        CHECK(error.code() == std::errc::bad_file_descriptor);
        CHECK_THAT(error.what(), Catch::StartsWith("accept on " + where + ": "));
    }
}

TEST_CASE("accept: destroying the listener cancels the accept another coroutine waits on",
          "[tcp_listener]") {
    const int before = open_fd_count();
    std::error_code error;
    std::string message;
    {
        ringio::io_context context;
        auto owned = std::make_unique<ringio::tcp_listener>(context, endpoint::loopback_v4(0));
        // The waiter outlives the listener: the error it gets must not need it.
        auto waiter = [&](ringio::tcp_listener& listener) -> ringio::task<> {
            try {
                co_await listener.accept();
            } catch (const std::system_error& failure) {
                error = failure.code();
                message = failure.what();
            }
        };
        ringio::testing::destroy_while_awaited(context, std::move(owned), waiter);
    }
    CHECK(error == std::errc::operation_canceled);
    // The listener is gone when the error is built: it is named by its number.
    CHECK_THAT(message, Catch::Matches("accept fd [0-9]+: .*"));
    CHECK(open_fd_count() == before);
}

TEST_CASE("accept: steady state allocates nothing", "[tcp_listener]") {
    if (!RINGIO_TEST_COUNTS_ALLOCATIONS) {
        WARN("SKIPPED: a sanitizer replaces operator new; the other builds count");
        return;
    }
    ringio::io_context context;
    ringio::tcp_listener listener(context, endpoint::loopback_v4(0));
    auto incoming = listener.accept_all();
    long counted = -1;
    int open = 0;
    auto loop = [&]() -> ringio::task<> {
        long before = 0;
        for (int i = 0; i <= 200; ++i) {
            if (i == 1) {
                before = ringio::testing::allocations.load(); // after a warm-up round
            }
            const auto client = blocking_connect(listener.local_endpoint());
            const ringio::tcp_stream one = co_await listener.accept();
            const auto other = blocking_connect(listener.local_endpoint());
            const ringio::tcp_stream two = co_await incoming.next();
            open += one.is_open() && two.is_open() ? 1 : 0;
        }
        counted = ringio::testing::allocations.load() - before;
    };
    ringio::sync_wait(context, loop());
    CHECK(counted == 0);
    CHECK(open == 201);
}

// accept_all: every connection from one multishot accept.

TEST_CASE("accept_all: one submission accepts many connections", "[tcp_listener]") {
    ringio::io_context context;
    ringio::tcp_listener listener(context, endpoint::loopback_v4(0));
    auto incoming = listener.accept_all();
    std::vector<ringio::detail::unique_fd> clients;
    for (int i = 0; i < 10; ++i) {
        clients.push_back(blocking_connect(listener.local_endpoint()));
    }
    std::vector<std::size_t> in_flight;
    auto take = [&]() -> ringio::task<std::vector<ringio::tcp_stream>> {
        std::vector<ringio::tcp_stream> all;
        for (int i = 0; i < 10; ++i) {
            all.push_back(co_await incoming.next());
            in_flight.push_back(context.in_flight());
        }
        co_return all;
    };
    const auto all = ringio::sync_wait(context, take());
    // Still the one multishot accept: nothing else is in flight.
    CHECK(in_flight == std::vector<std::size_t>(10, 1));
    std::vector<endpoint> clients_seen;
    for (const auto& client : clients) {
        clients_seen.push_back(local_of(client.get()));
    }
    for (const ringio::tcp_stream& stream : all) {
        CHECK(stream.is_open());
        CHECK(stream.remote_endpoint().port() != 0);
        CHECK(std::find(clients_seen.begin(), clients_seen.end(), stream.remote_endpoint()) !=
              clients_seen.end());
        CHECK((::fcntl(stream.native_handle(), F_GETFD) & FD_CLOEXEC) != 0);
    }
}

TEST_CASE("accept_all: running out of descriptors is reported and then survived",
          "[tcp_listener]") {
    ringio::io_context context;
    ringio::tcp_listener listener(context, endpoint::loopback_v4(0));
    auto incoming = listener.accept_all();
    const auto first = blocking_connect(listener.local_endpoint());
    auto exhausted = std::make_optional<ringio::testing::descriptor_exhaustion>();
    std::error_code error;
    auto attempt = [&]() -> ringio::task<bool> {
        co_return (co_await incoming.next().into(error)).is_open();
    };
    const bool opened = ringio::sync_wait(context, attempt());
    exhausted.reset();
    CHECK_FALSE(opened);
    CHECK(error == std::errc::too_many_files_open);
    // The multishot accept ended with the error; the next call arms it again.
    CHECK(ringio::sync_wait(context, attempt()));
    CHECK_FALSE(error);
}

TEST_CASE("accept_all: an armed accept that runs out of descriptors backs off, loses no "
          "connection and goes on",
          "[tcp_listener]") {
    ringio::io_context context;
    ringio::tcp_listener listener(context, endpoint::loopback_v4(0));
    auto incoming = listener.accept_all();
    std::vector<ringio::detail::unique_fd> waiting;
    for (int i = 0; i < 3; ++i) {
        waiting.push_back(unconnected());
    }
    const auto early = blocking_connect(listener.local_endpoint());
    // The kernel reads the descriptor limit when the accept is armed: a small limit first,
    // then the table filled up to it once the accept is armed.
    std::optional<descriptor_limit> limited;
    limited.emplace(16);
    std::vector<ringio::tcp_stream> accepted;
    std::vector<std::error_code> errors;
    // A server loop: on an error it sleeps, then asks again.
    bool stopping = false;
    auto serve = [&]() -> ringio::task<> {
        while (!stopping) {
            std::error_code error;
            ringio::tcp_stream stream = co_await incoming.next().into(error);
            if (error) {
                errors.push_back(error);
                co_await ringio::sleep_for(context, 20ms);
                continue;
            }
            accepted.push_back(std::move(stream));
        }
    };
    ringio::spawn(context, serve());
    while (accepted.empty()) {
        context.run_once();
    }
    CHECK(context.in_flight() == 1); // armed, waiting for the next connection
    // While the table is full nothing here asserts: UBSan checks a virtual call it has not met
    // before (an assertion's) through a pipe, which it could not open. What is seen is kept.
    std::vector<ringio::detail::unique_fd> filler;
    int full_errno = 0;
    while (true) {
        ringio::detail::unique_fd copy{::fcntl(early.get(), F_DUPFD_CLOEXEC, 0)};
        if (!copy) {
            full_errno = errno;
            break;
        }
        filler.push_back(std::move(copy));
    }
    const endpoint target = listener.local_endpoint();
    int connected = 0;
    for (const auto& fd : waiting) {
        connected += ::connect(fd.get(), target.data(), target.size()) == 0 ? 1 : 0;
    }
    const auto start = std::chrono::steady_clock::now();
    while (ringio::testing::elapsed_ms(start) < 100) {
        context.run_once(); // the server's sleep keeps a timer in flight
    }
    const std::size_t accepted_while_full = accepted.size();
    // Descriptors are free again: the three connections, queued all along, are accepted.
    filler.clear();
    REQUIRE(full_errno == EMFILE);
    REQUIRE(connected == 3);
    CHECK(accepted_while_full == 1);
    REQUIRE_FALSE(errors.empty());
    CHECK(errors.front() == std::errc::too_many_files_open);
    // Backed off between attempts, not spinning: a handful of errors in 100 ms.
    CHECK(errors.size() <= 8);
    limited.reset();
    while (accepted.size() < 4) {
        context.run_once();
    }
    for (const ringio::tcp_stream& stream : accepted) {
        CHECK(stream.is_open());
    }
    stopping = true;
    listener.close();
    context.run();
}

TEST_CASE("accept_all: closing the listener ends it with ECANCELED", "[tcp_listener]") {
    ringio::io_context context;
    ringio::tcp_listener listener(context, endpoint::loopback_v4(0));
    auto incoming = listener.accept_all();
    std::error_code error;
    auto waiter = [&]() -> ringio::task<> {
        co_await incoming.next().into(error);
    };
    ringio::spawn(context, waiter());
    context.poll();
    listener.close();
    context.run();
    CHECK(error == std::errc::operation_canceled);
}

TEST_CASE("accept_all: on a closed listener is EBADF naming the listener", "[tcp_listener]") {
    ringio::io_context context;
    ringio::tcp_listener listener(context, endpoint::loopback_v4(0));
    listener.close();
    context.run();
    auto incoming = listener.accept_all();
    try {
        ringio::sync_wait(context, [](ringio::multishot<ringio::tcp_stream>& a) -> ringio::task<> {
            co_await a.next();
        }(incoming));
        FAIL("accept_all on a closed listener accepted");
    } catch (const std::system_error& error) {
        CHECK(error.code() == std::errc::bad_file_descriptor);
        // A stream of accepts outlives what it accepts on: once closed, it names the number.
        CHECK_THAT(error.what(), Catch::Matches("accept fd -?[0-9]+: .*"));
    }
    CHECK(context.in_flight() == 0);
}

TEST_CASE("accept_all: after the listener is closed, next() fails with EBADF at once",
          "[tcp_listener]") {
    ringio::io_context context;
    ringio::tcp_listener listener(context, endpoint::loopback_v4(0));
    auto incoming = listener.accept_all();
    listener.close();
    context.run();
    // The number is free now; a new socket may take it. Arming on it would be a stale accept.
    ringio::tcp_listener other(context, endpoint::loopback_v4(0));
    std::error_code error;
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        co_await incoming.next().into(error);
    }());
    CHECK(error == std::errc::bad_file_descriptor);
    CHECK(context.in_flight() == 0);
}

namespace {

// A Unix address of each kind, unique to this test.
endpoint unix_address(bool abstract, const ringio::testing::temp_dir& dir, std::string_view name) {
    return abstract ? endpoint::unix_abstract("ringio-listener-test-" + std::to_string(::getpid()) +
                                              "-" + std::string(name))
                    : endpoint::unix_path((dir / name).string());
}

// Accepts connections; answers each one's byte with `tag`, and closes the listener on 'q'.
ringio::task<> answer_with(ringio::tcp_listener& listener, char tag) {
    for (;;) {
        ringio::tcp_stream stream = co_await listener.accept();
        std::array<char, 1> got{};
        co_await stream.read_exact(got);
        co_await stream.write_all(std::string_view(&tag, 1));
        if (got[0] == 'q') {
            listener.close();
            co_return;
        }
    }
}

// Connects to `where`, sends `byte` and returns the one-byte answer.
char ask(const endpoint& where, char byte) {
    const auto client = blocking_connect(where);
    REQUIRE(::send(client.get(), &byte, 1, MSG_NOSIGNAL) == 1);
    char answer = 0;
    REQUIRE(::recv(client.get(), &answer, 1, 0) == 1);
    return answer;
}

} // namespace

TEST_CASE("tcp_listener: listens on a Unix path and on an abstract name", "[tcp_listener]") {
    ringio::io_context context;
    ringio::testing::temp_dir dir;
    const bool abstract = GENERATE(false, true);
    const endpoint where = unix_address(abstract, dir, "listen");
    ringio::tcp_listener listener(context, where);
    CHECK(listener.local_endpoint() == where);
    const auto client = blocking_connect(where);
    ringio::tcp_stream stream =
        ringio::sync_wait(context, [&]() -> ringio::task<ringio::tcp_stream> {
            co_return co_await listener.accept().with_timeout(5s);
        }());
    REQUIRE(stream.is_open());
    // A client that never bound is the unnamed address.
    CHECK(stream.remote_endpoint().is_unix());
    CHECK(stream.remote_endpoint().unix_name().empty());
    CHECK(stream.remote_endpoint().to_string() == "unix:");
    CHECK(stream.local_endpoint() == where);
    CHECK((::fcntl(stream.native_handle(), F_GETFD) & FD_CLOEXEC) != 0);
    REQUIRE(::send(client.get(), "hi", 2, 0) == 2);
    std::string got = ringio::sync_wait(context, [&]() -> ringio::task<std::string> {
        std::array<char, 2> buffer{};
        co_await stream.read_exact(buffer);
        co_await stream.write_all("back");
        co_return std::string(buffer.data(), buffer.size());
    }());
    CHECK(got == "hi");
    std::array<char, 4> reply{};
    REQUIRE(::recv(client.get(), reply.data(), reply.size(), MSG_WAITALL) == 4);
    CHECK(std::string_view(reply.data(), reply.size()) == "back");
}

TEST_CASE("accept_all: on a Unix listener, one request accepts many connections",
          "[tcp_listener]") {
    ringio::io_context context;
    ringio::testing::temp_dir dir;
    const bool abstract = GENERATE(false, true);
    const endpoint where = unix_address(abstract, dir, "all");
    ringio::tcp_listener listener(context, where);
    auto incoming = listener.accept_all();
    std::vector<ringio::detail::unique_fd> clients;
    for (int i = 0; i < 5; ++i) {
        clients.push_back(blocking_connect(where));
    }
    const int accepted = ringio::sync_wait(context, [&]() -> ringio::task<int> {
        int count = 0;
        for (int i = 0; i < 5; ++i) {
            count += (co_await incoming.next()).is_open() ? 1 : 0;
        }
        co_return count;
    }());
    CHECK(accepted == 5);
}

TEST_CASE("accept: the errors of a Unix listener name its address", "[tcp_listener]") {
    ringio::io_context context;
    ringio::testing::temp_dir dir;
    const bool abstract = GENERATE(false, true);
    const endpoint where = unix_address(abstract, dir, "named");
    ringio::tcp_listener listener(context, where);
    std::string message;
    ringio::sync_wait(context, [&]() -> ringio::task<> {
        try {
            co_await listener.accept().with_timeout(1ms);
        } catch (const std::system_error& error) {
            message = error.what();
        }
    }());
    CHECK(message == "accept on " + where.to_string() + ": Timer expired");
}

TEST_CASE("tcp_listener: another thread's context accepts on a shared listener's socket; "
          "closing one leaves the other working",
          "[tcp_listener]") {
    // The first thread builds both contexts and listeners; the second runs its own once handed
    // over. Each listener answers with its own tag.
    std::optional<ringio::io_context> other_context;
    std::optional<ringio::tcp_listener> other;
    std::atomic<bool> built{false};
    std::atomic<bool> handed_over{false};
    endpoint where;
    std::thread first_thread([&] {
        ringio::io_context context;
        ringio::tcp_listener first(context, endpoint::loopback_v4(0));
        other_context.emplace();
        other.emplace(*other_context, first);
        where = first.local_endpoint();
        handed_over = true;
        built = true;
        ringio::sync_wait(context, answer_with(first, 'a'));
    });
    std::thread second_thread([&] {
        while (!handed_over) {
            std::this_thread::sleep_for(1ms);
        }
        ringio::sync_wait(*other_context, answer_with(*other, 'b'));
        other.reset();
        other_context.reset();
    });
    while (!built) {
        std::this_thread::sleep_for(1ms);
    }
    CHECK(other->local_endpoint() == where);
    std::this_thread::sleep_for(20ms); // both accepts are waiting

    // Both listeners wait: the kernel hands each connection to one of them.
    int answered_a = 0;
    int answered_b = 0;
    for (int i = 0; i < 20; ++i) {
        const char tag = ask(where, 'x');
        answered_a += tag == 'a' ? 1 : 0;
        answered_b += tag == 'b' ? 1 : 0;
    }
    CHECK(answered_a + answered_b == 20);
    CHECK(answered_a > 0);
    CHECK(answered_b > 0);

    // One closes its listener; the other goes on with every connection.
    const char closed = ask(where, 'q');
    const char remaining = closed == 'a' ? 'b' : 'a';
    for (int i = 0; i < 10; ++i) {
        CHECK(ask(where, 'x') == remaining);
    }
    CHECK(ask(where, 'q') == remaining);
    first_thread.join();
    second_thread.join();
}

TEST_CASE("tcp_listener: sharing a listener fails with the descriptor's error, naming it",
          "[tcp_listener]") {
    ringio::io_context context;
    ringio::tcp_listener first(context, endpoint::loopback_v4(0));
    ringio::tcp_listener shared(context, first);
    CHECK(shared.native_handle() != first.native_handle());
    CHECK(shared.local_endpoint() == first.local_endpoint());
    CHECK((::fcntl(shared.native_handle(), F_GETFD) & FD_CLOEXEC) != 0);
    std::optional<ringio::testing::descriptor_exhaustion> exhausted;
    exhausted.emplace();
    std::error_code code;
    std::string message = "(no error)";
    try { // nothing asserts while the table is full: see descriptor_exhaustion
        ringio::tcp_listener another(context, first);
    } catch (const std::system_error& error) {
        code = error.code();
        message = error.what();
    }
    exhausted.reset();
    CHECK(code == std::errc::too_many_files_open);
    CHECK(message ==
          "tcp_listener " + first.local_endpoint().to_string() + ": dup: Too many open files");
}

TEST_CASE("tcp_listener: closing one of two listeners sharing a socket cancels only its accept",
          "[tcp_listener]") {
    ringio::io_context context;
    ringio::tcp_listener first(context, endpoint::loopback_v4(0));
    ringio::tcp_listener shared(context, first);
    std::error_code closed_error;
    bool accepted = false;
    auto on_first = [&]() -> ringio::task<> {
        co_await first.accept().into(closed_error);
    };
    auto on_shared = [&]() -> ringio::task<> {
        accepted = (co_await shared.accept().with_timeout(5s)).is_open();
    };
    ringio::spawn(context, on_first());
    ringio::spawn(context, on_shared());
    context.poll();
    first.close();
    context.poll();
    context.poll();
    CHECK(closed_error == std::errc::operation_canceled);
    CHECK_FALSE(accepted);
    const auto client = blocking_connect(shared.local_endpoint());
    context.run();
    CHECK(accepted);
}
