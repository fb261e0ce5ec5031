#pragma once

// tracked: the requests in flight on one descriptor, so that closing it cancels exactly those.

#include <ringio/detail/ring.hpp>

#include <liburing.h>

#include <utility>

namespace ringio::detail {

class descriptor_core;

/// A completion that its descriptor can find: linked into the descriptor's list while the
/// request is in flight (an operation) or while its owner lives (a multishot slot).
struct tracked : completion {
    descriptor_core* core = nullptr; ///< Null when untracked, or once the descriptor is closed.
    tracked* prev = nullptr;
    tracked* next = nullptr;
    /// Told when the descriptor closes, once unlisted; null when the cancel says enough.
    void (*on_close)(tracked& self) noexcept = nullptr;
};

/// What an owned descriptor shares with its requests: its number, its ring, and the list of
/// requests to cancel (each by its `user_data`, which the kernel finds by hash) when it closes.
class descriptor_core {
public:
    descriptor_core(ring& r, int fd) noexcept : ring_(&r), fd_(fd) {}

    descriptor_core(const descriptor_core&) = delete;
    descriptor_core& operator=(const descriptor_core&) = delete;

    /// Takes `other`'s descriptor and requests; `other` is left closed.
    descriptor_core(descriptor_core&& other) noexcept
        : ring_(other.ring_), fd_(std::exchange(other.fd_, -1)), generation_(other.generation_++),
          head_(std::exchange(other.head_, nullptr)) {
        for (tracked* node = head_; node != nullptr; node = node->next) {
            node->core = this;
        }
    }

    /// Closes this descriptor, then takes `other`'s.
    descriptor_core& operator=(descriptor_core&& other) noexcept {
        if (this != &other) {
            close();
            ring_ = other.ring_;
            fd_ = std::exchange(other.fd_, -1);
            generation_ = other.generation_++;
            head_ = std::exchange(other.head_, nullptr);
            for (tracked* node = head_; node != nullptr; node = node->next) {
                node->core = this;
            }
        }
        return *this;
    }

    ~descriptor_core() { close(); }

    [[nodiscard]] int fd() const noexcept { return fd_; }
    /// Changes whenever the descriptor does (closed, replaced, moved away): an operation made
    /// before can tell, even when a new descriptor has the same number.
    [[nodiscard]] unsigned generation() const noexcept { return generation_; }
    [[nodiscard]] ring& owner() const noexcept { return *ring_; }
    /// What errors name the descriptor by (the socket's endpoint), or null.
    [[nodiscard]] const void* subject() const noexcept { return subject_; }
    void set_subject(const void* subject) noexcept { subject_ = subject; }

    /// Lists `node`; on a closed descriptor it stays unlisted, and so sees it closed (a list
    /// that no close would empty again could outlive the descriptor).
    void link(tracked& node) noexcept {
        if (fd_ < 0) {
            node.core = nullptr;
            return;
        }
        node.core = this;
        node.prev = nullptr;
        node.next = head_;
        if (head_ != nullptr) {
            head_->prev = &node;
        }
        head_ = &node;
    }

    static void unlink(tracked& node) noexcept {
        if (node.core == nullptr) {
            return;
        }
        if (node.prev != nullptr) {
            node.prev->next = node.next;
        } else {
            node.core->head_ = node.next;
        }
        if (node.next != nullptr) {
            node.next->prev = node.prev;
        }
        node.core = nullptr;
        node.prev = node.next = nullptr;
    }

    /// Queues a cancel of each request in the list; each still completes once.
    void cancel() noexcept {
        for (tracked* node = head_; node != nullptr; node = node->next) {
            ring_->cancel(node->user_data());
        }
    }

    /// Cancels the requests, forgets them, and closes the descriptor through the ring, after
    /// the cancels: until the close runs, no new descriptor can take the number.
    void close() noexcept {
        if (fd_ < 0) {
            return;
        }
        forget_all();
        io_uring_prep_close(ring_->get_sqe_unwatched(), std::exchange(fd_, -1));
        ++generation_;
    }

    /// Replaces the descriptor (closing the old one first).
    void reset(int fd) noexcept {
        close();
        fd_ = fd;
        ++generation_;
    }

    /// Gives up the descriptor without closing it; the requests are cancelled and forgotten.
    int release() noexcept {
        forget_all();
        ++generation_;
        return std::exchange(fd_, -1);
    }

private:
    // Cancels the requests, unlists them, and tells those that asked.
    void forget_all() noexcept {
        cancel();
        while (head_ != nullptr) {
            tracked& node = *head_;
            unlink(node);
            if (node.on_close != nullptr) {
                node.on_close(node);
            }
        }
    }

    ring* ring_;
    int fd_;
    unsigned generation_ = 0;
    tracked* head_ = nullptr;
    const void* subject_ = nullptr; // re-pointed by the owner when it moves
};

} // namespace ringio::detail
