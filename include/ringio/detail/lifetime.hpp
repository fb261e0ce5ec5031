#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <new>
#include <type_traits>

namespace ringio::detail {

/// True when `T` is an implicit-lifetime type: one whose objects can come into being without a
/// constructor call, by the creation of suitable storage. Uses the standard trait where the
/// library has it (C++23), else the C++20 definition ([class.prop]/9) spelled with C++20 traits.
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

/// True for `std::atomic<U>` and `std::atomic_flag`, which `mappable` rejects with a message of
/// its own: g++ and clang both call `std::atomic<int>` trivially copyable.
template <class T>
inline constexpr bool is_std_atomic_v = std::is_same_v<T, std::atomic_flag>;
template <class U>
inline constexpr bool is_std_atomic_v<std::atomic<U>> = true;

/// Starts the lifetime of an array of `count` objects of type `T` in mapped storage whose bytes
/// already hold their values, and returns a pointer to its first element. Reads and writes
/// nothing: the bytes, and so the values, stay as they are.
///
/// This is the one place where ringio turns mapped bytes into objects.
/// `std::start_lifetime_as_array` (C++23) is used where the library has it. Otherwise: the storage
/// comes from `mmap` or `mremap`, calls the compiler cannot see into, so it cannot assume anything
/// about the objects there (as with `malloc` before C++20 named it); the empty `asm` statement,
/// which may read and write every byte, extends that to storage the program has seen before;
/// `std::launder` then yields a pointer to the object at that address. See docs/design.md, "Object
/// lifetime", for why `std::memmove(p, p, n)` is not used.
template <class T>
T* start_lifetime_as_array(void* storage, std::size_t count) noexcept {
#if defined(__cpp_lib_start_lifetime_as)
    return std::start_lifetime_as_array<T>(storage, count);
#else
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
