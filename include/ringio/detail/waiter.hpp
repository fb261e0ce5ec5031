#pragma once

// waiter: what a slot hands its consumers (an entry, given to a waiter) and what a kind of
// stream contributes to its slot.

#include <liburing.h>

#include <coroutine>
#include <cstdint>

namespace ringio::detail {

/// One CQE, kept until its consumer takes it.
struct entry {
    int result;
    std::uint32_t flags;
};

/// The flag of the entry a cancelled wait gets: an error of that wait, not of the stream.
inline constexpr std::uint32_t wait_cancelled = 1U << 15;

/// A consumer suspended on a slot; it lives in its awaitable, in the coroutine frame, and is
/// written when it waits. Whatever resumes it hands it `got` first.
struct waiter {
    void* frame; ///< the address of the suspended coroutine
    waiter* next;
    entry got;
    const void* under; ///< the signal whose cancel stops it through its owner, or null

    void resume() const { std::coroutine_handle<>::from_address(frame).resume(); }
};

class slot;

/// What one kind of stream contributes; plain function pointers, so that slots are not templates.
struct slot_kind {
    void (*arm)(slot& self, io_uring_sqe* sqe) noexcept;    ///< its SQE on self.fd(), but addr3
    void (*release)(slot& self, const entry& got) noexcept; ///< frees what nobody took
    void (*starve)(slot& self) noexcept;                    ///< ENOBUFS: wait for buffers
    void (*forget)(slot& self) noexcept;                    ///< stop waiting for buffers
    bool multishot;                                         ///< else re-armed per completion
};

} // namespace ringio::detail
