#pragma once

// fifo: a queue with a few items inline that spills into a vector only in a burst.

#include <cstddef>
#include <memory>
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
    [[nodiscard]] std::size_t size() const noexcept {
        return count_ + (more_ != nullptr ? more_->items.size() - more_->head : 0);
    }

    /// Appends `item`, moving from it; false (and `item` untouched) when the spill vector
    /// cannot grow.
    bool try_push(T& item) noexcept {
        // Inline only while the inline ring has room: it is full whenever anything has spilled
        // (see pop), so no spilled item is older than the newcomer.
        if (count_ < N) [[likely]] {
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
        if (more_ != nullptr && more_->head != more_->items.size()) [[unlikely]] {
            ring_[(head_ + count_) % N] = std::move(more_->items[more_->head++]);
            ++count_;
            if (more_->head == more_->items.size()) {
                more_->items.clear(); // its capacity stays for the next burst
                more_->head = 0;
            }
        }
        return item;
    }

private:
    // Behind a pointer, so that a queue that never bursts costs one word for it.
    struct spilled {
        std::vector<T> items;
        std::size_t head = 0;
    };

    // Out of line: its exception handling would make every push save and restore registers
    // for a path that only bursts take.
    [[gnu::noinline]] bool spill(T& item) noexcept {
        try {
            if (more_ == nullptr) {
                more_ = std::make_unique<spilled>();
            }
            more_->items.push_back(std::move(item));
            return true;
        } catch (const std::bad_alloc&) {
            return false;
        }
    }

    T ring_[N]{};
    unsigned head_ = 0;
    unsigned count_ = 0;
    std::unique_ptr<spilled> more_;
};

} // namespace ringio::detail
