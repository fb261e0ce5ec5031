#pragma once

// channel_blocking: a channel's blocking send and receive: a short spin, then sleeps on the end's
// bell in slices, between which the other end's process is checked.

#include <ringio/detail/channel_end.hpp>
#include <ringio/detail/channel_layout.hpp>
#include <ringio/detail/chrono.hpp>
#include <ringio/detail/futex.hpp>

#include <cerrno>
#include <cstdint>
#include <ctime>
#include <optional>

namespace ringio::detail {

#ifndef RINGIO_SPIN_PAUSES
#define RINGIO_SPIN_PAUSES 8
#endif
/// A pause between two looks at the other end's count while spinning: each look pulls its cache
/// line over, which the other end must then take back to write its next count.
inline void spin_pause() noexcept {
    for (int i = 0; i < RINGIO_SPIN_PAUSES; ++i) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        __asm__ __volatile__("yield");
#endif
    }
}

/// How long a blocking wait sleeps before it checks that the other end's process still runs.
inline constexpr std::chrono::milliseconds liveness_slice{50};
/// How long a blocking wait spins before it sleeps: a peer on another core often answers sooner
/// than a futex wake-up would arrive.
inline constexpr std::chrono::microseconds spin_time{10};

/// The absolute CLOCK_MONOTONIC time `deadline`, for a futex.
inline ::timespec timespec_at(std::chrono::steady_clock::time_point deadline) noexcept {
    const auto ns = std::chrono::nanoseconds(deadline.time_since_epoch()).count();
    return {.tv_sec = ns / 1'000'000'000, .tv_nsec = ns % 1'000'000'000};
}

/// The blocking sleep of an end that found nothing to do: on its bell, for at most a liveness
/// slice or until `deadline`. True when the time ran out (the caller looks at its deadline and at
/// its peer's life), false when woken or when there is already something to look at.
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

/// Publishes `record`, waiting while the channel is full: EPIPE once the receiver has closed or
/// its process has ended, ETIME at `deadline` (none if null).
template <class T>
void send_blocking(channel_end& end, const T& record,
                   const std::chrono::steady_clock::time_point* deadline) {
    const auto spin_end = std::chrono::steady_clock::now() + spin_time;
    for (;;) {
        check_end(end, "send to");
        if (put_record(end, record)) {
            return;
        }
        if (std::chrono::steady_clock::now() < spin_end) {
            spin_pause();
            continue;
        }
        if (!doze(end, deadline)) {
            continue;
        }
        if (deadline != nullptr && std::chrono::steady_clock::now() >= *deadline) {
            if (put_record(end, record)) {
                return;
            }
            channel_fail(end, "send to", ETIME);
        }
        if (end.peer_gone()) {
            channel_fail(end, "send to", EPIPE);
        }
    }
}

/// The next record, waiting for one: nullopt once the sender has closed and every record it sent
/// was taken, ECONNRESET if its process ended without closing, ETIME at `deadline` (none if null).
template <class T>
std::optional<T> receive_blocking(channel_end& end,
                                  const std::chrono::steady_clock::time_point* deadline) {
    check_end(end, "receive from");
    std::optional<T> record;
    const auto spin_end = std::chrono::steady_clock::now() + spin_time;
    for (;;) {
        if (take_record(end, record)) {
            return record;
        }
        // The sender closes after its last publish: once closed is seen, what it sent is.
        if (end.peer_state() == end_state::closed) {
            take_record(end, record);
            return record;
        }
        if (std::chrono::steady_clock::now() < spin_end) {
            spin_pause();
            continue;
        }
        if (!doze(end, deadline)) {
            continue;
        }
        if (deadline != nullptr && std::chrono::steady_clock::now() >= *deadline) {
            if (take_record(end, record)) {
                return record;
            }
            channel_fail(end, "receive from", ETIME);
        }
        if (end.peer_gone()) {
            if (take_record(end, record)) {
                return record; // what it published before it ended still arrives
            }
            channel_fail(end, "receive from", ECONNRESET);
        }
    }
}

} // namespace ringio::detail
