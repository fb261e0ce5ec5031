#pragma once

// channel_peer: how one end of a channel learns that the other end's process has ended, from its
// pidfd or from /proc.

#include <ringio/detail/channel_layout.hpp>
#include <ringio/detail/valgrind.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace ringio::detail {

/// The start time of process `pid` in clock ticks after boot, its state letter into `state`;
/// 0 when /proc cannot tell. Read with plain system calls into the stack: no allocation.
inline std::uint64_t process_start(int pid, char* state = nullptr) noexcept {
    char path[32];
    std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return 0;
    }
    char text[1024];
    const ssize_t n = ::read(fd, text, sizeof text - 1);
    ::close(fd);
    if (n <= 0) {
        return 0;
    }
    text[n] = '\0';
    // "pid (command) state ppid ...": the command may hold spaces and parentheses, so the fields
    // are counted from the last ')'. The start time is field 22.
    const char* after = std::strrchr(text, ')');
    if (after == nullptr || after[1] == '\0') {
        return 0;
    }
    if (state != nullptr) {
        *state = after[2];
    }
    int field = 2;
    for (const char* c = after + 1; *c != '\0'; ++c) {
        if (*c == ' ' && ++field == 22) {
            return std::strtoull(c + 1, nullptr, 10);
        }
    }
    return 0;
}

/// The other end's process, as seen from this one: a pidfd once it has attached, which the
/// kernel makes readable when that process ends (as a zombie too, before anyone reaps it).
class peer_process {
public:
    peer_process() noexcept = default;
    peer_process(peer_process&& other) noexcept
        : pidfd_(std::exchange(other.pidfd_, -1)), pid_(other.pid_), gone_(other.gone_) {}
    peer_process& operator=(peer_process&& other) noexcept {
        if (this != &other) {
            reset();
            pidfd_ = std::exchange(other.pidfd_, -1);
            pid_ = other.pid_;
            gone_ = other.gone_;
        }
        return *this;
    }
    ~peer_process() { reset(); }

    /// The pid the other end recorded when it attached, 0 before.
    [[nodiscard]] static int pid_of(const channel_owner& owner) noexcept {
        return shared(const_cast<std::int32_t&>(owner.pid)).load(std::memory_order_acquire);
    }

    /// The pidfd of the process holding `owner`, opened on first use; -1 before it attached or
    /// where pidfds are missing (Linux before 5.3).
    int pidfd(const channel_owner& owner) noexcept {
        find(owner);
        return pidfd_;
    }

    /// True once the process that attached to `owner` has ended. One poll, or without a pidfd,
    /// kill(pid, 0) and its /proc entry.
    bool gone(const channel_owner& owner) noexcept {
        find(owner);
        if (gone_ || pid_ <= 0) {
            return gone_;
        }
        if (pidfd_ >= 0) {
            ::pollfd ready{pidfd_, POLLIN, 0};
            gone_ = ::poll(&ready, 1, 0) == 1;
            return gone_;
        }
        char state = '?';
        const std::uint64_t start = process_start(pid_, &state);
        gone_ = (::kill(pid_, 0) != 0 && errno == ESRCH) || state == 'Z' || state == 'X' ||
                (start != 0 && recorded_start_ != 0 && start != recorded_start_);
        return gone_;
    }

    void reset() noexcept {
        if (pidfd_ >= 0) {
            ::close(pidfd_);
        }
        pidfd_ = -1;
        pid_ = 0;
        gone_ = false;
    }

private:
    void find(const channel_owner& owner) noexcept {
        if (pid_ > 0) {
            return;
        }
        const int pid = pid_of(owner);
        if (pid <= 0) {
            return;
        }
        pid_ = pid;
        recorded_start_ =
            shared(const_cast<std::uint64_t&>(owner.start)).load(std::memory_order_acquire);
        // valgrind 3.19 does not know pidfd_open (and warns): the slower checks serve there.
        const long fd = running_on_valgrind() ? -ENOSYS : ::syscall(SYS_pidfd_open, pid, 0);
        if (fd < 0) {
            gone_ = fd == -1 && errno == ESRCH; // reaped; ENOSYS, EMFILE: the slower checks
            return;
        }
        pidfd_ = static_cast<int>(fd);
        // Between the pid's recording and the pidfd, the process may have ended and its number
        // gone to another: the start time tells them apart.
        const std::uint64_t start = process_start(pid);
        gone_ = start != 0 && recorded_start_ != 0 && start != recorded_start_;
    }

    int pidfd_ = -1;
    int pid_ = 0;
    std::uint64_t recorded_start_ = 0;
    bool gone_ = false;
};

} // namespace ringio::detail
