#pragma once

/// What to map and from where, the checks before mapping, and the file steps around it.

#include <ringio/detail/error.hpp>

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <limits>
#include <string>
#include <system_error>
#include <utility>

namespace ringio::detail {

/// The size of a memory page, read once.
inline std::size_t page_size() noexcept {
    static const auto size = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    return size;
}

/// Where a mapping's bytes come from.
enum class map_source { path, fd, new_file, memfd, anonymous };

/// What to map: where from, the typed view's shape, and how the kernel should map it.
struct map_request {
    map_source source = map_source::anonymous;
    std::string name = {};         ///< The path, or the memfd's name.
    int fd = -1;                   ///< The descriptor to duplicate, for `map_source::fd`.
    std::size_t count = 0;         ///< Elements in the view.
    bool whole_file = false;       ///< Take `count` from the file: every element that fits.
    std::uint64_t offset = 0;      ///< Byte offset of the view in the file.
    bool shared = true;            ///< `MAP_SHARED`, else `MAP_PRIVATE`.
    bool populate = false;         ///< `MAP_POPULATE`.
    ::mode_t permissions = 0600;   ///< Mode bits of a new file.
    bool replace_existing = false; ///< Unlink a regular file at the path before creating.
    std::size_t element_size = 1;  ///< `sizeof(T)`.
    std::size_t element_align = 1; ///< `alignof(T)`.
    bool writable = false;         ///< `PROT_WRITE` as well as `PROT_READ`.
};

/// Why setting up or changing a mapping failed: the error, and the failed step or the problem in
/// words (empty when the error says it all). An empty `code` means success.
struct map_failure {
    std::error_code code;
    std::string detail;
};

/// A failure found by ringio's own checks, in the system category as a system call's would be.
inline map_failure map_problem(std::errc code, std::string detail) {
    return {error_from_result(-static_cast<int>(code)), std::move(detail)};
}

/// A file shorter than a view of `bytes` at `offset` needs: ENXIO, POSIX's mmap error for a range
/// the object does not hold; `why` says what follows from it.
inline map_failure file_too_short(std::uint64_t file_size, std::uint64_t offset, std::size_t bytes,
                                  const char* why) {
    return map_problem(std::errc::no_such_device_or_address,
                       "the file holds " + std::to_string(file_size) + " bytes, the view needs " +
                           std::to_string(offset + bytes) + " (offset " + std::to_string(offset) +
                           " + " + std::to_string(bytes) + " bytes)" + why);
}

/// The largest file offset.
inline constexpr std::uint64_t max_file_offset = std::numeric_limits<::off_t>::max();

/// Sets `bytes` to the length of `count` elements of `element_size` at `offset`, or fails with
/// EOVERFLOW: the length plus a page of slack must fit in `ptrdiff_t`, and its end in `off_t`.
inline map_failure bytes_for(std::uint64_t offset, std::size_t count, std::size_t element_size,
                             std::size_t& bytes) {
    const std::size_t max_bytes =
        static_cast<std::size_t>(std::numeric_limits<std::ptrdiff_t>::max()) - page_size();
    if (count > max_bytes / element_size || count * element_size > max_file_offset - offset) {
        return map_problem(std::errc::value_too_large,
                           std::to_string(count) + " elements of " + std::to_string(element_size) +
                               " bytes from offset " + std::to_string(offset) + " overflow");
    }
    bytes = count * element_size;
    return {};
}

/// Checks a request's arithmetic before any system call: an aligned offset within `off_t`, a
/// length that does not overflow. Sets `bytes` unless the length depends on the file.
inline map_failure check_request(const map_request& r, std::size_t& bytes) {
    if (r.element_align > page_size() || r.offset % r.element_align != 0) {
        return map_problem(std::errc::invalid_argument,
                           "offset " + std::to_string(r.offset) +
                               " is not a multiple of the alignment of T (" +
                               std::to_string(r.element_align) + ")");
    }
    if (r.offset > max_file_offset) {
        return map_problem(std::errc::value_too_large, "offset " + std::to_string(r.offset) +
                                                           " is past the largest file offset");
    }
    return r.whole_file ? map_failure{} : bytes_for(r.offset, r.count, r.element_size, bytes);
}

/// Names a path in a message on one line: in double quotes, `"` and `\` escaped, control
/// characters as `\xNN`. Never cut, and UTF-8 stays readable.
inline std::string quote_path(const std::string& path) {
    constexpr const char* hex = "0123456789abcdef";
    std::string out = "\"";
    for (const char c : path) {
        const auto byte = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (byte < 0x20 || byte == 0x7f) {
            out += "\\x";
            out += hex[byte >> 4U];
            out += hex[byte & 0xfU];
        } else {
            out += c;
        }
    }
    return out + '"';
}

/// What a file that is not a regular file is, in words.
inline std::string not_regular(::mode_t mode) {
    const char* kind = S_ISDIR(mode)    ? "a directory"
                       : S_ISLNK(mode)  ? "a symbolic link"
                       : S_ISFIFO(mode) ? "a FIFO"
                       : S_ISSOCK(mode) ? "a socket"
                       : S_ISCHR(mode)  ? "a character device"
                       : S_ISBLK(mode)  ? "a block device"
                                        : "something";
    return std::string(kind) + ", not a regular file";
}

/// Reads the size of the regular file (or memfd) open as `fd`; a directory is EISDIR, anything
/// else ENODEV (mmap's "cannot be mapped").
inline map_failure regular_file_size(int fd, std::uint64_t& size) {
    struct ::stat st {};
    if (::fstat(fd, &st) != 0) {
        return {last_error(), "fstat"};
    }
    if (!S_ISREG(st.st_mode)) {
        return S_ISDIR(st.st_mode)
                   ? map_problem(std::errc::is_a_directory, {})
                   : map_problem(std::errc::no_such_device, not_regular(st.st_mode));
    }
    size = static_cast<std::uint64_t>(st.st_size);
    return {};
}

/// The failure of an `open` of `path` with `error`. open(2) refuses a socket, and a device
/// without a driver, with ENXIO, which ringio keeps for a file too short: those become ENODEV.
inline map_failure open_failure(const std::string& path, std::error_code error) {
    struct ::stat st {};
    if (error == std::errc::no_such_device_or_address && ::stat(path.c_str(), &st) == 0 &&
        !S_ISREG(st.st_mode)) {
        return map_problem(std::errc::no_such_device, not_regular(st.st_mode));
    }
    return {error, {}};
}

/// What is in the way at `path` when creating there fails with EEXIST: empty for a regular file.
inline std::string what_exists(const std::string& path) {
    struct ::stat st {};
    return ::lstat(path.c_str(), &st) != 0 || S_ISREG(st.st_mode) ? "" : not_regular(st.st_mode);
}

/// Unlinks the regular file at `path`, if there is one, for `replace_existing`; anything else
/// there stays and is EEXIST.
inline map_failure unlink_regular_file(const std::string& path) {
    struct ::stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
        return {}; // nothing there, or a bad path: creating the file says why
    }
    // A file that another process swaps in between lstat and unlink is not noticed.
    if (!S_ISREG(st.st_mode)) {
        return map_problem(std::errc::file_exists,
                           not_regular(st.st_mode) + ": only a regular file is replaced");
    }
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
        return {last_error(), "unlink"};
    }
    return {};
}

/// Runs `call`, which returns 0 or an errno value, with SIGXFSZ blocked in the calling thread:
/// past the file size limit it fails with EFBIG instead of killing the process.
template <class Call>
int without_sigxfsz(Call call) {
    ::sigset_t xfsz;
    ::sigset_t old;
    ::sigset_t pending;
    sigemptyset(&xfsz);
    sigaddset(&xfsz, SIGXFSZ);
    ::pthread_sigmask(SIG_BLOCK, &xfsz, &old);
    const bool was_pending = ::sigpending(&pending) == 0 && sigismember(&pending, SIGXFSZ) == 1;
    const int rc = call();
    // The kernel sends SIGXFSZ to the calling thread: consume the one the call raised, and leave
    // one that was pending before to the program.
    if (rc == EFBIG && !was_pending) {
        const ::timespec now{};
        while (::sigtimedwait(&xfsz, nullptr, &now) < 0 && errno == EINTR) {
        }
    }
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return rc;
}

/// Makes the file open as `fd` at least `to` bytes long with real blocks from `from` on: a full
/// disk or RLIMIT_FSIZE fails here (ENOSPC, EFBIG), not with SIGBUS or SIGXFSZ later.
inline map_failure allocate_blocks(int fd, std::uint64_t from, std::uint64_t to) {
    ::rlimit limit{};
    if (::getrlimit(RLIMIT_FSIZE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY &&
        to > limit.rlim_cur) {
        return map_problem(std::errc::file_too_large,
                           std::to_string(to) +
                               " bytes are past the file size limit (RLIMIT_FSIZE " +
                               std::to_string(limit.rlim_cur) + " bytes)");
    }
    // posix_fallocate returns the error instead of setting errno.
    const int rc = without_sigxfsz([&] {
        return ::posix_fallocate(fd, static_cast<::off_t>(from), static_cast<::off_t>(to - from));
    });
    return rc == 0 ? map_failure{} : map_failure{error_from_result(-rc), "posix_fallocate"};
}

} // namespace ringio::detail
