#pragma once

#include <ringio/detail/error.hpp>

#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
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

/// What to map: the typed view's shape, and how the kernel should map it.
struct map_request {
    std::uint64_t offset = 0;      ///< Byte offset of the view in the file.
    std::size_t element_size = 1;  ///< `sizeof(T)`.
    std::size_t element_align = 1; ///< `alignof(T)`.
    std::size_t count = 0;         ///< Elements in the view.
    bool whole_file = false;       ///< Take `count` from the file: every element that fits.
    bool writable = false;         ///< `PROT_WRITE` as well as `PROT_READ`.
    bool shared = true;            ///< `MAP_SHARED`, else `MAP_PRIVATE`.
    bool populate = false;         ///< `MAP_POPULATE`.
};

/// Why setting up or changing a mapping failed: the error, and the failed step or the problem in
/// words (empty when the error says it all). An empty `code` means success.
struct map_failure {
    std::error_code code;
    std::string detail;
};

/// A failure found by ringio's own checks rather than reported by a system call; its code is in
/// the system category, as a system call's would be.
inline map_failure map_problem(std::errc code, std::string detail) {
    return {error_from_result(-static_cast<int>(code)), std::move(detail)};
}

/// The failure for a file shorter than a view of `bytes` at `offset` needs (ENXIO: POSIX's mmap
/// error for a range the object does not hold), saying by how much and, in `why`, what follows.
inline map_failure file_too_short(std::uint64_t file_size, std::uint64_t offset, std::size_t bytes,
                                  const char* why) {
    return map_problem(std::errc::no_such_device_or_address,
                       "the file holds " + std::to_string(file_size) + " bytes, the view needs " +
                           std::to_string(offset + bytes) + " (offset " + std::to_string(offset) +
                           " + " + std::to_string(bytes) + " bytes)" + why);
}

/// The largest file offset.
inline constexpr std::uint64_t max_file_offset = std::numeric_limits<::off_t>::max();

/// Computes the bytes of `count` elements of `element_size` bytes starting at file offset
/// `offset`, or fails with EOVERFLOW when they overflow: the length plus a page of slack must fit
/// in `ptrdiff_t` (iterator differences), and the offset of the end in `off_t`.
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

/// Checks the arithmetic of a request before any system call: the offset keeps `T` aligned (a
/// page-aligned mapping plus the offset's slack) and fits in `off_t`, and the view's length does
/// not overflow. Sets `bytes` unless the length depends on the file.
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

/// Reads the size of the regular file open as `fd`, refusing anything else: a directory
/// (EISDIR), or a FIFO, socket or device (ENODEV, mmap's own error for "cannot be mapped").
inline map_failure regular_file_size(int fd, std::uint64_t& size) {
    struct ::stat st {};
    if (::fstat(fd, &st) != 0) {
        return {last_error(), "fstat"};
    }
    if (S_ISDIR(st.st_mode)) {
        return map_problem(std::errc::is_a_directory, {});
    }
    // Regular files and memfds only: a FIFO has no pages, and a device's st_size says nothing
    // about what can be mapped without SIGBUS.
    if (!S_ISREG(st.st_mode)) {
        return map_problem(std::errc::no_such_device,
                           S_ISFIFO(st.st_mode)  ? "a FIFO, not a regular file"
                           : S_ISCHR(st.st_mode) ? "a character device, not a regular file"
                           : S_ISBLK(st.st_mode) ? "a block device, not a regular file"
                                                 : "not a regular file");
    }
    size = static_cast<std::uint64_t>(st.st_size);
    return {};
}

} // namespace ringio::detail
