// Two processes map one file with MAP_SHARED: the child adds to a field, the parent sees the new
// value, and the file holds it after both have unmapped it. The classic C version of this program
// waits with a loop on a plain field, which g++ and clang delete at -O2; here the parent waits on
// an atomic field with a cross-process futex, and gives up after ten seconds.
// Usage: mmap_shared FILE (created, or replaced)
#include <ringio/mapped.hpp>
#include <ringio/shared_atomic_ref.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>

struct account {
    std::uint32_t updated; // becomes 1 once the balance is written
    std::int64_t balance;
};

// The child maps the file by itself (not the parent's mapping, inherited), and updates it.
int update(const char* path) {
    auto view = ringio::mapped<account>::open(path);
    view->balance += 50;
    ringio::shared_atomic_ref updated{view->updated};
    updated.store(1, std::memory_order_release); // publishes the balance written before it
    updated.notify_all();
    return 0;
}

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s FILE\n", argv[0]);
        return 2;
    }
    auto view =
        ringio::mapped<account>::create(argv[1], account{0, 100}, {.replace_existing = true});
    std::printf("parent: balance %lld\n", static_cast<long long>(view->balance));
    std::fflush(stdout); // or the child would print the parent's buffered output too

    const pid_t child = ::fork();
    if (child == 0) {
        int status = 1;
        try {
            status = update(argv[1]);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "child: %s\n", e.what());
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

    // The file itself, read without mmap.
    account on_disk{};
    std::ifstream(argv[1], std::ios::binary)
        .read(reinterpret_cast<char*>(&on_disk), sizeof on_disk);
    std::printf("file:   balance %lld\n", static_cast<long long>(on_disk.balance));
    const bool child_ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    return seen && child_ok && balance == 150 && on_disk.balance == 150 ? 0 : 1;
}
