#pragma once

// channel_core: a channel's layout in shared memory, the wake-up protocol of its two ends, and
// how one end learns that the other's process has ended.

#include <ringio/detail/chrono.hpp>
#include <ringio/detail/error.hpp>
#include <ringio/detail/futex.hpp>
#include <ringio/detail/lifetime.hpp>
#include <ringio/detail/mapping.hpp>
#include <ringio/detail/ring.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <new>
#include <string>
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

#ifndef RINGIO_SPIN_PAUSES
#define RINGIO_SPIN_PAUSES 8
#endif
/// A pause between two looks at the other end's count while spinning: each look pulls its cache
/// line over, which the other end must then take back to write its next count.
inline void spin_pause() noexcept {
    for (int i = 0; i < RINGIO_SPIN_PAUSES; ++i) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        __asm__ __volatile__("yield");
#endif
    }
}

/// Bumps `bell` and wakes whoever sleeps on it, at once. (Not through the ring: a wake-up queued
/// there waits for the loop's next submission, which a program that stops its loop after its
/// last send would never make.)
inline void ring_bell(channel_bell& bell) noexcept {
    shared(bell.rings).fetch_add(1, std::memory_order_seq_cst);
    futex_wake(&bell.rings, INT32_MAX);
}

/// Rings `bell` if its end said it may sleep. With the seq_cst index store before it and the
/// sleeper's seq_cst `waiting` store and index load, one of the two sees the other: no lost
/// wake-up, and no system call while the sleeper is awake.
inline void wake_if_waiting(channel_bell& bell) noexcept {
    const auto waiting = shared(bell.waiting);
    if (waiting.load(std::memory_order_seq_cst) != 0 &&
        waiting.exchange(0, std::memory_order_seq_cst) != 0) {
        ring_bell(bell);
    }
}

/// The start time of process `pid` in clock ticks after boot, its state letter into `state`;
/// 0 when /proc cannot tell. Read with plain system calls into the stack: no allocation.
inline std::uint64_t process_start(int pid, char* state = nullptr) noexcept {
    char path[32];
    std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return 0;
    }
    char text[1024];
    const ssize_t n = ::read(fd, text, sizeof text - 1);
    ::close(fd);
    if (n <= 0) {
        return 0;
    }
    text[n] = '\0';
    // "pid (command) state ppid ...": the command may hold spaces and parentheses, so the fields
    // are counted from the last ')'. The start time is field 22.
    const char* after = std::strrchr(text, ')');
    if (after == nullptr || after[1] == '\0') {
        return 0;
    }
    if (state != nullptr) {
        *state = after[2];
    }
    int field = 2;
    for (const char* c = after + 1; *c != '\0'; ++c) {
        if (*c == ' ' && ++field == 22) {
            return std::strtoull(c + 1, nullptr, 10);
        }
    }
    return 0;
}

/// The other end's process, as seen from this one: a pidfd once it has attached, which the
/// kernel makes readable when that process ends (as a zombie too, before anyone reaps it).
class peer_process {
public:
    peer_process() noexcept = default;
    peer_process(peer_process&& other) noexcept
        : pidfd_(std::exchange(other.pidfd_, -1)), pid_(other.pid_), gone_(other.gone_) {}
    peer_process& operator=(peer_process&& other) noexcept {
        if (this != &other) {
            reset();
            pidfd_ = std::exchange(other.pidfd_, -1);
            pid_ = other.pid_;
            gone_ = other.gone_;
        }
        return *this;
    }
    ~peer_process() { reset(); }

    /// The pid the other end recorded when it attached, 0 before.
    [[nodiscard]] static int pid_of(const channel_owner& owner) noexcept {
        return shared(const_cast<std::int32_t&>(owner.pid)).load(std::memory_order_acquire);
    }

    /// The pidfd of the process holding `owner`, opened on first use; -1 before it attached or
    /// where pidfds are missing (Linux before 5.3).
    int pidfd(const channel_owner& owner) noexcept {
        find(owner);
        return pidfd_;
    }

    /// True once the process that attached to `owner` has ended. One poll, or without a pidfd,
    /// kill(pid, 0) and its /proc entry.
    bool gone(const channel_owner& owner) noexcept {
        find(owner);
        if (gone_ || pid_ <= 0) {
            return gone_;
        }
        if (pidfd_ >= 0) {
            ::pollfd ready{pidfd_, POLLIN, 0};
            gone_ = ::poll(&ready, 1, 0) == 1;
            return gone_;
        }
        char state = '?';
        const std::uint64_t start = process_start(pid_, &state);
        gone_ = (::kill(pid_, 0) != 0 && errno == ESRCH) || state == 'Z' || state == 'X' ||
                (start != 0 && recorded_start_ != 0 && start != recorded_start_);
        return gone_;
    }

    void reset() noexcept {
        if (pidfd_ >= 0) {
            ::close(pidfd_);
        }
        pidfd_ = -1;
        pid_ = 0;
        gone_ = false;
    }

private:
    void find(const channel_owner& owner) noexcept {
        if (pid_ > 0) {
            return;
        }
        const int pid = pid_of(owner);
        if (pid <= 0) {
            return;
        }
        pid_ = pid;
        recorded_start_ =
            shared(const_cast<std::uint64_t&>(owner.start)).load(std::memory_order_acquire);
        // valgrind 3.19 does not know pidfd_open (and warns): the slower checks serve there.
        const long fd = running_on_valgrind() ? -ENOSYS : ::syscall(SYS_pidfd_open, pid, 0);
        if (fd < 0) {
            gone_ = fd == -1 && errno == ESRCH; // reaped; ENOSYS, EMFILE: the slower checks
            return;
        }
        pidfd_ = static_cast<int>(fd);
        // Between the pid's recording and the pidfd, the process may have ended and its number
        // gone to another: the start time tells them apart.
        const std::uint64_t start = process_start(pid);
        gone_ = start != 0 && recorded_start_ != 0 && start != recorded_start_;
    }

    int pidfd_ = -1;
    int pid_ = 0;
    std::uint64_t recorded_start_ = 0;
    bool gone_ = false;
};

class peer_watch;

/// An awaiting operation's side of a `peer_watch`, in the operation itself.
struct watch_hold {
    peer_watch* watch = nullptr;
    channel_bell* bell = nullptr; ///< Rung when the other end's process ends.
    bool peer_ended = false;

    /// Polls `pidfd` through `r`; false when no watch could be made (no storage left).
    bool arm(ring& r, int pidfd, channel_bell& rung) noexcept;
    /// Cancels the watch if it is still armed; safe to call more than once.
    void release(ring& r) noexcept;
};

/// A poll on the other end's pidfd while an operation sleeps: when that process ends, it rings
/// the bell the operation sleeps on. It lives in the context's storage, not in the operation: its
/// cancellation completes after the operation may have gone.
class peer_watch final : public completion {
public:
    explicit peer_watch(ring& r, watch_hold& hold) noexcept
        : completion{&on_completion}, ring_(&r), hold_(&hold) {}

    /// The operation lets go: the watch's completion will touch it no more.
    void forget() noexcept { hold_ = nullptr; }

private:
    static void on_completion(completion* self, const io_uring_cqe& cqe) noexcept {
        auto* watch = static_cast<peer_watch*>(self);
        if (watch_hold* hold = watch->hold_) {
            hold->watch = nullptr;
            if (cqe.res > 0) { // POLLIN: the process has ended
                hold->peer_ended = true;
                ring_bell(*hold->bell);
            }
        }
        ring& r = *watch->ring_;
        watch->~peer_watch();
        r.storage().free_slot(watch);
    }

    ring* ring_;
    watch_hold* hold_;
};

static_assert(sizeof(peer_watch) <= context_storage::slot_size);

inline bool watch_hold::arm(ring& r, int pidfd, channel_bell& rung) noexcept {
    if (watch != nullptr) {
        return true;
    }
    void* slot = nullptr;
    try {
        slot = r.storage().allocate_slot();
    } catch (...) {
        return false;
    }
    watch = ::new (slot) peer_watch(r, *this);
    bell = &rung;
    io_uring_sqe* sqe = r.get_sqe();
    io_uring_prep_poll_add(sqe, pidfd, POLLIN);
    io_uring_sqe_set_data64(sqe, watch->user_data());
    return true;
}

inline void watch_hold::release(ring& r) noexcept {
    if (watch != nullptr) {
        watch->forget();
        r.cancel(watch->user_data());
        watch = nullptr;
    }
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
                             " bytes, fewer than a "
                             "channel's header (" +
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

class channel_end;

/// What an awaited send or receive keeps while it waits: the sleep on its end's bell (a futex
/// wait through the ring, or the fallback's timer), the watch on the other end's process, the
/// error found before any request (submitted as a NOP that fails with it), and its place in the
/// end's list, so that closing, moving or destroying the end reaches it.
struct channel_wait {
    channel_end* end;
    ring* via;
    bool native = futex_support::available();
    bool listed = false;
    int error = 0;
    std::uint32_t rung = 0;
    poll_tick tick;
    watch_hold hold;
    channel_wait* prev = nullptr;
    channel_wait* next = nullptr;

    channel_wait(channel_end& e, ring& r) noexcept : end(&e), via(&r) {}
    // Only before it is awaited, as the operation that holds it: never listed then.
    channel_wait(channel_wait&& other) noexcept : end(other.end), via(other.via) {}
    channel_wait(const channel_wait&) = delete;
    channel_wait& operator=(const channel_wait&) = delete;
    channel_wait& operator=(channel_wait&&) = delete;
    inline ~channel_wait();

    /// Lists it on its end (once awaited, it no longer moves).
    inline void enlist() noexcept;
    /// Its end is closing: the watch goes, and a futex wait still in the submission queue is
    /// submitted, so that the wake-up that follows reaches it before the memory is unmapped.
    void interrupt() noexcept {
        hold.release(*via);
        if (native) {
            via->submit_pending();
        }
    }
    // The futex wait, or the timer: the only kinds of request it makes, besides the NOP.
    inline void prepare(io_uring_sqe* sqe) noexcept;
    [[nodiscard]] int translate(int result) const noexcept {
        if (error != 0) {
            return -error;
        }
        return result == (native ? -EAGAIN : -ETIME) ? 0 : result;
    }
    /// Says the end may sleep; false when it must not after all (something changed).
    inline bool sleep() noexcept;
    /// Whether the other end's process has ended: told by the watch, or checked at each tick.
    inline bool peer_ended() noexcept;
    /// After a wake-up that changed nothing it waits again; the timer waits a little longer.
    void again() noexcept {
        if (!native) {
            tick.next();
        }
    }
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

    /// Lets go of the end: its awaiting operations wake and fail with EBADF, the other end sees
    /// it closed (and is woken), then the memory is unmapped. Only the process that attached
    /// closes it: a forked copy just unmaps.
    void close() noexcept {
        if (memory_.header() == nullptr) {
            return;
        }
        channel_header& h = *memory_.header();
        if (waits_ != nullptr) {
            for (channel_wait* w = waits_; w != nullptr; w = w->next) {
                w->interrupt();
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
        pid_ = 0;
    }

    [[nodiscard]] bool is_open() const noexcept { return memory_.header() != nullptr; }
    [[nodiscard]] const std::string& name() const noexcept { return memory_.name(); }
    [[nodiscard]] channel_header& header() const noexcept { return *memory_.header(); }
    [[nodiscard]] std::byte* records() const noexcept { return memory_.records(); }
    [[nodiscard]] std::uint32_t mask() const noexcept { return mask_; }
    [[nodiscard]] std::uint32_t own() const noexcept { return own_; }
    [[nodiscard]] std::uint32_t seen() const noexcept { return seen_; }

    /// Reads the other end's count again; true if it moved.
    bool refresh() noexcept {
        const std::uint32_t now =
            shared(header().index[other(role_)].value).load(std::memory_order_seq_cst);
        const bool moved = now != seen_;
        seen_ = now;
        return moved;
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
    /// again that there is nothing to do. Only the other end clears the flag, as it rings: a
    /// sleeper that clears it could clear it under another coroutine asleep on the same end,
    /// and a flag left set costs one needless wake-up at most.
    std::uint32_t arm() noexcept {
        // The bell first: a wake-up meant for a record this end has taken already may clear the
        // flag just set; it rings after this read, so the sleep ends at once and arms again.
        // Read after the flag, that ring would be the value slept on, and the flag lost with it.
        const std::uint32_t rung = shared(bell().rings).load(std::memory_order_seq_cst);
        shared(bell().waiting).store(1, std::memory_order_seq_cst);
        return rung;
    }

    /// "sender" or "receiver".
    [[nodiscard]] const char* role_name() const noexcept {
        return role_ == channel_role::sender ? "sender" : "receiver";
    }
    [[nodiscard]] const char* peer_name() const noexcept {
        return role_ == channel_role::sender ? "receiver" : "sender";
    }

    void link(channel_wait& w) noexcept {
        w.prev = nullptr;
        w.next = waits_;
        if (waits_ != nullptr) {
            waits_->prev = &w;
        }
        waits_ = &w;
        w.listed = true;
    }
    void unlink(channel_wait& w) noexcept {
        (w.prev != nullptr ? w.prev->next : waits_) = w.next;
        if (w.next != nullptr) {
            w.next->prev = w.prev;
        }
        w.prev = w.next = nullptr;
        w.listed = false;
    }

private:
    [[nodiscard]] int self() const noexcept { return static_cast<int>(role_); }

    void take(channel_end& other) noexcept {
        memory_ = std::move(other.memory_);
        other.memory_.reset();
        peer_ = std::move(other.peer_);
        role_ = other.role_;
        own_ = other.own_;
        seen_ = other.seen_;
        mask_ = other.mask_;
        pid_ = std::exchange(other.pid_, 0);
        waits_ = std::exchange(other.waits_, nullptr);
        for (channel_wait* w = waits_; w != nullptr; w = w->next) {
            w->end = this;
        }
    }
    // The end object goes: its operations fail with EBADF, and name no channel.
    void forget_waits() noexcept {
        while (waits_ != nullptr) {
            channel_wait& w = *waits_;
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
    int pid_ = 0;
    channel_wait* waits_ = nullptr;
};

inline channel_wait::~channel_wait() {
    hold.release(*via);
    if (listed && end != nullptr) {
        end->unlink(*this);
    }
}

inline void channel_wait::enlist() noexcept {
    if (!listed && end != nullptr) {
        end->link(*this);
    }
}

inline void channel_wait::prepare(io_uring_sqe* sqe) noexcept {
    if (error != 0) {
        io_uring_prep_nop(sqe);
    } else if (native) {
        prep_futex_wait(sqe, &end->bell().rings, rung);
    } else {
        tick.prepare(sqe);
    }
}

inline bool channel_wait::sleep() noexcept {
    rung = end->arm();
    if (end->refresh() || end->peer_state() == end_state::closed) {
        return false;
    }
    if (native) {
        // The other end's process is watched once it is known; its attaching rings this bell,
        // so that a sleep that began before comes back here to watch it.
        const int pidfd = end->peer_pidfd();
        // No storage for the watch, or a known peer without a pidfd here: the timer, which
        // checks at each tick.
        if (pidfd >= 0 ? !hold.arm(*via, pidfd, end->bell()) : end->peer_pid() > 0) {
            native = false;
        }
    }
    return true;
}

inline bool channel_wait::peer_ended() noexcept {
    return hold.peer_ended || (!native && end->peer_gone());
}

/// How long a blocking wait sleeps before it checks that the other end's process still runs.
inline constexpr std::chrono::milliseconds liveness_slice{50};
/// How long a blocking wait spins before it sleeps: a peer on another core often answers sooner
/// than a futex wake-up would arrive.
inline constexpr std::chrono::microseconds spin_time{10};

/// The absolute CLOCK_MONOTONIC time `deadline`, for a futex.
inline ::timespec timespec_at(std::chrono::steady_clock::time_point deadline) noexcept {
    const auto ns = std::chrono::nanoseconds(deadline.time_since_epoch()).count();
    return {.tv_sec = ns / 1'000'000'000, .tv_nsec = ns % 1'000'000'000};
}

/// The blocking sleep of an end that found nothing to do: on its bell, for at most a liveness
/// slice or until `deadline`. True when the time ran out (the caller looks at its deadline and at
/// its peer's life), false when woken or when there is already something to look at.
inline bool doze(channel_end& end, const std::chrono::steady_clock::time_point* deadline) noexcept {
    const std::uint32_t rung = end.arm();
    if (end.refresh() || end.peer_state() == end_state::closed) {
        return false;
    }
    auto until = std::chrono::steady_clock::now() + liveness_slice;
    if (deadline != nullptr && *deadline < until) {
        until = *deadline;
    }
    const ::timespec at = timespec_at(until);
    return futex_wait(&end.bell().rings, rung, &at) == -ETIMEDOUT;
}

} // namespace ringio::detail
