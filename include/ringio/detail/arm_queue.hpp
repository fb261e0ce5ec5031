#pragma once

// arm_queue: the requests of a ring's slots, waiting to be armed until the ring next submits.

namespace ringio::detail {

class slot;

/// Slots whose requests are armed, in the order queued, before their ring next submits; linked
/// through a link of each slot's own. `arm`, set by the slots, arms the requests from the first.
class arm_queue {
public:
    /// Queues `request`, linked by `next`.
    void push(slot* request, slot*& next) noexcept {
        *end_ = request;
        end_ = &next;
        ++size_;
    }
    [[nodiscard]] unsigned size() const noexcept { return size_; }

    /// Arms the requests queued; the queue is empty first, since arming may submit, and every
    /// submission arms the queue first.
    void arm_all() noexcept {
        if (size_ != 0) {
            *end_ = nullptr;
            end_ = &first_;
            size_ = 0;
            arm(first_);
        }
    }

    void (*arm)(slot* first) noexcept = nullptr;

private:
    unsigned size_ = 0;
    slot* first_ = nullptr;
    slot** end_ = &first_;
};

} // namespace ringio::detail
