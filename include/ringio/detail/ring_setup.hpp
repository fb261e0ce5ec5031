#pragma once

// ring_setup: how a ring is set up (the flags to try, fastest first) and what a failure means.

#include <liburing.h>

#include <cerrno>
#include <span>
#include <string>

namespace ringio::detail {

/// The setup flags to try, fastest first; the last is a plain ring every kernel accepts.
inline std::span<const unsigned> candidate_setup_flags(bool fast) noexcept {
    // DEFER_TASKRUN (6.1) runs completion work only when this thread waits, keeping it off other
    // threads; R_DISABLED lets the loop thread, not the constructing one, be the single issuer.
    static constexpr unsigned fastest[] = {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
                                               IORING_SETUP_R_DISABLED | IORING_SETUP_SUBMIT_ALL,
                                           IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG |
                                               IORING_SETUP_SUBMIT_ALL,
                                           IORING_SETUP_SUBMIT_ALL, 0};
    static constexpr unsigned plain[] = {0};
    return fast ? std::span<const unsigned>(fastest) : std::span<const unsigned>(plain);
}

/// What a failed io_uring_setup means for the user, in words (`result` is -errno).
inline std::string setup_failure(int result) {
    switch (-result) {
    case EPERM:
        return "io_context: io_uring is not permitted here (sysctl kernel.io_uring_disabled "
               "or a seccomp filter)";
    case ENOSYS:
        return "io_context: this kernel has no io_uring (Linux 5.1 or newer is needed)";
    case ENOMEM:
        return "io_context: not enough locked memory for the ring (raise ulimit -l or use "
               "fewer entries)";
    default:
        return "io_context: io_uring_setup";
    }
}

} // namespace ringio::detail
