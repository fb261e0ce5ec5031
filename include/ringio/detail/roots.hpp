#pragma once

// roots: a context's detached coroutine frames and the exceptions that escaped them.

#include <coroutine>
#include <cstdio>
#include <exception>
#include <memory>
#include <utility>
#include <vector>

namespace ringio::detail {

/// Links a detached coroutine frame into its context, which destroys it at shutdown if it has
/// not finished by then.
struct root_hook {
    root_hook* prev = nullptr;
    root_hook* next = nullptr;
    std::coroutine_handle<> frame;
};

/// A context's detached coroutines (those given to `spawn`) and the exceptions that escaped
/// them, kept until `run()` rethrows them.
class root_set {
public:
    root_set() noexcept { head_.prev = head_.next = &head_; }

    root_set(const root_set&) = delete;
    root_set& operator=(const root_set&) = delete;

    /// Says on stderr what no `run()` rethrew: an exception must not vanish unseen.
    ~root_set() {
        for (const std::exception_ptr& error : errors_) {
            report_lost(error);
        }
    }

    /// Registers a detached frame.
    void adopt(root_hook& hook) noexcept {
        hook.prev = head_.prev;
        hook.next = &head_;
        head_.prev->next = &hook;
        head_.prev = &hook;
    }

    /// Unregisters a frame as it finishes, keeping its exception (if any).
    void release(root_hook& hook, std::exception_ptr error) noexcept {
        unlink(&hook);
        if (error) {
            report(std::move(error));
        }
    }

    /// Keeps `error` for `rethrow_first`.
    void report(std::exception_ptr error) noexcept {
        try {
            errors_.push_back(std::move(error));
        } catch (...) {
            report_lost(error);
        }
    }

    /// Hands each exception kept to the handler, if one is set; else rethrows the oldest.
    void deliver() {
        if (!errors_.empty()) [[unlikely]] {
            if (handler_.call != nullptr) {
                // One at a time: a handler that throws leaves the others for the next turn.
                while (!errors_.empty()) {
                    std::exception_ptr error = std::move(errors_.front());
                    errors_.erase(errors_.begin());
                    handler_.call(handler_.object.get(), std::move(error));
                }
                return;
            }
            std::exception_ptr error = std::move(errors_.front());
            errors_.erase(errors_.begin());
            std::rethrow_exception(error);
        }
    }

    /// Destroys every frame still registered (at shutdown). The list is read afresh after each
    /// frame, since the destructors a frame runs may change it.
    void destroy_all() noexcept {
        while (head_.next != &head_) {
            root_hook* hook = head_.next;
            unlink(hook);
            hook->frame.destroy();
        }
    }

private:
    static void unlink(root_hook* hook) noexcept {
        hook->prev->next = hook->next;
        hook->next->prev = hook->prev;
        hook->prev = hook->next = nullptr;
    }

    static void report_lost(const std::exception_ptr& error) noexcept {
        try {
            std::rethrow_exception(error);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "ringio: exception from a spawned task was never rethrown: %s\n",
                         e.what());
        } catch (...) {
            std::fprintf(stderr, "ringio: exception from a spawned task was never rethrown\n");
        }
    }

    root_hook head_;
    std::vector<std::exception_ptr> errors_;

public:
    /// What `deliver` calls instead of rethrowing: any callable taking an exception_ptr.
    struct handler {
        void (*call)(void* object, std::exception_ptr error) = nullptr;
        std::unique_ptr<void, void (*)(void*)> object{nullptr, [](void*) {
                                                      }};
    };
    handler handler_;
};

} // namespace ringio::detail
