#pragma once

#include <ringio/detail/error.hpp>
#include <ringio/detail/ring_setup.hpp>
#include <ringio/detail/roots.hpp>
#include <ringio/detail/storage.hpp>
#include <ringio/detail/valgrind.hpp>

#include <liburing.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <utility>

namespace ringio {

class io_context;

/// Tuning for an `io_context`'s ring.
struct context_options {
    /// Submission queue entries (rounded up to a power of two by the kernel). More operations
    /// than this may be in flight: a full queue is submitted and refilled.
    unsigned entries = 256;
    /// Completion queue entries; 0 means four times `entries`, which leaves room for multishot
    /// operations that complete many times per submission.
    unsigned cq_entries = 0;
    /// Try the fastest setup flags the kernel accepts (`SINGLE_ISSUER|DEFER_TASKRUN`, else
    /// `COOP_TASKRUN|TASKRUN_FLAG`). Off means a plain ring, which tests use to compare.
    bool fast_flags = true;
};

namespace detail {

/// Receives completions: its address is the `user_data` of the SQEs it submits, and `complete`
/// is called once per CQE. The low bit of `user_data` is free for the owner to tag a second SQE.
struct completion {
    using complete_fn = void (*)(completion* self, const io_uring_cqe& cqe) noexcept;
    complete_fn complete;
};

} // namespace detail

/// Owns one io_uring and runs the coroutines whose operations it carries; one per thread.
///
/// Operations prepare SQEs into the ring; each turn of the loop submits them all with one
/// `io_uring_submit_and_wait`, then reaps every ready CQE and resumes the coroutines waiting
/// for them. Destroying the context cancels what is still in flight, waits for every
/// completion, and only then destroys the detached coroutines it still holds.
///
/// Threading: every member must be called from the thread that runs the context; the ring is
/// enabled on the first thread that submits to it, and only that thread may use it after.
class io_context {
public:
    /// Sets up the ring with the fastest flags the running kernel accepts.
    /// Errors: `std::system_error` naming the cause when io_uring is unavailable (an old kernel,
    /// a seccomp filter, sysctl `kernel.io_uring_disabled`, the locked-memory limit).
    explicit io_context(context_options options = {}) {
        detail::setup_ring(ring_, options.entries,
                           options.cq_entries != 0 ? options.cq_entries : 4 * options.entries,
                           options.fast_flags);
        flags_ = ring_.flags;
    }

    io_context(const io_context&) = delete;
    io_context& operator=(const io_context&) = delete;

    /// Cancels every operation in flight, waits for all their completions, destroys the
    /// detached coroutines still held, then closes the ring.
    ~io_context() {
        draining_ = true;
        cancel_all_and_drain();
        // Destroying frames runs destructors (sockets among them) that may queue more work.
        roots_.destroy_all();
        cancel_all_and_drain();
        storage_.release();
        io_uring_queue_exit(&ring_);
    }

    /// Runs the loop until no operation is in flight or `stop()` is called.
    /// Errors: rethrows the first exception that escaped a coroutine given to `spawn` (call
    /// `run()` again to go on); `std::system_error` if the ring itself fails.
    void run() {
        while (!stopped_ && (in_flight_ > 0 || incoming_.load(std::memory_order_acquire) > 0)) {
            run_once();
        }
        stopped_ = false;
    }

    /// Runs one turn: submits what is prepared, waits for at least one completion if anything
    /// is in flight, and resumes every coroutine whose completion arrived.
    /// Errors: as `run()`.
    void run_once() {
        turn(in_flight_ > 0);
        roots_.rethrow_first();
    }

    /// Runs one turn without blocking. Returns whether any operation is still in flight.
    /// Errors: as `run()`.
    bool poll() {
        turn(false);
        roots_.rethrow_first();
        return in_flight_ > 0;
    }

    /// Makes the current (or next) `run()` return after its current turn.
    void stop() noexcept { stopped_ = true; }

    /// True after `stop()` until `run()` (or `sync_wait`) has returned because of it.
    [[nodiscard]] bool stopped() const noexcept { return stopped_; }

    /// Clears a `stop()` request that no `run()` has consumed.
    void restart() noexcept { stopped_ = false; }

    /// The `IORING_SETUP_*` flags the ring was created with.
    [[nodiscard]] unsigned setup_flags() const noexcept { return flags_; }

    /// SQEs prepared or submitted whose final completion has not been reaped yet.
    [[nodiscard]] std::size_t in_flight() const noexcept { return in_flight_; }

    /// True while the destructor cancels and drains: completions must not resume coroutines.
    [[nodiscard]] bool draining() const noexcept { return draining_; }

    /// The underlying ring, for operations ringio does not wrap. Whatever is submitted through
    /// it must carry a `user_data` of 0 or of a `detail::completion`.
    [[nodiscard]] io_uring& native_handle() noexcept { return ring_; }

    /// Returns an SQE for one submission, never null: when the submission queue is full, what
    /// it holds is submitted first. Each SQE taken must be submitted (its CQE is counted).
    io_uring_sqe* get_sqe() noexcept {
        // liburing's io_uring_get_sqe reads the kernel's head on every call and handles
        // SQE128 and SQPOLL, which this ring never uses: the head is re-read only when the
        // queue looks full.
        io_uring_sq& sq = ring_.sq;
        const unsigned tail = sq.sqe_tail;
        if (tail - sq_head_ >= sq.ring_entries) [[unlikely]] {
            return get_sqe_after_submit();
        }
        sq.sqe_tail = tail + 1;
        ++in_flight_;
        return &sq.sqes[tail & sq.ring_mask];
    }

    /// Makes room for `count` consecutive SQEs, so that a linked chain is submitted whole.
    void reserve(unsigned count) noexcept {
        while (io_uring_sq_space_left(&ring_) < count) {
            submit_pending();
        }
    }

    /// Queues a request to cancel every operation on descriptor `fd`; their own completions
    /// still arrive (with `ECANCELED`, or with their result if they won the race).
    void cancel_fd(int fd) noexcept {
        io_uring_sqe* sqe = get_sqe();
        io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
        io_uring_sqe_set_data64(sqe, 0);
    }

    /// State that must outlive the completions that refer to it (see `context_storage`).
    [[nodiscard]] detail::context_storage& storage() noexcept { return storage_; }

    /// Low bits of `user_data` that a completion may use for itself (bit 0), and that mark
    /// messages between rings (bits 1 and 2); completions are aligned to 8 bytes.
    static constexpr std::uintptr_t tag_mask = 7;
    /// Tag of a message's CQE in the receiving ring.
    static constexpr std::uintptr_t message_arrived = 2;
    /// Tag of a message's CQE in the sending ring; passed on only when sending failed.
    static constexpr std::uintptr_t message_failed = 4;

    /// Posts a CQE into `target`'s ring, which another thread runs, through this ring
    /// (`IORING_OP_MSG_RING`): `target` calls `message->complete` with `user_data` tagged
    /// `message_arrived`. If the kernel cannot deliver it, this ring calls it instead, tagged
    /// `message_failed`, with the error in `res`. Either way it is called exactly once.
    /// `target` keeps running until the message has arrived.
    /// Errors: `std::system_error` (`EAGAIN`) if `target` has not started running yet.
    /// Kernel: 5.18. See: io_uring_prep_msg_ring(3).
    /// `what` names the caller's operation in that error.
    void send_message(io_context& target, detail::completion& message,
                      const char* what = "send_message") {
        if (!target.accepting_messages_.load(std::memory_order_acquire)) {
            detail::throw_error(std::make_error_code(std::errc::resource_unavailable_try_again),
                                std::string(what) +
                                    ": the target io_context has not started running");
        }
        const auto address = reinterpret_cast<std::uintptr_t>(&message);
        target.incoming_.fetch_add(1, std::memory_order_acq_rel);
        io_uring_sqe* sqe = get_sqe();
        io_uring_prep_msg_ring(sqe, target.ring_.ring_fd, 0, address | message_arrived, 0);
        // The sender's own CQE carries the message's address but must not touch it when the
        // message was delivered: by then it belongs to the other thread (see dispatch).
        io_uring_sqe_set_data64(sqe, address | message_failed);
        // Submitted at once: the sending thread may not run its loop again soon.
        submit_pending();
    }

    /// Undoes the count of a message that `send_message` could not deliver to this context.
    void message_lost() noexcept { incoming_.fetch_sub(1, std::memory_order_release); }

    /// Keeps `error` for `run()` to rethrow, as if a spawned task had thrown it.
    void report(std::exception_ptr error) noexcept { roots_.report(std::move(error)); }

    /// Registers a detached coroutine frame (used by `spawn`).
    void adopt(detail::root_hook& hook) noexcept { roots_.adopt(hook); }

    /// Called by a detached coroutine as it finishes: unregisters it and keeps its exception
    /// (if any) for `run()` to rethrow.
    void release(detail::root_hook& hook, std::exception_ptr error) noexcept {
        roots_.release(hook, std::move(error));
    }

private:
    // The ring becomes usable on the thread that first submits: with SINGLE_ISSUER that thread
    // is the only one allowed to, and a registered ring fd belongs to the registering thread.
    void enable() {
        if ((flags_ & IORING_SETUP_R_DISABLED) != 0) {
            // liburing 2.3's shared library does not export io_uring_enable_rings.
            if (::syscall(__NR_io_uring_register, ring_.ring_fd, IORING_REGISTER_ENABLE_RINGS,
                          nullptr, 0) < 0) {
                detail::throw_error(detail::last_error(), "io_context: enable ring");
            }
        }
        // A registered ring fd saves an fd lookup per io_uring_enter; without it (kernels
        // before 5.18) everything still works.
        (void)io_uring_register_ring_fd(&ring_);
        owner_ = ::pthread_self();
        has_owner_ = true;
        enabled_ = true;
        accepting_messages_.store(true, std::memory_order_release);
    }

    // Checked once per turn, before the kernel would give a less helpful error (EEXIST under
    // SINGLE_ISSUER, EBADF for a ring fd registered by another thread).
    void check_thread() const {
        // pthread_self rather than std::this_thread: <thread> alone costs a user of this header
        // half a second of compile time.
        if (!has_owner_ || ::pthread_equal(::pthread_self(), owner_) == 0) [[unlikely]] {
            detail::throw_error(std::make_error_code(std::errc::file_exists),
                                "io_context: used from a thread other than its own");
        }
    }

    [[gnu::noinline]] io_uring_sqe* get_sqe_after_submit() noexcept {
        for (;;) {
            sq_head_ = io_uring_smp_load_acquire(ring_.sq.khead);
            if (ring_.sq.sqe_tail - sq_head_ < ring_.sq.ring_entries) {
                return get_sqe();
            }
            submit_pending();
        }
    }

    // Submits without waiting. Called from inside await_suspend, so it cannot throw: an error
    // here means the ring itself is unusable, and the operation could never complete.
    void submit_pending() noexcept {
        try {
            if (!enabled_) {
                enable();
            }
        } catch (const std::exception& error) {
            std::fprintf(stderr, "ringio: %s\n", error.what());
            std::terminate();
        }
        int result = io_uring_submit(&ring_);
        if (result < 0 && result != -EINTR && result != -EAGAIN && result != -EBUSY) {
            std::fprintf(stderr, "ringio: io_uring_submit failed: %s\n",
                         detail::error_from_result(result).message().c_str());
            std::terminate();
        }
    }

    // One loop turn: submit everything prepared, wait for at least one completion when asked
    // to, resume every coroutine whose completion arrived.
    void turn(bool wait) {
        if (!enabled_) {
            enable();
        }
        check_thread();
        const int result = !wait                           ? io_uring_submit_and_get_events(&ring_)
                           : detail::running_on_valgrind() ? submit_and_wait_in_slices()
                                                           : io_uring_submit_and_wait(&ring_, 1);
        // EINTR: a signal; EBUSY/EAGAIN: the kernel wants completions reaped first.
        if (result < 0 && result != -EINTR && result != -EBUSY && result != -EAGAIN) [[unlikely]] {
            detail::throw_error(detail::error_from_result(result), "io_context: io_uring_enter");
        }
        reap();
    }

    // Valgrind holds its scheduler lock while a thread waits in io_uring_enter, so a long wait
    // would stop every other thread of the process (see detail/valgrind.hpp): wait at most a
    // slice, then yield, which valgrind treats as a blocking call and so lets the others run.
    int submit_and_wait_in_slices() {
        __kernel_timespec slice{0, 10'000'000};
        io_uring_cqe* ready = nullptr;
        const int result = io_uring_submit_and_wait_timeout(&ring_, &ready, 1, &slice, nullptr);
        if (result == -ETIME) {
            ::sched_yield();
            return 0;
        }
        return result;
    }

    // Dispatches a snapshot of the ready CQEs before advancing the head once: a resumed
    // coroutine may submit (which never touches the CQ), and completions posted meanwhile are
    // taken by the next pass rather than starving the submission side.
    void reap() noexcept {
        for (;;) {
            const unsigned ready = io_uring_cq_ready(&ring_);
            if (ready == 0) {
                // Completions that did not fit wait in the kernel (IORING_FEAT_NODROP) until
                // asked for; nothing is lost, but they must be flushed into the ring.
                if (io_uring_cq_has_overflow(&ring_) && io_uring_get_events(&ring_) == 0 &&
                    io_uring_cq_ready(&ring_) > 0) {
                    continue;
                }
                return;
            }
            const unsigned head = *ring_.cq.khead;
            for (unsigned i = 0; i < ready; ++i) {
                dispatch(ring_.cq.cqes[(head + i) & ring_.cq.ring_mask]);
            }
            io_uring_cq_advance(&ring_, ready);
        }
    }

    void dispatch(const io_uring_cqe& cqe) noexcept {
        const auto tagged = static_cast<std::uintptr_t>(cqe.user_data);
        if ((tagged & (message_arrived | message_failed)) != 0) [[unlikely]] {
            dispatch_message(cqe);
            return;
        }
        if ((cqe.flags & IORING_CQE_F_MORE) == 0) {
            --in_flight_;
        }
        if (tagged != 0) {
            // NOLINTNEXTLINE(performance-no-int-to-ptr): user_data is the address, tagged
            auto* target = reinterpret_cast<detail::completion*>(tagged & ~tag_mask);
            target->complete(target, cqe);
        }
    }

    // A message between rings: its CQE in the receiving ring, or the sender's own CQE.
    [[gnu::noinline]] void dispatch_message(const io_uring_cqe& cqe) noexcept {
        const auto tagged = static_cast<std::uintptr_t>(cqe.user_data);
        if ((tagged & message_arrived) != 0) {
            // Not submitted here: counted in incoming_ by the sender instead. Acquire pairs
            // with the sender's increment, so what it prepared is visible here.
            incoming_.fetch_sub(1, std::memory_order_acq_rel);
        } else {
            --in_flight_;
            if (cqe.res >= 0) {
                return; // delivered: the message is the other thread's now
            }
        }
        // NOLINTNEXTLINE(performance-no-int-to-ptr): user_data is the address, tagged
        auto* target = reinterpret_cast<detail::completion*>(tagged & ~tag_mask);
        target->complete(target, cqe);
    }

    void cancel_all_and_drain() noexcept {
        if (in_flight_ == 0) {
            return;
        }
        try {
            if (!enabled_) {
                enable();
            }
            check_thread();
            io_uring_sqe* sqe = get_sqe();
            io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
            io_uring_sqe_set_data64(sqe, 0);
            while (in_flight_ > 0) {
                turn(true);
            }
        } catch (const std::exception& error) {
            // SQEs that never left the submission queue were never seen by the kernel, which
            // therefore holds no pointer into any frame: dropping them is safe.
            if (in_flight_ <= io_uring_sq_ready(&ring_)) {
                in_flight_ = 0;
                return;
            }
            // Otherwise the kernel may still write into frames: freeing them would corrupt
            // memory, so stop here.
            std::fprintf(stderr, "ringio: io_context shutdown could not drain: %s\n", error.what());
            std::terminate();
        }
    }

    io_uring ring_{};
    std::size_t in_flight_ = 0;
    unsigned sq_head_ = 0; // the kernel's SQ head when last read; it only moves forward
    unsigned flags_ = 0;
    pthread_t owner_{};
    bool has_owner_ = false;
    std::atomic<std::size_t> incoming_{0};
    std::atomic<bool> accepting_messages_{false};
    bool enabled_ = false;
    bool stopped_ = false;
    bool draining_ = false;
    detail::root_set roots_;
    detail::context_storage storage_;
};

} // namespace ringio
