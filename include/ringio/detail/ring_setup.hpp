#pragma once

#include <ringio/detail/error.hpp>

#include <liburing.h>

#include <cerrno>
#include <span>
#include <string>

namespace ringio::detail {

/// The setup flags to try, fastest first; the last is a plain ring, which every kernel with
/// io_uring accepts. `fast` false: the plain ring alone.
inline std::span<const unsigned> candidate_setup_flags(bool fast) noexcept {
    // DEFER_TASKRUN (6.1) runs completion work only when this thread waits, which keeps it off
    // other threads and halves the CPU per request on loopback; R_DISABLED lets the loop
    // thread, not the constructing one, become the single issuer.
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

/// Sets `ring` up with `entries` SQ and `cq_entries` CQ entries and the first flags of
/// `candidate_setup_flags(fast)` that the running kernel accepts.
/// Errors: `std::system_error` saying why io_uring is unavailable.
inline void setup_ring(io_uring& ring, unsigned entries, unsigned cq_entries, bool fast) {
    int result = -EINVAL;
    for (unsigned flags : candidate_setup_flags(fast)) {
        io_uring_params params{};
        params.flags = flags | IORING_SETUP_CQSIZE;
        params.cq_entries = cq_entries;
        result = io_uring_queue_init_params(entries, &ring, &params);
        // EINVAL means "not this combination of flags": try the next, simpler one.
        if (result != -EINVAL) {
            break;
        }
    }
    if (result < 0) {
        throw_error(error_from_result(result), setup_failure(result));
    }
}

} // namespace ringio::detail
