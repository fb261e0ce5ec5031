#pragma once

// tracked: the requests in flight on one descriptor, so that closing it cancels exactly those.

#include <ringio/detail/ring.hpp>

#include <liburing.h>

#include <utility>

namespace ringio::detail {

class descriptor_core;

/// The links of a descriptor's list: a ring through the descriptor's own end, so that linking
/// and unlinking never test for an end.
struct tracked_links {
    tracked_links* prev;
    tracked_links* next;
};

/// A completion that its descriptor can find: linked into the descriptor's list while the
/// request is in flight (an operation) or while its owner lives (a multishot slot).
// The links and `core` are written when it is linked; `on_close` by its owner, before.
struct tracked : completion, tracked_links {
    descriptor_core* core; ///< Null when untracked, or once the descriptor is closed.
    /// Told when the descriptor closes, once unlisted; null when the cancel says enough.
    void (*on_close)(tracked& self) noexcept;
};

/// What an owned descriptor shares with its requests: its number, its ring, and the list of
/// requests to cancel (each by its `user_data`, which the kernel finds by hash) when it closes.
class descriptor_core {
public:
    descriptor_core(ring& r, int fd) noexcept : ring_(&r), fd_(fd) {
        end_.prev = end_.next = &end_;
    }

    descriptor_core(const descriptor_core&) = delete;
    descriptor_core& operator=(const descriptor_core&) = delete;

    /// Takes `other`'s descriptor and requests; `other` is left closed.
    descriptor_core(descriptor_core&& other) noexcept
        : ring_(other.ring_), fd_(std::exchange(other.fd_, -1)), generation_(other.generation_++) {
        end_.prev = end_.next = &end_;
        take_list(other);
    }

    /// Closes this descriptor, then takes `other`'s.
    descriptor_core& operator=(descriptor_core&& other) noexcept {
        if (this != &other) {
            close(); // empties the list
            ring_ = other.ring_;
            fd_ = std::exchange(other.fd_, -1);
            generation_ = other.generation_++;
            take_list(other);
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
        node.prev = &end_;
        node.next = end_.next;
        end_.next->prev = &node;
        end_.next = &node;
    }

    static void unlink(tracked& node) noexcept {
        if (node.core == nullptr) {
            return;
        }
        node.prev->next = node.next;
        node.next->prev = node.prev;
        node.core = nullptr;
    }

    /// Queues a cancel of each request in the list; each still completes once.
    void cancel() noexcept {
        for (tracked_links* node = end_.next; node != &end_; node = node->next) {
            ring_->cancel(static_cast<tracked*>(node)->user_data());
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
        while (end_.next != &end_) {
            tracked& node = *static_cast<tracked*>(end_.next);
            unlink(node);
            if (node.on_close != nullptr) {
                node.on_close(node);
            }
        }
    }

    // Moves `other`'s requests (this list is empty) and points them at this descriptor.
    void take_list(descriptor_core& other) noexcept {
        if (other.end_.next == &other.end_) {
            return;
        }
        end_.next = other.end_.next;
        end_.prev = other.end_.prev;
        end_.next->prev = &end_;
        end_.prev->next = &end_;
        other.end_.prev = other.end_.next = &other.end_;
        for (tracked_links* node = end_.next; node != &end_; node = node->next) {
            static_cast<tracked*>(node)->core = this;
        }
    }

    ring* ring_;
    int fd_;
    unsigned generation_ = 0;
    tracked_links end_;             // the list's own end: end_.next is the newest request
    const void* subject_ = nullptr; // re-pointed by the owner when it moves
};

} // namespace ringio::detail
