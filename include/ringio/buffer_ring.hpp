#pragma once

#include <ringio/detail/error.hpp>
#include <ringio/detail/multishot.hpp>
#include <ringio/io_context.hpp>

#include <liburing.h>
#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>

namespace ringio {

namespace detail {

class send_slot;

/// The memory and kernel registration behind a `buffer_ring`, kept by the io_context so that
/// it outlives every completion that may carry one of its buffers.
class buffer_ring_state {
public:
    buffer_ring_state(io_context& context, unsigned count, std::size_t size)
        : context_(&context), count_(count), size_(size),
          group_(context.storage().next_buffer_group()) {
        if (count == 0 || count > 32768 || (count & (count - 1)) != 0 || size == 0 ||
            size > (std::size_t{1} << 31) / count) {
            throw_error(std::make_error_code(std::errc::invalid_argument),
                        "buffer_ring: " + std::to_string(count) + " buffers of " +
                            std::to_string(size) +
                            " bytes (count must be a power of two up "
                            "to 32768)");
        }
        // liburing 2.3 has no io_uring_setup_buf_ring: map the ring and register it directly.
        ring_bytes_ = count * sizeof(io_uring_buf);
        void* ring = ::mmap(nullptr, ring_bytes_, PROT_READ | PROT_WRITE,
                            MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
        if (ring == MAP_FAILED) {
            throw_error(last_error(), "buffer_ring: mmap");
        }
        ring_ = static_cast<io_uring_buf_ring*>(ring);
        data_bytes_ = count * size;
        void* data = ::mmap(nullptr, data_bytes_, PROT_READ | PROT_WRITE,
                            MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
        if (data == MAP_FAILED) {
            const std::error_code error = last_error();
            ::munmap(ring_, ring_bytes_);
            throw_error(error, "buffer_ring: mmap");
        }
        data_ = static_cast<std::byte*>(data);
        io_uring_buf_ring_init(ring_);
        io_uring_buf_reg registration{};
        registration.ring_addr = reinterpret_cast<std::uintptr_t>(ring_);
        registration.ring_entries = count;
        registration.bgid = group_;
        const int result = io_uring_register_buf_ring(&context.native_handle(), &registration, 0);
        if (result < 0) {
            ::munmap(data_, data_bytes_);
            ::munmap(ring_, ring_bytes_);
            throw_error(error_from_result(result), "buffer_ring: register (Linux 5.19 or newer)");
        }
        for (unsigned id = 0; id < count; ++id) {
            io_uring_buf_ring_add(ring_, data_ + id * size_, static_cast<unsigned>(size_),
                                  static_cast<unsigned short>(id), io_uring_buf_ring_mask(count),
                                  static_cast<int>(id));
        }
        io_uring_buf_ring_advance(ring_, static_cast<int>(count));
    }

    buffer_ring_state(const buffer_ring_state&) = delete;
    buffer_ring_state& operator=(const buffer_ring_state&) = delete;

    ~buffer_ring_state() {
        (void)io_uring_unregister_buf_ring(&context_->native_handle(), group_);
        ::munmap(data_, data_bytes_);
        ::munmap(ring_, ring_bytes_);
    }

    /// The bytes of buffer `id`.
    [[nodiscard]] std::byte* buffer(unsigned id) const noexcept { return data_ + id * size_; }

    /// Hands buffer `id` back to the kernel, and wakes a receiver that starved for one.
    void give_back(unsigned id) noexcept {
        io_uring_buf_ring_add(ring_, buffer(id), static_cast<unsigned>(size_),
                              static_cast<unsigned short>(id), io_uring_buf_ring_mask(count_), 0);
        io_uring_buf_ring_advance(ring_, 1);
        if (starved_ != nullptr) [[unlikely]] {
            feed_starved();
        }
    }

    /// Wakes the receivers that starved for a buffer until one of them arms. One that holds
    /// back (its queue at its limit) takes none now, so the buffer goes on to the next: were
    /// it spent on that one, the others could wait forever with every buffer free.
    [[gnu::noinline]] void feed_starved() noexcept {
        while (starved_ != nullptr) {
            multishot_slot* slot = starved_;
            unlink(*slot);
            if (slot->feed()) {
                return;
            }
        }
    }

    /// Records `slot` as waiting for a buffer.
    void starve(multishot_slot& slot) noexcept {
        slot.starved_prev = nullptr;
        slot.starved_next = starved_;
        if (starved_ != nullptr) {
            starved_->starved_prev = &slot;
        }
        starved_ = &slot;
    }

    /// Forgets `slot` if it waits for a buffer.
    void unlink(multishot_slot& slot) noexcept {
        if (slot.starved_prev != nullptr) {
            slot.starved_prev->starved_next = slot.starved_next;
        } else if (starved_ == &slot) {
            starved_ = slot.starved_next;
        }
        if (slot.starved_next != nullptr) {
            slot.starved_next->starved_prev = slot.starved_prev;
        }
        slot.starved_prev = slot.starved_next = nullptr;
    }

    /// A slot's release function: gives back the buffer an entry carries, if any. The slot's
    /// owner is the ring.
    static void release_entry(multishot_slot& slot, const multishot_entry& entry) noexcept {
        if ((entry.flags & IORING_CQE_F_BUFFER) != 0) {
            static_cast<buffer_ring_state*>(slot.owner())
                ->give_back(entry.flags >> IORING_CQE_BUFFER_SHIFT);
        }
    }

    /// A slot's starved function: the slot waits for a buffer of its ring.
    static void starve_slot(multishot_slot& slot) noexcept {
        static_cast<buffer_ring_state*>(slot.owner())->starve(slot);
    }

    [[nodiscard]] unsigned short group() const noexcept { return group_; }
    [[nodiscard]] unsigned count() const noexcept { return count_; }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }

private:
    io_context* context_;
    unsigned count_;
    std::size_t size_;
    unsigned short group_;
    io_uring_buf_ring* ring_ = nullptr;
    std::size_t ring_bytes_ = 0;
    std::byte* data_ = nullptr;
    std::size_t data_bytes_ = 0;
    multishot_slot* starved_ = nullptr;
};

} // namespace detail

/// A pool of equal buffers that the kernel fills as data arrives (a provided-buffer ring):
/// many connections share it, so an idle connection holds no buffer at all. Used by
/// `receiver`. A cheap handle: the memory belongs to the io_context, which frees it at its
/// destruction, after the last completion.
///
/// Kernel: 5.19. See: io_uring_register_buf_ring(3).
class buffer_ring {
public:
    /// Maps and registers `count` buffers (a power of two, at most 32768) of `size` bytes.
    /// Errors: `std::system_error`: `EINVAL` for a bad count or size, `ENOMEM`, or the
    /// kernel's error from registration (`EINVAL` before Linux 5.19).
    buffer_ring(io_context& context, unsigned count, std::size_t size)
        : state_(new detail::buffer_ring_state(context, count, size)) {
        context.storage().keep(
            state_, [](void* state) { delete static_cast<detail::buffer_ring_state*>(state); });
    }

    /// The number of buffers.
    [[nodiscard]] unsigned count() const noexcept { return state_->count(); }

    /// The size of each buffer: the most one receive can deliver.
    [[nodiscard]] std::size_t buffer_size() const noexcept { return state_->size(); }

    /// The kernel's buffer group id, for SQEs ringio does not prepare.
    [[nodiscard]] unsigned short group() const noexcept { return state_->group(); }

    /// The state shared with receivers and leases.
    [[nodiscard]] detail::buffer_ring_state& state() const noexcept { return *state_; }

private:
    detail::buffer_ring_state* state_;
};

/// One filled buffer of a `buffer_ring`, lent to the receiver's consumer: it goes back to the
/// kernel when the lease is destroyed (or `release()`d). Move-only. An empty lease marks the
/// end of the stream.
class buffer_lease {
public:
    /// An empty lease.
    buffer_lease() noexcept = default;

    /// Lends buffer `id` of `ring`, holding `size` bytes from byte `offset` on.
    buffer_lease(detail::buffer_ring_state& ring, unsigned id, std::size_t size,
                 std::uint32_t offset = 0) noexcept
        : ring_(&ring), id_(id), offset_(offset), size_(size) {}

    buffer_lease(buffer_lease&& other) noexcept
        : ring_(std::exchange(other.ring_, nullptr)), id_(other.id_), offset_(other.offset_),
          size_(other.size_) {}

    buffer_lease& operator=(buffer_lease&& other) noexcept {
        if (this != &other) {
            release();
            ring_ = std::exchange(other.ring_, nullptr);
            id_ = other.id_;
            offset_ = other.offset_;
            size_ = other.size_;
        }
        return *this;
    }

    buffer_lease(const buffer_lease&) = delete;
    buffer_lease& operator=(const buffer_lease&) = delete;

    ~buffer_lease() { release(); }

    /// The received bytes.
    [[nodiscard]] std::span<const std::byte> bytes() const noexcept {
        return ring_ != nullptr ? std::span<const std::byte>{ring_->buffer(id_) + offset_, size_}
                                : std::span<const std::byte>{};
    }

    /// The number of received bytes.
    [[nodiscard]] std::size_t size() const noexcept { return ring_ != nullptr ? size_ : 0; }

    /// True for the end of the stream (nothing lent).
    [[nodiscard]] bool empty() const noexcept { return ring_ == nullptr; }

    /// Gives the buffer back to the kernel now.
    void release() noexcept {
        if (ring_ != nullptr) {
            std::exchange(ring_, nullptr)->give_back(id_);
        }
    }

private:
    // Takes the lease apart while its buffer is being sent, and gives it back itself.
    friend class detail::send_slot;

    detail::buffer_ring_state* ring_ = nullptr;
    unsigned id_ = 0;
    std::uint32_t offset_ = 0; // past a header the kernel wrote first (a datagram's sender)
    std::size_t size_ = 0;
};

} // namespace ringio
