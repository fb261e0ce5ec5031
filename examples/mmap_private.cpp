// A private (copy-on-write) mapping of a file: the writer sees its own change, while another
// process that maps the file, and the file itself, keep the original.
// Usage: mmap_private FILE (created, or replaced)
#include <ringio/mapped.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <fstream>

struct account {
    std::uint32_t updated;
    std::int64_t balance;
};

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s FILE\n", argv[0]);
        return 2;
    }
    ringio::mapped<account>::create(argv[1], account{0, 100}, {.replace_existing = true});

    auto view = ringio::mapped<account>::open(argv[1], {.mode = ringio::map_mode::private_copy});
    view->balance += 50;
    std::printf("writer:        balance %lld\n", static_cast<long long>(view->balance));
    std::fflush(stdout); // or the child would print the parent's buffered output too

    const pid_t child = ::fork();
    if (child == 0) {
        // Another process with a mapping of its own, read-only.
        int status = 1;
        try {
            auto other = ringio::mapped<const account>::open(argv[1]);
            std::printf("other process: balance %lld\n", static_cast<long long>(other->balance));
            status = other->balance == 100 ? 0 : 1;
        } catch (const std::exception& e) {
            std::fprintf(stderr, "child: %s\n", e.what());
        }
        std::fflush(stdout);
        ::_exit(status);
    }
    int status = 0;
    ::waitpid(child, &status, 0);

    // The file itself, read without mmap.
    account on_disk{};
    std::ifstream(argv[1], std::ios::binary)
        .read(reinterpret_cast<char*>(&on_disk), sizeof on_disk);
    std::printf("file:          balance %lld\n", static_cast<long long>(on_disk.balance));
    const bool child_ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    return child_ok && view->balance == 150 && on_disk.balance == 100 ? 0 : 1;
}
