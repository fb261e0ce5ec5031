#include <ringio/mapped.hpp>

#include <ringio/shared_atomic_ref.hpp>

#include <catch2/catch.hpp>

#include "child_process.hpp"
#include "temp_dir.hpp"
#include "test_support.hpp"

#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <numeric>
#include <ranges>
#include <span>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using Catch::Matchers::Contains;
using namespace ringio::testing;

namespace {

struct record {
    std::uint32_t ready;
    std::int32_t value;
    std::array<char, 8> note;
};

// Writes `bytes` as the whole content of the file at `path`, with plain write(2).
void write_file(const std::filesystem::path& path, std::span<const std::byte> bytes) {
    ringio::detail::unique_fd fd(
        ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    REQUIRE(fd);
    REQUIRE(::write(fd.get(), bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
}

template <class T>
void write_value(const std::filesystem::path& path, const T& value) {
    write_file(path, std::as_bytes(std::span{&value, 1}));
}

// Reads a T at `offset` of the file at `path` with plain pread(2), past any mapping.
template <class T>
T read_value(const std::filesystem::path& path, off_t offset = 0) {
    ringio::detail::unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    REQUIRE(fd);
    T value{};
    REQUIRE(::pread(fd.get(), &value, sizeof value, offset) == static_cast<ssize_t>(sizeof value));
    return value;
}

// Calls `open`, a throwing factory, which must fail with `expected`; its message must name
// `subject` and say `words`, and no descriptor may be left behind.
template <class Open>
void require_error(Open open, std::errc expected, const std::string& subject,
                   const std::string& words = {}) {
    const int before = open_fd_count();
    try {
        open();
        FAIL("no error");
    } catch (const std::system_error& e) {
        CHECK(e.code() == expected);
        CHECK_THAT(e.what(), Contains("mapped: ") && Contains(subject) && Contains(words));
    }
    CHECK(open_fd_count() == before);
}

// Drops root's privileges in a forked child, so that permission errors are real: root passes
// every permission check on mode bits.
bool drop_privileges() {
    if (::geteuid() != 0) {
        return true;
    }
    return ::setgroups(0, nullptr) == 0 && ::setgid(65534) == 0 && ::setuid(65534) == 0;
}

bool is_mapped(const void* address) {
    // msync reports ENOMEM for an address that no mapping covers.
    return ::msync(const_cast<void*>(address), 1, MS_ASYNC) == 0;
}

// Limits the size of the files this process may write (in a forked child: the limit is the
// process's own).
bool limit_file_size(rlim_t bytes) {
    const ::rlimit limit{bytes, bytes};
    return ::setrlimit(RLIMIT_FSIZE, &limit) == 0;
}

// True when SIGXFSZ waits to be delivered to this thread or process.
bool sigxfsz_pending() {
    ::sigset_t pending;
    return ::sigpending(&pending) == 0 && sigismember(&pending, SIGXFSZ) == 1;
}

// True when SIGXFSZ is blocked in this thread.
bool sigxfsz_blocked() {
    ::sigset_t mask;
    return ::pthread_sigmask(SIG_SETMASK, nullptr, &mask) == 0 && sigismember(&mask, SIGXFSZ) == 1;
}

// The throwing form's message for `call`, or "" if it did not throw `expected`.
template <class Call>
std::string message_of(Call call, std::errc expected) {
    try {
        call();
    } catch (const std::system_error& e) {
        return e.code() == expected ? e.what() : "";
    }
    return "";
}

// Whether `text` holds every one of `words`.
bool says(const std::string& text, std::initializer_list<std::string> words) {
    return std::ranges::all_of(
        words, [&](const std::string& word) { return text.find(word) != std::string::npos; });
}

// Binds a Unix socket at `path`; the socket file stays after the descriptor is closed.
ringio::detail::unique_fd bind_unix_socket(const std::filesystem::path& path) {
    ringio::detail::unique_fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(fd);
    ::sockaddr_un address{};
    address.sun_family = AF_UNIX;
    REQUIRE(path.string().size() < sizeof address.sun_path);
    path.string().copy(address.sun_path, sizeof address.sun_path - 1);
    REQUIRE(::bind(fd.get(), reinterpret_cast<const ::sockaddr*>(&address), sizeof address) == 0);
    return fd;
}

// The type bits of what is at `path` itself (a symbolic link is not followed), or 0.
::mode_t file_type(const std::filesystem::path& path) {
    struct ::stat st {};
    return ::lstat(path.c_str(), &st) == 0 ? st.st_mode & S_IFMT : 0;
}

// Records how it was constructed: its arguments, and its own address, which an object built
// elsewhere and copied would not hold. Value-initialized, it holds a = -1 and the rest zero.
struct probe {
    probe() = default;
    probe(std::int32_t first, std::int32_t second)
        : a(first), b(second), at(reinterpret_cast<std::uintptr_t>(this)) {
        if (first < 0) {
            throw std::invalid_argument("probe: a negative argument");
        }
        ++constructed;
    }

    std::int32_t a = -1;
    std::int32_t b;
    std::uintptr_t at;

    static inline int constructed = 0; // by the constructor with arguments, since reset
};

// Larger than the stack of the thread that creates it: a temporary would overflow it.
struct big {
    big() = default;
    explicit big(std::uint8_t fill) { bytes.fill(fill); }

    std::array<std::uint8_t, std::size_t{1} << 20> bytes;
};

constexpr std::size_t small_stack = 256 * 1024;

// Runs `body` in a thread whose stack is `stack_bytes` long, in a forked child, where a stack
// overflow is a status (128 + SIGSEGV) rather than the end of the test program.
template <class Body>
int on_small_stack(std::size_t stack_bytes, Body body) {
    return run_in_child([&] {
        ::pthread_attr_t attributes;
        ::pthread_t thread;
        void* status = nullptr;
        auto run = [](void* b) -> void* {
            return reinterpret_cast<void*>(static_cast<std::intptr_t>((*static_cast<Body*>(b))()));
        };
        if (::pthread_attr_init(&attributes) != 0 ||
            ::pthread_attr_setstacksize(&attributes, stack_bytes) != 0 ||
            ::pthread_create(&thread, &attributes, run, &body) != 0 ||
            ::pthread_join(thread, &status) != 0) {
            return 1;
        }
        return static_cast<int>(reinterpret_cast<std::intptr_t>(status));
    });
}

// Whether `mapped<T>::create(path, args...)` compiles.
template <class T, class... Args>
concept can_create = requires(const std::filesystem::path& path, Args&&... args) {
    ringio::mapped<T>::create(path, std::forward<Args>(args)...);
};

} // namespace

// Modes

TEST_CASE("mapped: a shared write reaches the file", "[mapped]") {
    temp_dir dir;
    write_value(dir / "r", record{0, 1, {}});
    {
        auto view = ringio::mapped<record>::open(dir / "r");
        view->value = 42;
    }
    CHECK(read_value<record>(dir / "r").value == 42);
}

TEST_CASE("mapped: a shared write is seen by another process mapping the file", "[mapped]") {
    temp_dir dir;
    write_value(dir / "r", record{0, 1, {}});
    auto view = ringio::mapped<record>::open(dir / "r");

    // The child maps the file on its own (not inherited) and writes; the parent's view sees it.
    CHECK(run_in_child([&] {
              auto own = ringio::mapped<record>::open(dir / "r");
              own->value = 7;
              return 0;
          }) == 0);
    CHECK(view->value == 7);

    // And the other way: the parent writes, a new process reads it from its own view.
    view->value = 8;
    CHECK(run_in_child([&] { return ringio::mapped<const record>::open(dir / "r")->value; }) == 8);
}

TEST_CASE("mapped: a private write stays in this process", "[mapped]") {
    temp_dir dir;
    write_value(dir / "r", record{0, 1, {}});
    auto view = ringio::mapped<record>::open(dir / "r", {.mode = ringio::map_mode::private_copy});
    view->value = 2;
    CHECK(view->value == 2);
    CHECK(read_value<record>(dir / "r").value == 1);
    CHECK(ringio::mapped<const record>::open(dir / "r")->value == 1);
    CHECK(run_in_child([&] { return ringio::mapped<const record>::open(dir / "r")->value; }) == 1);
}

TEST_CASE("mapped: a private view sees other writers until it writes the page", "[mapped]") {
    temp_dir dir;
    write_value(dir / "r", record{0, 1, {}});
    auto shared = ringio::mapped<record>::open(dir / "r");
    auto copy = ringio::mapped<record>::open(dir / "r", {.mode = ringio::map_mode::private_copy});
    shared->value = 2;
    CHECK(copy->value == 2); // MAP_PRIVATE is copy-on-write, not a snapshot
    copy->value = 3;
    shared->value = 4;
    CHECK(copy->value == 3);
}

TEST_CASE("mapped: a read-only view reads the file and cannot write", "[mapped]") {
    temp_dir dir;
    write_value(dir / "r", record{0, 5, {}});
    auto view = ringio::mapped<const record>::open(dir / "r");
    auto copy =
        ringio::mapped<const record>::open(dir / "r", {.mode = ringio::map_mode::private_copy});
    CHECK(view->value == 5);
    CHECK(copy->value == 5);
    STATIC_REQUIRE(std::is_same_v<decltype(*view), const record&>);
    STATIC_REQUIRE(std::is_same_v<decltype(view.get()), const record*>);
    STATIC_REQUIRE(std::is_same_v<decltype(ringio::mapped<const int[]>{}[0]), const int&>);
}

// Creating

TEST_CASE("mapped: create sizes and allocates the file and stores the initial value", "[mapped]") {
    temp_dir dir;
    auto view = ringio::mapped<record>::create(dir / "r", {}, record{0, 9, {'n', 'e', 'w'}});
    CHECK(view->value == 9);
    CHECK(std::string(view->note.data()) == "new");
    struct stat st {};
    REQUIRE(::stat((dir / "r").c_str(), &st) == 0);
    CHECK(st.st_size == sizeof(record));
    CHECK(st.st_blocks > 0); // allocated, not a hole that a full disk could refuse later
    CHECK(read_value<record>(dir / "r").value == 9);

    auto array = ringio::mapped<std::uint64_t[]>::create(dir / "a", 1000, {}, 7);
    CHECK(array.size() == 1000);
    CHECK(std::ranges::all_of(array, [](std::uint64_t v) { return v == 7; }));
    CHECK(std::filesystem::file_size(dir / "a") == 8000);
}

TEST_CASE("mapped: create refuses an existing file unless told to replace it", "[mapped]") {
    temp_dir dir;
    auto old = ringio::mapped<record>::create(dir / "r", {}, 0U, 1);
    require_error([&] { return ringio::mapped<record>::create(dir / "r"); }, std::errc::file_exists,
                  (dir / "r").string());

    auto fresh = ringio::mapped<record>::create(dir / "r", {.replace_existing = true}, 0U, 2);
    CHECK(fresh->value == 2);
    CHECK(read_value<record>(dir / "r").value == 2);
    // The old file was unlinked, not truncated: its mapping keeps its pages (no SIGBUS).
    CHECK(old->value == 1);
}

TEST_CASE("mapped: a full disk is ENOSPC at create, not SIGBUS later, and leaves no file",
          "[mapped][errors]") {
    temp_dir dir;
    // A full file system: a 64 KiB tmpfs in a private mount namespace, gone with the child. A
    // child that cannot set it up says which call failed and why, for the skip to report.
    struct setup_failure {
        int call;  // an index into `calls`
        int error; // its errno
    };
    constexpr std::array calls{"unshare(CLONE_NEWNS)",
                               "mount(\"/\", MS_REC | MS_PRIVATE) in the new namespace",
                               "mount of a 64 KiB tmpfs"};
    auto failure = ringio::mapped<setup_failure>::anonymous();
    const int status = run_in_child([&] {
        const auto failed = [&](int call) {
            failure->call = call;
            failure->error = errno;
            return child_skipped;
        };
        if (::unshare(CLONE_NEWNS) != 0) {
            return failed(0);
        }
        if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
            return failed(1);
        }
        if (::mount("tmpfs", dir.path().c_str(), "tmpfs", 0, "size=64k") != 0) {
            return failed(2);
        }
        std::error_code ec;
        auto view = ringio::mapped<std::byte[]>::create(dir / "full", 1 << 20, {}, ec);
        if (ec != std::errc::no_space_on_device) {
            return 2;
        }
        return view.empty() && !std::filesystem::exists(dir / "full") ? 0 : 3;
    });
    if (status == child_skipped) {
        const int error = failure->error;
        const char* why = "";
        if (error == EPERM) {
            why = " (needs CAP_SYS_ADMIN)";
        } else if (failure->call == 1 && error == EINVAL) {
            why = " (/ is not a mount point here, as in a chroot)";
        }
        WARN("SKIPPED: no full file system to test with: "
             << calls.at(static_cast<std::size_t>(failure->call))
             << " failed: " << std::generic_category().message(error) << why);
    } else {
        CHECK(status == 0);
    }
}

TEST_CASE("mapped: a file size limit is EFBIG at create, without SIGXFSZ, and leaves no file",
          "[mapped][errors]") {
    temp_dir dir;
    // The child keeps SIGXFSZ's default action, which kills: the library must not provoke it.
    const int status = run_in_child([&] {
        if (!limit_file_size(4096)) {
            return 1;
        }
        std::error_code ec;
        auto view = ringio::mapped<std::byte[]>::create(dir / "big", 1 << 20, {}, ec);
        if (ec != std::errc::file_too_large || !view.empty()) {
            return 2;
        }
        if (std::filesystem::exists(dir / "big")) {
            return 3;
        }
        const std::string what =
            message_of([&] { ringio::mapped<std::byte[]>::create(dir / "big", 1 << 20); },
                       std::errc::file_too_large);
        if (!says(what, {"mapped: create \"" + (dir / "big").string() + "\"", "RLIMIT_FSIZE"})) {
            return 4;
        }
        // A memfd is a file too, under the same limit.
        auto memfd = ringio::mapped<std::byte[]>::memfd("ringio-test", 1 << 20, ec);
        if (ec != std::errc::file_too_large || !memfd.empty()) {
            return 5;
        }
        // Up to the limit is fine.
        if (ringio::mapped<std::byte[]>::create(dir / "fits", 4096).size() != 4096) {
            return 6;
        }
        return sigxfsz_pending() || sigxfsz_blocked() ? 7 : 0;
    });
    CHECK(status == 0);
}

TEST_CASE("mapped: growing past the file size limit is EFBIG and keeps the view",
          "[mapped][errors]") {
    temp_dir dir;
    const int status = run_in_child([&] {
        if (!limit_file_size(64 * 1024)) {
            return 1;
        }
        auto array = ringio::mapped<std::uint64_t[]>::create(dir / "a", 1024, {}, 7);
        std::error_code ec;
        array.grow(1 << 20, ec);
        if (ec != std::errc::file_too_large || array.size() != 1024 || array[1023] != 7 ||
            std::filesystem::file_size(dir / "a") != 1024 * 8) {
            return 2;
        }
        const std::string what =
            message_of([&] { array.grow(1 << 20); }, std::errc::file_too_large);
        if (!says(what, {"mapped: grow \"" + (dir / "a").string() + "\"", "RLIMIT_FSIZE"})) {
            return 3;
        }
        array.grow(8 * 1024); // exactly the limit
        return array.size() == 8 * 1024 && !sigxfsz_pending() ? 0 : 4;
    });
    CHECK(status == 0);
}

TEST_CASE("mapped: the SIGXFSZ a file call raises is consumed, one already pending is kept",
          "[mapped]") {
    temp_dir dir;
    const int status = run_in_child([&] {
        ringio::detail::unique_fd fd(
            ::open((dir / "f").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
        if (!fd || !limit_file_size(4096)) {
            return 1;
        }
        // ftruncate past the limit: the kernel sends SIGXFSZ to the calling thread, which the
        // helper blocks. Another thread leaves it unblocked: the signal must not reach it either.
        auto past_the_limit = [&] {
            return ::ftruncate(fd.get(), 1 << 20) == 0 ? 0 : errno;
        };
        std::jthread other([] { std::this_thread::sleep_for(200ms); });
        if (ringio::detail::without_sigxfsz(past_the_limit) != EFBIG) {
            return 2;
        }
        if (sigxfsz_pending() || sigxfsz_blocked()) {
            return 3;
        }
        // A SIGXFSZ that was pending before the call is the program's: it stays pending.
        ::sigset_t xfsz;
        sigemptyset(&xfsz);
        sigaddset(&xfsz, SIGXFSZ);
        ::pthread_sigmask(SIG_BLOCK, &xfsz, nullptr);
        ::pthread_kill(::pthread_self(), SIGXFSZ);
        if (ringio::detail::without_sigxfsz(past_the_limit) != EFBIG) {
            return 4;
        }
        return sigxfsz_pending() && sigxfsz_blocked() ? 0 : 5;
    });
    CHECK(status == 0);
}

TEST_CASE("mapped: replace_existing replaces only a regular file, and leaves anything else",
          "[mapped][errors]") {
    temp_dir dir;
    write_value(dir / "target", record{0, 5, {}});
    REQUIRE(::mkfifo((dir / "fifo").c_str(), 0600) == 0);
    const auto socket = bind_unix_socket(dir / "socket");
    std::filesystem::create_symlink(dir / "target", dir / "link");
    std::filesystem::create_symlink(dir / "missing", dir / "dangling");
    std::filesystem::create_directory(dir / "directory");

    for (const auto& [name, kind] :
         {std::pair{"fifo", "a FIFO"}, std::pair{"socket", "a socket"},
          std::pair{"link", "a symbolic link"}, std::pair{"dangling", "a symbolic link"},
          std::pair{"directory", "a directory"}}) {
        INFO(name);
        const std::filesystem::path path = dir / name;
        const ::mode_t type = file_type(path);
        require_error(
            [&] { return ringio::mapped<record>::create(path, {.replace_existing = true}); },
            std::errc::file_exists, "mapped: create \"" + path.string() + "\"",
            std::string(kind) + ", not a regular file: only a regular file is replaced");
        // Without replace_existing, the same error says what is in the way.
        require_error([&] { return ringio::mapped<record>::create(path); }, std::errc::file_exists,
                      path.string(), kind);
        CHECK(file_type(path) == type);
    }
    CHECK(read_value<record>(dir / "target").value == 5); // the link's target is untouched
    std::filesystem::remove(dir / "dangling");
    CHECK_FALSE(std::filesystem::exists(dir / "missing")); // nothing created through the link

    // A regular file is replaced.
    auto fresh = ringio::mapped<record>::create(dir / "target", {.replace_existing = true}, 0U, 6);
    CHECK(read_value<record>(dir / "target").value == 6);
}

TEST_CASE("mapped: replace_existing leaves a device node in place", "[mapped][errors]") {
    temp_dir dir;
    if (::mknod((dir / "null").c_str(), S_IFCHR | 0600, ::makedev(1, 3)) != 0) {
        WARN("SKIPPED: cannot make a device node here (needs CAP_MKNOD)");
        return;
    }
    require_error(
        [&] { return ringio::mapped<record>::create(dir / "null", {.replace_existing = true}); },
        std::errc::file_exists, (dir / "null").string(), "a character device, not a regular file");
    CHECK(file_type(dir / "null") == S_IFCHR);
}

// Creating in place

TEST_CASE("mapped: create, memfd and anonymous construct T from their arguments, in place",
          "[mapped][in_place]") {
    temp_dir dir;
    std::error_code ec = std::make_error_code(std::errc::interrupted);
    std::vector<ringio::mapped<probe>> views;
    views.push_back(ringio::mapped<probe>::create(dir / "p", {}, 1, 2));
    views.push_back(ringio::mapped<probe>::create(dir / "q", {.populate = true}, ec, 3, 4));
    CHECK_FALSE(ec);
    views.push_back(ringio::mapped<probe>::memfd("ringio-test", 5, 6));
    views.push_back(ringio::mapped<probe>::memfd("ringio-test", ec, 7, 8));
    views.push_back(ringio::mapped<probe>::anonymous(ringio::map_mode::shared, 9, 10));
    views.push_back(ringio::mapped<probe>::anonymous(ringio::map_mode::private_copy, ec, 11, 12));
    CHECK_FALSE(ec);
    std::int32_t expected = 1;
    for (const auto& view : views) {
        INFO("view " << (expected + 1) / 2);
        CHECK(view->a == expected);
        CHECK(view->b == expected + 1);
        CHECK(view->at == reinterpret_cast<std::uintptr_t>(view.get())); // built where it lives
        expected += 2;
    }
    CHECK(read_value<probe>(dir / "p").b == 2);
    CHECK(read_value<probe>(dir / "q").b == 4);
    // A copy of a whole value is a constructor argument too.
    const record value{0, 13, {'c', 'o', 'p', 'y'}};
    CHECK(ringio::mapped<record>::memfd("ringio-test", value)->value == 13);
    CHECK(ringio::mapped<record>::anonymous(ringio::map_mode::shared, value)->note == value.note);
}

TEST_CASE("mapped: without arguments a new object is value-initialized", "[mapped][in_place]") {
    temp_dir dir;
    std::error_code ec;
    std::vector<ringio::mapped<probe>> views;
    views.push_back(ringio::mapped<probe>::create(dir / "p"));
    views.push_back(ringio::mapped<probe>::create(dir / "q", {}, ec));
    views.push_back(ringio::mapped<probe>::memfd("ringio-test"));
    views.push_back(ringio::mapped<probe>::memfd("ringio-test", ec));
    views.push_back(ringio::mapped<probe>::anonymous());
    views.push_back(ringio::mapped<probe>::anonymous(ringio::map_mode::private_copy, ec));
    for (const auto& view : views) {
        CHECK(view->a == -1); // its default member initializer ran
        CHECK(view->b == 0);
        CHECK(view->at == 0);
    }
    auto array = ringio::mapped<probe[]>::create(dir / "a", 3);
    CHECK(std::ranges::all_of(array, [](const probe& p) { return p.a == -1 && p.b == 0; }));
}

TEST_CASE("mapped: a new array constructs each element from the same arguments, in place",
          "[mapped][in_place]") {
    temp_dir dir;
    std::error_code ec = std::make_error_code(std::errc::interrupted);
    std::vector<ringio::mapped<probe[]>> arrays;
    arrays.push_back(ringio::mapped<probe[]>::create(dir / "a", 3, {}, 1, 2));
    arrays.push_back(ringio::mapped<probe[]>::create(dir / "b", 3, {}, ec, 1, 2));
    arrays.push_back(ringio::mapped<probe[]>::memfd("ringio-test", 3, 1, 2));
    arrays.push_back(ringio::mapped<probe[]>::memfd("ringio-test", 3, ec, 1, 2));
    arrays.push_back(ringio::mapped<probe[]>::anonymous(3, ringio::map_mode::shared, 1, 2));
    arrays.push_back(
        ringio::mapped<probe[]>::anonymous(3, ringio::map_mode::private_copy, ec, 1, 2));
    CHECK_FALSE(ec);
    for (const auto& array : arrays) {
        REQUIRE(array.size() == 3);
        for (const probe& element : array) {
            CHECK(element.a == 1);
            CHECK(element.b == 2);
            CHECK(element.at == reinterpret_cast<std::uintptr_t>(&element));
        }
    }
    // Copies of one value: each element holds its bytes, the copied object's address included.
    const probe one(5, 6);
    auto copies = ringio::mapped<probe[]>::anonymous(4, ringio::map_mode::shared, one);
    CHECK(std::ranges::all_of(
        copies, [&](const probe& p) { return std::memcmp(&p, &one, sizeof one) == 0; }));
}

TEST_CASE("mapped: a large T is never built as a temporary, even on a small stack",
          "[mapped][in_place]") {
    STATIC_REQUIRE(sizeof(big) > 2 * small_stack);
    temp_dir dir;
    const int status = on_small_stack(small_stack, [&] {
        auto created = ringio::mapped<big>::create(dir / "b", {}, std::uint8_t{7});
        auto zeroed = ringio::mapped<big>::memfd("ringio-test");
        auto shared = ringio::mapped<big>::anonymous(ringio::map_mode::shared, std::uint8_t{8});
        auto array =
            ringio::mapped<big[]>::anonymous(2, ringio::map_mode::private_copy, std::uint8_t{9});
        const bool right = created->bytes.back() == 7 && zeroed->bytes.back() == 0 &&
                           shared->bytes.front() == 8 && array[1].bytes.back() == 9;
        return right ? 0 : 2;
    });
    CHECK(status == 0); // 128 + SIGSEGV if a temporary overflowed the stack
    CHECK(read_value<std::uint8_t>(dir / "b", sizeof(big) - 1) == 7);
}

TEST_CASE("mapped: a failed factory constructs nothing", "[mapped][in_place][errors]") {
    temp_dir dir;
    write_value(dir / "taken", record{});
    probe::constructed = 0;
    std::error_code ec;
    CHECK_FALSE(ringio::mapped<probe>::create(dir / "taken", {}, ec, 1, 2));
    CHECK(ec == std::errc::file_exists);
    CHECK_FALSE(ringio::mapped<probe>::memfd(std::string(300, 'n'), ec, 1, 2));
    CHECK(ec == std::errc::invalid_argument);
    const auto max = std::numeric_limits<std::size_t>::max();
    CHECK(ringio::mapped<probe[]>::anonymous(max / 8, ringio::map_mode::shared, ec, 1, 2).empty());
    CHECK(ec == std::errc::value_too_large);
    CHECK(probe::constructed == 0);
}

TEST_CASE("mapped: an exception from T's constructor propagates, leaving no file or descriptor",
          "[mapped][in_place][errors]") {
    temp_dir dir;
    const int before = open_fd_count();
    std::error_code ec;
    CHECK_THROWS_AS(ringio::mapped<probe>::create(dir / "p", {}, -1, 0), std::invalid_argument);
    CHECK_THROWS_AS(ringio::mapped<probe>::create(dir / "p", {}, ec, -1, 0), std::invalid_argument);
    CHECK_THROWS_AS(ringio::mapped<probe[]>::create(dir / "a", 3, {}, -1, 0),
                    std::invalid_argument);
    CHECK_THROWS_AS(ringio::mapped<probe>::memfd("ringio-test", -1, 0), std::invalid_argument);
    CHECK_THROWS_AS(ringio::mapped<probe[]>::anonymous(3, ringio::map_mode::shared, -1, 0),
                    std::invalid_argument);
    CHECK(std::filesystem::is_empty(dir.path())); // the new files were removed again
    CHECK(open_fd_count() == before);
}

TEST_CASE(
    "mapped: options come before the constructor's arguments, so neither is taken for the other",
    "[mapped][in_place]") {
    STATIC_REQUIRE(can_create<record>);
    STATIC_REQUIRE(can_create<record, ringio::create_options>);
    STATIC_REQUIRE(can_create<record, ringio::create_options, record>);
    STATIC_REQUIRE(can_create<record, ringio::create_options, unsigned, int>);
    STATIC_REQUIRE(can_create<record, ringio::create_options, std::error_code&, unsigned, int>);
    STATIC_REQUIRE_FALSE(can_create<record, record>); // a value is not options
    STATIC_REQUIRE_FALSE(can_create<record, ringio::create_options, int, int, int, int>);
    STATIC_REQUIRE_FALSE(can_create<const record, ringio::create_options>);
    // A bool can be constructed from an error_code; the error code is still taken as one.
    std::error_code ec = std::make_error_code(std::errc::interrupted);
    auto flag = ringio::mapped<bool>::memfd("ringio-test", ec);
    CHECK_FALSE(ec);
    CHECK_FALSE(*flag);
    auto flags = ringio::mapped<bool[]>::anonymous(2, ringio::map_mode::shared, ec);
    CHECK_FALSE(ec);
    CHECK(flags.size() == 2);
}

TEST_CASE("mapped: create errors: no permission, a read-only file system, a name too long, "
          "EOVERFLOW",
          "[mapped][errors]") {
    temp_dir dir;
    require_error([&] { return ringio::mapped<record>::create(dir / std::string(300, 'n')); },
                  std::errc::filename_too_long, "mapped: create");
    const auto max = std::numeric_limits<std::size_t>::max();
    require_error([&] { return ringio::mapped<record[]>::create(dir / "huge", max / 4); },
                  std::errc::value_too_large, "mapped: create", "overflow");
    CHECK_FALSE(std::filesystem::exists(dir / "huge"));

    std::filesystem::permissions(dir.path(), std::filesystem::perms::all);
    std::filesystem::create_directory(dir / "locked");
    std::filesystem::permissions(dir / "locked", std::filesystem::perms::owner_all |
                                                     std::filesystem::perms::others_exec);
    CHECK(run_in_child([&] {
              std::error_code ec;
              return !drop_privileges()                                             ? 1
                     : ringio::mapped<record>::create(dir / "locked" / "f", {}, ec) ? 2
                     : ec == std::errc::permission_denied                           ? 0
                                                                                    : 3;
          }) == 0);

    const int status = run_in_child([&] {
        if (::unshare(CLONE_NEWNS) != 0 ||
            ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
            ::mount("tmpfs", dir.path().c_str(), "tmpfs", MS_RDONLY, nullptr) != 0) {
            return child_skipped;
        }
        std::error_code ec;
        auto view = ringio::mapped<std::byte[]>::create(dir / "f", 16, {}, ec);
        return ec == std::errc::read_only_file_system && view.empty() ? 0 : 2;
    });
    if (status == child_skipped) {
        WARN("SKIPPED: cannot mount a read-only tmpfs here (needs CAP_SYS_ADMIN)");
    } else {
        CHECK(status == 0);
    }
}

TEST_CASE("mapped: memfd errors: a name too long is EINVAL, no descriptor left is EMFILE",
          "[mapped][errors]") {
    require_error([] { return ringio::mapped<record>::memfd(std::string(300, 'n')); },
                  std::errc::invalid_argument, "mapped: memfd memfd:nnn", "memfd_create");
    const int status = run_in_child([] {
        const ::rlimit limit{32, 32};
        if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) {
            return 1;
        }
        while (::dup(0) >= 0) {
        }
        std::error_code ec;
        auto view = ringio::mapped<std::uint32_t[]>::memfd("ringio-test", 4, ec, 1U);
        return ec == std::errc::too_many_files_open && view.empty() ? 0 : 2;
    });
    CHECK(status == 0);
}

TEST_CASE("mapped: anonymous memory past what the kernel can give is ENOMEM", "[mapped][errors]") {
    const std::size_t huge = std::size_t{1} << 62;
    require_error([&] { return ringio::mapped<std::byte[]>::anonymous(huge); },
                  std::errc::not_enough_memory, "mapped: map anonymous shared memory", "mmap");
    std::error_code ec;
    auto view = ringio::mapped<std::byte[]>::anonymous(huge, ringio::map_mode::private_copy, ec);
    CHECK(ec == std::errc::not_enough_memory);
    CHECK(view.empty());
}

// Anonymous memory and memfds

TEST_CASE("mapped: anonymous shared memory is shared with a forked child both ways", "[mapped]") {
    auto view = ringio::mapped<record>::anonymous(ringio::map_mode::shared, record{0, 1, {}});
    view->value = 2; // before the fork: the child sees it
    ringio::shared_atomic_ref ready{view->ready};
    const pid_t child = fork_child([&] {
        if (view->value != 2) {
            return 1;
        }
        view->value = 3;
        ready.store(1);
        ready.notify_all();
        // After the parent's answer, the child sees what the parent wrote.
        return ready.wait_for(1, 10s) && view->value == 4 ? 0 : 2;
    });
    CHECK(ready.wait_for(0, 10s));
    CHECK(view->value == 3);
    view->value = 4;
    ready.store(2);
    ready.notify_all();
    CHECK(wait_child(child) == 0);
}

TEST_CASE("mapped: anonymous private memory is copied on fork, not shared", "[mapped]") {
    auto view = ringio::mapped<record>::anonymous(ringio::map_mode::private_copy, 0U, 1);
    CHECK(run_in_child([&] {
              view->value = 5;
              return view->value;
          }) == 5);
    CHECK(view->value == 1);
}

TEST_CASE("mapped: a memfd is shared through its descriptor and sealed against resizing",
          "[mapped]") {
    auto view = ringio::mapped<record>::memfd("ringio-test", 0U, 6);
    REQUIRE(view.fd() >= 0);
    auto other = ringio::mapped<record>::open(view.fd());
    other->value = 7;
    CHECK(view->value == 7);

    // Nobody can shrink it under a mapping, nor grow it.
    CHECK(::ftruncate(view.fd(), 0) == -1);
    CHECK(errno == EPERM);
    CHECK(::ftruncate(view.fd(), 1 << 20) == -1);
    CHECK(errno == EPERM);
    view.check();
}

// Descriptors

TEST_CASE("mapped: a descriptor passed in stays open and the view holds its own", "[mapped]") {
    temp_dir dir;
    write_value(dir / "r", record{0, 3, {}});
    const int fd = ::open((dir / "r").c_str(), O_RDWR | O_CLOEXEC);
    REQUIRE(fd >= 0);
    {
        auto view = ringio::mapped<record>::open(fd);
        CHECK(view->value == 3);
        CHECK(view.fd() != fd);
    }
    CHECK(::fcntl(fd, F_GETFD) != -1);
    ::close(fd);
}

TEST_CASE("mapped: an array maps from a descriptor, whole or counted", "[mapped]") {
    temp_dir dir;
    const std::array<std::uint32_t, 4> words{1, 2, 3, 4};
    write_file(dir / "a", std::as_bytes(std::span{words}));
    ringio::detail::unique_fd fd(::open((dir / "a").c_str(), O_RDONLY | O_CLOEXEC));
    REQUIRE(fd);
    auto whole = ringio::mapped<const std::uint32_t[]>::open(fd.get(), {.offset = 4});
    CHECK(std::ranges::equal(whole, std::array<std::uint32_t, 3>{2, 3, 4}));
    auto counted = ringio::mapped<const std::uint32_t[]>::open(fd.get(), 2);
    CHECK(std::ranges::equal(counted, std::array<std::uint32_t, 2>{1, 2}));
    std::error_code ec;
    auto too_many = ringio::mapped<const std::uint32_t[]>::open(fd.get(), 5, {}, ec);
    CHECK(ec == std::errc::no_such_device_or_address);
    CHECK(too_many.empty());
}

TEST_CASE("mapped: every descriptor a view holds is close-on-exec", "[mapped]") {
    temp_dir dir;
    auto created = ringio::mapped<record>::create(dir / "r");
    auto opened = ringio::mapped<const record>::open(dir / "r");
    auto duplicated = ringio::mapped<const record>::open(opened.fd());
    auto memfd = ringio::mapped<record>::memfd("ringio-test");
    for (const int fd : {created.fd(), opened.fd(), duplicated.fd(), memfd.fd()}) {
        CHECK((::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
    }
    CHECK(ringio::mapped<record>::anonymous().fd() == -1);
}

TEST_CASE("mapped: files it creates are private to their owner unless told otherwise", "[mapped]") {
    temp_dir dir;
    const ::mode_t old_umask = ::umask(022);
    auto private_file = ringio::mapped<record>::create(dir / "p");
    auto public_file = ringio::mapped<record>::create(dir / "q", {.permissions = 0644});
    ::umask(old_umask);
    CHECK((std::filesystem::status(dir / "p").permissions() & std::filesystem::perms::all) ==
          (std::filesystem::perms::owner_read | std::filesystem::perms::owner_write));
    CHECK((std::filesystem::status(dir / "q").permissions() & std::filesystem::perms::all) ==
          (std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
           std::filesystem::perms::group_read | std::filesystem::perms::others_read));
}

// Bad input

TEST_CASE("mapped: a missing file is ENOENT", "[mapped][errors]") {
    temp_dir dir;
    require_error([&] { return ringio::mapped<record>::open(dir / "missing"); },
                  std::errc::no_such_file_or_directory, (dir / "missing").string());
    require_error([&] { return ringio::mapped<record>::create(dir / "no/such/dir"); },
                  std::errc::no_such_file_or_directory, (dir / "no/such/dir").string());
}

TEST_CASE("mapped: a directory is EISDIR", "[mapped][errors]") {
    temp_dir dir;
    require_error([&] { return ringio::mapped<const record>::open(dir.path()); },
                  std::errc::is_a_directory, dir.path().string());
    require_error([&] { return ringio::mapped<record>::open(dir.path()); },
                  std::errc::is_a_directory, dir.path().string());
}

TEST_CASE("mapped: a FIFO is ENODEV, at once, without waiting for a writer", "[mapped][errors]") {
    temp_dir dir;
    REQUIRE(::mkfifo((dir / "fifo").c_str(), 0600) == 0);
    require_error([&] { return ringio::mapped<const record>::open(dir / "fifo"); },
                  std::errc::no_such_device, (dir / "fifo").string(), "FIFO");
    require_error([&] { return ringio::mapped<record>::open(dir / "fifo"); },
                  std::errc::no_such_device, (dir / "fifo").string(), "FIFO");
}

TEST_CASE("mapped: a device is ENODEV", "[mapped][errors]") {
    require_error([] { return ringio::mapped<const record>::open("/dev/null"); },
                  std::errc::no_such_device, "/dev/null", "character device");
    require_error([] { return ringio::mapped<std::byte[]>::open("/dev/zero", 4096); },
                  std::errc::no_such_device, "/dev/zero", "character device");
}

TEST_CASE("mapped: a socket is ENODEV, by path or by descriptor", "[mapped][errors]") {
    temp_dir dir;
    const auto socket = bind_unix_socket(dir / "socket");
    require_error([&] { return ringio::mapped<const record>::open(dir / "socket"); },
                  std::errc::no_such_device, (dir / "socket").string(), "a socket");
    require_error([&] { return ringio::mapped<record>::open(dir / "socket"); },
                  std::errc::no_such_device, (dir / "socket").string(), "a socket");
    require_error([&] { return ringio::mapped<const record>::open(socket.get()); },
                  std::errc::no_such_device, "fd " + std::to_string(socket.get()), "a socket");
}

TEST_CASE("mapped: a device without a driver is ENODEV, not open's ENXIO", "[mapped][errors]") {
    temp_dir dir;
    // Character major 511 has no driver: open(2) refuses the node with ENXIO, which ringio
    // keeps for a file too short.
    if (::mknod((dir / "nodriver").c_str(), S_IFCHR | 0600, ::makedev(511, 0)) != 0) {
        WARN("SKIPPED: cannot make a device node here (needs CAP_MKNOD)");
        return;
    }
    require_error([&] { return ringio::mapped<const record>::open(dir / "nodriver"); },
                  std::errc::no_such_device, (dir / "nodriver").string(),
                  "a character device, not a regular file");
}

TEST_CASE("mapped: messages quote the path, so that any path is named on one line",
          "[mapped][errors]") {
    temp_dir dir;
    require_error([] { return ringio::mapped<const record>::open(""); },
                  std::errc::no_such_file_or_directory, "mapped: open \"\": ");
    require_error([] { return ringio::mapped<record>::create(""); },
                  std::errc::no_such_file_or_directory, "mapped: create \"\": ");
    const std::string odd = (dir / "a \"b\"\nc").string();
    const std::string what = message_of([&] { ringio::mapped<const record>::open(odd); },
                                        std::errc::no_such_file_or_directory);
    CHECK_THAT(what, Contains("/a \\\"b\\\"\\x0ac\": No such file or directory"));
    CHECK(what.find('\n') == std::string::npos);
}

TEST_CASE("mapped: no permission is EACCES, even when the tests run as root", "[mapped][errors]") {
    temp_dir dir;
    std::filesystem::permissions(dir.path(), std::filesystem::perms::all); // searchable by all
    write_value(dir / "secret", record{});
    write_value(dir / "read-only", record{});
    std::filesystem::permissions(dir / "secret", std::filesystem::perms::none);
    std::filesystem::permissions(dir / "read-only", std::filesystem::perms::owner_read |
                                                        std::filesystem::perms::group_read |
                                                        std::filesystem::perms::others_read);
    // The child reports the error code, or a code of its own when the message does not name
    // the file.
    auto error_of = [](auto open, const std::filesystem::path& path) {
        return run_in_child([&] {
            if (!drop_privileges()) {
                return 1;
            }
            try {
                open(path);
                return 0;
            } catch (const std::system_error& e) {
                return std::string(e.what()).find(path.string()) == std::string::npos
                           ? 2
                           : e.code().value();
            }
        });
    };
    CHECK(error_of([](const auto& path) { ringio::mapped<const record>::open(path); },
                   dir / "secret") == EACCES);
    // A read-only file opened for a shared writable view.
    CHECK(error_of([](const auto& path) { ringio::mapped<record>::open(path); },
                   dir / "read-only") == EACCES);
    // A private copy needs only read access.
    CHECK(error_of(
              [](const auto& path) {
                  ringio::mapped<record>::open(path, {.mode = ringio::map_mode::private_copy});
              },
              dir / "read-only") == 0);
}

TEST_CASE("mapped: a read-only descriptor cannot back a shared writable view", "[mapped][errors]") {
    temp_dir dir;
    write_value(dir / "r", record{});
    ringio::detail::unique_fd fd(::open((dir / "r").c_str(), O_RDONLY | O_CLOEXEC));
    REQUIRE(fd);
    require_error([&] { return ringio::mapped<record>::open(fd.get()); },
                  std::errc::permission_denied, "fd " + std::to_string(fd.get()), "mmap");
    CHECK(ringio::mapped<const record>::open(fd.get())->value == 0);
}

TEST_CASE("mapped: a bad descriptor is EBADF", "[mapped][errors]") {
    require_error([] { return ringio::mapped<record>::open(-1); }, std::errc::bad_file_descriptor,
                  "fd -1");
}

TEST_CASE("mapped: a file shorter than the view is ENXIO, before anything is mapped",
          "[mapped][errors]") {
    temp_dir dir;
    const std::array<std::byte, 10> ten{};
    write_file(dir / "short", ten);
    const std::string path = (dir / "short").string();
    require_error([&] { return ringio::mapped<record>::open(dir / "short"); },
                  std::errc::no_such_device_or_address, path, "holds 10 bytes");
    require_error([&] { return ringio::mapped<std::uint16_t[]>::open(dir / "short", 6); },
                  std::errc::no_such_device_or_address, path, "needs 12");
    require_error(
        [&] { return ringio::mapped<std::uint16_t>::open(dir / "short", {.offset = 10}); },
        std::errc::no_such_device_or_address, path, "offset 10");
    require_error([&] { return ringio::mapped<std::byte[]>::open(dir / "short", {.offset = 11}); },
                  std::errc::no_such_device_or_address, path, "past the end");
    // What fits is fine.
    CHECK(ringio::mapped<std::uint16_t[]>::open(dir / "short", 5).size() == 5);
    CHECK(ringio::mapped<std::uint32_t[]>::open(dir / "short").size() == 2);
}

TEST_CASE("mapped: an offset that misaligns T is EINVAL", "[mapped][errors]") {
    temp_dir dir;
    const std::array<std::byte, 64> bytes{};
    write_file(dir / "f", bytes);
    require_error([&] { return ringio::mapped<std::uint32_t>::open(dir / "f", {.offset = 2}); },
                  std::errc::invalid_argument, (dir / "f").string(), "alignment of T (4)");
    require_error([&] { return ringio::mapped<std::uint64_t[]>::open(dir / "f", {.offset = 12}); },
                  std::errc::invalid_argument, (dir / "f").string(), "offset 12");
    CHECK(*ringio::mapped<std::uint16_t>::open(dir / "f", {.offset = 2}) == 0);
}

TEST_CASE("mapped: sizes and offsets that overflow are EOVERFLOW", "[mapped][errors]") {
    temp_dir dir;
    const std::array<std::byte, 64> bytes{};
    write_file(dir / "f", bytes);
    const std::string path = (dir / "f").string();
    const auto max = std::numeric_limits<std::size_t>::max();
    require_error([&] { return ringio::mapped<std::uint64_t[]>::open(dir / "f", max / 4); },
                  std::errc::value_too_large, path, "overflow");
    require_error(
        [&] { return ringio::mapped<std::uint64_t[]>::open(dir / "f", 1, {.offset = max - 7}); },
        std::errc::value_too_large, path, "largest file offset");
    require_error(
        [&] {
            return ringio::mapped<std::byte[]>::open(
                dir / "f", 2, {.offset = std::numeric_limits<off_t>::max() - 1});
        },
        std::errc::value_too_large, path, "overflow");
    require_error(
        [] {
            return ringio::mapped<std::uint64_t[]>::anonymous(max / 2,
                                                              ringio::map_mode::private_copy);
        },
        std::errc::value_too_large, "anonymous private memory", "overflow");
}

TEST_CASE("mapped: the error_code forms report errors and return an empty view",
          "[mapped][errors]") {
    temp_dir dir;
    std::error_code ec = std::make_error_code(std::errc::interrupted);
    auto view = ringio::mapped<record>::open(dir / "missing", {}, ec);
    CHECK(ec == std::errc::no_such_file_or_directory);
    CHECK_FALSE(view);
    CHECK(view.get() == nullptr);

    auto created = ringio::mapped<record>::create(dir / "r", {}, ec, 0U, 1);
    CHECK_FALSE(ec); // success clears it
    CHECK(created->value == 1);

    auto array = ringio::mapped<int[]>::open(dir / "r", 100, {}, ec);
    CHECK(ec == std::errc::no_such_device_or_address);
    CHECK(array.empty());
}

// Offsets and arrays

TEST_CASE("mapped: any aligned offset works, across page boundaries", "[mapped]") {
    temp_dir dir;
    const std::size_t page = ringio::detail::page_size();
    std::vector<std::uint32_t> words(3 * page / 4);
    std::iota(words.begin(), words.end(), 0U);
    write_file(dir / "f", std::as_bytes(std::span{words}));

    for (const std::size_t offset : {std::size_t{0}, std::size_t{4}, page - 8, page - 4, page,
                                     page + 4, 2 * page - 4, 2 * page}) {
        INFO("offset " << offset);
        auto single = ringio::mapped<const std::uint32_t>::open(dir / "f", {.offset = offset});
        CHECK(*single == offset / 4);
        // Two words that straddle a page boundary when offset is page - 4.
        auto pair = ringio::mapped<std::uint32_t[]>::open(dir / "f", 2, {.offset = offset});
        CHECK(pair[0] == offset / 4);
        CHECK(pair[1] == offset / 4 + 1);
        pair[1] = 0xffffffff;
        CHECK(read_value<std::uint32_t>(dir / "f", static_cast<off_t>(offset + 4)) == 0xffffffff);
        pair[1] = static_cast<std::uint32_t>(offset / 4 + 1);
    }
}

TEST_CASE("mapped: an array has container vocabulary", "[mapped]") {
    auto array = ringio::mapped<int[]>::anonymous(5, ringio::map_mode::private_copy, 1);
    STATIC_REQUIRE(std::ranges::contiguous_range<ringio::mapped<int[]>>);
    STATIC_REQUIRE(std::ranges::sized_range<ringio::mapped<int[]>>);
    CHECK(array.size() == 5);
    CHECK(array.size_bytes() == 5 * sizeof(int));
    CHECK_FALSE(array.empty());
    std::iota(array.begin(), array.end(), 10);
    CHECK(array[4] == 14);
    CHECK(array.at(0) == 10);
    CHECK_THROWS_AS(array.at(5), std::out_of_range);
    std::span<int> span = array;
    CHECK(span.data() == array.data());
    CHECK(span.size() == 5);
    std::span<const int> read_only = array;
    CHECK(read_only[1] == 11);
}

TEST_CASE("mapped: an empty array maps nothing and is valid", "[mapped]") {
    temp_dir dir;
    write_file(dir / "empty", {});
    auto from_file = ringio::mapped<int[]>::open(dir / "empty");
    auto counted = ringio::mapped<int[]>::open(dir / "empty", 0);
    auto created = ringio::mapped<int[]>::create(dir / "new", 0);
    auto anonymous = ringio::mapped<int[]>::anonymous(0);
    auto memfd = ringio::mapped<int[]>::memfd("ringio-test", 0);
    for (auto* array : {&from_file, &counted, &created, &anonymous, &memfd}) {
        CHECK(array->empty());
        CHECK(array->size() == 0);
        CHECK(array->data() == nullptr);
        CHECK(array->begin() == array->end());
        CHECK(std::span<int>(*array).empty());
        array->sync();
        array->check();
    }
    CHECK(std::filesystem::file_size(dir / "new") == 0);
}

// Growing

TEST_CASE("mapped: growing a shared writable view extends the file", "[mapped]") {
    temp_dir dir;
    auto array = ringio::mapped<std::uint64_t[]>::create(dir / "a", 3, {}, 5);
    const std::size_t count = 3 * ringio::detail::page_size();
    array.grow(count);
    REQUIRE(array.size() == count);
    CHECK(array[2] == 5);
    CHECK(array[3] == 0); // new elements hold the file's new bytes: zero
    CHECK(std::filesystem::file_size(dir / "a") == count * 8);
    array[count - 1] = 9;
    array.sync();
    CHECK(read_value<std::uint64_t>(dir / "a", static_cast<off_t>((count - 1) * 8)) == 9);
    array.grow(count); // the same size: nothing to do
    require_error([&] { array.grow(1); }, std::errc::invalid_argument, (dir / "a").string(),
                  "fewer");
}

TEST_CASE("mapped: growing another view needs the file long enough already", "[mapped]") {
    temp_dir dir;
    auto writer = ringio::mapped<std::uint32_t[]>::create(dir / "a", 2, {}, 1);
    auto reader = ringio::mapped<const std::uint32_t[]>::open(dir / "a", {.offset = 4});
    auto copy =
        ringio::mapped<std::uint32_t[]>::open(dir / "a", {.mode = ringio::map_mode::private_copy});
    CHECK(reader.size() == 1);
    require_error([&] { reader.grow(4); }, std::errc::no_such_device_or_address,
                  (dir / "a").string(), "only a shared writable view extends its file");
    require_error([&] { copy.grow(4); }, std::errc::no_such_device_or_address,
                  (dir / "a").string());
    writer.grow(5);
    writer[4] = 8;
    reader.grow(4); // the other process's view sees the longer file once it grows too
    CHECK(reader[3] == 8);
    copy.grow(5);
    CHECK(copy[4] == 8);
}

TEST_CASE("mapped: growing anonymous memory", "[mapped]") {
    auto growing = ringio::mapped<int[]>::anonymous(2, ringio::map_mode::private_copy, 3);
    growing.grow(100000);
    CHECK(growing[1] == 3);
    CHECK(growing[99999] == 0);
    auto empty = ringio::mapped<int[]>::anonymous(0, ringio::map_mode::private_copy);
    empty.grow(10);
    CHECK(empty.size() == 10);

    // Anonymous shared memory and a sealed memfd keep their size.
    auto shared = ringio::mapped<int[]>::anonymous(2);
    require_error([&] { shared.grow(3); }, std::errc::operation_not_supported,
                  "anonymous shared memory", "fixed size");
    auto sealed = ringio::mapped<int[]>::memfd("ringio-test", 2);
    require_error([&] { sealed.grow(3); }, std::errc::operation_not_permitted, "memfd:ringio-test");
    CHECK(sealed.size() == 2);
}

// Truncation, sync, advice, moves

TEST_CASE("mapped: check reports a file truncated under the view", "[mapped]") {
    temp_dir dir;
    auto view = ringio::mapped<record>::create(dir / "r");
    view.check();
    // Another process truncates the file: touching the view would now raise SIGBUS.
    CHECK(run_in_child([&] { return ::truncate((dir / "r").c_str(), 0) == 0 ? 0 : 1; }) == 0);
    require_error([&] { view.check(); }, std::errc::no_such_device_or_address, (dir / "r").string(),
                  "SIGBUS");
    std::error_code ec;
    view.check(ec);
    CHECK(ec == std::errc::no_such_device_or_address);
    // The kernel's answer to touching it, shown in a child (with the default action for SIGBUS,
    // which a sanitizer would otherwise catch).
    CHECK(run_in_child([&] {
              ::signal(SIGBUS, SIG_DFL);
              return view->value;
          }) == 128 + SIGBUS);
    ringio::mapped<record>::anonymous().check();
}

TEST_CASE("mapped: sync flushes shared views and does nothing for private ones", "[mapped]") {
    temp_dir dir;
    auto view = ringio::mapped<record>::create(dir / "r");
    view->value = 1;
    view.sync();
    std::error_code ec = std::make_error_code(std::errc::interrupted);
    view.sync(ec);
    CHECK_FALSE(ec);
    auto copy = ringio::mapped<record>::open(dir / "r", {.mode = ringio::map_mode::private_copy});
    copy->value = 2;
    copy.sync();
    CHECK(read_value<record>(dir / "r").value == 1);
    ringio::mapped<record>::anonymous().sync();
}

TEST_CASE("mapped: advice is passed to the kernel", "[mapped]") {
    temp_dir dir;
    auto array = ringio::mapped<int[]>::create(dir / "a", 4096, {}, 1);
    for (const auto advice :
         {ringio::map_advice::normal, ringio::map_advice::random, ringio::map_advice::sequential,
          ringio::map_advice::will_need, ringio::map_advice::dont_need}) {
        array.advise(advice);
    }
    CHECK(array[4095] == 1); // dropped pages of a shared view come back from the file
    std::error_code ec = std::make_error_code(std::errc::interrupted);
    array.advise(ringio::map_advice::sequential, ec);
    CHECK_FALSE(ec);
}

TEST_CASE("mapped: move assignment unmaps the old region first", "[mapped]") {
    auto first = ringio::mapped<record>::anonymous(ringio::map_mode::private_copy, 0U, 1);
    auto second = ringio::mapped<record>::anonymous(ringio::map_mode::private_copy, 0U, 2);
    const record* old = first.get();
    REQUIRE(is_mapped(old));
    first = std::move(second);
    CHECK_FALSE(is_mapped(old));
    CHECK(first->value == 2);
    CHECK_FALSE(second); // NOLINT(bugprone-use-after-move): moved from is empty
    ringio::mapped<record> moved(std::move(first));
    CHECK(moved->value == 2);
    CHECK_FALSE(first); // NOLINT(bugprone-use-after-move)
}
