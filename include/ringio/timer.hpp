#pragma once

#include <ringio/detail/chrono.hpp>
#include <ringio/detail/operation.hpp>
#include <ringio/io_context.hpp>

#include <liburing.h>

#include <string>
#include <system_error>

namespace ringio {

namespace detail {

/// IORING_OP_TIMEOUT with no completion count: a pure timer.
struct sleep_op {
    __kernel_timespec duration;

    void prepare(io_uring_sqe* sqe) noexcept { io_uring_prep_timeout(sqe, &duration, 0, 0); }

    // Expiry is the timer's success; any other result (ECANCELED) stays an error.
    static int translate(int result) noexcept { return result == -ETIME ? 0 : result; }

    void complete(int /*result*/) const noexcept {}

    [[nodiscard]] std::string describe() const { return "sleep_for"; }
};

template <class Rep, class Period>
__kernel_timespec to_timespec(std::chrono::duration<Rep, Period> duration) noexcept {
    const auto total = std::chrono::duration_cast<std::chrono::nanoseconds>(duration);
    const auto positive = total.count() > 0 ? total : std::chrono::nanoseconds{0};
    const auto seconds = std::chrono::floor<std::chrono::seconds>(positive);
    return {seconds.count(), (positive - seconds).count()};
}

} // namespace detail

/// The awaitable `sleep_for` returns.
using sleep_operation = detail::operation<detail::sleep_op>;

/// Suspends the awaiting coroutine for `duration` (a negative duration counts as zero) without
/// blocking the thread: one `IORING_OP_TIMEOUT` on `context`'s ring.
/// Completes with: nothing. Errors: `ECANCELED` when cancelled.
/// Kernel: 5.4. See: io_uring_prep_timeout(3).
template <class Rep, class Period>
sleep_operation sleep_for(io_context& context, std::chrono::duration<Rep, Period> duration) {
    return sleep_operation{context, nullptr, detail::to_timespec(duration)};
}

/// As `sleep_for` above; a cancellation is stored in `error` instead of thrown.
template <class Rep, class Period>
sleep_operation sleep_for(io_context& context, std::chrono::duration<Rep, Period> duration,
                          std::error_code& error) {
    return sleep_operation{context, &error, detail::to_timespec(duration)};
}

} // namespace ringio
