// A parent maps anonymous memory shared and forks; the child writes the answer, and the parent
// waits for it without a busy spin (an atomic field and a cross-process futex, with a timeout),
// then ends. A plain variable the child changes stays unchanged in the parent: fork copies
// ordinary memory, and only the shared mapping is shared. Anonymous memory has no file that
// another program could truncate: no SIGBUS to guard against.
// Usage: fork_shared (no arguments)
#include <ringio/mapped.hpp>
#include <ringio/shared_atomic_ref.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <system_error>

struct shared_state {
    std::uint32_t done; // becomes 1 once the answer is written
    std::int32_t answer;
};

int run() {
    auto shared = ringio::mapped<shared_state>::anonymous(); // shared, value-initialized
    int plain = 1;
    ringio::shared_atomic_ref done{shared->done};

    const pid_t child = ::fork();
    if (child < 0) {
        throw std::system_error(errno, std::system_category(), "fork");
    }
    if (child == 0) {
        shared->answer = 42;
        plain = 2;
        done.store(1, std::memory_order_release); // publishes the answer written before it
        done.notify_all();
        ::_exit(plain == 2 ? 0 : 1);
    }
    const bool seen = done.wait_for(0, std::chrono::seconds(10), std::memory_order_acquire);
    std::printf("shared answer: %d (%s)\n", shared->answer,
                seen ? "written by the child" : "timed out waiting for the child");
    std::printf("plain variable: %d (the child's write stayed in the child)\n", plain);
    int status = 0;
    ::waitpid(child, &status, 0);
    const bool child_ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    return seen && child_ok && shared->answer == 42 && plain == 1 ? 0 : 1;
}

int main(int argc, char**) {
    if (argc != 1) {
        std::fputs("usage: fork_shared\n", stderr);
        return 2;
    }
    try {
        return run();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "fork_shared: %s\n", e.what());
        return 1;
    }
}
