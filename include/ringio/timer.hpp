#pragma once

// timer: sleep_for, a coroutine's pause that does not block the thread.

#include <ringio/detail/chrono.hpp>
#include <ringio/io_context.hpp>
#include <ringio/operation.hpp>

#include <liburing.h>

#include <cerrno>
#include <string>

namespace ringio {

namespace detail {

/// IORING_OP_TIMEOUT with no completion count: a pure timer.
struct sleep_op {
    __kernel_timespec duration;

    void prepare(io_uring_sqe* sqe) noexcept { io_uring_prep_timeout(sqe, &duration, 0, 0); }
    // Expiry is the timer's success; any other result (ECANCELED) stays an error.
    static int translate(int result) noexcept { return result == -ETIME ? 0 : result; }
    void complete(int /*result*/) const noexcept {}
    [[nodiscard]] static std::string describe() { return "sleep_for"; }
};

template <class Rep, class Period>
__kernel_timespec to_timespec(std::chrono::duration<Rep, Period> duration) noexcept {
    const auto total = std::chrono::duration_cast<std::chrono::nanoseconds>(duration);
    const auto positive = total.count() > 0 ? total : std::chrono::nanoseconds{0};
    const auto seconds = std::chrono::floor<std::chrono::seconds>(positive);
    return {seconds.count(), (positive - seconds).count()};
}

} // namespace detail

/// Suspends the awaiting coroutine for `duration` (negative counts as zero).
template <class Rep, class Period>
auto sleep_for(io_context& context, std::chrono::duration<Rep, Period> duration) {
    return operation<detail::sleep_op>(context, detail::to_timespec(duration));
}

} // namespace ringio
