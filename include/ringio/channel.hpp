#pragma once

/// channel: fixed-size records from one process to another through shared memory, sent and
/// received blocking or awaited.

#include <ringio/detail/channel_core.hpp>
#include <ringio/detail/chrono.hpp>
#include <ringio/detail/error.hpp>
#include <ringio/detail/map_request.hpp>
#include <ringio/futex.hpp>
#include <ringio/io_context.hpp>
#include <ringio/map_options.hpp>
#include <ringio/mappable.hpp>
#include <ringio/mapped.hpp>
#include <ringio/operation.hpp>

#include <liburing.h>

#include <cerrno>
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

template <channel_record T>
class channel_sender;
template <channel_record T>
class channel_receiver;

/// A queue of `T` records in shared memory (a file, a memfd or anonymous memory), for one
/// sender and one receiver, usually in two processes. Move it into a `channel_sender` or a
/// `channel_receiver` to use it.
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
    friend class channel_sender<T>;
    friend class channel_receiver<T>;

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

template <channel_record T>
struct channel_send_op;
template <channel_record T>
struct channel_receive_op;

template <class T>
T& record_at(const channel_end& end, std::uint32_t index) noexcept {
    return reinterpret_cast<T*>(end.records())[index & end.mask()];
}

/// Copies `record` in and publishes it if there is room; wakes the receiver if it sleeps.
template <class T>
bool put_record(channel_end& end, const T& record) noexcept {
    const auto room = [&end] {
        return end.mask() + 1 - (end.own() - end.seen());
    };
    if (room() == 0 && (!end.refresh() || room() == 0)) {
        return false;
    }
    const std::uint32_t own = end.own();
    record_at<T>(end, own) = record;
    end.publish(own + 1);
    return true;
}

/// Copies the next record out, if there is one, and frees its slot; wakes the sender if it
/// sleeps.
template <class T>
bool take_record(channel_end& end, std::optional<T>& record) noexcept {
    if (end.own() == end.seen() && !end.refresh()) {
        return false;
    }
    const std::uint32_t own = end.own();
    record.emplace(record_at<T>(end, own));
    end.publish(own + 1); // after the copy: the slot may be written again after it
    return true;
}

/// What an operation on a channel end reports; `end` is null once the end object is gone.
inline std::string channel_failure(const channel_end* end, const char* verb, int code) {
    if (end == nullptr) {
        return std::string(verb) + " channel (the end was destroyed while it waited)";
    }
    std::string text = std::string(verb) + " channel " + end->name();
    if (code == EBADF) {
        return text + " (this " + end->role_name() + " is closed)";
    }
    if (code != EPIPE && code != ECONNRESET) {
        return text; // a timeout or a cancellation
    }
    if (end->peer_state() == end_state::closed) {
        return text + " (the " + end->peer_name() + " has closed)";
    }
    return text + " (the " + end->peer_name() + ", pid " + std::to_string(end->peer_pid()) +
           ", ended without closing)";
}

} // namespace detail

/// The sending end of a channel in this process. Not thread-safe: one thread at a time.
template <channel_record T>
class channel_sender {
public:
    /// Claims the sending end of `source` for this process; EBUSY if another process holds or
    /// held it.
    explicit channel_sender(channel<T>&& source)
        : end_(std::move(source.memory_), detail::channel_role::sender) {}

    /// Publishes `record` if there is room; false when the channel is full. EPIPE if the receiver
    /// has closed.
    bool try_send(const T& record) {
        check_peer("send to");
        return put(record);
    }

    /// Publishes as many of `records` as there is room for, at once; how many it published.
    std::size_t try_send(std::span<const T> records) {
        check_peer("send to");
        std::uint32_t free = room();
        if (free < records.size() && end_.refresh()) {
            free = room();
        }
        const std::size_t n = records.size() < free ? records.size() : free;
        const std::uint32_t own = end_.own();
        for (std::size_t i = 0; i < n; ++i) {
            detail::record_at<T>(end_, own + static_cast<std::uint32_t>(i)) = records[i];
        }
        if (n > 0) {
            end_.publish(own + static_cast<std::uint32_t>(n));
        }
        return n;
    }

    /// Publishes `record`, waiting while the channel is full; EPIPE if the receiver closes or
    /// its process ends meanwhile.
    void send(const T& record) { send_until(record, nullptr); }

    /// As `send`, but gives up after `timeout` with ETIME.
    void send_for(const T& record, std::chrono::nanoseconds timeout) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        send_until(record, &deadline);
    }

    /// Publishes `record` when there is room, suspending the awaiting coroutine while the channel
    /// is full; `record` must outlive the `co_await`.
    auto send(io_context& context, const T& record) {
        return operation<detail::channel_send_op<T>>(context, end_, record,
                                                     detail::ring_of(context));
    }

    /// Lets go of the end: the receiver takes what was sent, then sees the end of the channel;
    /// sends awaiting on it fail with EBADF.
    void close() noexcept { end_.close(); }
    /// True until closed or moved from.
    [[nodiscard]] bool is_open() const noexcept { return end_.is_open(); }
    /// The channel's name, as errors say it.
    [[nodiscard]] const std::string& name() const noexcept { return end_.name(); }

private:
    [[nodiscard]] std::uint32_t room() const noexcept {
        return end_.mask() + 1 - (end_.own() - end_.seen());
    }
    bool put(const T& record) noexcept { return detail::put_record(end_, record); }

    void check_peer(const char* verb) const {
        if (!end_.is_open()) {
            fail(EBADF, verb);
        }
        if (end_.peer_state() == detail::end_state::closed) {
            fail(EPIPE, verb);
        }
    }

    [[noreturn]] void fail(int code, const char* verb) const {
        detail::throw_error(std::error_code(code, std::system_category()),
                            detail::channel_failure(&end_, verb, code));
    }

    void send_until(const T& record, const std::chrono::steady_clock::time_point* deadline) {
        const auto spin_end = std::chrono::steady_clock::now() + detail::spin_time;
        for (;;) {
            check_peer("send to");
            if (put(record)) {
                return;
            }
            if (std::chrono::steady_clock::now() < spin_end) {
                detail::spin_pause();
                continue;
            }
            if (!detail::doze(end_, deadline)) {
                continue;
            }
            if (deadline != nullptr && std::chrono::steady_clock::now() >= *deadline) {
                if (put(record)) {
                    return;
                }
                fail(ETIME, "send to");
            }
            if (end_.peer_gone()) {
                fail(EPIPE, "send to");
            }
        }
    }

    detail::channel_end end_;
};

/// The receiving end of a channel in this process. Not thread-safe: one thread at a time.
template <channel_record T>
class channel_receiver {
public:
    /// Claims the receiving end of `source` for this process; EBUSY if another process holds or
    /// held it.
    explicit channel_receiver(channel<T>&& source)
        : end_(std::move(source.memory_), detail::channel_role::receiver) {}

    /// The next record if one is there; never waits, and says nothing of the sender.
    std::optional<T> try_receive() {
        check_open("receive from");
        std::optional<T> record;
        take(record);
        return record;
    }

    /// Takes as many records as are there, up to `records.size()`, at once; how many it took.
    std::size_t try_receive(std::span<T> records) {
        check_open("receive from");
        std::uint32_t ready = end_.seen() - end_.own();
        if (ready < records.size() && end_.refresh()) {
            ready = end_.seen() - end_.own();
        }
        const std::size_t n = records.size() < ready ? records.size() : ready;
        const std::uint32_t own = end_.own();
        for (std::size_t i = 0; i < n; ++i) {
            records[i] = detail::record_at<T>(end_, own + static_cast<std::uint32_t>(i));
        }
        if (n > 0) {
            end_.publish(own + static_cast<std::uint32_t>(n));
        }
        return n;
    }

    /// The next record, waiting for one; nullopt once the sender has closed and every record it
    /// sent was taken. ECONNRESET if the sender's process ended without closing.
    std::optional<T> receive() { return receive_until(nullptr); }

    /// As `receive`, but gives up after `timeout` with ETIME.
    std::optional<T> receive_for(std::chrono::nanoseconds timeout) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        return receive_until(&deadline);
    }

    /// The next record, suspending the awaiting coroutine until one comes; as `receive`
    /// otherwise.
    auto receive(io_context& context) {
        return operation<detail::channel_receive_op<T>>(context, end_, detail::ring_of(context));
    }

    /// Lets go of the end: the sender's next send fails with EPIPE; receives awaiting on it
    /// fail with EBADF.
    void close() noexcept { end_.close(); }
    /// True until closed or moved from.
    [[nodiscard]] bool is_open() const noexcept { return end_.is_open(); }
    /// The channel's name, as errors say it.
    [[nodiscard]] const std::string& name() const noexcept { return end_.name(); }

private:
    bool take(std::optional<T>& record) noexcept { return detail::take_record(end_, record); }

    void check_open(const char* verb) const {
        if (!end_.is_open()) {
            fail(EBADF, verb);
        }
    }

    [[noreturn]] void fail(int code, const char* verb) const {
        detail::throw_error(std::error_code(code, std::system_category()),
                            detail::channel_failure(&end_, verb, code));
    }

    std::optional<T> receive_until(const std::chrono::steady_clock::time_point* deadline) {
        check_open("receive from");
        std::optional<T> record;
        const auto spin_end = std::chrono::steady_clock::now() + detail::spin_time;
        for (;;) {
            if (take(record)) {
                return record;
            }
            // The sender closes after its last publish: once closed is seen, what it sent is.
            if (end_.peer_state() == detail::end_state::closed) {
                take(record);
                return record;
            }
            if (std::chrono::steady_clock::now() < spin_end) {
                detail::spin_pause();
                continue;
            }
            if (!detail::doze(end_, deadline)) {
                continue;
            }
            if (deadline != nullptr && std::chrono::steady_clock::now() >= *deadline) {
                if (take(record)) {
                    return record;
                }
                fail(ETIME, "receive from");
            }
            if (end_.peer_gone()) {
                if (take(record)) {
                    return record; // what it published before it ended still arrives
                }
                fail(ECONNRESET, "receive from");
            }
        }
    }

    detail::channel_end end_;
};

namespace detail {

/// What an awaited send and receive share: the sleep on their end's bell, and the attempt again
/// after each wake-up. `Derived::attempt()` is true when done, false when failed or asleep.
template <class Derived>
struct channel_op {
    channel_wait wait;

    channel_op(channel_end& end, ring& r) noexcept : wait(end, r) {}

    bool ready() noexcept {
        wait.enlist();
        return self().attempt();
    }
    /// True while it may look again instead of sleeping: for a short while, and only while its
    /// loop has nothing else to do, so that a peer's answer needs no wake-up and delays no one.
    bool spin() noexcept {
        if (!wait.via->idle()) {
            return false;
        }
        const auto now = std::chrono::steady_clock::now();
        if (spin_end_ == std::chrono::steady_clock::time_point{}) {
            spin_end_ = now + spin_time;
            if (wait.via->unsubmitted()) {
                wait.via->submit_pending(); // what others asked for goes before the spin
            }
        } else if (now >= spin_end_) {
            return false;
        }
        spin_pause();
        return true;
    }
    void prepare(io_uring_sqe* sqe) noexcept { wait.prepare(sqe); }
    [[nodiscard]] int translate(int result) const noexcept { return wait.translate(result); }
    bool again(int& result) noexcept {
        if (self().attempt()) {
            return false;
        }
        if (wait.error != 0) {
            result = -wait.error;
            return false;
        }
        wait.again();
        return true;
    }

private:
    Derived& self() noexcept { return static_cast<Derived&>(*this); }

    std::chrono::steady_clock::time_point spin_end_{};
};

/// An awaited send: published at once if there is room, else after a sleep on the sender's bell.
template <channel_record T>
struct channel_send_op : channel_op<channel_send_op<T>> {
    using channel_op<channel_send_op<T>>::wait;
    const T* record;

    channel_send_op(channel_end& end, const T& what, ring& r) noexcept
        : channel_op<channel_send_op<T>>(end, r), record(&what) {}

    // True: sent. False: failed (`wait.error`, reported through a NOP), or asleep.
    bool attempt() noexcept {
        for (;;) {
            channel_end* end = wait.end;
            if (end == nullptr || !end->is_open()) {
                wait.error = EBADF;
                return false;
            }
            if (end->peer_state() == end_state::closed) {
                wait.error = EPIPE;
                return false;
            }
            if (put_record(*end, *record)) {
                return true;
            }
            if (wait.peer_ended()) {
                wait.error = EPIPE;
                return false;
            }
            if (this->spin()) {
                continue;
            }
            if (wait.sleep()) {
                return false;
            }
        }
    }

    void complete(int /*result*/) const noexcept {}
    [[nodiscard]] std::string describe() const {
        return channel_failure(wait.end, "send to", wait.error);
    }
};

/// An awaited receive: taken at once if a record is there, else after a sleep on the receiver's
/// bell; nullopt at the end of the channel.
template <channel_record T>
struct channel_receive_op : channel_op<channel_receive_op<T>> {
    using channel_op<channel_receive_op<T>>::wait;
    std::optional<T> record;

    channel_receive_op(channel_end& end, ring& r) noexcept
        : channel_op<channel_receive_op<T>>(end, r) {}

    bool attempt() noexcept {
        for (;;) {
            channel_end* end = wait.end;
            if (end == nullptr || !end->is_open()) {
                wait.error = EBADF;
                return false;
            }
            if (take_record(*end, record)) {
                return true;
            }
            // The sender closes after its last publish: once closed is seen, what it sent is.
            if (end->peer_state() == end_state::closed) {
                take_record(*end, record);
                return true;
            }
            if (wait.peer_ended()) {
                if (take_record(*end, record)) {
                    return true; // what it published before it ended still arrives
                }
                wait.error = ECONNRESET;
                return false;
            }
            if (this->spin()) {
                continue;
            }
            if (wait.sleep()) {
                return false;
            }
        }
    }

    std::optional<T> complete(int /*result*/) noexcept { return std::move(record); }
    [[nodiscard]] std::string describe() const {
        return channel_failure(wait.end, "receive from", wait.error);
    }
};

} // namespace detail

} // namespace ringio
