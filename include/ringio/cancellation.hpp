#pragma once

// cancellation: a signal that cancels every operation awaited with `cancel_on` it, from any
// coroutine of the context's thread.

#include <system_error>
#include <utility>

namespace ringio {

class cancellation;

namespace detail {

/// An awaitable waiting under a cancellation: linked while it waits, told if cancelled. Only
/// `next` says whether it is linked; the rest is written when it is.
struct cancel_link {
    void (*cancel)(void* target) noexcept;
    void* target;
    cancel_link* prev;
    cancel_link* next = nullptr;
};

/// The awaitables waiting under one cancellation: a ring of links through a sentinel, so that
/// linking and unlinking never test for an end.
class cancellation_list {
public:
    cancellation_list() noexcept { head_.prev = head_.next = &head_; }
    cancellation_list(const cancellation_list&) = delete;
    cancellation_list& operator=(const cancellation_list&) = delete;

    void link(cancel_link& node) noexcept {
        node.prev = &head_;
        node.next = head_.next;
        head_.next->prev = &node;
        head_.next = &node;
    }
    static void unlink(cancel_link& node) noexcept {
        if (node.next == nullptr) [[likely]] { // most awaits are under no signal, or left it
            return;
        }
        node.prev->next = node.next;
        node.next->prev = node.prev;
        node.next = nullptr;
    }
    // Each is unlinked before it is told: a cancelled awaitable may resume its coroutine, which
    // may await again under the same cancellation.
    void cancel_all() noexcept {
        while (head_.next != &head_) {
            cancel_link& node = *head_.next;
            unlink(node);
            node.cancel(node.target);
        }
    }
    [[nodiscard]] bool empty() const noexcept { return head_.next == &head_; }

private:
    cancel_link head_;
};

/// Links `node` under `signal`, or returns false when it is already cancelled.
bool watch(cancellation& signal, cancel_link& node) noexcept;

} // namespace detail

/// Cancels, at once, every operation awaited with `.cancel_on(*this)`, and fails later ones with
/// `ECANCELED` until `reset()`. Used on the thread of the context it cancels on.
class cancellation {
public:
    cancellation() noexcept = default;
    cancellation(const cancellation&) = delete;
    cancellation& operator=(const cancellation&) = delete;
    ~cancellation() { list_.cancel_all(); }

    /// Cancels every operation waiting under it; each still completes once, with ECANCELED or
    /// its own result if that came first.
    void cancel() noexcept {
        cancelled_ = true;
        list_.cancel_all();
    }
    /// True after `cancel()`, until `reset()`.
    [[nodiscard]] bool cancelled() const noexcept { return cancelled_; }
    /// Lets operations be awaited under it again.
    void reset() noexcept { cancelled_ = false; }

private:
    friend bool detail::watch(cancellation& signal, detail::cancel_link& node) noexcept;

    detail::cancellation_list list_;
    bool cancelled_ = false;
};

inline bool detail::watch(cancellation& signal, cancel_link& node) noexcept {
    if (signal.cancelled_) {
        return false;
    }
    signal.list_.link(node);
    return true;
}

namespace detail {

/// The adaptors of an awaitable that `co_await` turns into a separate awaiter (a multishot's
/// `next()`, a stream's `flush()`).
// Each returns the temporary itself, not a copy: g++ gives each copy a place in the frame and
// copies into it at every wait.
template <class Self>
class adaptors {
public:
    /// Stores an error in `error` instead of throwing it.
    [[nodiscard]] Self&& into(std::error_code& error) && noexcept {
        error_ = &error;
        return static_cast<Self&&>(*this);
    }
    /// Fails with `ECANCELED` when `signal` is cancelled while it waits.
    [[nodiscard]] Self&& cancel_on(cancellation& signal) && noexcept {
        signal_ = &signal;
        return static_cast<Self&&>(*this);
    }

protected:
    std::error_code* error_ = nullptr;
    cancellation* signal_ = nullptr;
};

/// What such an awaiter keeps while it waits: the adaptors' choices and its link under the signal.
// The link is undone at the end of the co_await, so that a frame destroyed while it waits (at
// the context's shutdown) leaves no dangling link.
struct adapted_wait {
    adapted_wait(std::error_code* to, cancellation* under) noexcept : error(to), signal(under) {}
    adapted_wait(const adapted_wait&) = delete;
    adapted_wait& operator=(const adapted_wait&) = delete;
    ~adapted_wait() { cancellation_list::unlink(link); }

    std::error_code* error;
    cancellation* signal;
    cancel_link link;
};

} // namespace detail

} // namespace ringio
