#pragma once

/// Object lifetime in mapped storage: the implicit-lifetime trait and starting objects' lifetime.

#include <atomic>
#include <cstddef>
#include <memory>
#include <new>
#include <type_traits>

namespace ringio::detail {

/// True when objects of `T` can come into being without a constructor call, by the creation of
/// suitable storage: the C++23 trait where the library has it, else its C++20 definition.
template <class T>
inline constexpr bool is_implicit_lifetime_v =
#if defined(__cpp_lib_is_implicit_lifetime)
    std::is_implicit_lifetime_v<T>;
#else
    std::is_scalar_v<T> || std::is_array_v<T> ||
    ((std::is_class_v<T> || std::is_union_v<T>)&&std::is_trivially_destructible_v<T> &&
     (std::is_aggregate_v<T> || std::is_trivially_default_constructible_v<T> ||
      std::is_trivially_copy_constructible_v<T> || std::is_trivially_move_constructible_v<T>));
#endif

/// True for `std::atomic<U>` and `std::atomic_flag`, which g++ and clang call trivially copyable.
template <class T>
inline constexpr bool is_std_atomic_v = std::is_same_v<T, std::atomic_flag>;
template <class U>
inline constexpr bool is_std_atomic_v<std::atomic<U>> = true;

/// Starts the lifetime of `count` objects of `T` in mapped storage whose bytes hold their values,
/// reading and writing nothing: the one place where mapped bytes become objects.
template <class T>
T* start_lifetime_as_array(void* storage, std::size_t count) noexcept {
#if defined(__cpp_lib_start_lifetime_as)
    return std::start_lifetime_as_array<T>(storage, count);
#else
    // The storage comes from mmap or mremap, which the compiler cannot see into; the asm, which
    // may read and write every byte, extends that to storage the program has seen before.
    static_cast<void>(count);
    __asm__ __volatile__("" : : "r"(storage) : "memory");
    return std::launder(static_cast<T*>(storage));
#endif
}

/// The object of type `T` whose lifetime ringio started at `storage`, or null for no storage.
template <class T>
T* object_at(void* storage) noexcept {
    return storage == nullptr ? nullptr : std::launder(static_cast<T*>(storage));
}

} // namespace ringio::detail
