#pragma once

/// channel: fixed-size records from one process to another through shared memory, sent and
/// received blocking or awaited.

#include <ringio/detail/channel_awaited.hpp>
#include <ringio/detail/channel_blocking.hpp>
#include <ringio/detail/channel_end.hpp>
#include <ringio/detail/channel_layout.hpp>
#include <ringio/detail/channel_lend.hpp>
#include <ringio/detail/chrono.hpp>
#include <ringio/detail/error.hpp>
#include <ringio/detail/lifetime.hpp>
#include <ringio/detail/map_request.hpp>
#include <ringio/futex.hpp>
#include <ringio/io_context.hpp>
#include <ringio/map_options.hpp>
#include <ringio/mappable.hpp>
#include <ringio/mapped.hpp>
#include <ringio/operation.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

namespace ringio {

/// A type a channel carries: mappable, not an array, aligned to at most a page.
template <class T>
concept channel_record = mappable<T> && !std::is_array_v<T> && alignof(T) <= 4096;

namespace detail {
template <class T, channel_role Role>
class channel_port;
} // namespace detail

/// A queue of `T` records in shared memory for one sender and one receiver, usually in two
/// processes; moved into a `channel_sender` or a `channel_receiver` to be used.
template <channel_record T>
class channel {
public:
    /// The record type.
    using record_type = T;

    /// An empty channel, mapping nothing.
    channel() noexcept = default;

    /// Creates the file at `path` holding a channel of `capacity` records (rounded up to a power
    /// of two), and maps it shared.
    static channel create(const std::filesystem::path& path, std::size_t capacity,
                          create_options options = {}) {
        const std::uint32_t slots = slots_for(capacity);
        return channel(detail::channel_memory(
            detail::release_mapping(mapped<std::byte[]>::create(path, bytes_for(slots), options)),
            detail::quote_path(path.native()), slots, sizeof(T), alignof(T)));
    }

    /// Maps the channel in the file at `path`, which another program created; EPROTO if it holds
    /// no channel, EINVAL if its records are not `T`'s size and alignment.
    static channel open(const std::filesystem::path& path) {
        return channel(
            detail::channel_memory(detail::release_mapping(mapped<std::byte[]>::open(path)),
                                   detail::quote_path(path.native()), sizeof(T), alignof(T)));
    }

    /// Maps the channel in the open file or memfd `fd` (duplicated: `fd` stays the caller's).
    static channel open(int fd) {
        return channel(
            detail::channel_memory(detail::release_mapping(mapped<std::byte[]>::open(fd)),
                                   "fd " + std::to_string(fd), sizeof(T), alignof(T)));
    }

    /// Creates a channel in a sealed memfd named `name`; share it through `fd()`.
    static channel memfd(std::string_view name, std::size_t capacity) {
        const std::uint32_t slots = slots_for(capacity);
        return channel(detail::channel_memory(
            detail::release_mapping(mapped<std::byte[]>::memfd(name, bytes_for(slots))),
            "memfd:" + std::string(name), slots, sizeof(T), alignof(T)));
    }

    /// Creates a channel in anonymous shared memory, shared with the children this process
    /// forks after it.
    static channel anonymous(std::size_t capacity) {
        const std::uint32_t slots = slots_for(capacity);
        return channel(detail::channel_memory(
            detail::release_mapping(mapped<std::byte[]>::anonymous(bytes_for(slots))), "anonymous",
            slots, sizeof(T), alignof(T)));
    }

    /// How many records it holds at most.
    [[nodiscard]] std::size_t capacity() const noexcept {
        return memory_.header() != nullptr ? memory_.header()->capacity : 0;
    }
    /// How many records were sent and not yet received: a snapshot.
    [[nodiscard]] std::size_t size() const noexcept {
        if (memory_.header() == nullptr) {
            return 0;
        }
        auto& index = memory_.header()->index;
        return detail::shared(index[0].value).load(std::memory_order_acquire) -
               detail::shared(index[1].value).load(std::memory_order_acquire);
    }
    /// The descriptor of its file or memfd (owned by it), or -1 for anonymous memory.
    [[nodiscard]] int fd() const noexcept { return memory_.fd(); }
    /// What errors name it by: the quoted path, `memfd:NAME`, `fd N` or `anonymous`.
    [[nodiscard]] const std::string& name() const noexcept { return memory_.name(); }
    /// True unless empty (default-constructed or moved from).
    explicit operator bool() const noexcept { return memory_.header() != nullptr; }

private:
    template <class, detail::channel_role>
    friend class detail::channel_port;

    explicit channel(detail::channel_memory memory) noexcept : memory_(std::move(memory)) {
        detail::start_lifetime_as_array<T>(memory_.records(), capacity());
    }

    static std::uint32_t slots_for(std::size_t capacity) {
        if (capacity == 0 || capacity > (std::size_t{1} << 31)) {
            detail::throw_error(std::make_error_code(std::errc::invalid_argument),
                                "channel: a capacity of " + std::to_string(capacity) +
                                    " records (1 to 2^31)");
        }
        std::uint32_t slots = 1;
        while (slots < capacity) {
            slots <<= 1U;
        }
        return slots;
    }
    static std::size_t bytes_for(std::uint32_t slots) noexcept {
        return detail::records_offset(alignof(T)) + std::size_t{slots} * sizeof(T);
    }

    detail::channel_memory memory_;
};

namespace detail {

/// One end of a channel, held by this process: what `channel_sender` and `channel_receiver`
/// share.
template <class T, channel_role Role>
class channel_port {
public:
    /// Claims this end of `source` for this process; EBUSY if another process holds or held it.
    explicit channel_port(channel<T>&& source) : end_(std::move(source.memory_), Role) {}

    /// Lets go of the end; the other end sees it, and operations awaiting on this one fail
    /// with EBADF.
    void close() noexcept { end_.close(); }
    /// True until closed or moved from.
    [[nodiscard]] bool is_open() const noexcept { return end_.is_open(); }
    /// The channel's name, as errors say it.
    [[nodiscard]] const std::string& name() const noexcept { return end_.name(); }

protected:
    channel_end end_;
};

} // namespace detail

/// The sending end of a channel in this process. Not thread-safe: one thread at a time.
template <channel_record T>
class channel_sender : public detail::channel_port<T, detail::channel_role::sender> {
    using port = detail::channel_port<T, detail::channel_role::sender>;
    using port::end_;

public:
    using port::port;

    /// Publishes `record` if there is room; false when the channel is full. EPIPE if the receiver
    /// has closed.
    bool try_send(const T& record) {
        detail::check_end(end_, "send to");
        return detail::put_record(end_, record);
    }

    /// Publishes as many of `records` as there is room for, at once; how many it published.
    std::size_t try_send(std::span<const T> records) {
        detail::check_end(end_, "send to");
        return detail::put_records(end_, records);
    }

    /// The free slots, in place and contiguous from the next one (at most `max`, none past the
    /// ring's last slot); empty when full. Write records there, then `commit`. EPIPE as above.
    std::span<T> try_prepare(std::size_t max = SIZE_MAX) {
        detail::check_end(end_, "send to");
        return detail::lend<T>(end_, max);
    }

    /// As `try_prepare`, but waits for a free slot (unless `max` is 0) as `send` waits.
    std::span<T> prepare(std::size_t max = SIZE_MAX) {
        std::span<T> slots;
        detail::send_when(end_, nullptr, [&] { return detail::lend_to(end_, max, slots); });
        return slots;
    }

    /// As `prepare`, suspending the awaiting coroutine instead; errors as the awaited `send`.
    auto prepare(io_context& context, std::size_t max = SIZE_MAX) {
        return operation<detail::channel_lend_op<T>>(context, end_, max, detail::ring_of(context));
    }

    /// Publishes the first `count` slots prepared, at once; EINVAL past them, EPIPE as above.
    void commit(std::size_t count) { detail::hand_over(end_, count, "commit to"); }

    /// Publishes `record`, waiting while the channel is full; EPIPE if the receiver closes or
    /// its process ends meanwhile.
    void send(const T& record) { detail::send_blocking(end_, record, nullptr); }

    /// As `send`, but gives up after `timeout` with ETIME.
    void send_for(const T& record, std::chrono::nanoseconds timeout) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        detail::send_blocking(end_, record, &deadline);
    }

    /// Publishes `record` when there is room, suspending the awaiting coroutine while the channel
    /// is full; `record` must outlive the `co_await`.
    auto send(io_context& context, const T& record) {
        return operation<detail::channel_send_op<T>>(context, end_, record,
                                                     detail::ring_of(context));
    }
};

/// A sender of the channel's record type.
template <class T>
channel_sender(channel<T>&&) -> channel_sender<T>;

/// The receiving end of a channel in this process. Not thread-safe: one thread at a time.
template <channel_record T>
class channel_receiver : public detail::channel_port<T, detail::channel_role::receiver> {
    using port = detail::channel_port<T, detail::channel_role::receiver>;
    using port::end_;

public:
    using port::port;

    /// The next record if one is there; never waits, and says nothing of the sender.
    std::optional<T> try_receive() {
        detail::check_end(end_, "receive from");
        std::optional<T> record;
        detail::take_record(end_, record);
        return record;
    }

    /// Takes as many records as are there, up to `records.size()`, at once; how many it took.
    std::size_t try_receive(std::span<T> records) {
        detail::check_end(end_, "receive from");
        return detail::take_records(end_, records);
    }

    /// The records there, in place and contiguous from the next one (at most `max`, none past
    /// the ring's last slot); empty when there is none. Read them, then `consume` them.
    std::span<const T> try_peek(std::size_t max = SIZE_MAX) {
        detail::check_end(end_, "receive from");
        return detail::lend<T>(end_, max);
    }

    /// As `try_peek`, but waits for a record (unless `max` is 0) as `receive` waits; empty once
    /// the sender has closed and every record it sent was taken.
    std::span<const T> peek(std::size_t max = SIZE_MAX) {
        std::span<const T> records;
        detail::receive_when(end_, nullptr, [&] { return detail::lend_to(end_, max, records); });
        return records;
    }

    /// As `peek`, suspending the awaiting coroutine instead; errors as the awaited `receive`.
    auto peek(io_context& context, std::size_t max = SIZE_MAX) {
        return operation<detail::channel_lend_op<const T>>(context, end_, max,
                                                           detail::ring_of(context));
    }

    /// Frees the first `count` records peeked, for the sender to reuse; EINVAL past them.
    void consume(std::size_t count) { detail::hand_over(end_, count, "consume from"); }

    /// The next record, waiting for one; nullopt once the sender has closed and every record it
    /// sent was taken. ECONNRESET if the sender's process ended without closing.
    std::optional<T> receive() { return detail::receive_blocking<T>(end_, nullptr); }

    /// As `receive`, but gives up after `timeout` with ETIME.
    std::optional<T> receive_for(std::chrono::nanoseconds timeout) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        return detail::receive_blocking<T>(end_, &deadline);
    }

    /// The next record, suspending the awaiting coroutine until one comes; as `receive`
    /// otherwise.
    auto receive(io_context& context) {
        return operation<detail::channel_receive_op<T>>(context, end_, detail::ring_of(context));
    }
};

/// A receiver of the channel's record type.
template <class T>
channel_receiver(channel<T>&&) -> channel_receiver<T>;

} // namespace ringio
