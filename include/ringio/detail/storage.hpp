#pragma once

// storage: memory for state the kernel may reach after its owner has gone.

#include <cstddef>
#include <memory>
#include <new>
#include <utility>
#include <vector>

namespace ringio::detail {

/// Memory for state the kernel may still reach after its owner has gone.
class context_storage {
public:
    /// The size every slot has; a slot type must fit (checked where it is placed).
    static constexpr std::size_t slot_size = 192;

    context_storage() = default;
    context_storage(const context_storage&) = delete;
    context_storage& operator=(const context_storage&) = delete;
    ~context_storage() { release(); }

    /// A block of `slot_size` bytes, aligned for any scalar type.
    void* allocate_slot() {
        if (free_ == nullptr) {
            grow();
        }
        free_block* block = free_;
        free_ = block->next;
        return block;
    }

    /// Returns a block from `allocate_slot` for reuse.
    void free_slot(void* memory) noexcept {
        auto* block = ::new (memory) free_block{free_};
        free_ = block;
    }

    /// Keeps `object` until the context is destroyed, then calls `destroy(object)`.
    void keep(void* object, void (*destroy)(void*)) {
        try {
            kept_.emplace_back(object, destroy);
        } catch (...) {
            destroy(object);
            throw;
        }
    }

    /// A buffer group id not yet used on this ring.
    unsigned short next_buffer_group() noexcept { return next_group_++; }

    /// Destroys the kept objects and frees every slot. Called once nothing is in flight.
    void release() noexcept {
        for (auto it = kept_.rbegin(); it != kept_.rend(); ++it) {
            it->second(it->first);
        }
        kept_.clear();
        chunks_.clear();
        free_ = nullptr;
    }

private:
    struct free_block {
        free_block* next;
    };

    static constexpr std::size_t slots_per_chunk = 64;

    void grow() {
        auto chunk = std::make_unique<slot[]>(slots_per_chunk);
        for (std::size_t i = 0; i < slots_per_chunk; ++i) {
            free_slot(&chunk[i]);
        }
        chunks_.push_back(std::move(chunk));
    }

    struct alignas(std::max_align_t) slot {
        std::byte bytes[slot_size];
    };

    free_block* free_ = nullptr;
    std::vector<std::unique_ptr<slot[]>> chunks_;
    std::vector<std::pair<void*, void (*)(void*)>> kept_;
    unsigned short next_group_ = 0;
};

} // namespace ringio::detail
