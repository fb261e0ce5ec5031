#pragma once

#include <ringio/detail/lifetime.hpp>
#include <ringio/detail/mapped_base.hpp>
#include <ringio/detail/mapping.hpp>
#include <ringio/map_options.hpp>
#include <ringio/mappable.hpp>

#include <cstddef>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

namespace ringio {

/// A typed view of one `T` in mapped memory: at a byte offset of a file, in a sealed memfd, or in
/// anonymous memory. Move-only; unmaps on destruction (without msync: the kernel loses no
/// shared write). `mapped<const T>` is a read-only view (`PROT_READ`): writes do not compile.
/// Access is shallow-const, as with `std::span`: the constness is in `T`.
/// Errors (from every factory): the throwing form throws `std::system_error` whose `what()` names
/// the operation, the file and the problem; the form with a trailing `std::error_code&` sets it
/// and returns an empty view. No descriptor leaks on any error.
template <class T>
class mapped : public detail::mapped_base {
    static_assert(detail::diagnose_mappable<T>());

public:
    /// The mapped type, `const` for a read-only view.
    using element_type = T;

    /// An empty view, mapping nothing.
    mapped() noexcept = default;

    /// Maps the `T` at `options.offset` of the file at `path`; never past the file's end.
    /// Errors: ENOENT, EACCES, EISDIR; ENODEV (not a regular file: a FIFO, a socket, a device);
    /// ENXIO (the file is shorter than offset + sizeof(T)); EINVAL (the offset misaligns T);
    /// EOVERFLOW (the offset is too large).
    static mapped open(const std::filesystem::path& path, map_options options = {}) {
        return mapped(
            detail::with_objects<T>(detail::mapping::open(path, request(options), nullptr)));
    }
    /// As above, reporting errors through `ec`.
    static mapped open(const std::filesystem::path& path, map_options options,
                       std::error_code& ec) {
        return mapped(detail::with_objects<T>(detail::mapping::open(path, request(options), &ec)));
    }

    /// Maps the `T` at `options.offset` of the open file `fd`, which ringio duplicates and never
    /// closes. A shared writable view needs `fd` open for reading and writing (else EACCES).
    /// Errors: as for a path, and EBADF.
    static mapped open(int fd, map_options options = {}) {
        return mapped(
            detail::with_objects<T>(detail::mapping::open(fd, request(options), nullptr)));
    }
    /// As above, reporting errors through `ec`.
    static mapped open(int fd, map_options options, std::error_code& ec) {
        return mapped(detail::with_objects<T>(detail::mapping::open(fd, request(options), &ec)));
    }

    /// Creates the file at `path` holding `initial`, its blocks allocated (`posix_fallocate`: a
    /// full disk fails here, not with SIGBUS later), and maps it shared and writable. The file
    /// is removed again if a later step fails.
    /// Errors: EEXIST (a file there; with `replace_existing`, anything but a regular file),
    /// EFBIG (the file size limit, never SIGXFSZ), ENOSPC, EACCES, EROFS, ENOENT (no directory).
    static mapped create(const std::filesystem::path& path, const T& initial,
                         create_options options = {})
    requires(!std::is_const_v<T>)
    {
        return mapped(detail::create_mapping(path, 1, initial, options, nullptr));
    }
    /// As above, reporting errors through `ec`.
    static mapped create(const std::filesystem::path& path, const T& initial,
                         create_options options, std::error_code& ec)
    requires(!std::is_const_v<T>)
    {
        return mapped(detail::create_mapping(path, 1, initial, options, &ec));
    }

    /// Creates a memfd named `name` holding `initial`, sealed so that nobody can shrink or grow
    /// it, and maps it shared and writable. Share it through `fd()` (SCM_RIGHTS, fork, or
    /// /proc/PID/fd): whoever maps it cannot be hit by SIGBUS through truncation.
    /// Errors: EMFILE, ENOMEM, ENOSPC.
    static mapped memfd(std::string_view name, const T& initial = T{})
    requires(!std::is_const_v<T>)
    {
        return mapped(detail::memfd_mapping(name, 1, initial, nullptr));
    }
    /// As above, reporting errors through `ec`.
    static mapped memfd(std::string_view name, const T& initial, std::error_code& ec)
    requires(!std::is_const_v<T>)
    {
        return mapped(detail::memfd_mapping(name, 1, initial, &ec));
    }

    /// Maps anonymous memory holding `initial`, shared with the children this process forks
    /// after it (`MAP_SHARED | MAP_ANONYMOUS`). Errors: ENOMEM.
    static mapped anonymous_shared(const T& initial = T{})
    requires(!std::is_const_v<T>)
    {
        return mapped(detail::anonymous_mapping(map_mode::shared, 1, initial, nullptr));
    }
    /// As above, reporting errors through `ec`.
    static mapped anonymous_shared(const T& initial, std::error_code& ec)
    requires(!std::is_const_v<T>)
    {
        return mapped(detail::anonymous_mapping(map_mode::shared, 1, initial, &ec));
    }

    /// Maps anonymous memory holding `initial`, private to this process: a child forked after
    /// it gets a copy-on-write copy. Errors: ENOMEM.
    static mapped anonymous_private(const T& initial = T{})
    requires(!std::is_const_v<T>)
    {
        return mapped(detail::anonymous_mapping(map_mode::private_copy, 1, initial, nullptr));
    }
    /// As above, reporting errors through `ec`.
    static mapped anonymous_private(const T& initial, std::error_code& ec)
    requires(!std::is_const_v<T>)
    {
        return mapped(detail::anonymous_mapping(map_mode::private_copy, 1, initial, &ec));
    }

    /// The mapped object; the view must not be empty.
    T& operator*() const noexcept { return *get(); }
    /// The mapped object's members; the view must not be empty.
    T* operator->() const noexcept { return get(); }
    /// The mapped object, or null for an empty view.
    [[nodiscard]] T* get() const noexcept { return detail::object_at<T>(mapping_.view()); }
    /// True unless the view is empty (default-constructed, moved from, or a failed factory's).
    explicit operator bool() const noexcept { return mapping_.view() != nullptr; }

private:
    explicit mapped(detail::mapping m) noexcept : mapped_base(std::move(m)) {}

    static detail::map_request request(const map_options& options) {
        return detail::request_for<T>(options, 1, false);
    }
};

/// A typed view of an array of `T` in mapped memory, with container vocabulary (`size`, `data`,
/// `begin`/`end`, `operator[]`, `at`); a contiguous range, so `std::span<T> s = array;` works. As
/// `mapped<T>` otherwise: move-only, `mapped<const T[]>` read-only, the same error forms. An empty
/// array maps nothing and is a valid view.
template <class T>
class mapped<T[]> : public detail::mapped_base {
    static_assert(detail::diagnose_mappable<T>());

public:
    using element_type = T;
    using value_type = std::remove_cv_t<T>;
    using size_type = std::size_t;
    using difference_type = std::ptrdiff_t;
    using pointer = T*;
    using reference = T&;
    using iterator = T*;

    /// An empty array, mapping nothing.
    mapped() noexcept = default;

    /// Maps every `T` that fits in the file at `path` from `options.offset` on (none when the
    /// offset is the file's size). Errors: as `mapped<T>::open`; ENXIO when the offset is past
    /// the end of the file.
    static mapped open(const std::filesystem::path& path, map_options options = {}) {
        return adopt(detail::mapping::open(path, whole(options), nullptr));
    }
    /// As above, reporting errors through `ec`.
    static mapped open(const std::filesystem::path& path, map_options options,
                       std::error_code& ec) {
        return adopt(detail::mapping::open(path, whole(options), &ec));
    }
    /// Maps `count` elements of `T` from `options.offset` of the file at `path`. Errors: as
    /// `mapped<T>::open`; ENXIO when the file is shorter than offset + sizeof(T) * count;
    /// EOVERFLOW when that overflows.
    static mapped open(const std::filesystem::path& path, std::size_t count,
                       map_options options = {}) {
        return adopt(detail::mapping::open(path, request(options, count), nullptr));
    }
    /// As above, reporting errors through `ec`.
    static mapped open(const std::filesystem::path& path, std::size_t count, map_options options,
                       std::error_code& ec) {
        return adopt(detail::mapping::open(path, request(options, count), &ec));
    }

    /// Maps every `T` that fits in the open file `fd` (duplicated, never closed by ringio).
    static mapped open(int fd, map_options options = {}) {
        return adopt(detail::mapping::open(fd, whole(options), nullptr));
    }
    /// As above, reporting errors through `ec`.
    static mapped open(int fd, map_options options, std::error_code& ec) {
        return adopt(detail::mapping::open(fd, whole(options), &ec));
    }
    /// Maps `count` elements of `T` of the open file `fd` (duplicated, never closed by ringio).
    static mapped open(int fd, std::size_t count, map_options options = {}) {
        return adopt(detail::mapping::open(fd, request(options, count), nullptr));
    }
    /// As above, reporting errors through `ec`.
    static mapped open(int fd, std::size_t count, map_options options, std::error_code& ec) {
        return adopt(detail::mapping::open(fd, request(options, count), &ec));
    }

    /// Creates the file at `path` holding `count` copies of `initial`, as `mapped<T>::create`.
    static mapped create(const std::filesystem::path& path, std::size_t count,
                         const value_type& initial = value_type{}, create_options options = {})
    requires(!std::is_const_v<T>)
    {
        return mapped(detail::create_mapping(path, count, initial, options, nullptr));
    }
    /// As above, reporting errors through `ec`.
    static mapped create(const std::filesystem::path& path, std::size_t count,
                         const value_type& initial, create_options options, std::error_code& ec)
    requires(!std::is_const_v<T>)
    {
        return mapped(detail::create_mapping(path, count, initial, options, &ec));
    }

    /// Creates a sealed memfd holding `count` copies of `initial`, as `mapped<T>::memfd`. It
    /// cannot grow.
    static mapped memfd(std::string_view name, std::size_t count,
                        const value_type& initial = value_type{})
    requires(!std::is_const_v<T>)
    {
        return mapped(detail::memfd_mapping(name, count, initial, nullptr));
    }
    /// As above, reporting errors through `ec`.
    static mapped memfd(std::string_view name, std::size_t count, const value_type& initial,
                        std::error_code& ec)
    requires(!std::is_const_v<T>)
    {
        return mapped(detail::memfd_mapping(name, count, initial, &ec));
    }

    /// Maps anonymous memory holding `count` copies of `initial`, shared with children forked
    /// after it. It cannot grow: the kernel fixes its size.
    static mapped anonymous_shared(std::size_t count, const value_type& initial = value_type{})
    requires(!std::is_const_v<T>)
    {
        return mapped(detail::anonymous_mapping(map_mode::shared, count, initial, nullptr));
    }
    /// As above, reporting errors through `ec`.
    static mapped anonymous_shared(std::size_t count, const value_type& initial,
                                   std::error_code& ec)
    requires(!std::is_const_v<T>)
    {
        return mapped(detail::anonymous_mapping(map_mode::shared, count, initial, &ec));
    }

    /// Maps anonymous memory holding `count` copies of `initial`, private to this process.
    static mapped anonymous_private(std::size_t count, const value_type& initial = value_type{})
    requires(!std::is_const_v<T>)
    {
        return mapped(detail::anonymous_mapping(map_mode::private_copy, count, initial, nullptr));
    }
    /// As above, reporting errors through `ec`.
    static mapped anonymous_private(std::size_t count, const value_type& initial,
                                    std::error_code& ec)
    requires(!std::is_const_v<T>)
    {
        return mapped(detail::anonymous_mapping(map_mode::private_copy, count, initial, &ec));
    }

    /// The number of elements.
    [[nodiscard]] std::size_t size() const noexcept { return mapping_.size_bytes() / sizeof(T); }
    /// The length of the array in bytes.
    [[nodiscard]] std::size_t size_bytes() const noexcept { return mapping_.size_bytes(); }
    /// True when the array has no elements.
    [[nodiscard]] bool empty() const noexcept { return mapping_.size_bytes() == 0; }
    /// The first element, or null for an empty array.
    [[nodiscard]] T* data() const noexcept { return detail::object_at<T>(mapping_.view()); }
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
    /// Lengthens the array to `count` elements; the new ones hold the file's bytes (zero bytes
    /// where ringio extends the file, or for anonymous private memory). A shared writable view
    /// extends its file (`posix_fallocate`); any other view needs the file long enough already.
    /// Invalidates every pointer, reference, iterator and span into the array: it may move.
    /// Other processes' views keep their size until they grow too.
    /// Errors: EINVAL (fewer elements than now), ENXIO (the file is too short for a read-only or
    /// private view), ENOSPC, EFBIG (the file size limit, never SIGXFSZ), EOVERFLOW, ENOTSUP
    /// (anonymous shared memory), EPERM (a sealed memfd).
    void grow(std::size_t count) { grow_to(count, nullptr); }
    /// As above, reporting errors through `ec`.
    void grow(std::size_t count, std::error_code& ec) { grow_to(count, &ec); }

private:
    explicit mapped(detail::mapping m) noexcept : mapped_base(std::move(m)) {}

    static mapped adopt(detail::mapping m) { return mapped(detail::with_objects<T>(std::move(m))); }

    static detail::map_request request(const map_options& options, std::size_t count) {
        return detail::request_for<T>(options, count, false);
    }
    static detail::map_request whole(const map_options& options) {
        return detail::request_for<T>(options, 0, true);
    }

    void grow_to(std::size_t count, std::error_code* out) {
        const std::size_t old_size = size();
        mapping_.grow(count, sizeof(T), out);
        // The array may have moved; its new elements are bytes the program has not seen as Ts.
        if (size() != old_size) {
            detail::start_lifetime_as_array<T>(mapping_.view(), size());
        }
    }
};

} // namespace ringio
