#pragma once

// io_context: one io_uring and the run loop of the coroutines whose operations it carries.

#include <ringio/detail/ring.hpp>
#include <ringio/detail/roots.hpp>

#include <algorithm>
#include <exception>
#include <type_traits>
#include <utility>

namespace ringio {

class io_context;

namespace detail {
detail::ring& ring_of(io_context& context) noexcept;
root_set& roots_of(io_context& context) noexcept;
} // namespace detail

/// Tuning for an `io_context`'s ring.
struct context_options {
    /// Submission queue entries; more operations may be in flight (a full queue is submitted).
    unsigned entries = 256;
    /// Completion queue entries; 0 means four times `entries`, and at least 8,192.
    unsigned cq_entries = 0;
    /// Try the fastest setup flags the kernel accepts; off means a plain ring.
    bool fast_flags = true;
};

/// Owns one io_uring and runs the coroutines whose operations it carries; one per thread.
class io_context {
public:
    /// Sets up the ring with the fastest flags the running kernel accepts.
    explicit io_context(context_options options = {})
        : ring_(options.entries,
                options.cq_entries != 0 ? options.cq_entries : std::max(4 * options.entries, 8192U),
                options.fast_flags) {}

    io_context(const io_context&) = delete;
    io_context& operator=(const io_context&) = delete;

    /// Cancels what is in flight, waits for every completion, then destroys detached frames.
    ~io_context() {
        ring_.drain();
        roots_.destroy_all(); // their destructors (sockets among them) may queue more work
        ring_.drain();
    }

    /// Runs until nothing is in flight or `stop()` is called.
    void run() {
        // Errors kept since the last turn (left by a handler that threw, or by a task that
        // failed before it suspended) are handed over even when nothing is in flight.
        roots_.deliver();
        // Tested once a turn: the test that ends the loop is the next turn's reason to wait.
        bool busy = ring_.in_flight() > 0;
        if (!stopped_ && (busy || ring_.incoming() > 0)) {
            ring_.check_thread(); // once: the loop stays on this thread
            do {
                ring_.turn_on_own_thread(busy);
                roots_.deliver();
                busy = ring_.busy();
            } while (!stopped_ && (busy || ring_.incoming() > 0));
        }
        stopped_ = false;
    }

    /// One turn: submits, waits for a completion if anything is in flight, resumes.
    void run_once() {
        ring_.turn(ring_.in_flight() > 0);
        roots_.deliver();
    }

    /// One turn without waiting; true while anything is still in flight.
    bool poll() {
        ring_.turn(false);
        roots_.deliver();
        return ring_.in_flight() > 0;
    }

    /// Makes the current (or next) `run()` return after its current turn.
    void stop() noexcept { stopped_ = true; }

    /// True after `stop()` until `run()` (or `sync_wait`) has returned because of it.
    [[nodiscard]] bool stopped() const noexcept { return stopped_; }

    /// Clears a `stop()` that no `run()` has consumed.
    void restart() noexcept { stopped_ = false; }

    /// Requests submitted (or prepared) whose last completion has not arrived.
    [[nodiscard]] std::size_t in_flight() const noexcept { return ring_.in_flight(); }

    /// Calls `handler(std::exception_ptr)` with each exception that escapes a spawned task,
    /// from the loop, instead of rethrowing it from `run()`; the loop goes on.
    template <class Handler>
    requires std::is_invocable_v<Handler&, std::exception_ptr>
    void on_error(Handler handler) {
        auto* object = new Handler(std::move(handler));
        roots_.handler_.object = {object, [](void* p) {
                                      delete static_cast<Handler*>(p);
                                  }};
        roots_.handler_.call = [](void* p, std::exception_ptr error) {
            (*static_cast<Handler*>(p))(std::move(error));
        };
    }

    /// The `IORING_SETUP_*` flags the ring was created with.
    [[nodiscard]] unsigned setup_flags() const noexcept { return ring_.flags(); }

private:
    friend detail::ring& detail::ring_of(io_context& context) noexcept;
    friend detail::root_set& detail::roots_of(io_context& context) noexcept;

    detail::ring ring_;
    detail::root_set roots_;
    bool stopped_ = false;
};

inline detail::ring& detail::ring_of(io_context& context) noexcept {
    return context.ring_;
}

inline detail::root_set& detail::roots_of(io_context& context) noexcept {
    return context.roots_;
}

} // namespace ringio
