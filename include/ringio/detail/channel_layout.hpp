#pragma once

// channel_layout: a channel's header in shared memory, written when a channel is made and checked
// when one is opened.

#include <ringio/detail/error.hpp>
#include <ringio/detail/lifetime.hpp>
#include <ringio/detail/mapping.hpp>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <new>
#include <string>
#include <system_error>
#include <utility>

namespace ringio::detail {

/// "ringioCH", the first eight bytes of every channel, written last when one is made.
inline constexpr std::uint64_t channel_magic = 0x4843'6f69'676e'6972;
inline constexpr std::uint32_t channel_version = 1;
/// A cache line: what the two ends write lives on lines of its own.
inline constexpr std::size_t channel_line = 64;

/// Who holds an end: vacant until a process attaches, closed once it has let go (for good).
enum class end_state : std::uint32_t { vacant = 0, attached = 1, closed = 2 };

/// The two ends; each array of the header is indexed by one.
enum class channel_role : std::uint8_t { sender = 0, receiver = 1 };

inline constexpr int other(channel_role role) noexcept {
    return role == channel_role::sender ? 1 : 0;
}

/// An end's count of records: published by the sender, taken by the receiver. Only that end
/// writes it, on a line of its own; they only grow, modulo 2^32.
struct alignas(channel_line) channel_index {
    std::uint32_t value;
};

/// What an end sleeps on: `rings` changes whenever the other end wakes it, and `waiting` says
/// that it may be asleep. The other end writes both, only when it wakes this one.
struct alignas(channel_line) channel_bell {
    std::uint32_t rings;
    std::uint32_t waiting;
};

/// The process that holds an end, and when it started (so that a pid reused by a later process
/// is not taken for it).
struct channel_owner {
    std::uint32_t state;
    std::int32_t pid;
    std::uint64_t start; // clock ticks after boot (/proc/PID/stat), 0 when unknown
};

/// The first bytes of a channel; the records follow at `records_offset`.
struct channel_header {
    std::uint64_t magic;
    std::uint32_t version;
    std::uint32_t capacity; // a power of two
    std::uint64_t record_size;
    std::uint64_t record_align;
    std::uint64_t records_offset;
    channel_index index[2];
    channel_bell bell[2];
    alignas(channel_line) channel_owner owner[2];
};

/// Where the records start for a record alignment of `align`.
inline constexpr std::size_t records_offset(std::size_t align) noexcept {
    const std::size_t step = align > channel_line ? align : channel_line;
    return (sizeof(channel_header) + step - 1) / step * step;
}

template <class U>
std::atomic_ref<U> shared(U& object) noexcept {
    return std::atomic_ref<U>(object);
}

/// A channel's mapping, its header and its name, whatever its record type.
class channel_memory {
public:
    channel_memory() noexcept = default;

    /// Writes the header of a new channel into `memory` (zeros), the magic number last.
    channel_memory(mapping memory, std::string name, std::uint32_t capacity,
                   std::size_t record_size, std::size_t record_align) noexcept
        : memory_(std::move(memory)), name_(std::move(name)) {
        header_ = ::new (memory_.view()) channel_header{};
        header_->version = channel_version;
        header_->capacity = capacity;
        header_->record_size = record_size;
        header_->record_align = record_align;
        header_->records_offset = records_offset(record_align);
        // Release: whoever reads the magic with acquire sees the fields above.
        shared(header_->magic).store(channel_magic, std::memory_order_release);
    }

    /// Checks that `memory` holds a channel of records of `record_size` bytes aligned to
    /// `record_align`; EPROTO or EINVAL naming the channel otherwise.
    channel_memory(mapping memory, std::string name, std::size_t record_size,
                   std::size_t record_align)
        : memory_(std::move(memory)), name_(std::move(name)) {
        const std::size_t size = memory_.size_bytes();
        if (size < sizeof(channel_header)) {
            fail(EPROTO, "the file holds " + std::to_string(size) +
                             " bytes, fewer than a channel's header (" +
                             std::to_string(sizeof(channel_header)) + ")");
        }
        auto* header = start_lifetime_as_array<channel_header>(memory_.view(), 1);
        if (shared(header->magic).load(std::memory_order_acquire) != channel_magic) {
            fail(EPROTO, "not a ringio channel (no magic number)");
        }
        if (header->version != channel_version) {
            fail(EPROTO, "channel format version " + std::to_string(header->version) +
                             ", this program reads version " + std::to_string(channel_version));
        }
        if (header->record_size != record_size || header->record_align != record_align) {
            fail(EINVAL, "it holds records of " + std::to_string(header->record_size) +
                             " bytes aligned to " + std::to_string(header->record_align) +
                             ", this program's are " + std::to_string(record_size) +
                             " bytes aligned to " + std::to_string(record_align));
        }
        const std::uint64_t capacity = header->capacity;
        const std::uint64_t needed = records_offset(record_align) + capacity * record_size;
        if (capacity == 0 || (capacity & (capacity - 1)) != 0 || capacity > (1U << 31) ||
            header->records_offset != records_offset(record_align)) {
            fail(EPROTO, "a damaged header (capacity " + std::to_string(capacity) +
                             ", records at byte " + std::to_string(header->records_offset) + ")");
        }
        if (size < needed) {
            fail(EPROTO, "the file holds " + std::to_string(size) + " bytes, the channel needs " +
                             std::to_string(needed));
        }
        header_ = header;
    }

    [[nodiscard]] channel_header* header() const noexcept { return header_; }
    [[nodiscard]] std::byte* records() const noexcept {
        return static_cast<std::byte*>(memory_.view()) + header_->records_offset;
    }
    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    [[nodiscard]] int fd() const noexcept { return memory_.fd(); }
    /// Unmaps; the header's fields say nothing of it.
    void reset() noexcept {
        header_ = nullptr;
        memory_ = mapping();
    }

private:
    [[noreturn]] void fail(int code, const std::string& why) const {
        throw_error(std::error_code(code, std::system_category()),
                    "channel: open " + name_ + ": " + why);
    }

    mapping memory_;
    std::string name_;
    channel_header* header_ = nullptr;
};

} // namespace ringio::detail
