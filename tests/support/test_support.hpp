#pragma once

// Helpers shared by the tests: owned pipes, descriptor counting, timing, plain sockets.

#include <ringio/detail/fd.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace ringio::testing {

/// A pipe whose two ends close themselves.
struct owned_pipe {
    detail::unique_fd read_end;
    detail::unique_fd write_end;

    owned_pipe() {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) {
            throw std::system_error(errno, std::system_category(), "pipe2");
        }
        read_end.reset(fds[0]);
        write_end.reset(fds[1]);
    }
};

/// The number of descriptors this process has open (entries of /proc/self/fd).
inline int open_fd_count() {
    DIR* dir = ::opendir("/proc/self/fd");
    if (dir == nullptr) {
        throw std::system_error(errno, std::system_category(), "opendir /proc/self/fd");
    }
    int count = 0;
    while (const dirent* entry = ::readdir(dir)) {
        if (entry->d_name[0] != '.') {
            ++count;
        }
    }
    ::closedir(dir);
    return count - 1; // the directory's own descriptor
}

/// The bytes of a string, for the operations' byte spans.
inline std::span<const std::byte> bytes_of(std::string_view text) {
    return std::as_bytes(std::span{text.data(), text.size()});
}

/// Text from received bytes.
inline std::string text_of(std::span<const std::byte> bytes) {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

/// Milliseconds elapsed since `start` on the steady clock.
/// True when an error message has a slot left empty ("read from : ...", "connect : ...").
inline bool has_empty_slot(std::string_view message) {
    return message.find(" :") != std::string_view::npos ||
           message.find("  ") != std::string_view::npos || message.empty() ||
           message.front() == ' ' || message.front() == ':';
}

inline long long elapsed_ms(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 start)
        .count();
}

} // namespace ringio::testing

#include <ringio/endpoint.hpp>

#include <sys/socket.h>

namespace ringio::testing {

/// A plain blocking TCP connection to `target`, for peers that are not ringio.
inline detail::unique_fd blocking_connect(const endpoint& target) {
    detail::unique_fd fd{::socket(target.family(), SOCK_STREAM | SOCK_CLOEXEC, 0)};
    if (!fd || ::connect(fd.get(), target.data(), target.size()) != 0) {
        throw std::system_error(errno, std::system_category(), "connect " + target.to_string());
    }
    return fd;
}

/// True when this machine can bind and reach IPv6 loopback.
inline bool has_ipv6_loopback() {
    detail::unique_fd fd{::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0)};
    const endpoint loopback = endpoint::loopback_v6(0);
    return fd && ::bind(fd.get(), loopback.data(), loopback.size()) == 0;
}

} // namespace ringio::testing

#include <fcntl.h>
#include <sys/resource.h>

#include <cerrno>

namespace ringio::testing {

/// While alive, no new descriptor can be opened: RLIMIT_NOFILE is set to the lowest free
/// descriptor number (a limit at the current count would still leave the holes below it).
/// The destructor restores the limit. UBSan checks the object of a virtual call it has not met
/// before through a pipe, which it cannot open meanwhile: an error's message and comparison are
/// met here first, and a test asserts only once the limit is restored.
class descriptor_exhaustion {
public:
    descriptor_exhaustion() {
        const std::system_error met(std::error_code(EMFILE, std::system_category()), "");
        (void)met.what();
        (void)(met.code() == std::errc::invalid_argument); // both categories' comparisons
        if (::getrlimit(RLIMIT_NOFILE, &saved_) != 0) {
            throw std::system_error(errno, std::system_category(), "getrlimit");
        }
        int lowest_free = 0;
        while (::fcntl(lowest_free, F_GETFD) != -1) {
            ++lowest_free;
        }
        rlimit tight = saved_;
        tight.rlim_cur = static_cast<rlim_t>(lowest_free);
        if (::setrlimit(RLIMIT_NOFILE, &tight) != 0) {
            throw std::system_error(errno, std::system_category(), "setrlimit");
        }
    }

    descriptor_exhaustion(const descriptor_exhaustion&) = delete;
    descriptor_exhaustion& operator=(const descriptor_exhaustion&) = delete;

    ~descriptor_exhaustion() { ::setrlimit(RLIMIT_NOFILE, &saved_); }

private:
    rlimit saved_{};
};

} // namespace ringio::testing

#include <ringio/task.hpp>

#include <memory>

namespace ringio::testing {

/// Starts `waiter(*owned)` until it waits in the kernel, destroys what it waits on, then runs
/// `context` until the waiter has finished: a socket destroyed under another coroutine's
/// pending operation. `waiter` must outlive the run (the coroutine refers to it).
template <class Owned, class Waiter>
void destroy_while_awaited(io_context& context, std::unique_ptr<Owned> owned, Waiter& waiter) {
    spawn(context, waiter(*owned));
    context.poll();
    owned.reset();
    context.run();
}

} // namespace ringio::testing

namespace ringio::testing {

/// True while `fd` names an open descriptor of this process.
inline bool fd_is_open(int fd) {
    return ::fcntl(fd, F_GETFD) != -1;
}

} // namespace ringio::testing
