#pragma once

// fifo: a queue with a few items inline that spills into a vector only in a burst.

#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

namespace ringio::detail {

/// A first-in first-out queue that holds `N` items inline and spills into a vector only in a burst.
template <class T, unsigned N>
requires std::is_nothrow_move_constructible_v<T> && std::is_nothrow_move_assignable_v<T>
class fifo {
public:
    /// True when no item is queued.
    [[nodiscard]] bool empty() const noexcept { return count_ == 0; }

    /// The number of items queued.
    [[nodiscard]] std::size_t size() const noexcept { return count_ + (more_.size() - more_head_); }

    /// Appends `item`, moving from it; false (and `item` untouched) when the spill vector
    /// cannot grow.
    bool try_push(T& item) noexcept {
        // Inline only while nothing has spilled: a spilled item is older than any newcomer.
        if (count_ < N && more_head_ == more_.size()) [[likely]] {
            ring_[(head_ + count_) % N] = std::move(item);
            ++count_;
            return true;
        }
        return spill(item);
    }

    /// Takes the oldest item; the queue must not be empty.
    T pop() noexcept {
        T item = std::move(ring_[head_]);
        head_ = (head_ + 1) % N;
        --count_;
        // The inline ring refills from the spill at once, so it is empty only when both are.
        if (more_head_ != more_.size()) [[unlikely]] {
            ring_[(head_ + count_) % N] = std::move(more_[more_head_++]);
            ++count_;
            if (more_head_ == more_.size()) {
                more_.clear();
                more_head_ = 0;
            }
        }
        return item;
    }

private:
    // Out of line: its exception handling would make every push save and restore registers
    // for a path that only bursts take.
    [[gnu::noinline]] bool spill(T& item) noexcept {
        try {
            more_.push_back(std::move(item));
            return true;
        } catch (const std::bad_alloc&) {
            return false;
        }
    }

    T ring_[N]{};
    unsigned head_ = 0;
    unsigned count_ = 0;
    std::size_t more_head_ = 0;
    std::vector<T> more_;
};

} // namespace ringio::detail
