#pragma once

// channel_end: one end of a channel in this process: its claim on the header, the ring of records
// between the two ends' counts, and the bell that wakes the other end only if it sleeps.

#include <ringio/detail/channel_layout.hpp>
#include <ringio/detail/channel_peer.hpp>
#include <ringio/detail/error.hpp>
#include <ringio/detail/futex.hpp>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <utility>

namespace ringio::detail {

/// Bumps `bell` and wakes whoever sleeps on it, at once.
// Not through the ring: a wake-up queued there waits for the loop's next submission, which a
// program that stops its loop after its last send would never make.
inline void ring_bell(channel_bell& bell) noexcept {
    shared(bell.rings).fetch_add(1, std::memory_order_seq_cst);
    futex_wake(&bell.rings, INT32_MAX);
}

/// Rings `bell` if its end said it may sleep.
// With the seq_cst index store before it and the sleeper's seq_cst `waiting` store and index
// load, one of the two sees the other: no lost wake-up, and no system call while it is awake.
inline void wake_if_waiting(channel_bell& bell) noexcept {
    const auto waiting = shared(bell.waiting);
    if (waiting.load(std::memory_order_seq_cst) != 0 &&
        waiting.exchange(0, std::memory_order_seq_cst) != 0) {
        ring_bell(bell);
    }
}

class channel_end;

/// An awaited operation asleep on an end, as the end knows it: closing the end interrupts it,
/// moving the end takes it along, destroying the end leaves it none (it then fails with EBADF).
struct end_waiter {
    channel_end* end;
    void (*closing)(end_waiter&) noexcept; ///< Its end is closing: see channel_wait::closing_end.
    bool listed = false;
    end_waiter* prev = nullptr;
    end_waiter* next = nullptr;
};

/// The slots an end lent in place: `count` of them, from its count `at`.
struct lent_slots {
    std::uint32_t at = 0;
    std::uint32_t count = 0;
};

/// One end of a channel in this process: its claim on the header, its own count, the other
/// end's count as last read, the other end's process, and the awaited operations on it.
class channel_end {
public:
    channel_end() noexcept = default;

    /// Claims the `role` end of `memory`'s channel for this process; EBUSY if another holds it
    /// or held it.
    channel_end(channel_memory memory, channel_role role)
        : memory_(std::move(memory)), role_(role) {
        if (memory_.header() == nullptr) {
            throw_error(std::make_error_code(std::errc::invalid_argument),
                        std::string("channel: an empty channel has no ") + role_name() +
                            " end to claim");
        }
        channel_header& h = *memory_.header();
        channel_owner& mine = h.owner[static_cast<int>(role)];
        std::int32_t expected = 0;
        const std::int32_t pid = ::getpid();
        if (!shared(mine.pid).compare_exchange_strong(expected, pid, std::memory_order_seq_cst)) {
            const auto state =
                static_cast<end_state>(shared(mine.state).load(std::memory_order_acquire));
            throw_error(std::make_error_code(std::errc::device_or_resource_busy),
                        "channel " + memory_.name() + ": the " + role_name() + " end " +
                            (state == end_state::closed ? "was attached" : "is attached") +
                            " already (pid " + std::to_string(expected) + ")");
        }
        shared(mine.start).store(process_start(pid), std::memory_order_relaxed);
        shared(mine.state)
            .store(static_cast<std::uint32_t>(end_state::attached), std::memory_order_seq_cst);
        const int self = static_cast<int>(role);
        own_ = shared(h.index[self].value).load(std::memory_order_relaxed);
        seen_ = shared(h.index[other(role)].value).load(std::memory_order_acquire);
        mask_ = h.capacity - 1;
        records_ = memory_.records();
        pid_ = pid;
        // The other end may sleep without a process to watch yet: let it find this one.
        ring_bell(h.bell[other(role)]);
    }

    /// Takes `other`'s end and the operations awaiting on it; `other` is left closed.
    channel_end(channel_end&& other) noexcept { take(other); }
    channel_end& operator=(channel_end&& other) noexcept {
        if (this != &other) {
            close();
            forget_waits();
            take(other);
        }
        return *this;
    }
    channel_end(const channel_end&) = delete;
    channel_end& operator=(const channel_end&) = delete;
    ~channel_end() {
        close();
        forget_waits();
    }

    /// Lets go of the end: its awaiting operations fail with EBADF, the other end sees it closed
    /// (and is woken), then the memory is unmapped; a forked copy only unmaps.
    void close() noexcept {
        if (memory_.header() == nullptr) {
            return;
        }
        channel_header& h = *memory_.header();
        if (waits_ != nullptr) {
            for (end_waiter* w = waits_; w != nullptr; w = w->next) {
                w->closing(*w);
            }
            ring_bell(h.bell[self()]); // before the unmapping: they sleep on it
        }
        if (pid_ == ::getpid()) {
            shared(h.owner[self()].state)
                .store(static_cast<std::uint32_t>(end_state::closed), std::memory_order_seq_cst);
            ring_bell(h.bell[other(role_)]);
        }
        peer_.reset();
        memory_.reset();
        records_ = nullptr;
        pid_ = 0;
    }

    [[nodiscard]] bool is_open() const noexcept { return memory_.header() != nullptr; }
    [[nodiscard]] const std::string& name() const noexcept { return memory_.name(); }
    [[nodiscard]] channel_header& header() const noexcept { return *memory_.header(); }
    [[nodiscard]] std::byte* records() const noexcept { return records_; }
    [[nodiscard]] std::uint32_t mask() const noexcept { return mask_; }
    [[nodiscard]] std::uint32_t own() const noexcept { return own_; }
    /// What it lent in place (see channel_lend.hpp).
    lent_slots& lent() noexcept { return lent_; }

    /// Reads the other end's count again; true if it moved.
    bool refresh() noexcept {
        const std::uint32_t now =
            shared(header().index[other(role_)].value).load(std::memory_order_seq_cst);
        const bool moved = now != seen_;
        seen_ = now;
        return moved;
    }

    /// How many records this end can move now, at most `wanted`: free slots for the sender,
    /// records sent for the receiver.
    // Reads the other end's count again only when the count last read leaves fewer.
    std::uint32_t available(std::size_t wanted) noexcept {
        std::uint32_t n = movable();
        if (n < wanted && refresh()) {
            n = movable();
        }
        return n < wanted ? n : static_cast<std::uint32_t>(wanted);
    }

    /// Publishes this end's count (after the records it covers were copied), then wakes the
    /// other end if it may sleep.
    void publish(std::uint32_t count) noexcept {
        own_ = count;
        // seq_cst: the other end's `waiting` store and its reading of this count are ordered
        // against it (see wake_if_waiting). Also a release: the records are there before it.
        shared(header().index[self()].value).store(count, std::memory_order_seq_cst);
        wake_if_waiting(header().bell[other(role_)]);
    }

    /// The other end's state.
    [[nodiscard]] end_state peer_state() const noexcept {
        return static_cast<end_state>(
            shared(header().owner[other(role_)].state).load(std::memory_order_seq_cst));
    }
    /// The pid the other end recorded, 0 before it attached.
    [[nodiscard]] int peer_pid() const noexcept {
        return peer_process::pid_of(header().owner[other(role_)]);
    }
    /// True once the other end's process has ended without closing (one system call).
    bool peer_gone() noexcept {
        return peer_state() == end_state::attached && peer_.gone(header().owner[other(role_)]);
    }
    /// The other end's pidfd, or -1 (not attached yet, or no pidfds here).
    int peer_pidfd() noexcept { return peer_.pidfd(header().owner[other(role_)]); }

    /// This end's bell.
    [[nodiscard]] channel_bell& bell() const noexcept { return header().bell[self()]; }
    /// Reads its bell, then says this end may sleep: sleep only on that value, after checking
    /// again that there is nothing to do.
    // Only the other end clears the flag, as it rings: a sleeper that clears it could clear it
    // under another coroutine asleep on the same end; a flag left set costs one needless wake-up.
    std::uint32_t arm() noexcept {
        // The bell first: a wake-up meant for a record this end has taken already may clear the
        // flag just set; it rings after this read, so the sleep ends at once and arms again.
        // Read after the flag, that ring would be the value slept on, and the flag lost with it.
        const std::uint32_t rung = shared(bell().rings).load(std::memory_order_seq_cst);
        shared(bell().waiting).store(1, std::memory_order_seq_cst);
        return rung;
    }

    [[nodiscard]] bool is_sender() const noexcept { return role_ == channel_role::sender; }
    /// "sender" or "receiver".
    [[nodiscard]] const char* role_name() const noexcept {
        return role_ == channel_role::sender ? "sender" : "receiver";
    }
    [[nodiscard]] const char* peer_name() const noexcept {
        return role_ == channel_role::sender ? "receiver" : "sender";
    }

    void link(end_waiter& w) noexcept {
        w.prev = nullptr;
        w.next = waits_;
        if (waits_ != nullptr) {
            waits_->prev = &w;
        }
        waits_ = &w;
        w.listed = true;
    }
    void unlink(end_waiter& w) noexcept {
        (w.prev != nullptr ? w.prev->next : waits_) = w.next;
        if (w.next != nullptr) {
            w.next->prev = w.prev;
        }
        w.prev = w.next = nullptr;
        w.listed = false;
    }

private:
    [[nodiscard]] int self() const noexcept { return static_cast<int>(role_); }
    [[nodiscard]] std::uint32_t movable() const noexcept {
        return is_sender() ? mask_ + 1 - (own_ - seen_) : seen_ - own_;
    }

    void take(channel_end& other) noexcept {
        memory_ = std::move(other.memory_);
        other.memory_.reset();
        peer_ = std::move(other.peer_);
        role_ = other.role_;
        own_ = other.own_;
        seen_ = other.seen_;
        mask_ = other.mask_;
        records_ = std::exchange(other.records_, nullptr);
        pid_ = std::exchange(other.pid_, 0);
        waits_ = std::exchange(other.waits_, nullptr);
        lent_ = other.lent_;
        for (end_waiter* w = waits_; w != nullptr; w = w->next) {
            w->end = this;
        }
    }
    // The end object goes: its operations fail with EBADF, and name no channel.
    void forget_waits() noexcept {
        while (waits_ != nullptr) {
            end_waiter& w = *waits_;
            unlink(w);
            w.end = nullptr;
        }
    }

    channel_memory memory_;
    peer_process peer_;
    channel_role role_ = channel_role::sender;
    std::uint32_t own_ = 0;
    std::uint32_t seen_ = 0;
    std::uint32_t mask_ = 0;
    std::byte* records_ = nullptr; // kept: the mapping's view costs a division to find
    int pid_ = 0;
    end_waiter* waits_ = nullptr;
    lent_slots lent_;
};

/// A full sender's spin, until an eighth of the ring (at most 16 slots) is free or `more()` says
/// stop; true if there is room by then.
template <class More>
bool wait_for_room(channel_end& end, More more) noexcept {
    // Each look pulls the receiver's count over, and each record sent moves a slot the receiver
    // reads next: looking again only once a stretch is free lets the receiver drain undisturbed.
    const std::uint32_t stretch = std::min<std::uint32_t>((end.mask() + 1) / 8, 16);
    while (stretch > 1 && end.available(stretch) < stretch && more()) {
    }
    return end.available(1) > 0;
}

/// Record number `index` (modulo the capacity) in the ring.
template <class T>
T& record_at(const channel_end& end, std::uint32_t index) noexcept {
    return reinterpret_cast<T*>(end.records())[index & end.mask()];
}

/// Copies as many of `records` in as there is room for and publishes them with one store; how
/// many. Wakes the receiver if it sleeps.
template <class T>
std::size_t put_records(channel_end& end, std::span<const T> records) noexcept {
    const std::uint32_t n = end.available(records.size());
    const std::uint32_t own = end.own();
    for (std::uint32_t i = 0; i < n; ++i) {
        record_at<T>(end, own + i) = records[i];
    }
    if (n > 0) {
        end.publish(own + n);
    }
    return n;
}

/// Copies `record` in and publishes it if there is room.
template <class T>
bool put_record(channel_end& end, const T& record) noexcept {
    if (end.available(1) == 0) {
        return false;
    }
    const std::uint32_t own = end.own();
    record_at<T>(end, own) = record;
    end.publish(own + 1);
    return true;
}

/// Copies up to `records.size()` records out and frees their slots with one store; how many.
/// Wakes the sender if it sleeps.
template <class T>
std::size_t take_records(channel_end& end, std::span<T> records) noexcept {
    const std::uint32_t n = end.available(records.size());
    const std::uint32_t own = end.own();
    for (std::uint32_t i = 0; i < n; ++i) {
        records[i] = record_at<T>(end, own + i);
    }
    if (n > 0) {
        end.publish(own + n); // after the copies: their slots may be written again after it
    }
    return n;
}

/// Copies the next record out into `record`, if there is one, and frees its slot.
template <class T>
bool take_record(channel_end& end, std::optional<T>& record) noexcept {
    if (end.available(1) == 0) {
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

/// Throws `code` for `verb` on `end`, in channel_failure's words.
[[noreturn]] inline void channel_fail(const channel_end& end, const char* verb, int code) {
    throw_error(std::error_code(code, std::system_category()), channel_failure(&end, verb, code));
}

/// What every call on an end checks first: EBADF if it is closed; for a send, EPIPE too if the
/// receiver has closed.
inline void check_end(const channel_end& end, const char* verb) {
    if (!end.is_open()) {
        channel_fail(end, verb, EBADF);
    }
    if (end.is_sender() && end.peer_state() == end_state::closed) {
        channel_fail(end, verb, EPIPE);
    }
}

} // namespace ringio::detail
