// mmap_private FILE [--pause]: a private (copy-on-write) mapping of a new FILE. The writer sees
// its own change; another process that maps the file, and the file itself, keep the original.
// FILE is removed at the end. --pause waits for Enter after the change, time to look at FILE
// or to truncate it: a private view of a truncated file raises SIGBUS as a shared one does,
// even on the page it copied, so the writer checks the file before it reads its view again.
#include <ringio/mapped.hpp>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sys/wait.h>
#include <unistd.h>

struct account {
    std::uint32_t updated;
    std::int64_t balance;
};

static bool run(const char* path, bool pause) {
    ringio::mapped<account>::create(path, {}, 0, 100); // account(0, 100); unmapped at once
    auto view = ringio::mapped<account>::open(path, {.mode = ringio::map_mode::private_copy});
    view->balance += 50;
    if (pause) {
        std::printf("paused: press Enter to go on\n");
        std::fflush(stdout);
        std::getchar();
    }
    view.check(); // a truncated file throws here, where touching it would raise SIGBUS
    const auto written = view->balance;
    std::printf("writer:        balance %lld\n", static_cast<long long>(written));
    std::fflush(stdout); // or the child would print the parent's buffered output too
    const pid_t child = ::fork();
    if (child < 0) {
        throw std::system_error(errno, std::system_category(), "fork");
    } else if (child == 0) { // another process, with a read-only mapping of its own
        auto other = ringio::mapped<const account>::open(path);
        std::printf("other process: balance %lld\n", static_cast<long long>(other->balance));
        return other->balance == 100; // main's status, as an error thrown here is main's to print
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    account on_disk{}; // the file itself, read without mmap, then removed
    std::ifstream(path, std::ios::binary).read(reinterpret_cast<char*>(&on_disk), sizeof on_disk);
    std::printf("file:          balance %lld\n", static_cast<long long>(on_disk.balance));
    std::remove(path);
    return status == 0 && written == 150 && on_disk.balance == 100;
}

int main(int argc, char** argv) {
    const bool pause = argc == 3 && std::strcmp(argv[2], "--pause") == 0;
    if ((argc != 2 && !pause) || argv[1][0] == '-') {
        std::fputs("usage: mmap_private FILE [--pause]\n", stderr);
        return 2;
    }
    try {
        return run(argv[1], pause) ? 0 : 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "mmap_private: %s\n", e.what());
        return 1;
    }
}
