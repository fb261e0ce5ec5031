#pragma once

// signal_set: signals received through the ring (a signalfd), instead of by a handler.

#include <ringio/descriptor.hpp>
#include <ringio/detail/error.hpp>
#include <ringio/io_context.hpp>
#include <ringio/operation.hpp>
#include <ringio/task.hpp>

#include <liburing.h>
#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>

#include <atomic>
#include <initializer_list>
#include <string>

namespace ringio {

namespace detail {

/// IORING_OP_READ of one signalfd_siginfo: the signal's number.
struct signal_op {
    int fd;
    signalfd_siginfo info{};

    void prepare(io_uring_sqe* sqe) noexcept {
        io_uring_prep_read(sqe, fd, &info, sizeof info, ~std::uint64_t{0});
    }
    int complete(int /*result*/) const noexcept { return static_cast<int>(info.ssi_signo); }
    [[nodiscard]] std::string describe() const {
        return "wait for a signal, fd " + std::to_string(fd);
    }
};

/// The signals that live signal sets block, counted per signal, so that a forked child (which
/// would pass the blocked mask on to whatever it executes) gets them unblocked.
class blocked_signals {
public:
    static void add(const sigset_t& set) noexcept { change(set, 1); }
    /// True while a live set blocks `signal`.
    static bool held(int signal) noexcept {
        return signal > 0 && signal < count && counts()[signal].load(std::memory_order_relaxed) > 0;
    }
    /// Forgets `set`; leaves in it only the signals no other set still blocks.
    static void remove(sigset_t& set) noexcept {
        change(set, -1);
        for (int signal = 1; signal < count; ++signal) {
            if (counts()[signal].load(std::memory_order_relaxed) > 0) {
                ::sigdelset(&set, signal);
            }
        }
    }

private:
    static constexpr int count = 65;

    static std::atomic<int>* counts() noexcept {
        static std::atomic<int> per_signal[count]{};
        return per_signal;
    }
    static void change(const sigset_t& set, int by) noexcept {
        static const int registered = ::pthread_atfork(nullptr, nullptr, &in_child);
        (void)registered;
        for (int signal = 1; signal < count; ++signal) {
            if (::sigismember(&set, signal) == 1) {
                counts()[signal].fetch_add(by, std::memory_order_relaxed);
            }
        }
    }
    static void in_child() noexcept {
        sigset_t unblock;
        ::sigemptyset(&unblock);
        for (int signal = 1; signal < count; ++signal) {
            if (counts()[signal].load(std::memory_order_relaxed) > 0) {
                ::sigaddset(&unblock, signal);
            }
        }
        ::pthread_sigmask(SIG_UNBLOCK, &unblock, nullptr);
    }
};

} // namespace detail

/// Signals that arrive as completions: constructing it blocks them in this thread (threads
/// started afterwards inherit the mask); destroying it unblocks those it blocked.
class signal_set {
public:
    /// Blocks `signals` and opens a signalfd for them.
    signal_set(io_context& context, std::initializer_list<int> signals) : fd_(context, -1) {
        ::sigemptyset(&set_);
        for (int signal : signals) {
            if (::sigaddset(&set_, signal) != 0) {
                detail::throw_error(detail::last_error(),
                                    "signal_set: signal " + std::to_string(signal));
            }
        }
        sigset_t before;
        ::pthread_sigmask(SIG_BLOCK, &set_, &before);
        ::sigemptyset(&added_);
        for (int signal : signals) {
            // One that another live set blocks is this set's too: the last of them to go
            // unblocks it. One the program blocked itself stays as it was.
            if (::sigismember(&before, signal) == 0 || detail::blocked_signals::held(signal)) {
                ::sigaddset(&added_, signal);
            }
        }
        detail::blocked_signals::add(added_);
        const int fd = ::signalfd(-1, &set_, SFD_CLOEXEC);
        if (fd < 0) {
            const std::error_code error = detail::last_error();
            restore();
            detail::throw_error(error, "signal_set: signalfd");
        }
        fd_ = descriptor(context, fd);
    }

    signal_set(const signal_set&) = delete;
    signal_set& operator=(const signal_set&) = delete;
    ~signal_set() {
        fd_.close();
        restore();
    }

    /// Waits for one of the signals; produces its number.
    auto wait() { return operation<detail::signal_op>(fd_, fd_.native_handle()); }

private:
    void restore() noexcept {
        detail::blocked_signals::remove(added_);
        ::pthread_sigmask(SIG_UNBLOCK, &added_, nullptr); // a signal pending now is delivered
    }

    descriptor fd_;
    sigset_t set_;
    sigset_t added_; // the signals the sets block (not those the program blocked before them)
};

/// Waits for one of `signals`, then cancels `stop`: what a server spawns to stop on a signal.
// A template for the reason `connect` in resolve.hpp is one: compiled only where it is called.
template <class = void>
task<> cancel_on_signal(signal_set& signals, cancellation& stop) {
    co_await signals.wait();
    stop.cancel();
}

} // namespace ringio
