#pragma once

// completion: what a CQE is handed to, named by its `user_data`.

#include <liburing.h>

#include <cstdint>

namespace ringio::detail {

/// Receives completions: its address is the `user_data` of the SQEs it submits, untagged, and
/// `complete` is called once per CQE. A request with a second SQE has a second completion.
struct completion {
    // Not noexcept, so that a completion can end in a jump to a coroutine's resumption (a
    // noexcept one must catch what a call throws); a task keeps its exceptions in its promise.
    using complete_fn = void (*)(completion* self, const io_uring_cqe& cqe);
    complete_fn complete;

    /// This completion's `user_data`.
    [[nodiscard]] std::uint64_t user_data() const noexcept {
        return reinterpret_cast<std::uintptr_t>(this);
    }
};

/// The second completion of a request with a linked timeout: the timeout's.
struct timeout_completion : completion {};

inline void ignore_completion(completion* /*self*/, const io_uring_cqe& /*cqe*/) noexcept {}

/// What the CQEs of requests nobody waits for (a cancel, a close) are handed to: nothing.
inline constinit completion unwatched{&ignore_completion};

} // namespace ringio::detail
