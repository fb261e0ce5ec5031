#pragma once

// completion: what a CQE is handed to, named by its `user_data`.

#include <liburing.h>

#include <cstdint>

namespace ringio::detail {

/// Receives completions: its address is the `user_data` of the SQEs it submits, and `complete`
/// is called once per CQE. Bit 0 of `user_data` is free for the owner to tag a second SQE.
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

} // namespace ringio::detail
