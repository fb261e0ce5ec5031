#pragma once

// arm_queue: the requests a ring arms late, waiting until the ring next submits.

namespace ringio::detail {

/// A request armed again and again: the first bytes of its SQE, made once and copied at each
/// arming (the rest are zero), and its link in its ring's queue.
struct arming {
    alignas(8) unsigned char sqe[48];
    arming* next_to_arm = nullptr;
};

/// The requests to arm before the ring next submits, in the order queued.
class arm_queue {
public:
    /// Queues `request`.
    void push(arming& request) noexcept {
        *end_ = &request;
        end_ = &request.next_to_arm;
        ++size_;
    }
    [[nodiscard]] unsigned size() const noexcept { return size_; }

    /// Empties the queue and returns its first request, the last one's link null; the queue is
    /// empty before anything is armed, since arming may submit, and a submission arms first.
    arming* take() noexcept {
        *end_ = nullptr;
        end_ = &first_;
        size_ = 0;
        return first_;
    }

private:
    unsigned size_ = 0;
    arming* first_ = nullptr;
    arming** end_ = &first_;
};

} // namespace ringio::detail
