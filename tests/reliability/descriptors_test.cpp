// Every kind of descriptor ringio opens, checked together: each is close-on-exec, so that no
// program a ringio program starts inherits a socket, a ring or a mapped file.

#include <ringio/ringio.hpp>

#include "temp_dir.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

extern char** environ;

using ringio::endpoint;

namespace {

std::set<int> open_descriptors() {
    std::set<int> fds;
    DIR* dir = ::opendir("/proc/self/fd");
    REQUIRE(dir != nullptr);
    const int own = ::dirfd(dir);
    while (const dirent* entry = ::readdir(dir)) {
        if (entry->d_name[0] != '.' && std::stoi(entry->d_name) != own) {
            fds.insert(std::stoi(entry->d_name));
        }
    }
    ::closedir(dir);
    return fds;
}

std::string target_of(const std::string& link) {
    std::array<char, 256> target{};
    const ssize_t size = ::readlink(link.c_str(), target.data(), target.size() - 1);
    return size > 0 ? std::string(target.data(), static_cast<std::size_t>(size)) : "?";
}

std::string target_of(int fd) {
    return target_of("/proc/self/fd/" + std::to_string(fd));
}

// What the descriptors of a program started now point to: `ls -l /proc/self/fd` run by
// posix_spawn, as "N -> target" lines.
std::map<int, std::string> inherited_by_a_child() {
    ringio::testing::owned_pipe output;
    posix_spawn_file_actions_t actions;
    ::posix_spawn_file_actions_init(&actions);
    ::posix_spawn_file_actions_adddup2(&actions, output.write_end.get(), STDOUT_FILENO);
    char ls[] = "ls";
    char long_format[] = "-l";
    char directory[] = "/proc/self/fd/";
    char* argv[] = {ls, long_format, directory, nullptr};
    pid_t child = 0;
    const int spawned = ::posix_spawnp(&child, "ls", &actions, nullptr, argv, environ);
    ::posix_spawn_file_actions_destroy(&actions);
    REQUIRE(spawned == 0);
    output.write_end.reset();
    std::string listing;
    std::array<char, 4096> buffer{};
    ssize_t n = 0;
    while ((n = ::read(output.read_end.get(), buffer.data(), buffer.size())) > 0) {
        listing.append(buffer.data(), static_cast<std::size_t>(n));
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);
    std::map<int, std::string> fds;
    std::istringstream lines(listing);
    for (std::string line; std::getline(lines, line);) {
        const std::size_t arrow = line.find(" -> ");
        if (arrow == std::string::npos) {
            continue; // "total 0"
        }
        const std::size_t number = line.rfind(' ', arrow - 1) + 1;
        fds[std::stoi(line.substr(number, arrow - number))] = line.substr(arrow + 4);
    }
    REQUIRE(fds.count(STDOUT_FILENO) == 1);
    return fds;
}

struct record {
    std::uint64_t value;
};

ringio::task<> exercise(ringio::io_context& context, ringio::tcp_listener& listener,
                        std::vector<ringio::tcp_stream>& kept) {
    // A stream connect opens, the one accept gives, one from the multishot accept, and one
    // that connect by name opens.
    ringio::tcp_stream client(context);
    co_await client.connect(listener.local_endpoint());
    kept.push_back(std::move(client));
    kept.push_back(co_await listener.accept());
    auto incoming = listener.accept_all();
    ringio::tcp_stream second(context);
    co_await second.connect(listener.local_endpoint());
    kept.push_back(std::move(second));
    kept.push_back(co_await incoming.next());
    kept.push_back(co_await ringio::connect(context, "127.0.0.1",
                                            std::to_string(listener.local_endpoint().port())));
}

} // namespace

TEST_CASE("every descriptor ringio opens is close-on-exec and no child inherits it",
          "[reliability]") {
    const std::set<int> before = open_descriptors();
    ringio::testing::temp_dir dir;
    {
        ringio::io_context fast;
        ringio::io_context plain{{.fast_flags = false}};
        ringio::udp_socket bound(fast, endpoint::loopback_v4(0));
        ringio::udp_socket unbound(fast, AF_INET);
        ringio::udp_socket v6(fast, endpoint::any_v6(0));
        ringio::tcp_listener listener(fast, endpoint::loopback_v4(0));
        ringio::tcp_listener listener_v6(plain, endpoint::any_v6(0));
        std::vector<ringio::tcp_stream> streams;
        ringio::sync_wait(fast, exercise(fast, listener, streams));
        ringio::buffer_ring buffers(fast, 4, 64);
        auto incoming = streams.front().receive(buffers);
        auto created = ringio::mapped<record>::create(dir / "created", {}, 1);
        auto opened = ringio::mapped<const record>::open(dir / "created");
        auto duplicated = ringio::mapped<const record>::open(opened.fd());
        auto memfd = ringio::mapped<record>::memfd("ringio-descriptors-test");
        auto array = ringio::mapped<std::uint32_t[]>::create(dir / "array", 16);
        auto sealed_array = ringio::mapped<std::uint32_t[]>::memfd("ringio-array", 16);

        std::set<int> opened_now;
        for (const int fd : open_descriptors()) {
            if (before.count(fd) == 0) {
                opened_now.insert(fd);
            }
        }
        // Two rings, three UDP sockets, two listeners, five streams (three connected, two
        // accepted: the connection by name is queued by the multishot accept and closed with it)
        // and six mapped files.
        CHECK(opened_now.size() == 2 + 3 + 2 + 5 + 6);
        for (const int fd : opened_now) {
            INFO("descriptor " << fd << " -> " << target_of(fd));
            CHECK((::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
        }
        // The same, seen from a child: none of those descriptors is open there on the same
        // object (the child's own, such as the directory ls reads, point elsewhere).
        for (const auto& [fd, target] : inherited_by_a_child()) {
            INFO("a child holds descriptor " << fd << " -> " << target);
            CHECK_FALSE((opened_now.count(fd) == 1 && target_of(fd) == target));
        }
        fast.run();
    }
}
