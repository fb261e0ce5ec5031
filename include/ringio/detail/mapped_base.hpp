#pragma once

#include <ringio/detail/lifetime.hpp>
#include <ringio/detail/mapping.hpp>
#include <ringio/map_options.hpp>

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

namespace ringio::detail {

// The request for a view of `count` elements of `T` (`whole_file`: as many as fit).
template <class T>
map_request request_for(const map_options& options, std::size_t count, bool whole_file) {
    return {.offset = options.offset,
            .element_size = sizeof(T),
            .element_align = alignof(T),
            .count = count,
            .whole_file = whole_file,
            .writable = !std::is_const_v<T>,
            .shared = options.mode == map_mode::shared,
            .populate = options.populate};
}

// Starts the lifetime of the `T`s in a view of existing bytes.
template <class T>
mapping with_objects(mapping m) {
    if (void* view = m.view(); view != nullptr) {
        start_lifetime_as_array<T>(view, m.size_bytes() / sizeof(T));
    }
    return m;
}

// Constructs copies of `initial` in a new view.
template <class T>
mapping with_copies(mapping m, const T& initial) {
    if (void* view = m.view(); view != nullptr) {
        std::uninitialized_fill_n(static_cast<T*>(view), m.size_bytes() / sizeof(T), initial);
    }
    return m;
}

// A new file of `count` copies of `initial`.
template <class T>
mapping create_mapping(const std::filesystem::path& path, std::size_t count, const T& initial,
                       const create_options& options, std::error_code* out) {
    const map_request r = request_for<T>({.populate = options.populate}, count, false);
    return with_copies(mapping::create(path, r, options.permissions, options.replace_existing, out),
                       initial);
}

// A new sealed memfd of `count` copies of `initial`.
template <class T>
mapping memfd_mapping(std::string_view name, std::size_t count, const T& initial,
                      std::error_code* out) {
    const map_request r = request_for<T>({}, count, false);
    return with_copies(mapping::memfd(std::string(name), r, out), initial);
}

// New anonymous memory of `count` copies of `initial`.
template <class T>
mapping anonymous_mapping(map_mode mode, std::size_t count, const T& initial,
                          std::error_code* out) {
    return with_copies(mapping::anonymous(request_for<T>({.mode = mode}, count, false), out),
                       initial);
}

/// What every typed view offers, whatever its element type: flushing, advice, re-checking the
/// file, and the descriptor behind it.
class mapped_base {
public:
    /// Writes a shared file view's changes to the file and waits for them (`msync(MS_SYNC)`),
    /// then `fdatasync`s if ringio grew the file. Not needed for other processes to see the
    /// changes, nor before unmapping: only for durability against a crash of the machine.
    /// Does nothing for private or anonymous views.
    /// Errors: EIO and the like, from msync or fdatasync.
    void sync() { mapping_.sync(nullptr); }
    /// As `sync()`, reporting errors through `ec`.
    void sync(std::error_code& ec) { mapping_.sync(&ec); }

    /// Tells the kernel how the view will be used (`madvise`).
    void advise(map_advice advice) const { mapping_.advise(static_cast<int>(advice), nullptr); }
    /// As `advise(advice)`, reporting errors through `ec`.
    void advise(map_advice advice, std::error_code& ec) const {
        mapping_.advise(static_cast<int>(advice), &ec);
    }

    /// Checks that the file still holds the whole view: fails with ENXIO when another process
    /// has truncated it (touching the view would raise SIGBUS). A snapshot: only a sealed memfd
    /// rules truncation out. Anonymous memory always passes.
    void check() const { mapping_.check(nullptr); }
    /// As `check()`, reporting errors through `ec`.
    void check(std::error_code& ec) const { mapping_.check(&ec); }

    /// The descriptor of the file or memfd behind the view (owned by the view, close-on-exec;
    /// pass it to another process to share a memfd), or -1 for anonymous memory.
    [[nodiscard]] int fd() const noexcept { return mapping_.fd(); }

protected:
    mapped_base() noexcept = default;
    explicit mapped_base(mapping m) noexcept : mapping_(std::move(m)) {}
    mapped_base(mapped_base&&) noexcept = default;
    mapped_base& operator=(mapped_base&&) noexcept = default;
    ~mapped_base() = default;

    mapping mapping_;
};

} // namespace ringio::detail
