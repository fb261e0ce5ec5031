#pragma once

// bytes: any contiguous range of bytes or characters, seen as the bytes a read or write moves.

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <span>
#include <type_traits>

namespace ringio::detail {

template <class T>
concept byte_sized = sizeof(T) == 1 && (std::is_integral_v<T> || std::is_enum_v<T>);

/// A contiguous range of byte-sized elements: `std::string`, `std::string_view`, `std::span<char>`,
/// arrays, `std::vector<std::byte>`.
template <class R>
concept byte_range = requires(R& r) {
    std::data(r);
    std::size(r);
} && byte_sized<std::remove_cvref_t<decltype(*std::data(std::declval<R&>()))>>;

/// A byte range whose bytes can be written into (a read's destination).
template <class R>
concept mutable_byte_range =
    byte_range<R> &&
    !std::is_const_v<std::remove_reference_t<decltype(*std::data(std::declval<R&>()))>>;

/// The bytes of `range`; a string literal (an array of `const char`) without its NUL.
template <byte_range R>
std::span<const std::byte> bytes_of(R&& range) noexcept {
    using array = std::remove_reference_t<R>;
    std::size_t size = std::size(range);
    if constexpr (std::is_array_v<array> &&
                  std::is_same_v<std::remove_extent_t<array>, const char>) {
        if (size > 0 && range[size - 1] == '\0') {
            --size;
        }
    }
    return {reinterpret_cast<const std::byte*>(std::data(range)), size};
}

/// The bytes of `range`, to be written into.
template <mutable_byte_range R>
std::span<std::byte> writable_bytes_of(R& range) noexcept {
    return {reinterpret_cast<std::byte*>(std::data(range)), std::size(range)};
}

/// "At the current file position": what pipes, sockets and terminals need.
inline constexpr std::uint64_t current_position = ~std::uint64_t{0};

/// The most one submission moves: what an int result can report.
inline unsigned clamp_size(std::size_t size) noexcept {
    constexpr std::size_t most = std::size_t{1} << 30;
    return static_cast<unsigned>(size < most ? size : most);
}

} // namespace ringio::detail
