// mmap_shared FILE [--pause]: two processes map a new FILE with MAP_SHARED; the child adds to a
// field, the parent sees the new value, and the file keeps it once both have unmapped it. The C
// original waited in a loop on a plain field, which g++ and clang delete at -O2; here the parent
// waits on an atomic field with a cross-process futex, ten seconds at most. FILE is removed at
// the end; --pause waits for Enter first, time to look at FILE or to truncate it.
#include <ringio/mapped.hpp>
#include <ringio/shared_atomic_ref.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sys/wait.h>
#include <unistd.h>

struct account {
    std::uint32_t updated; // becomes 1 once the balance is written
    std::int64_t balance;
};

static bool run(const char* path, bool pause) {
    auto view = ringio::mapped<account>::create(path, {}, 0, 100); // account(0, 100), in place
    std::printf("parent: balance %lld\n", static_cast<long long>(view->balance));
    if (pause) {
        std::printf("paused: press Enter to go on\n");
        std::fflush(stdout);
        std::getchar();
    }
    view.check();        // a truncated file throws here, where touching it would raise SIGBUS
    std::fflush(stdout); // or the child would print the parent's buffered output too
    const pid_t child = ::fork();
    if (child < 0) {
        throw std::system_error(errno, std::system_category(), "fork");
    } else if (child == 0) { // the child maps the file itself (not the inherited mapping)
        auto mine = ringio::mapped<account>::open(path); // checks the size, as every open does
        mine->balance += 50;
        ringio::shared_atomic_ref updated{mine->updated};
        updated.store(1, std::memory_order_release); // publishes the balance written before it
        updated.notify_all();
        return true; // main's status, as an error thrown here is main's to print
    }
    ringio::shared_atomic_ref updated{view->updated};
    const bool seen = updated.wait_for(0, std::chrono::seconds(10), std::memory_order_acquire);
    const auto balance = view->balance;
    std::printf("parent: the child's update %s, balance %lld\n", seen ? "arrived" : "timed out",
                static_cast<long long>(balance));
    int status = 0;
    ::waitpid(child, &status, 0);
    view = {}; // unmapped: then the file itself is read, without mmap, and removed
    account on_disk{};
    std::ifstream(path, std::ios::binary).read(reinterpret_cast<char*>(&on_disk), sizeof on_disk);
    std::printf("file:   balance %lld\n", static_cast<long long>(on_disk.balance));
    std::remove(path);
    return seen && status == 0 && balance == 150 && on_disk.balance == 150;
}

int main(int argc, char** argv) {
    const bool pause = argc == 3 && std::strcmp(argv[2], "--pause") == 0;
    if ((argc != 2 && !pause) || argv[1][0] == '-') {
        std::fputs("usage: mmap_shared FILE [--pause]\n", stderr);
        return 2;
    }
    try {
        return run(argv[1], pause) ? 0 : 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "mmap_shared: %s\n", e.what());
        return 1;
    }
}
