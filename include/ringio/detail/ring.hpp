#pragma once

// ring: one io_uring and what runs it (SQEs, submission, reaping, dispatch to completions).

#include <ringio/detail/arm_queue.hpp>
#include <ringio/detail/completion.hpp>
#include <ringio/detail/error.hpp>
#include <ringio/detail/ring_setup.hpp>
#include <ringio/detail/storage.hpp>
#include <ringio/detail/valgrind.hpp>

#include <liburing.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

namespace ringio::detail {

/// One io_uring, used by one thread: SQEs are taken and prepared, submitted together once per
/// loop turn, and each CQE is handed to the `completion` its `user_data` names.
class ring {
public:
    ring(unsigned entries, unsigned cq_entries, bool fast) {
        int result = -EINVAL;
        for (unsigned flags : candidate_setup_flags(fast)) {
            io_uring_params params{};
            params.flags = flags | IORING_SETUP_CQSIZE;
            params.cq_entries = cq_entries;
            result = io_uring_queue_init_params(entries, &ring_, &params);
            if (result != -EINVAL) { // EINVAL: not this combination of flags; try a simpler one
                break;
            }
        }
        if (result < 0) {
            throw_error(error_from_result(result), setup_failure(result));
        }
        enter_fd_ = static_cast<unsigned>(ring_.ring_fd);
        current_ = ring_.cq.cqes; // and `stretch_` one short of it: nothing dispatched yet
    }

    ring(const ring&) = delete;
    ring& operator=(const ring&) = delete;
    ~ring() {
        storage_.release();
        io_uring_queue_exit(&ring_);
    }

    /// An SQE, never null, submitted with the next batch: the kernel's head is read, and a full
    /// queue submitted, only once the stretch known to be free is used up.
    [[gnu::always_inline]] io_uring_sqe* get_sqe() noexcept {
        io_uring_sqe* sqe = next_sqe_;
        if (sqe == sqe_stop_) [[unlikely]] {
            return get_sqe_after_submit(); // a jump: the common path keeps no register
        }
        next_sqe_ = sqe + 1;
        ++ring_.sq.sqe_tail; // counted in `in_flight()` by that
        return sqe;
    }

    /// An SQE whose completion nobody waits for (a cancel, a close): its `user_data` names
    /// `unwatched`.
    io_uring_sqe* get_sqe_unwatched() noexcept {
        io_uring_sqe* sqe = get_sqe();
        io_uring_sqe_set_data64(sqe, unwatched.user_data());
        return sqe;
    }

    /// Makes room for `count` consecutive SQEs, so that a linked chain is submitted whole.
    void reserve(unsigned count) noexcept {
        while (io_uring_sq_space_left(&ring_) < count) {
            submit_pending();
        }
    }

    /// Queues a cancel of the request whose `user_data` is `target`, after the requests queued
    /// to arm, which it may name; its own CQE still comes.
    void cancel(std::uint64_t target) noexcept {
        arm_later();
        io_uring_prep_cancel64(get_sqe_unwatched(), target, 0);
    }

    /// SQEs taken whose final completion has not been reaped.
    [[nodiscard]] std::size_t in_flight() const noexcept {
        return ring_.sq.sqe_tail - (dispatched() - passing_) + later_.size();
    }
    /// `in_flight() > 0`, between turns: every CQE reaped is then dispatched, and the CQ's head
    /// says how many, which costs less than working it out from the CQE being dispatched.
    [[nodiscard]] bool busy() const noexcept {
        return ring_.sq.sqe_tail + passing_ + later_.size() != *ring_.cq.khead;
    }
    /// Said by the completion of a CQE with `IORING_CQE_F_MORE`: its request is still in
    /// flight (the loop counts every CQE as its request's last, testing nothing).
    void more_to_come() noexcept { ++passing_; }
    /// Messages sent to this ring that have not arrived yet.
    [[nodiscard]] std::size_t incoming() const noexcept {
        return incoming_.load(std::memory_order_acquire);
    }
    /// True when no completion that resumes anything waits behind the one being dispatched.
    [[nodiscard]] bool idle() const noexcept {
        const unsigned tail = io_uring_smp_load_acquire(ring_.cq.ktail);
        unsigned at = dispatched();
        while (at != tail &&
               ring_.cq.cqes[at & ring_.cq.ring_mask].user_data == unwatched.user_data()) {
            ++at;
        }
        return at == tail;
    }
    /// The CQ positions after the completion being dispatched, and after the last one posted.
    [[nodiscard]] unsigned dispatched() const noexcept {
        return stretch_ + static_cast<unsigned>(current_ - ring_.cq.cqes) + 1;
    }
    [[nodiscard]] unsigned posted() const noexcept {
        return io_uring_smp_load_acquire(ring_.cq.ktail);
    }
    /// True when SQEs were prepared that the kernel has not been given yet.
    [[nodiscard]] bool unsubmitted() const noexcept {
        return ring_.sq.sqe_tail != ring_.sq.sqe_head || later_.size() != 0;
    }
    /// The requests to arm before the ring submits: at the end of a dispatch, behind the SQEs
    /// the dispatch prepared (see `reap`); counted in `in_flight()`.
    [[nodiscard]] arm_queue& later() noexcept { return later_; }
    /// True while the owner shuts down: completions must not resume coroutines.
    [[nodiscard]] bool draining() const noexcept { return draining_; }
    /// The `IORING_SETUP_*` flags the ring was created with.
    [[nodiscard]] unsigned flags() const noexcept { return ring_.flags; }
    /// The liburing ring, for registrations.
    [[nodiscard]] io_uring& native() noexcept { return ring_; }
    /// State that must outlive the completions that refer to it.
    [[nodiscard]] context_storage& storage() noexcept { return storage_; }

    /// One loop turn: submit what is prepared, wait for a completion if `wait`, dispatch every
    /// CQE that is ready. Errors: `std::system_error` if the ring itself fails.
    void turn(bool wait) {
        check_thread();
        turn_on_own_thread(wait);
    }

    /// Enables the ring on the calling thread the first time; refuses any other thread after.
    void check_thread() {
        if (owner_ != this_thread()) [[unlikely]] {
            adopt_thread();
        }
    }

    /// `turn`, on the thread `check_thread` accepted (a run loop checks once).
    void turn_on_own_thread(bool wait) {
        arm_later();
        const int result =
            running_on_valgrind() && wait ? submit_and_wait_in_slice(ring_) : enter(wait ? 1U : 0U);
        // EINTR: a signal; EBUSY/EAGAIN: the kernel wants completions reaped first.
        if (result < 0 && result != -EINTR && result != -EBUSY && result != -EAGAIN) [[unlikely]] {
            fail(result);
        }
        reap();
    }

    /// Posts a CQE naming `arrival` into `target`'s ring (another thread's), whose loop hands it
    /// over there; this ring's own CQE goes to `departure`. EAGAIN before `target` runs.
    void send_message(ring& target, completion& arrival, completion& departure, const char* what) {
        if (!target.accepting_.load(std::memory_order_acquire)) {
            throw_error(std::make_error_code(std::errc::resource_unavailable_try_again),
                        std::string(what) + ": the target io_context has not started running");
        }
        target.incoming_.fetch_add(1, std::memory_order_acq_rel);
        // Released: `target`'s dispatch acquires it, and with it all the sender wrote before.
        std::atomic_ref(arrival.complete).store(arrival.complete, std::memory_order_release);
        io_uring_sqe* sqe = get_sqe();
        io_uring_prep_msg_ring(sqe, target.ring_.ring_fd, 0, arrival.user_data(), 0);
        io_uring_sqe_set_data64(sqe, departure.user_data());
        submit_pending(); // the sending thread may not turn its loop again soon
    }

    /// Said by a message's arrival, on this ring's thread: its CQE ends no request of this ring.
    void message_arrived() noexcept {
        ++passing_;
        incoming_.fetch_sub(1, std::memory_order_acq_rel);
    }
    /// Undoes the count of a message that could not be delivered to this ring.
    void message_lost() noexcept { incoming_.fetch_sub(1, std::memory_order_release); }

    /// Shutdown: cancels everything in flight and dispatches completions (which must not
    /// resume anyone: `draining()` is true) until nothing is left.
    void drain() noexcept {
        draining_ = true;
        arm_later(); // so that the cancel finds them
        if (in_flight() == 0) {
            return;
        }
        try {
            io_uring_prep_cancel64(get_sqe_unwatched(), 0, IORING_ASYNC_CANCEL_ANY);
            while (in_flight() > 0) {
                turn(true);
            }
        } catch (const std::exception& error) {
            // SQEs that never left the queue hold no pointer the kernel knows of.
            if (in_flight() <= io_uring_sq_ready(&ring_)) {
                passing_ = dispatched() - ring_.sq.sqe_tail;
                return;
            }
            std::fprintf(stderr, "ringio: io_context shutdown could not drain: %s\n", error.what());
            std::terminate(); // the kernel may still write into frames about to be freed
        }
    }

    /// Submits without waiting; from inside `await_suspend`, so it cannot throw. A failure here
    /// means the ring itself is unusable and no operation could ever complete.
    void submit_pending() noexcept {
        arm_later();
        try {
            if (!enabled_) {
                enable();
            }
        } catch (const std::exception& error) {
            std::fprintf(stderr, "ringio: %s\n", error.what());
            std::terminate();
        }
        const int result = io_uring_submit(&ring_);
        if (result < 0 && result != -EINTR && result != -EAGAIN && result != -EBUSY) {
            std::fprintf(stderr, "ringio: io_uring_submit failed: %s\n",
                         error_from_result(result).message().c_str());
            std::terminate();
        }
    }

private:
    // The ring becomes usable on the thread that first submits: with SINGLE_ISSUER only that
    // thread may, and a registered ring fd belongs to the registering thread.
    void enable() {
        if ((ring_.flags & IORING_SETUP_R_DISABLED) != 0 &&
            ::syscall(__NR_io_uring_register, ring_.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr,
                      0) < 0) { // liburing 2.3's library does not export io_uring_enable_rings
            throw_error(last_error(), "io_context: enable ring");
        }
        // A registered ring descriptor saves an fd lookup per enter, from 5.18.
        if (io_uring_register_ring_fd(&ring_) == 1) {
            enter_fd_ = static_cast<unsigned>(ring_.enter_ring_fd);
            enter_flags_ |= IORING_ENTER_REGISTERED_RING;
        }
        owner_ = this_thread();
        enabled_ = true;
        accepting_.store(true, std::memory_order_release);
    }

    // An address unique to the calling thread, cheaper than pthread_self on every turn.
    static const void* this_thread() noexcept {
        static thread_local const char tag = 0;
        return &tag;
    }

    // The first turn enables the ring on this thread; a turn on another thread is refused
    // before the kernel refuses it less helpfully (EEXIST under SINGLE_ISSUER).
    [[gnu::cold, gnu::noinline]] void adopt_thread() {
        if (enabled_) {
            throw_error(std::make_error_code(std::errc::file_exists),
                        "io_context: used from a thread other than its own");
        }
        enable();
    }

    // io_uring_submit_and_wait (or _get_events), without what only SQPOLL needs: publishes the
    // SQEs prepared since the last call and enters once, to submit them and reap.
    int enter(unsigned wait_for) noexcept {
        io_uring_sq& sq = ring_.sq;
        const unsigned tail = sq.sqe_tail;
        if (sq.sqe_head != tail) {
            sq.sqe_head = tail;
            io_uring_smp_store_release(sq.ktail, tail);
        }
        return io_uring_enter(enter_fd_, tail - *sq.khead, wait_for, enter_flags_, nullptr);
    }

    [[gnu::cold, gnu::noinline, noreturn]] static void fail(int result) {
        throw_error(error_from_result(result), "io_context: io_uring_enter");
    }

    [[gnu::noinline]] io_uring_sqe* get_sqe_after_submit() noexcept {
        refill_sqes();
        return get_sqe();
    }
    // The SQEs free from the tail on: up to the array's end, and short of the kernel's head.
    // Returns the first, not taken.
    [[gnu::noinline]] io_uring_sqe* refill_sqes() noexcept {
        io_uring_sq& sq = ring_.sq;
        for (;;) {
            const unsigned free =
                io_uring_smp_load_acquire(sq.khead) + sq.ring_entries - sq.sqe_tail;
            if (free != 0) {
                const unsigned at = sq.sqe_tail & sq.ring_mask;
                next_sqe_ = &sq.sqes[at];
                sqe_stop_ = next_sqe_ + (free < sq.ring_entries - at ? free : sq.ring_entries - at);
                return next_sqe_;
            }
            submit_pending();
        }
    }

    // Dispatches what is ready, then arms what the dispatch queued: a recv behind the sends
    // of its turn finds what the peer answered to them, and arms no poll in the kernel.
    void reap() noexcept {
        reap_ready();
        if (later_.size() != 0) {
            fill_armings(later_.take()); // in line: the loop's registers are saved already
        }
    }

    // Arms what is queued before anything else is submitted.
    void arm_later() noexcept {
        if (later_.size() != 0) [[unlikely]] {
            arm_queued();
        }
    }
    [[gnu::noinline]] void arm_queued() noexcept { fill_armings(later_.take()); }

    // Into the free SQEs a stretch at a time: the copies may alias the ring's fields, which a
    // get_sqe per request would load and store again each time.
    [[gnu::always_inline]] void fill_armings(const arming* first) noexcept {
        do { // never called with none, and at least one SQE is free each time round
            io_uring_sqe* at = next_sqe_ != sqe_stop_ ? next_sqe_ : refill_sqes();
            io_uring_sqe* const start = at;
            io_uring_sqe* const stop = sqe_stop_;
            do {
                auto* bytes = reinterpret_cast<unsigned char*>(at);
                std::memcpy(bytes, first->sqe, sizeof first->sqe);
                std::memset(bytes + sizeof first->sqe, 0, sizeof(io_uring_sqe) - sizeof first->sqe);
                first = first->next_to_arm;
            } while (++at != stop && first != nullptr);
            next_sqe_ = at;
            ring_.sq.sqe_tail += static_cast<unsigned>(at - start);
        } while (first != nullptr);
    }

    // Dispatches a snapshot of the ready CQEs, then advances the head once; completions posted
    // meanwhile are taken by the next turn, whose enter does not wait while any is ready.
    void reap_ready() noexcept {
        io_uring_cq& cq = ring_.cq;
        for (;;) {
            const unsigned tail = io_uring_smp_load_acquire(cq.ktail);
            unsigned head = *cq.khead;
            if (head != tail) [[likely]] {
                do { // each stretch of the ring up to its end, walked by address
                    const unsigned at = head & cq.ring_mask;
                    const io_uring_cqe* cqe = &cq.cqes[at];
                    const io_uring_cqe* const end =
                        cqe + std::min(tail - head, cq.ring_mask + 1 - at);
                    const unsigned stretch = head - at;
                    stretch_ = stretch;
                    do { // the position is known from the address: one store an entry
                        current_ = cqe;
                        dispatch(*cqe);
                    } while (++cqe != end);
                    head = stretch + static_cast<unsigned>(end - cq.cqes);
                } while (head != tail);
                io_uring_smp_store_release(cq.khead, head);
                return;
            }
            // CQEs that did not fit wait in the kernel (IORING_FEAT_NODROP) until flushed.
            if (!io_uring_cq_has_overflow(&ring_) || io_uring_get_events(&ring_) != 0 ||
                io_uring_cq_ready(&ring_) == 0) {
                return;
            }
        }
    }

    // Every `user_data` is a completion's address, untagged: nothing is tested before the call.
    static void dispatch(const io_uring_cqe& cqe) {
        // NOLINTNEXTLINE(performance-no-int-to-ptr): user_data is the address
        auto* target = reinterpret_cast<completion*>(static_cast<std::uintptr_t>(cqe.user_data));
        // Acquired (a plain load on x86): a message from another thread is read only after it.
        const auto complete = std::atomic_ref(target->complete).load(std::memory_order_acquire);
        complete(target, cqe);
    }

    io_uring ring_{};
    unsigned enter_fd_ = 0; // what io_uring_enter takes: the ring's descriptor, or its index
    unsigned enter_flags_ = IORING_ENTER_GETEVENTS; // and REGISTERED_RING once registered
    const io_uring_cqe* current_ = nullptr;         // the CQE dispatched last
    unsigned stretch_ = ~0U; // the CQ position of `cqes[0]` in the stretch `current_` is in
    unsigned passing_ = 0;   // CQEs dispatched that end no request of this ring: `in_flight()` is
                             // the SQEs taken less the other CQEs
    io_uring_sqe* next_sqe_ = nullptr; // the SQE to take next, while short of `sqe_stop_`
    io_uring_sqe* sqe_stop_ = nullptr;
    const void* owner_ = nullptr; // this_thread() of the thread that enabled the ring
    bool enabled_ = false;
    bool draining_ = false;
    arm_queue later_;
    std::atomic<bool> accepting_{false};
    std::atomic<std::size_t> incoming_{0};
    context_storage storage_;
};

} // namespace ringio::detail
