#pragma once

// buffer_pool: the memory and kernel registration behind a buffer_ring, and its starving slots.

#include <ringio/detail/error.hpp>
#include <ringio/detail/ring.hpp>
#include <ringio/detail/slot.hpp>

#include <liburing.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

namespace ringio::detail {

/// A provided-buffer ring: `count` buffers of `size` bytes that the kernel fills as data
/// arrives, handed to it as the load needs them.
// Kept by the context's storage, so that it outlives every completion naming a buffer. Once every
// buffer is handed over, slots that ran dry wait in a list and are fed, oldest first, as buffers
// come back.
class buffer_pool {
public:
    buffer_pool(ring& owner, unsigned count, std::size_t size)
        : ring_(&owner), count_(count), size_(size), group_(owner.storage().next_buffer_group()) {
        if (count == 0 || count > 32768 || (count & (count - 1)) != 0 || size == 0 ||
            size > (std::size_t{1} << 31) / count) {
            throw_error(std::make_error_code(std::errc::invalid_argument),
                        "buffer_ring: " + std::to_string(count) + " buffers of " +
                            std::to_string(size) + " bytes (count must be a power of two up " +
                            "to 32768)");
        }
        // liburing 2.3 has no io_uring_setup_buf_ring: map the ring and register it directly.
        ring_bytes_ = count * sizeof(io_uring_buf);
        void* ring = ::mmap(nullptr, ring_bytes_, PROT_READ | PROT_WRITE,
                            MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
        if (ring == MAP_FAILED) {
            throw_error(last_error(), "buffer_ring: mmap");
        }
        buffers_ = static_cast<io_uring_buf_ring*>(ring);
        data_bytes_ = count * size;
        void* data = ::mmap(nullptr, data_bytes_, PROT_READ | PROT_WRITE,
                            MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
        if (data == MAP_FAILED) {
            const std::error_code error = last_error();
            ::munmap(buffers_, ring_bytes_);
            throw_error(error, "buffer_ring: mmap");
        }
        data_ = static_cast<std::byte*>(data);
        io_uring_buf_ring_init(buffers_);
        io_uring_buf_reg registration{};
        registration.ring_addr = reinterpret_cast<std::uintptr_t>(buffers_);
        registration.ring_entries = count;
        registration.bgid = group_;
        if (const int result = io_uring_register_buf_ring(&owner.native(), &registration, 0);
            result < 0) {
            ::munmap(data_, data_bytes_);
            ::munmap(buffers_, ring_bytes_);
            throw_error(error_from_result(result), "buffer_ring: register (Linux 5.19 or newer)");
        }
        for (unsigned at = 0; at < count; ++at) { // for good: see put
            buffers_->bufs[at].len = static_cast<std::uint32_t>(size);
        }
        issue(std::min(count, first_issue));
    }

    buffer_pool(const buffer_pool&) = delete;
    buffer_pool& operator=(const buffer_pool&) = delete;
    ~buffer_pool() {
        (void)io_uring_unregister_buf_ring(&ring_->native(), group_);
        ::munmap(data_, data_bytes_);
        ::munmap(buffers_, ring_bytes_);
    }

    [[nodiscard]] std::byte* buffer(unsigned id) const noexcept { return data_ + id * size_; }
    [[nodiscard]] unsigned short group() const noexcept { return group_; }
    [[nodiscard]] unsigned count() const noexcept { return count_; }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }

    /// Hands buffer `id` back to the kernel, and feeds a slot that starved for one.
    void give_back(unsigned id) noexcept {
        put(id);
        if (starved_ != nullptr) [[unlikely]] {
            feed();
        }
    }

    /// Hands buffer `id` back, then its place in `lender`'s budget.
    // The buffer first: a slot that starved for one is armed before the lender's own next
    // receive, else a busy connection would take back every buffer it returns.
    void give_back(unsigned id, slot& lender) noexcept {
        put(id);
        if (starved_ != nullptr) [[unlikely]] {
            feed_then_return(lender); // a jump: the common path keeps no register across a call
            return;
        }
        lender.returned(); // may free the slot: the pool stays
    }

    /// Makes the request in `sqe` take its buffer from `self`'s pool (a slot kind's `arm`).
    static void select(slot& self, io_uring_sqe* sqe) noexcept {
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = static_cast<buffer_pool*>(self.owner())->group();
    }
    /// The kind of slot whose requests, filled by `arm`, take buffers from a pool.
    static constexpr slot_kind kind(void (*arm)(slot&, io_uring_sqe*) noexcept, bool multishot) {
        return {arm, &release, &starve, &forget, multishot};
    }

    /// Gives back the buffer an entry nobody took carries (a slot kind's `release`).
    static void release(slot& self, const entry& got) noexcept {
        if ((got.flags & IORING_CQE_F_BUFFER) != 0) {
            static_cast<buffer_pool*>(self.owner())
                ->give_back(got.flags >> IORING_CQE_BUFFER_SHIFT);
        }
    }

    /// Records `hungry` as waiting for a buffer (a slot kind's `starve`), unless some were never
    /// handed to the kernel: as many again are, and it arms again.
    static void starve(slot& hungry) noexcept {
        auto& pool = *static_cast<buffer_pool*>(hungry.owner());
        // A failure posted before the last issue found the ring as it was then, and arms again;
        // only a later one says that the buffers issued since are not enough.
        const unsigned at = pool.ring_->dispatched() - 1; // this one's place in the CQ
        if (at - pool.stale_from_ >= pool.stale_count_) {
            if (pool.issued_ == pool.count_) {
                hungry.starved_prev = pool.starved_tail_;
                hungry.starved_next = nullptr;
                (pool.starved_tail_ != nullptr ? pool.starved_tail_->starved_next : pool.starved_) =
                    &hungry;
                pool.starved_tail_ = &hungry;
                return;
            }
            pool.issue(std::min(pool.issued_, pool.count_ - pool.issued_));
            pool.stale_from_ = at + 1;
            pool.stale_count_ = pool.ring_->posted() - pool.stale_from_;
        }
        hungry.fed();
    }

    /// Forgets `gone` if it waits for a buffer (a slot kind's `forget`).
    static void forget(slot& gone) noexcept {
        auto& pool = *static_cast<buffer_pool*>(gone.owner());
        (gone.starved_prev != nullptr ? gone.starved_prev->starved_next : pool.starved_) =
            gone.starved_next;
        (gone.starved_next != nullptr ? gone.starved_next->starved_prev : pool.starved_tail_) =
            gone.starved_prev;
        gone.starved_prev = gone.starved_next = nullptr;
    }

private:
    // The kernel takes buffers in the order they were given (first given, first taken), so the
    // pool hands it a few at first, and as many again whenever a receive finds none left: the
    // buffers that circulate are the fewest the load needs, and a buffer comes round again
    // while the cache still holds it (all `count` in circulation, a buffer would be cold at
    // every turn under any load). Those never handed over are never touched, nor resident.
    static constexpr unsigned first_issue = 32;

    // Hands the kernel `more` buffers never lent yet, with one store to the tail.
    void issue(unsigned more) noexcept {
        const unsigned short tail = buffers_->tail;
        for (unsigned i = 0; i < more; ++i) {
            io_uring_buf& entry = buffers_->bufs[(tail + i) & mask_];
            entry.bid = static_cast<unsigned short>(issued_ + i);
            entry.addr = reinterpret_cast<std::uintptr_t>(buffer(issued_ + i));
        }
        issued_ += more;
        io_uring_smp_store_release(&buffers_->tail, static_cast<unsigned short>(tail + more));
    }

    // Published at once, one store to the tail: gathering the tails of a loop turn would cost
    // as much in bookkeeping. io_uring_buf_ring_add and _advance, with the tail read once
    // (liburing's reads it again, since the entries share their memory with it).
    // The id is stored first, so that computing the address may take its register. Every
    // entry's length is the buffer size from construction on: the kernel only reads entries
    // (it writes them for incremental consumption and bundles, which the pool never asks for).
    void put(unsigned id) noexcept {
        const unsigned short tail = buffers_->tail;
        io_uring_buf& entry = buffers_->bufs[tail & mask_];
        entry.bid = static_cast<unsigned short>(id);
        entry.addr = reinterpret_cast<std::uintptr_t>(buffer(id));
        io_uring_smp_store_release(&buffers_->tail, static_cast<unsigned short>(tail + 1));
    }

    [[gnu::noinline]] void feed_then_return(slot& lender) noexcept {
        feed();
        lender.returned();
    }

    // The oldest starving slot gets the buffer: first come, first fed, so no connection waits
    // forever while others take every buffer that comes back. One that does not arm now (no
    // consumer waits, or it is at its budget) leaves the list and arms when its consumer asks.
    [[gnu::noinline]] void feed() noexcept {
        while (starved_ != nullptr) {
            slot* first = starved_;
            forget(*first);
            if (first->fed()) {
                return;
            }
        }
    }

    ring* ring_;
    unsigned count_;
    std::size_t mask_ = count_ - 1; // count_ is a power of two; wide, as an index is
    std::size_t size_;
    unsigned issued_ = 0;      // buffers handed to the kernel so far: ids 0 to issued_ - 1
    unsigned stale_from_ = 0;  // the CQEs posted, not yet dispatched, when they were last
    unsigned stale_count_ = 0; // issued: from this place in the CQ, this many
    unsigned short group_;
    io_uring_buf_ring* buffers_ = nullptr;
    std::size_t ring_bytes_ = 0;
    std::byte* data_ = nullptr;
    std::size_t data_bytes_ = 0;
    slot* starved_ = nullptr;
    slot* starved_tail_ = nullptr;
};

/// One filled buffer of a pool, lent out by `from` (which counts it against its budget).
struct lent_buffer {
    slot* from = nullptr;      ///< null: nothing lent
    std::byte* data = nullptr; ///< the bytes, past any header the kernel wrote first
    unsigned id = 0;
    std::uint32_t size = 0;

    /// Lends buffer `id` of `from`'s pool, whose bytes start `offset` bytes in.
    static lent_buffer of(slot& from, unsigned id, std::uint32_t offset,
                          std::uint32_t size) noexcept {
        return {&from, static_cast<buffer_pool*>(from.owner())->buffer(id) + offset, id, size};
    }

    /// Gives the buffer back to the kernel, and its place back to the slot's budget.
    void give_back() noexcept {
        if (from != nullptr) {
            give_back_lent();
        }
    }

    /// As `give_back`, when a buffer is lent.
    void give_back_lent() noexcept {
        auto* pool = static_cast<buffer_pool*>(from->owner());
        pool->give_back(id, *std::exchange(from, nullptr));
    }
};

} // namespace ringio::detail
