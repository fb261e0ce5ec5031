// Two processes map one file with MAP_SHARED: the child adds to a field, the parent sees the new
// value, and the file holds it after both have unmapped it. The classic C version of this program
// waits with a loop on a plain field, which g++ and clang delete at -O2; here the parent waits on
// an atomic field with a cross-process futex, and gives up after ten seconds.
//
// Usage: mmap_shared FILE [--pause]
// FILE must not exist: it is created, and removed at the end. With --pause the parent waits for
// Enter before the child starts, time to look at FILE from another shell, or to truncate it: a
// view of a truncated file raises SIGBUS where it touches the lost pages, so the parent checks
// the file before it touches the view again (a sealed memfd, which nobody can truncate, needs no
// check; fork_shared shows memory that has no file at all).
#include <ringio/mapped.hpp>
#include <ringio/shared_atomic_ref.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <system_error>

struct account {
    std::uint32_t updated; // becomes 1 once the balance is written
    std::int64_t balance;
};

// The child maps the file by itself (not the parent's mapping, inherited), and updates it.
int update(const char* path) {
    auto view = ringio::mapped<account>::open(path); // checks the file's size, as every open does
    view->balance += 50;
    ringio::shared_atomic_ref updated{view->updated};
    updated.store(1, std::memory_order_release); // publishes the balance written before it
    updated.notify_all();
    return 0;
}

int run(const char* path, bool pause) {
    auto view = ringio::mapped<account>::create(path, {}, 0, 100); // account(0, 100), in place
    std::printf("parent: balance %lld\n", static_cast<long long>(view->balance));
    if (pause) {
        std::printf("paused: press Enter to go on\n");
        std::fflush(stdout);
        std::getchar();
    }
    // Another program may have truncated the file meanwhile: check before touching the view,
    // which would raise SIGBUS instead of throwing.
    view.check();
    std::fflush(stdout); // or the child would print the parent's buffered output too

    const pid_t child = ::fork();
    if (child < 0) {
        throw std::system_error(errno, std::system_category(), "fork");
    }
    if (child == 0) {
        int status = 1;
        try {
            status = update(path);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "mmap_shared: child: %s\n", e.what());
        }
        ::_exit(status);
    }
    ringio::shared_atomic_ref updated{view->updated};
    const bool seen = updated.wait_for(0, std::chrono::seconds(10), std::memory_order_acquire);
    const auto balance = view->balance;
    std::printf("parent: the child's update %s, balance %lld\n", seen ? "arrived" : "timed out",
                static_cast<long long>(balance));
    int status = 0;
    ::waitpid(child, &status, 0);
    view = {}; // unmap

    // The file itself, read without mmap; then removed, since this program created it.
    account on_disk{};
    std::ifstream(path, std::ios::binary).read(reinterpret_cast<char*>(&on_disk), sizeof on_disk);
    std::printf("file:   balance %lld\n", static_cast<long long>(on_disk.balance));
    std::remove(path);
    const bool child_ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    return seen && child_ok && balance == 150 && on_disk.balance == 150 ? 0 : 1;
}

int main(int argc, char** argv) {
    const bool pause = argc == 3 && std::strcmp(argv[2], "--pause") == 0;
    if ((argc != 2 && !pause) || argv[1][0] == '-') {
        std::fputs("usage: mmap_shared FILE [--pause]\n", stderr);
        return 2;
    }
    try {
        return run(argv[1], pause);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "mmap_shared: %s\n", e.what());
        return 1;
    }
}
