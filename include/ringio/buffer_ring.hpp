#pragma once

// buffer_ring: buffers that the kernel fills as data arrives, shared by many connections, and
// buffer_lease, one of them lent to a consumer.

#include <ringio/detail/buffer_pool.hpp>
#include <ringio/io_context.hpp>

#include <cstddef>
#include <memory>
#include <span>
#include <string_view>
#include <utility>

namespace ringio {

class buffer_ring;
class buffer_lease;

namespace detail {
buffer_pool& pool_of(const buffer_ring& ring) noexcept;
lent_buffer& lent_of(buffer_lease& lease) noexcept;
} // namespace detail

/// A pool of equal buffers that the kernel fills as data arrives (a provided-buffer ring): an
/// idle connection holds none. A cheap handle; the memory lives as long as the context.
class buffer_ring {
public:
    /// Maps and registers `count` buffers (a power of two up to 32768) of `size` bytes.
    buffer_ring(io_context& context, unsigned count, std::size_t size) {
        auto owned = std::make_unique<detail::buffer_pool>(detail::ring_of(context), count, size);
        pool_ = owned.get();
        detail::ring_of(context).storage().keep(
            owned.release(), [](void* pool) { delete static_cast<detail::buffer_pool*>(pool); });
    }

    /// The number of buffers.
    [[nodiscard]] unsigned count() const noexcept { return pool_->count(); }
    /// The size of each buffer: the most one receive delivers.
    [[nodiscard]] std::size_t buffer_size() const noexcept { return pool_->size(); }

private:
    friend detail::buffer_pool& detail::pool_of(const buffer_ring& ring) noexcept;
    detail::buffer_pool* pool_;
};

/// One filled buffer of a `buffer_ring`, lent out: it goes back when the lease is destroyed
/// (or `release()`d, or sent). Move-only; an empty lease holds nothing.
class buffer_lease {
public:
    buffer_lease() noexcept = default;
    buffer_lease(buffer_lease&& other) noexcept : lent_(std::exchange(other.lent_, {})) {}
    /// Gives back the buffer it held (when `other`, which holds it by then, goes).
    buffer_lease& operator=(buffer_lease other) noexcept {
        std::swap(lent_, other.lent_);
        return *this;
    }
    ~buffer_lease() { release(); }

    /// The received bytes.
    [[nodiscard]] std::span<const std::byte> bytes() const noexcept {
        return lent_.from != nullptr ? std::span<const std::byte>{lent_.data, lent_.size}
                                     : std::span<const std::byte>{};
    }
    /// The received bytes as text.
    [[nodiscard]] std::string_view text() const noexcept {
        const auto b = bytes();
        return {reinterpret_cast<const char*>(b.data()), b.size()};
    }
    /// The number of bytes.
    [[nodiscard]] std::size_t size() const noexcept {
        return lent_.from != nullptr ? lent_.size : 0;
    }
    /// True when nothing is lent (the end of a stream).
    [[nodiscard]] bool empty() const noexcept { return lent_.from == nullptr; }
    /// True when a buffer is lent: `while (auto chunk = co_await in.next())`.
    explicit operator bool() const noexcept { return lent_.from != nullptr; }
    /// Gives the buffer back now.
    void release() noexcept { lent_.give_back(); }

private:
    friend detail::lent_buffer& detail::lent_of(buffer_lease& lease) noexcept;
    detail::lent_buffer lent_;
};

inline detail::buffer_pool& detail::pool_of(const buffer_ring& ring) noexcept {
    return *ring.pool_;
}
inline detail::lent_buffer& detail::lent_of(buffer_lease& lease) noexcept {
    return lease.lent_;
}

} // namespace ringio
