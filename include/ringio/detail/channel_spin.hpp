#pragma once

// channel_spin: how long an end of a channel looks again before it sleeps, and how it pauses
// between two looks.

#include <chrono>

namespace ringio::detail {

#ifndef RINGIO_SPIN_PAUSES
#define RINGIO_SPIN_PAUSES 8
#endif
/// How long an end spins before it sleeps: a peer on another core often answers sooner than a
/// futex wake-up would arrive.
inline constexpr std::chrono::microseconds spin_time{10};

/// The spin of one wait: `more()` pauses and says yes until `spin_time` after its first call.
class spinner {
public:
    [[nodiscard]] bool started() const noexcept { return end_ != clock::time_point{}; }
    bool more() noexcept {
        const auto now = clock::now();
        if (!started()) {
            end_ = now + spin_time;
        } else if (now >= end_) {
            return false;
        }
        // Pauses between two looks at the other end's count: each look pulls its cache line
        // over, which the other end must then take back to write its next count.
        for (int i = 0; i < RINGIO_SPIN_PAUSES; ++i) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#elif defined(__aarch64__)
            __asm__ __volatile__("yield");
#endif
        }
        return true;
    }

private:
    using clock = std::chrono::steady_clock;
    clock::time_point end_{};
};

} // namespace ringio::detail
