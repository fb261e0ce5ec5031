#pragma once

/// mapped<T> and mapped<T[]>: typed views of mapped files, memfds and anonymous memory.

#include <ringio/detail/lifetime.hpp>
#include <ringio/detail/mapping.hpp>
#include <ringio/map_options.hpp>
#include <ringio/mappable.hpp>

#include <concepts>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

namespace ringio {

template <class T>
class mapped;

namespace detail {

/// What `mapped<T>` and `mapped<T[]>` share: opening an existing file, what a view does whatever
/// its shape, and the one implementation of every factory.
template <class T>
class mapped_base {
    using element = std::remove_extent_t<T>;
    using view = mapped<T>;
    static constexpr bool array_ = std::is_array_v<T>;

public:
    /// Maps the file at `path` from `options.offset`: one `T`, or every element that fits.
    static view open(const std::filesystem::path& path, map_options options = {}) {
        return open_path(path, 1, array_, options, nullptr);
    }
    /// As above, reporting errors through `ec`.
    static view open(const std::filesystem::path& path, map_options options, std::error_code& ec) {
        return open_path(path, 1, array_, options, &ec);
    }
    /// Maps the open file `fd` from `options.offset`, through a duplicate: `fd` stays the caller's.
    static view open(int fd, map_options options = {}) {
        return open_fd(fd, 1, array_, options, nullptr);
    }
    /// As above, reporting errors through `ec`.
    static view open(int fd, map_options options, std::error_code& ec) {
        return open_fd(fd, 1, array_, options, &ec);
    }

    /// Writes a shared file view's changes to the file and waits (`msync`, then `fdatasync` if
    /// ringio grew the file): for durability only. Does nothing for private or anonymous views.
    void sync() { mapping_.sync(nullptr); }
    /// As above, reporting errors through `ec`.
    void sync(std::error_code& ec) { mapping_.sync(&ec); }

    /// Tells the kernel how the view will be used (`madvise`).
    void advise(map_advice advice) const { mapping_.advise(static_cast<int>(advice), nullptr); }
    /// As above, reporting errors through `ec`.
    void advise(map_advice advice, std::error_code& ec) const {
        mapping_.advise(static_cast<int>(advice), &ec);
    }

    /// Fails with ENXIO when the file no longer holds the whole view (touching it would raise
    /// SIGBUS). A snapshot: only a sealed memfd rules truncation out.
    void check() const { mapping_.check(nullptr); }
    /// As above, reporting errors through `ec`.
    void check(std::error_code& ec) const { mapping_.check(&ec); }

    /// The descriptor of the file or memfd behind the view (owned by it, close-on-exec), or -1.
    [[nodiscard]] int fd() const noexcept { return mapping_.fd(); }

protected:
    template <class U>
    friend mapping release_mapping(mapped_base<U>&& view) noexcept;

    mapped_base() noexcept = default;
    mapped_base(mapped_base&&) noexcept = default;
    mapped_base& operator=(mapped_base&&) noexcept = default;
    ~mapped_base() = default;

    static view open_path(const std::filesystem::path& path, std::size_t count, bool whole,
                          const map_options& options, std::error_code* out) {
        return existing({.source = map_source::path,
                         .name = path.native(),
                         .count = count,
                         .whole_file = whole},
                        options, out);
    }

    static view open_fd(int fd, std::size_t count, bool whole, const map_options& options,
                        std::error_code* out) {
        return existing({.source = map_source::fd, .fd = fd, .count = count, .whole_file = whole},
                        options, out);
    }

    template <class... Args>
    static view create_file(const std::filesystem::path& path, std::size_t count,
                            const create_options& options, std::error_code* out, Args&&... args) {
        return fresh({.source = map_source::new_file,
                      .name = path.native(),
                      .count = count,
                      .populate = options.populate,
                      .permissions = options.permissions,
                      .replace_existing = options.replace_existing},
                     out, std::forward<Args>(args)...);
    }

    template <class... Args>
    static view memfd_of(std::string_view name, std::size_t count, std::error_code* out,
                         Args&&... args) {
        return fresh({.source = map_source::memfd, .name = std::string(name), .count = count}, out,
                     std::forward<Args>(args)...);
    }

    template <class... Args>
    static view anonymous_of(map_mode mode, std::size_t count, std::error_code* out,
                             Args&&... args) {
        return fresh(
            {.source = map_source::anonymous, .count = count, .shared = mode == map_mode::shared},
            out, std::forward<Args>(args)...);
    }

    mapping mapping_;

private:
    // A view of existing bytes: the objects are already there, only their lifetime starts.
    static view existing(map_request r, const map_options& options, std::error_code* out) {
        r.offset = options.offset;
        r.shared = options.mode == map_mode::shared;
        r.populate = options.populate;
        return make(std::move(r), out, [](void* storage, std::size_t bytes) {
            start_lifetime_as_array<element>(storage, bytes / sizeof(element));
        });
    }

    // A new view, its objects constructed in place: one from the forwarded arguments, or each
    // element of an array from the same ones.
    template <class... Args>
    static view fresh(map_request r, std::error_code* out, Args&&... args) {
        return make(std::move(r), out, [&](void* storage, std::size_t bytes) {
            auto* first = static_cast<element*>(storage);
            if constexpr (array_) {
                for (std::size_t i = 0; i < bytes / sizeof(element); ++i) {
                    std::construct_at(first + i, args...);
                }
            } else {
                std::construct_at(first, std::forward<Args>(args)...);
            }
        });
    }

    template <class Fill>
    static view make(map_request r, std::error_code* out, Fill&& fill) {
        r.element_size = sizeof(element);
        r.element_align = alignof(element);
        r.writable = !std::is_const_v<element>;
        view result;
        result.mapping_ = mapping::make(r, out, fill);
        return result;
    }
};

/// Takes the untyped mapping out of `view`, which is left empty: for a type that keeps its bytes
/// untyped, as a channel does.
template <class T>
mapping release_mapping(mapped_base<T>&& view) noexcept {
    return std::move(view.mapping_);
}

} // namespace detail

/// A typed view of one `T` in mapped memory: a file at a byte offset, a sealed memfd, or
/// anonymous memory. Move-only; unmaps on destruction; `mapped<const T>` is read-only.
template <class T>
class mapped : public detail::mapped_base<T> {
    static_assert(detail::diagnose_mappable<T>());
    using base = detail::mapped_base<T>;
    template <class... Args>
    static constexpr bool makes_ = !std::is_const_v<T> && std::constructible_from<T, Args...>;

public:
    /// The mapped type, `const` for a read-only view.
    using element_type = T;

    /// An empty view, mapping nothing.
    mapped() noexcept = default;

    /// Creates the file at `path`, its blocks allocated, holding `T(args...)` (value-initialized
    /// without arguments), and maps it shared and writable.
    template <class... Args>
    static mapped create(const std::filesystem::path& path, create_options options = {},
                         Args&&... args)
    requires makes_<Args...>
    {
        return base::create_file(path, 1, options, nullptr, std::forward<Args>(args)...);
    }
    /// As above, reporting errors through `ec`, which comes before the constructor's arguments.
    template <class... Args>
    static mapped create(const std::filesystem::path& path, create_options options,
                         std::error_code& ec, Args&&... args)
    requires makes_<Args...>
    {
        return base::create_file(path, 1, options, &ec, std::forward<Args>(args)...);
    }

    /// Creates a memfd named `name` holding `T(args...)`, sealed so that nobody can shrink or
    /// grow it, and maps it shared and writable; share it through `fd()`.
    template <class... Args>
    static mapped memfd(std::string_view name, Args&&... args)
    requires makes_<Args...>
    {
        return base::memfd_of(name, 1, nullptr, std::forward<Args>(args)...);
    }
    /// As above, reporting errors through `ec`, which comes before the constructor's arguments.
    template <class... Args>
    static mapped memfd(std::string_view name, std::error_code& ec, Args&&... args)
    requires makes_<Args...>
    {
        return base::memfd_of(name, 1, &ec, std::forward<Args>(args)...);
    }

    /// Maps anonymous memory holding `T(args...)`: shared with the children this process forks
    /// after it, or private (each child gets a copy-on-write copy).
    template <class... Args>
    static mapped anonymous(map_mode mode = map_mode::shared, Args&&... args)
    requires makes_<Args...>
    {
        return base::anonymous_of(mode, 1, nullptr, std::forward<Args>(args)...);
    }
    /// As above, reporting errors through `ec`, which comes before the constructor's arguments.
    template <class... Args>
    static mapped anonymous(map_mode mode, std::error_code& ec, Args&&... args)
    requires makes_<Args...>
    {
        return base::anonymous_of(mode, 1, &ec, std::forward<Args>(args)...);
    }

    /// The mapped object; the view must not be empty.
    T& operator*() const noexcept { return *get(); }
    /// The mapped object's members; the view must not be empty.
    T* operator->() const noexcept { return get(); }
    /// The mapped object, or null for an empty view.
    [[nodiscard]] T* get() const noexcept { return detail::object_at<T>(this->mapping_.view()); }
    /// True unless the view is empty (default-constructed, moved from, or a failed factory's).
    explicit operator bool() const noexcept { return this->mapping_.view() != nullptr; }
};

/// A typed view of an array of `T` in mapped memory: a contiguous range with container
/// vocabulary; otherwise as `mapped<T>`. An empty array maps nothing and is a valid view.
template <class T>
class mapped<T[]> : public detail::mapped_base<T[]> {
    static_assert(detail::diagnose_mappable<T>());
    using base = detail::mapped_base<T[]>;
    template <class... Args>
    static constexpr bool makes_ =
        !std::is_const_v<T> && std::constructible_from<T, const Args&...>;

public:
    /// The element type, `const` for a read-only view.
    using element_type = T;
    /// The element type without `const`.
    using value_type = std::remove_cv_t<T>;
    /// Container vocabulary: sizes, pointers, references and iterators.
    using size_type = std::size_t;
    using difference_type = std::ptrdiff_t;
    using pointer = T*;
    using reference = T&;
    using iterator = T*;

    /// An empty array, mapping nothing.
    mapped() noexcept = default;

    using base::open;
    /// Maps `count` elements from `options.offset` of the file at `path`.
    static mapped open(const std::filesystem::path& path, std::size_t count,
                       map_options options = {}) {
        return base::open_path(path, count, false, options, nullptr);
    }
    /// As above, reporting errors through `ec`.
    static mapped open(const std::filesystem::path& path, std::size_t count, map_options options,
                       std::error_code& ec) {
        return base::open_path(path, count, false, options, &ec);
    }
    /// Maps `count` elements from `options.offset` of the open file `fd` (duplicated).
    static mapped open(int fd, std::size_t count, map_options options = {}) {
        return base::open_fd(fd, count, false, options, nullptr);
    }
    /// As above, reporting errors through `ec`.
    static mapped open(int fd, std::size_t count, map_options options, std::error_code& ec) {
        return base::open_fd(fd, count, false, options, &ec);
    }

    /// Creates the file at `path` holding `count` elements, each `T(args...)`: value-initialized
    /// without arguments, copies of one value. As `mapped<T>::create` otherwise.
    template <class... Args>
    static mapped create(const std::filesystem::path& path, std::size_t count,
                         create_options options = {}, const Args&... args)
    requires makes_<Args...>
    {
        return base::create_file(path, count, options, nullptr, args...);
    }
    /// As above, reporting errors through `ec`, which comes before the constructor's arguments.
    template <class... Args>
    static mapped create(const std::filesystem::path& path, std::size_t count,
                         create_options options, std::error_code& ec, const Args&... args)
    requires makes_<Args...>
    {
        return base::create_file(path, count, options, &ec, args...);
    }

    /// Creates a sealed memfd of `count` elements, each `T(args...)`, as `mapped<T>::memfd`.
    template <class... Args>
    static mapped memfd(std::string_view name, std::size_t count, const Args&... args)
    requires makes_<Args...>
    {
        return base::memfd_of(name, count, nullptr, args...);
    }
    /// As above, reporting errors through `ec`, which comes before the constructor's arguments.
    template <class... Args>
    static mapped memfd(std::string_view name, std::size_t count, std::error_code& ec,
                        const Args&... args)
    requires makes_<Args...>
    {
        return base::memfd_of(name, count, &ec, args...);
    }

    /// Maps anonymous memory of `count` elements, each `T(args...)`, as `mapped<T>::anonymous`.
    template <class... Args>
    static mapped anonymous(std::size_t count, map_mode mode = map_mode::shared,
                            const Args&... args)
    requires makes_<Args...>
    {
        return base::anonymous_of(mode, count, nullptr, args...);
    }
    /// As above, reporting errors through `ec`, which comes before the constructor's arguments.
    template <class... Args>
    static mapped anonymous(std::size_t count, map_mode mode, std::error_code& ec,
                            const Args&... args)
    requires makes_<Args...>
    {
        return base::anonymous_of(mode, count, &ec, args...);
    }

    /// The number of elements.
    [[nodiscard]] std::size_t size() const noexcept { return size_bytes() / sizeof(T); }
    /// The length of the array in bytes.
    [[nodiscard]] std::size_t size_bytes() const noexcept { return this->mapping_.size_bytes(); }
    /// True when the array has no elements.
    [[nodiscard]] bool empty() const noexcept { return size_bytes() == 0; }
    /// The first element, or null for an empty array.
    [[nodiscard]] T* data() const noexcept { return detail::object_at<T>(this->mapping_.view()); }
    /// An iterator to the first element.
    [[nodiscard]] T* begin() const noexcept { return data(); }
    /// An iterator past the last element.
    [[nodiscard]] T* end() const noexcept { return data() + size(); }
    /// The element at `index`, which must be less than `size()`.
    T& operator[](std::size_t index) const noexcept { return data()[index]; }
    /// The element at `index`; throws `std::out_of_range` unless `index < size()`.
    T& at(std::size_t index) const {
        if (index >= size()) {
            throw std::out_of_range("mapped: at(" + std::to_string(index) + ") of " +
                                    std::to_string(size()) + " elements");
        }
        return data()[index];
    }

    /// Lengthens the array to `count` elements, extending a shared writable view's file.
    /// Invalidates every pointer, reference, iterator and span into the array: it may move.
    void grow(std::size_t count) { grow_to(count, nullptr); }
    /// As above, reporting errors through `ec`.
    void grow(std::size_t count, std::error_code& ec) { grow_to(count, &ec); }

private:
    void grow_to(std::size_t count, std::error_code* out) {
        const std::size_t old_size = size();
        this->mapping_.grow(count, sizeof(T), out);
        // The array may have moved; its new elements are bytes the program has not seen as Ts.
        if (size() != old_size) {
            detail::start_lifetime_as_array<T>(this->mapping_.view(), size());
        }
    }
};

} // namespace ringio
