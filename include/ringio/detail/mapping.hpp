#pragma once

/// The untyped mapping behind every `mapped` view: its factories, growing, syncing and checking.

#include <ringio/detail/error.hpp>
#include <ringio/detail/fd.hpp>
#include <ringio/detail/map_request.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>

namespace ringio::detail {

/// Owns one mapped region, untyped, and the descriptor of the file behind it (if any); move-only.
/// `mapped<T>` and `mapped<T[]>` are typed views over it.
///
/// Invariants: `region_.base` is null exactly when nothing is mapped (an empty view); the view
/// starts `region_.offset % page_size()` bytes into the region (the slack of a page-aligned
/// `mmap`) and is `region_.bytes` long; the file held at least `region_.offset + region_.bytes`
/// bytes when the view was set up or last grown.
class mapping {
public:
    mapping() noexcept = default;

    mapping(mapping&& other) noexcept
        : region_(std::exchange(other.region_, {})), fd_(std::move(other.fd_)),
          name_(std::move(other.name_)) {}

    // The old region is unmapped before the new one is taken over.
    mapping& operator=(mapping&& other) noexcept {
        if (this != &other) {
            unmap();
            region_ = std::exchange(other.region_, {});
            fd_ = std::move(other.fd_);
            name_ = std::move(other.name_);
        }
        return *this;
    }

    mapping(const mapping&) = delete;
    mapping& operator=(const mapping&) = delete;

    ~mapping() { unmap(); }

    /// Opens the file at `path` and maps the requested view of it.
    static mapping open(const std::filesystem::path& path, map_request r, std::error_code* out) {
        mapping m(r, quote_path(path.string()));
        map_failure f = check_request(r, m.region_.bytes);
        if (!f.code) {
            // O_NONBLOCK: opening a FIFO for reading must not wait for a writer; it is refused
            // after fstat. A read-only descriptor suffices for every mapping but a shared
            // writable one.
            const int access = r.writable && r.shared ? O_RDWR : O_RDONLY;
            m.fd_.reset(::open(path.c_str(), access | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
            f = m.fd_ ? m.attach(r) : open_failure(path.string(), last_error());
        }
        return m.finish("open", f, out);
    }

    /// Maps the requested view of the file open as `fd`, through a duplicate of it: the caller
    /// keeps `fd` and closes it when it likes.
    static mapping open(int fd, map_request r, std::error_code* out) {
        mapping m(r, "fd " + std::to_string(fd));
        map_failure f = check_request(r, m.region_.bytes);
        if (!f.code) {
            m.fd_.reset(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
            f = m.fd_ ? m.attach(r) : map_failure{last_error(), "dup"};
        }
        return m.finish("open", f, out);
    }

    /// Creates a new file at `path` (replacing an existing regular file if asked), allocates its
    /// blocks and maps it shared and writable. The file is removed again if a later step fails.
    static mapping create(const std::filesystem::path& path, map_request r, ::mode_t permissions,
                          bool replace_existing, std::error_code* out) {
        mapping m(r, quote_path(path.string()));
        map_failure f = check_request(r, m.region_.bytes);
        // Unlinking, not truncating, the old file: a process that still maps it keeps its pages
        // instead of getting SIGBUS.
        if (!f.code && replace_existing) {
            f = unlink_regular_file(path.string());
        }
        if (!f.code) {
            m.fd_.reset(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY,
                               permissions));
            if (!m.fd_) {
                f = {last_error(), {}};
                if (f.code == std::errc::file_exists) {
                    f.detail = what_exists(path.string());
                }
            } else if (f = m.allocate(); !f.code) {
                f = m.map_region();
            }
            if (f.code && m.fd_) {
                ::unlink(path.c_str());
            }
        }
        return m.finish("create", f, out);
    }

    /// Creates a memfd of the view's size, seals it against shrinking and growing, and maps it
    /// shared and writable.
    static mapping memfd(const std::string& name, map_request r, std::error_code* out) {
        mapping m(r, "memfd:" + name);
        map_failure f = check_request(r, m.region_.bytes);
        if (!f.code) {
            m.fd_.reset(::memfd_create(name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING));
            if (!m.fd_) {
                f = {last_error(), "memfd_create"};
            } else if (f = m.allocate(); !f.code) {
                // F_SEAL_SEAL: nobody can lift the other seals either.
                if (::fcntl(m.fd_.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) !=
                    0) {
                    f = {last_error(), "F_ADD_SEALS"};
                } else {
                    f = m.map_region();
                }
            }
        }
        return m.finish("memfd", f, out);
    }

    /// Maps anonymous memory (zero-filled), shared across fork() or private to this process.
    static mapping anonymous(map_request r, std::error_code* out) {
        mapping m(r, r.shared ? "anonymous shared memory" : "anonymous private memory");
        m.region_.flags |= MAP_ANONYMOUS;
        map_failure f = check_request(r, m.region_.bytes);
        if (!f.code) {
            f = m.map_region();
        }
        return m.finish("map", f, out);
    }

    /// The first byte of the view; null when the view is empty.
    [[nodiscard]] void* view() const noexcept {
        return region_.base == nullptr ? nullptr : static_cast<std::byte*>(region_.base) + slack();
    }

    /// The length of the view in bytes.
    [[nodiscard]] std::size_t size_bytes() const noexcept { return region_.bytes; }

    /// The descriptor of the file behind the mapping, still owned by it; -1 for anonymous memory.
    [[nodiscard]] int fd() const noexcept { return fd_.get(); }

    /// Lengthens the view to `count` elements of `element_size` bytes, moving it if need be.
    /// A shared writable file mapping extends the file (zero-filled, blocks allocated); any
    /// other must find the file long enough already.
    void grow(std::size_t count, std::size_t element_size, std::error_code* out) {
        fail(grow_to(count, element_size), "grow", out);
    }

    /// Writes the view's dirty pages to the file and waits for them (`MS_SYNC`), then flushes
    /// the file's size if ringio grew the file. Does nothing for private or anonymous memory.
    void sync(std::error_code* out) { fail(sync_file(), "sync", out); }

    /// Gives the kernel `advice` (an `MADV_*` value) about the view.
    void advise(int advice, std::error_code* out) const {
        map_failure f;
        if (region_.base != nullptr && ::madvise(region_.base, length(), advice) != 0) {
            f = {last_error(), "madvise"};
        }
        fail(f, "advise", out);
    }

    /// Checks that the file still holds the whole view: fails with ENXIO when another process
    /// has truncated it, where touching the view would raise SIGBUS.
    void check(std::error_code* out) const {
        map_failure f;
        std::uint64_t file_size = 0;
        if (fd_) {
            f = regular_file_size(fd_.get(), file_size);
            if (!f.code && file_size < region_.offset + region_.bytes) {
                f = file_too_short(file_size, region_.offset, region_.bytes,
                                   "; truncated: touching the view would raise SIGBUS");
            }
        }
        fail(f, "check", out);
    }

private:
    // What the kernel was asked for; trivially copyable so that moves can exchange it whole.
    struct region {
        void* base = nullptr;     // page-aligned start of the mmap; null when nothing is mapped
        std::size_t bytes = 0;    // length of the view, without the slack before it
        std::uint64_t offset = 0; // byte offset of the view in the file
        int prot = PROT_NONE;
        int flags = 0;
        bool grown = false; // ringio extended the file since the last sync
    };

    mapping(const map_request& r, std::string name) : name_(std::move(name)) {
        region_.offset = r.offset;
        region_.prot = r.writable ? PROT_READ | PROT_WRITE : PROT_READ;
        region_.flags = (r.shared ? MAP_SHARED : MAP_PRIVATE) | (r.populate ? MAP_POPULATE : 0);
    }

    [[nodiscard]] std::size_t slack() const noexcept { return region_.offset % page_size(); }
    [[nodiscard]] std::size_t length() const noexcept { return slack() + region_.bytes; }

    void unmap() noexcept {
        if (region_.base != nullptr) {
            ::munmap(region_.base, length());
            region_.base = nullptr;
        }
    }

    // Checks the open file against the request and maps the view; never past the file's end.
    map_failure attach(const map_request& r) {
        std::uint64_t file_size = 0;
        if (map_failure f = regular_file_size(fd_.get(), file_size); f.code) {
            return f;
        }
        if (r.whole_file) {
            if (r.offset > file_size) {
                return map_problem(std::errc::no_such_device_or_address,
                                   "offset " + std::to_string(r.offset) +
                                       " is past the end of the file (" +
                                       std::to_string(file_size) + " bytes)");
            }
            const std::uint64_t fits = (file_size - r.offset) / r.element_size;
            if (map_failure f = bytes_for(r.offset, static_cast<std::size_t>(fits), r.element_size,
                                          region_.bytes);
                f.code) {
                return f;
            }
        } else if (file_size < r.offset + region_.bytes) {
            return file_too_short(file_size, r.offset, region_.bytes, "");
        }
        return map_region();
    }

    // Gives a new file (or memfd) its size with real blocks, so that a full disk or the file
    // size limit fails here and not with SIGBUS or SIGXFSZ later.
    map_failure allocate() {
        const std::uint64_t size = region_.offset + region_.bytes;
        if (size == 0) {
            return {};
        }
        map_failure f = allocate_blocks(fd_.get(), 0, size);
        region_.grown = !f.code;
        return f;
    }

    map_failure map_region() {
        if (region_.bytes == 0) {
            return {}; // mmap of length 0 is EINVAL; an empty view maps nothing
        }
        void* base = ::mmap(nullptr, length(), region_.prot, region_.flags, fd_.get(),
                            static_cast<::off_t>(region_.offset - slack()));
        if (base == MAP_FAILED) {
            return {last_error(), "mmap"};
        }
        region_.base = base;
        return {};
    }

    map_failure sync_file() {
        if (!fd_ || (region_.flags & MAP_SHARED) == 0) {
            return {};
        }
        if ((region_.prot & PROT_WRITE) != 0 && region_.base != nullptr &&
            ::msync(region_.base, length(), MS_SYNC) != 0) {
            return {last_error(), "msync"};
        }
        // msync writes data; the file's new size is metadata, which only fdatasync promises.
        if (region_.grown) {
            if (::fdatasync(fd_.get()) != 0) {
                return {last_error(), "fdatasync"};
            }
            region_.grown = false;
        }
        return {};
    }

    map_failure grow_to(std::size_t count, std::size_t element_size) {
        std::size_t bytes = 0;
        if (map_failure f = bytes_for(region_.offset, count, element_size, bytes); f.code) {
            return f;
        }
        if (bytes < region_.bytes) {
            return map_problem(std::errc::invalid_argument, "cannot grow to " +
                                                                std::to_string(count) +
                                                                " elements, fewer than now");
        }
        if (bytes == region_.bytes) {
            return {};
        }
        if (!fd_ && (region_.flags & MAP_SHARED) != 0) {
            // The kernel fixes the size of anonymous shared memory when it is mapped: a longer
            // mremap succeeds, and touching the new pages raises SIGBUS.
            return map_problem(std::errc::operation_not_supported,
                               "anonymous shared memory has a fixed size; map a file to grow");
        }
        if (map_failure f = fd_ ? extend_file(bytes) : map_failure{}; f.code) {
            return f;
        }
        // The view may move: every pointer into it is invalidated.
        const std::size_t old_length = length();
        const std::size_t old_bytes = std::exchange(region_.bytes, bytes);
        map_failure f;
        if (region_.base == nullptr) {
            f = map_region();
        } else if (void* base = ::mremap(region_.base, old_length, length(), MREMAP_MAYMOVE);
                   base == MAP_FAILED) {
            f = {last_error(), "mremap"};
        } else {
            region_.base = base;
        }
        if (f.code) {
            region_.bytes = old_bytes;
        }
        return f;
    }

    // Makes the file hold a view of `bytes` at the view's offset.
    map_failure extend_file(std::size_t bytes) {
        const std::uint64_t needed = region_.offset + bytes;
        std::uint64_t file_size = 0;
        if (map_failure f = regular_file_size(fd_.get(), file_size);
            f.code || file_size >= needed) {
            return f;
        }
        if ((region_.prot & PROT_WRITE) == 0 || (region_.flags & MAP_SHARED) == 0) {
            return file_too_short(file_size, region_.offset, bytes,
                                  "; only a shared writable view extends its file");
        }
        map_failure f = allocate_blocks(fd_.get(), file_size, needed);
        region_.grown = region_.grown || !f.code;
        return f;
    }

    // Reports `f`, if it is a failure, naming the operation and the mapping; the message is
    // built only for the throwing form.
    void fail(const map_failure& f, const char* operation, std::error_code* out) const {
        if (!f.code) {
            if (out != nullptr) {
                out->clear();
            }
            return;
        }
        std::string what;
        if (out == nullptr) {
            what = std::string("mapped: ") + operation + " " + name_;
            if (!f.detail.empty()) {
                what += ": " + f.detail;
            }
        }
        report(f.code, out, what);
    }

    // Ends a factory: reports `f`, and returns the mapping, or an empty one after a failure
    // (closing the descriptor and unmapping whatever was mapped).
    mapping finish(const char* operation, const map_failure& f, std::error_code* out) {
        fail(f, operation, out);
        if (f.code) {
            return {};
        }
        return std::move(*this);
    }

    region region_;
    unique_fd fd_;
    std::string name_; // the path, "fd N", "memfd:NAME" or the kind of anonymous memory
};

} // namespace ringio::detail
