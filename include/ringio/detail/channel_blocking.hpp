#pragma once

// channel_blocking: a channel's blocking send and receive: a short spin, then sleeps on the end's
// bell in slices, between which the other end's process is checked.

#include <ringio/detail/channel_end.hpp>
#include <ringio/detail/channel_layout.hpp>
#include <ringio/detail/channel_spin.hpp>
#include <ringio/detail/chrono.hpp>
#include <ringio/detail/futex.hpp>

#include <cerrno>
#include <cstdint>
#include <ctime>
#include <optional>

namespace ringio::detail {

/// How long a blocking wait sleeps before it checks that the other end's process still runs.
inline constexpr std::chrono::milliseconds liveness_slice{50};

/// The absolute CLOCK_MONOTONIC time `deadline`, for a futex.
inline ::timespec timespec_at(std::chrono::steady_clock::time_point deadline) noexcept {
    const auto ns = std::chrono::nanoseconds(deadline.time_since_epoch()).count();
    return {.tv_sec = ns / 1'000'000'000, .tv_nsec = ns % 1'000'000'000};
}

/// The blocking sleep of an end that found nothing to do: on its bell, for at most a liveness
/// slice or until `deadline`; true when the time ran out, false when woken or not needed.
// On true the caller looks at its deadline and at its peer's life.
inline bool doze(channel_end& end, const std::chrono::steady_clock::time_point* deadline) noexcept {
    const std::uint32_t rung = end.arm();
    if (end.refresh() || end.peer_state() == end_state::closed) {
        return false;
    }
    auto until = std::chrono::steady_clock::now() + liveness_slice;
    if (deadline != nullptr && *deadline < until) {
        until = *deadline;
    }
    const ::timespec at = timespec_at(until);
    return futex_wait(&end.bell().rings, rung, &at) == -ETIMEDOUT;
}

/// What a blocking end that found nothing to do learns from one spin or sleep.
enum class blocked { look_again, timed_out, peer_gone };

/// Spins, then sleeps on the end's bell for a slice; says why the caller should look again.
inline blocked block(channel_end& end, spinner& spin,
                     const std::chrono::steady_clock::time_point* deadline) noexcept {
    if (spin.more() || !doze(end, deadline)) {
        return blocked::look_again;
    }
    if (deadline != nullptr && std::chrono::steady_clock::now() >= *deadline) {
        return blocked::timed_out;
    }
    return end.peer_gone() ? blocked::peer_gone : blocked::look_again;
}

/// Waits until `attempt()` succeeds, as a blocking send does: EPIPE once the receiver has closed
/// or its process has ended, ETIME at `deadline` (none if null).
template <class Attempt>
void send_when(channel_end& end, const std::chrono::steady_clock::time_point* deadline,
               Attempt attempt) {
    spinner spin;
    for (;;) {
        check_end(end, "send to");
        if (attempt()) {
            return;
        }
        if (wait_for_room(end, [&spin] { return spin.more(); })) {
            continue;
        }
        const blocked why = block(end, spin, deadline);
        if (why == blocked::timed_out && attempt()) {
            return;
        }
        if (why != blocked::look_again) {
            channel_fail(end, "send to", why == blocked::timed_out ? ETIME : EPIPE);
        }
    }
}

/// Waits until `attempt()` succeeds, as a blocking receive does: false once the sender closed and
/// all it sent was taken; ECONNRESET if its process ended unclosed, ETIME at `deadline` (if any).
template <class Attempt>
bool receive_when(channel_end& end, const std::chrono::steady_clock::time_point* deadline,
                  Attempt attempt) {
    check_end(end, "receive from");
    spinner spin;
    for (;;) {
        if (attempt()) {
            return true;
        }
        // The sender closes after its last publish: once closed is seen, what it sent is.
        if (end.peer_state() == end_state::closed) {
            return attempt();
        }
        const blocked why = block(end, spin, deadline);
        // What the sender published before the time ran out, or before it ended, still arrives.
        if (why != blocked::look_again && !attempt()) {
            channel_fail(end, "receive from", why == blocked::timed_out ? ETIME : ECONNRESET);
        }
        if (why != blocked::look_again) {
            return true;
        }
    }
}

/// Publishes `record`, waiting while the channel is full; as `send_when` otherwise.
template <class T>
void send_blocking(channel_end& end, const T& record,
                   const std::chrono::steady_clock::time_point* deadline) {
    send_when(end, deadline, [&] { return put_record(end, record); });
}

/// The next record, waiting for one; nullopt at the end of the channel, as `receive_when` says.
template <class T>
std::optional<T> receive_blocking(channel_end& end,
                                  const std::chrono::steady_clock::time_point* deadline) {
    std::optional<T> record;
    receive_when(end, deadline, [&] { return take_record(end, record); });
    return record;
}

} // namespace ringio::detail
