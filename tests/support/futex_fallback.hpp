#pragma once

// What the futex and channel tests share: running a case on the ring's futex opcodes or on the
// fallback that kernels without them get.

#include <ringio/futex.hpp>

#include <catch2/catch.hpp>

namespace ringio::testing {

/// The fallback for one test: a kernel without IORING_OP_FUTEX_WAIT, as far as ringio knows.
class fallback_forced {
public:
    explicit fallback_forced(bool on) { detail::futex_support::force_fallback(on); }
    fallback_forced(const fallback_forced&) = delete;
    fallback_forced& operator=(const fallback_forced&) = delete;
    ~fallback_forced() { detail::futex_support::force_fallback(false); }
};

/// Whether a case runs: the native cases need the opcode; with the fallback forced they run
/// everywhere.
inline bool runs(bool fallback) {
    if (!fallback && !detail::futex_support::available()) {
        WARN("SKIPPED: this kernel has no IORING_OP_FUTEX_WAIT (Linux 6.7); the fallback cases "
             "cover the rest");
        return false;
    }
    return true;
}

} // namespace ringio::testing
