#pragma once

// Forked children for the tests that need a second process, never left running.

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <system_error>
#include <thread>
#include <utility>

namespace ringio::testing {

/// The exit status a child uses to say that what it needed is missing here: a skip, not a
/// failure.
inline constexpr int child_skipped = 77;

/// Forks a child that runs `body` and leaves with `_exit(body())`: it never returns into the
/// test framework, runs no atexit handler and flushes no parent buffer. A child whose body
/// throws exits with 99. Returns the child's pid.
template <class Body>
pid_t fork_child(Body&& body) {
    const pid_t pid = ::fork();
    if (pid < 0) {
        throw std::system_error(errno, std::system_category(), "fork");
    }
    if (pid == 0) {
        int status = 99;
        try {
            status = std::forward<Body>(body)();
        } catch (...) {
        }
        ::_exit(status);
    }
    return pid;
}

/// Waits for the child `pid` to end, at most `timeout`: a child that is still running then is
/// killed, so that a bug cannot hang the suite. Returns the child's exit status, 128 + the
/// signal that ended it, or -1 when it had to be killed.
inline int wait_child(pid_t pid, std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        int status = 0;
        const pid_t done = ::waitpid(pid, &status, WNOHANG);
        if (done == pid) {
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        if (done < 0 && errno != EINTR) {
            throw std::system_error(errno, std::system_category(), "waitpid");
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            return -1;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
}

/// Runs `body` in a forked child and returns its exit status as `wait_child` does.
template <class Body>
int run_in_child(Body&& body, std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    return wait_child(fork_child(std::forward<Body>(body)), timeout);
}

} // namespace ringio::testing
