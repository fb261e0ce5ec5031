#pragma once

// channel_awaited: a channel's awaited send and receive: an operation that sleeps on its end's bell
// through the ring, with a poll on the other end's pidfd, and tries again when woken.

#include <ringio/detail/channel_end.hpp>
#include <ringio/detail/channel_layout.hpp>
#include <ringio/detail/channel_lend.hpp>
#include <ringio/detail/channel_spin.hpp>
#include <ringio/detail/futex.hpp>
#include <ringio/detail/ring.hpp>
#include <ringio/detail/storage.hpp>

#include <liburing.h>
#include <poll.h>

#include <cerrno>
#include <cstdint>
#include <new>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>

namespace ringio::detail {

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
/// the bell the operation sleeps on.
// It lives in the context's storage, not in the operation: its cancellation completes after the
// operation may have gone.
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

/// What `step` returns when the operation is done.
inline constexpr int channel_done = -1;

/// What an awaited send or receive keeps while it waits: the sleep on its end's bell, the watch
/// on the other end's process, an error found before any request, and its place in the end's list.
// The sleep is a futex wait through the ring, or the fallback's timer; an early error is submitted
// as a NOP that fails with it; the list lets closing, moving or destroying the end reach it.
struct channel_wait : end_waiter {
    /// What only a wait that did not succeed at once needs: made by `suspends`.
    struct sleep_state {
        // Native until the first sleep asks the kernel: most operations never sleep.
        futex_sleep sleep{nullptr, 0, true};
        bool probed = false; // whether that sleep has come
        watch_hold hold;
        spinner spin;
    };

    ring* via;
    int error = 0;
    bool primed = false; // whether `state` was made
    union {
        sleep_state state;
    };

    channel_wait(channel_end& e, ring& r) noexcept : end_waiter{&e, &closing_end}, via(&r) {}
    // Only before it is awaited, as the operation that holds it: never primed then.
    channel_wait(channel_wait&& other) noexcept
        : end_waiter{other.end, &closing_end}, via(other.via) {}
    channel_wait(const channel_wait&) = delete;
    channel_wait& operator=(const channel_wait&) = delete;
    channel_wait& operator=(channel_wait&&) = delete;
    ~channel_wait() {
        if (primed) [[unlikely]] {
            unprime();
        }
    }

    /// Whether the other end's process has ended: told by the watch, or checked at each tick.
    bool peer_ended() noexcept {
        return primed && (state.hold.peer_ended || (!state.sleep.native && end->peer_gone()));
    }

    /// The first `step` found nothing to do: true if a spin found it done after all, else false
    /// with the operation asleep (or failed, with `error`) and listed on its end.
    // Out of line: the spin and the sleep would cost every operation their registers.
    template <class Step>
    [[gnu::noinline]] bool suspends(Step step) noexcept {
        if (!primed) {
            ::new (&state) sleep_state();
            primed = true;
        }
        if (attempt(step)) {
            return true;
        }
        // Listed only once it suspends (it no longer moves then): one that is done at once
        // costs its end nothing.
        if (!listed && end != nullptr) {
            end->link(*this);
        }
        return false;
    }
    /// True: done. False: failed (`error`, reported through a NOP), or asleep. Each try is
    /// `step(end)`: `channel_done`, 0 while there is nothing to do yet, or an errno.
    template <class Step>
    bool attempt(Step step) noexcept {
        for (;;) {
            if (end == nullptr || !end->is_open()) [[unlikely]] {
                error = EBADF;
                return false;
            }
            const int result = step(*end);
            if (result != 0) {
                error = result == channel_done ? 0 : result;
                return result == channel_done;
            }
            if (end->is_sender() && wait_for_room(*end, [this] { return spin(); })) {
                continue;
            }
            if (!spin() && sleep()) {
                return false;
            }
        }
    }

private:
    /// True while it may look again instead of sleeping: for a short while, and only while its
    /// loop has nothing else to do, so that a peer's answer needs no wake-up and delays no one.
    bool spin() noexcept {
        if (!via->idle()) {
            return false;
        }
        if (!state.spin.started() && via->unsubmitted()) {
            via->submit_pending(); // what others asked for goes before the spin
        }
        return state.spin.more();
    }
    /// Says the end may sleep; false when it must not after all (something changed).
    bool sleep() noexcept {
        sleep_state& s = state;
        if (!s.probed) {
            s.probed = true;
            s.sleep.native = futex_support::available();
        }
        s.sleep.word = &end->bell().rings;
        s.sleep.expected = end->arm();
        if (end->refresh() || end->peer_state() == end_state::closed) {
            return false;
        }
        if (s.sleep.native) {
            // The other end's process is watched once it is known; its attaching rings this
            // bell, so that a sleep that began before comes back here to watch it.
            const int pidfd = end->peer_pidfd();
            // No storage for the watch, or a known peer without a pidfd here: the timer, which
            // checks at each tick.
            if (pidfd >= 0 ? !s.hold.arm(*via, pidfd, end->bell()) : end->peer_pid() > 0) {
                s.sleep.native = false;
            }
        }
        return true;
    }

    // Its end is closing: the watch goes, and a futex wait still in the submission queue is
    // submitted, so that the wake-up that follows reaches it before the memory is unmapped.
    static void closing_end(end_waiter& w) noexcept {
        auto& self = static_cast<channel_wait&>(w);
        self.state.hold.release(*self.via);
        if (self.state.sleep.native) {
            self.via->submit_pending();
        }
    }

    [[gnu::noinline]] void unprime() noexcept {
        state.hold.release(*via);
        if (listed && end != nullptr) {
            end->unlink(*this);
        }
        state.~sleep_state();
    }
};

/// What an awaited send and receive share: the request, and the attempt again after each wake-up
/// (`channel_wait` does the waiting); `Derived::step` is their own part.
template <class Derived>
struct channel_op {
    channel_wait wait;

    channel_op(channel_end& end, ring& r) noexcept : wait(end, r) {}

    bool ready() noexcept {
        // One step in line: most operations find room or a record at once.
        channel_end* end = wait.end;
        if (end != nullptr && end->is_open() && step(*end) == channel_done) [[likely]] {
            return true;
        }
        return wait.suspends([this](channel_end& e) { return step(e); });
    }
    // The sleep, or a NOP that fails with the error found before any request.
    void prepare(io_uring_sqe* sqe) noexcept {
        if (wait.error != 0) {
            io_uring_prep_nop(sqe);
        } else {
            wait.state.sleep.prepare(sqe);
        }
    }
    [[nodiscard]] int translate(int result) const noexcept {
        return wait.error != 0 ? -wait.error : wait.state.sleep.translate(result);
    }
    bool again(int& result) noexcept {
        const bool done = wait.attempt([this](channel_end& e) { return step(e); });
        result = -wait.error; // 0 when done, or asleep again
        wait.state.sleep.again();
        return !done && wait.error == 0;
    }

private:
    int step(channel_end& end) noexcept { return static_cast<Derived&>(*this).step(end); }
};

/// A sending step of an awaited operation: EPIPE once the receiver has closed or its process has
/// ended, else `attempt()`; 0 while there is no room yet.
template <class Attempt>
int send_step(channel_end& end, channel_wait& wait, Attempt attempt) noexcept {
    if (end.peer_state() == end_state::closed) {
        return EPIPE;
    }
    if (attempt()) {
        return channel_done;
    }
    return wait.peer_ended() ? EPIPE : 0;
}

/// A receiving step of an awaited operation: `attempt()`, and once the sender is seen closed or
/// gone, a last one (what it sent still arrives): then the end, or ECONNRESET if it never closed.
template <class Attempt>
int receive_step(channel_end& end, channel_wait& wait, Attempt attempt) noexcept {
    if (attempt()) {
        return channel_done;
    }
    // The sender closes after its last publish: once closed is seen, what it sent is.
    if (end.peer_state() == end_state::closed) {
        attempt();
        return channel_done;
    }
    if (wait.peer_ended()) {
        return attempt() ? channel_done : ECONNRESET;
    }
    return 0;
}

/// An awaited send: published at once if there is room, else after a sleep on the sender's bell.
template <class T>
struct channel_send_op : channel_op<channel_send_op<T>> {
    using channel_op<channel_send_op<T>>::wait;
    const T* record;

    channel_send_op(channel_end& end, const T& what, ring& r) noexcept
        : channel_op<channel_send_op<T>>(end, r), record(&what) {}

    int step(channel_end& end) noexcept {
        return send_step(end, wait, [&] { return put_record(end, *record); });
    }
    void complete(int /*result*/) const noexcept {}
    [[nodiscard]] std::string describe() const {
        return channel_failure(wait.end, "send to", wait.error);
    }
};

/// An awaited receive: done at once if a record is there, else after a sleep on the receiver's
/// bell; nullopt at the end of the channel.
template <class T>
struct channel_receive_op : channel_op<channel_receive_op<T>> {
    using channel_op<channel_receive_op<T>>::wait;

    channel_receive_op(channel_end& end, ring& r) noexcept
        : channel_op<channel_receive_op<T>>(end, r) {}

    int step(channel_end& end) noexcept {
        return receive_step(end, wait, [&] { return end.available(1) != 0; });
    }
    // The record is copied out once, straight into the coroutine's result: nothing runs between
    // the step that found it and the resumption, so no other receive on the end takes it first.
    std::optional<T> complete(int /*result*/) noexcept {
        std::optional<T> record;
        if (wait.end != nullptr) {
            take_record(*wait.end, record);
        }
        return record;
    }
    [[nodiscard]] std::string describe() const {
        return channel_failure(wait.end, "receive from", wait.error);
    }
};

/// An awaited `prepare` (`Slot` is `T`) or `peek` (`const T`): the slots lent at once if there
/// are any, else after a sleep on the end's bell; a peek's span is empty at the end.
template <class Slot>
struct channel_lend_op : channel_op<channel_lend_op<Slot>> {
    static constexpr bool sending = !std::is_const_v<Slot>;
    using channel_op<channel_lend_op<Slot>>::wait;
    std::size_t max;
    std::span<Slot> slots;

    channel_lend_op(channel_end& end, std::size_t most, ring& r) noexcept
        : channel_op<channel_lend_op<Slot>>(end, r), max(most) {}

    int step(channel_end& end) noexcept {
        const auto attempt = [&] {
            return lend_to(end, max, slots);
        };
        return sending ? send_step(end, wait, attempt) : receive_step(end, wait, attempt);
    }
    std::span<Slot> complete(int /*result*/) const noexcept { return slots; }
    [[nodiscard]] std::string describe() const {
        return channel_failure(wait.end, sending ? "send to" : "receive from", wait.error);
    }
};

} // namespace ringio::detail
