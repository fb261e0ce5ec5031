#pragma once

/// The concept `mappable`: the types whose objects can live in mapped memory.

#include <ringio/detail/lifetime.hpp>

#include <type_traits>

namespace ringio {

namespace detail {

// Element-level conditions, applied through arrays: a mapped `int*[4]` is as meaningless as an
// `int*`.
template <class E>
inline constexpr bool mappable_element_v =
    !std::is_pointer_v<E> && !std::is_member_function_pointer_v<E> && !is_std_atomic_v<E> &&
    std::is_trivially_copyable_v<E> && is_implicit_lifetime_v<E>;

} // namespace detail

/// True for object types that are trivially copyable and implicit-lifetime, hold no pointer as an
/// element, are not `std::atomic`, and are neither const nor volatile.
template <class T>
concept mappable = std::is_object_v<T> && !std::is_const_v<T> && !std::is_volatile_v<T> &&
                   detail::mappable_element_v<std::remove_all_extents_t<T>>;

namespace detail {

// The checks of `mappable` one by one, each with the reason and the way out. `const T` is the
// read-only view of a mappable `T`.
template <class T>
consteval bool diagnose_mappable() {
    using E = std::remove_all_extents_t<std::remove_const_t<T>>;
    static_assert(std::is_object_v<T>, "mapped<T>: T must be an object type");
    static_assert(!std::is_volatile_v<E>,
                  "mapped<T>: volatile orders nothing between processes; map a plain type and use "
                  "ringio::shared_atomic_ref for fields that another process changes");
    static_assert(!is_std_atomic_v<std::remove_cv_t<E>>,
                  "mapped<T>: std::atomic is not an implicit-lifetime type in C++20 and cannot "
                  "live in mapped memory; map a plain integer and use ringio::shared_atomic_ref "
                  "(<ringio/shared_atomic_ref.hpp>) for atomic access and cross-process wait");
    static_assert(!std::is_pointer_v<E> && !std::is_member_function_pointer_v<E>,
                  "mapped<T>: an address means nothing in another process or another mapping");
    static_assert(std::is_trivially_copyable_v<E>,
                  "mapped<T>: T must be trivially copyable: its bytes must be its value");
    static_assert(is_implicit_lifetime_v<E>,
                  "mapped<T>: T must be an implicit-lifetime type (an aggregate, or a class with "
                  "a trivial constructor and destructor)");
    return mappable<std::remove_const_t<T>>;
}

} // namespace detail

} // namespace ringio
