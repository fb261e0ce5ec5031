#pragma once

// The record the channel tests and their peer program exchange.

#include <cstddef>
#include <cstdint>

namespace ringio::testing {

/// 64 bytes: a sequence number, and a payload every word of which repeats it, so that a torn
/// record shows.
struct peer_record {
    std::uint64_t sequence;
    std::uint64_t payload[7];
};

/// A record of the same size as `peer_record` but another alignment: a channel must refuse it.
struct other_record {
    std::uint32_t words[16];
};

/// The record whose sequence number is `n`.
inline peer_record record_number(std::uint64_t n) noexcept {
    peer_record r{n, {}};
    for (std::uint64_t& word : r.payload) {
        word = n;
    }
    return r;
}

/// True when every word of `r` repeats its sequence number.
inline bool whole(const peer_record& r) noexcept {
    for (const std::uint64_t word : r.payload) {
        if (word != r.sequence) {
            return false;
        }
    }
    return true;
}

} // namespace ringio::testing
