#pragma once

// error: the one place a kernel result becomes an error code, and how errors are reported.

#include <cerrno>
#include <string>
#include <system_error>
#include <type_traits>

namespace ringio::detail {

/// Converts a negative kernel result (`-errno`, as io_uring reports it) to an error code.
/// This is the one place where a negative result becomes an error.
inline std::error_code error_from_result(int result) noexcept {
    return {-result, std::system_category()};
}

/// The error code for the current `errno`, read right after a failed system call.
inline std::error_code last_error() noexcept {
    return {errno, std::system_category()};
}

/// Throws `std::system_error` whose message starts with `what` (the operation and its subject,
/// e.g. "connect 127.0.0.1:9") and ends with the error's description.
[[noreturn]] inline void throw_error(std::error_code ec, const std::string& what) {
    throw std::system_error(ec, what);
}

/// Clears the caller's error code after a success, for the non-throwing forms.
inline void clear(std::error_code* out) noexcept {
    if (out != nullptr && *out) {
        out->clear();
    }
}

/// Reports `ec` through `out` when the caller chose the non-throwing form (`out` is not null),
/// else throws it, naming `what`.
inline void report(std::error_code ec, std::error_code* out, const std::string& what) {
    if (out != nullptr) {
        *out = ec;
        return;
    }
    throw_error(ec, what);
}

/// As above, calling `describe()` for the name only when it is thrown: an error stored through
/// `out` (a cancelled wait in a loop) builds no message, and so allocates nothing.
template <class Describe>
requires std::is_invocable_r_v<std::string, Describe&>
void report(std::error_code ec, std::error_code* out, Describe&& describe) {
    if (out != nullptr) {
        *out = ec;
        return;
    }
    throw_error(ec, describe());
}

} // namespace ringio::detail
