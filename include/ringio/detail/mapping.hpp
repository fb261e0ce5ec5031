#pragma once

/// The untyped mapping behind every `mapped` view: made in one place, grown, synced and checked.

#include <ringio/detail/error.hpp>
#include <ringio/detail/fd.hpp>
#include <ringio/detail/map_request.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <system_error>
#include <utility>

namespace ringio::detail {

/// Owns one mapped region, untyped, and the descriptor of the file behind it (if any); move-only.
// Invariants: `region_.base` is null exactly when nothing is mapped; the view starts
// `region_.offset % page_size()` bytes into the region (the slack of a page-aligned `mmap`) and
// is `region_.bytes` long; the file held the whole view when it was made or last grown.
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

    /// Maps what `r` asks for, then calls `fill(view, bytes)` to put objects there; a failure
    /// (through `out`, or thrown, or from `fill`) leaves nothing open, mapped or newly created.
    template <class Fill>
    static mapping make(const map_request& r, std::error_code* out, Fill&& fill) {
        mapping m(r);
        map_failure f = check_request(r, m.region_.bytes);
        if (!f.code) {
            f = m.acquire(r);
        }
        if (!f.code) {
            f = m.map_region();
        }
        try {
            if (!f.code && m.region_.base != nullptr) {
                fill(m.view(), m.region_.bytes);
            }
        } catch (...) {
            m.discard(r);
            throw;
        }
        if (f.code) {
            m.discard(r);
        }
        constexpr const char* operations[] = {"open", "open", "create", "memfd", "map"};
        m.fail(f, operations[static_cast<int>(r.source)], out);
        return f.code ? mapping{} : std::move(m);
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
    void grow(std::size_t count, std::size_t element_size, std::error_code* out) {
        fail(grow_to(count, element_size), "grow", out);
    }

    /// `msync(MS_SYNC)`, then `fdatasync` if ringio grew the file; nothing without a shared file.
    void sync(std::error_code* out) { fail(sync_file(), "sync", out); }

    /// Gives the kernel `advice` (an `MADV_*` value) about the view.
    void advise(int advice, std::error_code* out) const {
        const bool failed =
            region_.base != nullptr && ::madvise(region_.base, length(), advice) != 0;
        fail(failed ? map_failure{last_error(), "madvise"} : map_failure{}, "advise", out);
    }

    /// Fails with ENXIO when the file no longer holds the whole view (another process truncated
    /// it: touching the view would raise SIGBUS).
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

    explicit mapping(const map_request& r) {
        region_.offset = r.offset;
        region_.prot = r.writable ? PROT_READ | PROT_WRITE : PROT_READ;
        region_.flags = (r.shared ? MAP_SHARED : MAP_PRIVATE) | (r.populate ? MAP_POPULATE : 0);
        switch (r.source) {
        case map_source::path:
        case map_source::new_file:
            name_ = quote_path(r.name);
            break;
        case map_source::fd:
            name_ = "fd " + std::to_string(r.fd);
            break;
        case map_source::memfd:
            name_ = "memfd:" + r.name;
            break;
        case map_source::anonymous:
            name_ = r.shared ? "anonymous shared memory" : "anonymous private memory";
            region_.flags |= MAP_ANONYMOUS;
            break;
        }
    }

    [[nodiscard]] std::size_t slack() const noexcept { return region_.offset % page_size(); }
    [[nodiscard]] std::size_t length() const noexcept { return slack() + region_.bytes; }

    void unmap() noexcept {
        if (region_.base != nullptr) {
            ::munmap(region_.base, length());
            region_.base = nullptr;
        }
    }

    // Takes the descriptor that `r` names (none for anonymous memory), checks an existing file
    // against the view, and gives a new one its size.
    map_failure acquire(const map_request& r) {
        switch (r.source) {
        case map_source::path:
            // O_NONBLOCK: a FIFO must be refused (after fstat), not wait for a writer. Only a
            // shared writable view needs to write through the descriptor.
            fd_.reset(::open(r.name.c_str(), (r.writable && r.shared ? O_RDWR : O_RDONLY) |
                                                 O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
            return fd_ ? fit(r) : open_failure(r.name, last_error());
        case map_source::fd:
            fd_.reset(::fcntl(r.fd, F_DUPFD_CLOEXEC, 0));
            return fd_ ? fit(r) : map_failure{last_error(), "dup"};
        case map_source::new_file:
            // Unlinking, not truncating, an old file: a process that maps it keeps its pages.
            if (map_failure f = r.replace_existing ? unlink_regular_file(r.name) : map_failure{};
                f.code) {
                return f;
            }
            fd_.reset(::open(r.name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY,
                             r.permissions));
            if (!fd_) {
                const std::error_code error = last_error();
                return {error, error == std::errc::file_exists ? what_exists(r.name) : ""};
            }
            return allocate();
        case map_source::memfd:
            fd_.reset(::memfd_create(r.name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING));
            if (!fd_) {
                return {last_error(), "memfd_create"};
            }
            if (map_failure f = allocate(); f.code) {
                return f;
            }
            // F_SEAL_SEAL: nobody can lift the other seals either.
            if (::fcntl(fd_.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
                return {last_error(), "F_ADD_SEALS"};
            }
            return {};
        case map_source::anonymous:
            return {};
        }
        return {};
    }

    // Checks that the open file holds the view, or sizes a whole-file view to what fits.
    map_failure fit(const map_request& r) {
        std::uint64_t file_size = 0;
        if (map_failure f = regular_file_size(fd_.get(), file_size); f.code) {
            return f;
        }
        if (!r.whole_file) {
            return file_size < r.offset + region_.bytes
                       ? file_too_short(file_size, r.offset, region_.bytes, "")
                       : map_failure{};
        }
        if (r.offset > file_size) {
            return map_problem(std::errc::no_such_device_or_address,
                               "offset " + std::to_string(r.offset) +
                                   " is past the end of the file (" + std::to_string(file_size) +
                                   " bytes)");
        }
        const std::uint64_t fits = (file_size - r.offset) / r.element_size;
        return bytes_for(r.offset, static_cast<std::size_t>(fits), r.element_size, region_.bytes);
    }

    // Gives a new file its size with real blocks: a full disk or the file size limit fails here,
    // not with SIGBUS or SIGXFSZ later.
    map_failure allocate() {
        const std::uint64_t size = region_.offset + region_.bytes;
        map_failure f = size == 0 ? map_failure{} : allocate_blocks(fd_.get(), 0, size);
        region_.grown = size != 0 && !f.code;
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

    // After a failure: removes a file that this mapping created (O_EXCL: a descriptor means it
    // did), then unmaps and closes.
    void discard(const map_request& r) noexcept {
        if (r.source == map_source::new_file && fd_) {
            ::unlink(r.name.c_str());
        }
        unmap();
        fd_.reset();
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
        if (region_.grown && ::fdatasync(fd_.get()) != 0) {
            return {last_error(), "fdatasync"};
        }
        region_.grown = false;
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

    // Makes the file hold a view of `bytes` at the view's offset: only a shared writable view
    // extends its file.
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

    // Reports `f`, if it is a failure, naming the operation and the mapping (the message is
    // built only for the throwing form); clears `out` on success.
    void fail(const map_failure& f, const char* operation, std::error_code* out) const {
        if (!f.code) {
            clear(out);
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

    region region_;
    unique_fd fd_;
    std::string name_; // the quoted path, "fd N", "memfd:NAME" or the kind of anonymous memory
};

} // namespace ringio::detail
