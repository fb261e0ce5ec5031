#pragma once

// cancellation: a signal that cancels every operation awaited with `cancel_on` it, from any
// coroutine of the context's thread.

#include <utility>

namespace ringio {

class cancellation;

namespace detail {

/// An awaitable waiting under a cancellation: linked while it waits, told if cancelled.
struct cancel_link {
    void (*cancel)(void* target) noexcept = nullptr;
    void* target = nullptr;
    cancel_link* prev = nullptr;
    cancel_link* next = nullptr;
    class cancellation_list* list = nullptr;
};

/// The awaitables waiting under one cancellation.
class cancellation_list {
public:
    void link(cancel_link& node) noexcept {
        node.list = this;
        node.prev = nullptr;
        node.next = head_;
        if (head_ != nullptr) {
            head_->prev = &node;
        }
        head_ = &node;
    }
    static void unlink(cancel_link& node) noexcept {
        if (node.list == nullptr) {
            return;
        }
        (node.prev != nullptr ? node.prev->next : node.list->head_) = node.next;
        if (node.next != nullptr) {
            node.next->prev = node.prev;
        }
        node.list = nullptr;
        node.prev = node.next = nullptr;
    }
    // Each is unlinked before it is told: a cancelled awaitable may resume its coroutine, which
    // may await again under the same cancellation.
    void cancel_all() noexcept {
        while (head_ != nullptr) {
            cancel_link& node = *head_;
            unlink(node);
            node.cancel(node.target);
        }
    }
    [[nodiscard]] bool empty() const noexcept { return head_ == nullptr; }

private:
    cancel_link* head_ = nullptr;
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

} // namespace ringio
