// A private (copy-on-write) mapping of a file: the writer sees its own change, while another
// process that maps the file, and the file itself, keep the original.
//
// Usage: mmap_private FILE [--pause]
// FILE must not exist: it is created, and removed at the end. With --pause the writer waits for
// Enter after its change, time to look at FILE from another shell, or to truncate it: a private
// view of a truncated file raises SIGBUS as a shared one does, even on the page it copied, so
// the writer checks the file before it reads its view again.
#include <ringio/mapped.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <system_error>

struct account {
    std::uint32_t updated;
    std::int64_t balance;
};

int run(const char* path, bool pause) {
    // account(0, 100), constructed in the new file; unmapped at once, and the file stays.
    ringio::mapped<account>::create(path, {}, 0, 100);

    auto view = ringio::mapped<account>::open(path, {.mode = ringio::map_mode::private_copy});
    view->balance += 50;
    if (pause) {
        std::printf("paused: press Enter to go on\n");
        std::fflush(stdout);
        std::getchar();
    }
    // Another program may have truncated the file meanwhile: check before touching the view,
    // which would raise SIGBUS instead of throwing.
    view.check();
    const auto written = view->balance;
    std::printf("writer:        balance %lld\n", static_cast<long long>(written));
    std::fflush(stdout); // or the child would print the parent's buffered output too

    const pid_t child = ::fork();
    if (child < 0) {
        throw std::system_error(errno, std::system_category(), "fork");
    }
    if (child == 0) {
        // Another process with a mapping of its own, read-only.
        int status = 1;
        try {
            auto other = ringio::mapped<const account>::open(path);
            std::printf("other process: balance %lld\n", static_cast<long long>(other->balance));
            status = other->balance == 100 ? 0 : 1;
        } catch (const std::exception& e) {
            std::fprintf(stderr, "mmap_private: child: %s\n", e.what());
        }
        std::fflush(stdout);
        ::_exit(status);
    }
    int status = 0;
    ::waitpid(child, &status, 0);

    // The file itself, read without mmap; then removed, since this program created it.
    account on_disk{};
    std::ifstream(path, std::ios::binary).read(reinterpret_cast<char*>(&on_disk), sizeof on_disk);
    std::printf("file:          balance %lld\n", static_cast<long long>(on_disk.balance));
    std::remove(path);
    const bool child_ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    return child_ok && written == 150 && on_disk.balance == 100 ? 0 : 1;
}

int main(int argc, char** argv) {
    const bool pause = argc == 3 && std::strcmp(argv[2], "--pause") == 0;
    if ((argc != 2 && !pause) || argv[1][0] == '-') {
        std::fputs("usage: mmap_private FILE [--pause]\n", stderr);
        return 2;
    }
    try {
        return run(argv[1], pause);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "mmap_private: %s\n", e.what());
        return 1;
    }
}
