#pragma once

// channel_lend: a channel end's slots lent in place, to write records into or read them from
// where they lie, then handed to the other end at once.

#include <ringio/detail/channel_end.hpp>
#include <ringio/detail/error.hpp>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <system_error>
#include <type_traits>

namespace ringio::detail {

/// Lends the slots this end may move now, in place and contiguous from its next one: at most
/// `max`, none past the ring's last slot. `hand_over` gives the first of them to the other end.
template <class T>
std::span<T> lend(channel_end& end, std::size_t max) noexcept {
    const std::uint32_t own = end.own();
    const std::size_t to_last = std::size_t{end.mask()} + 1 - (own & end.mask());
    end.lent() = {own, end.available(max < to_last ? max : to_last)};
    return {&record_at<T>(end, own), end.lent().count};
}

/// Lends into `out` as `lend` does, a sender's free slots (`Slot` is `T`) or a receiver's records
/// (`const T`); true when it lent some, or none were asked for: what a waiting call waits for.
template <class Slot>
bool lend_to(channel_end& end, std::size_t max, std::span<Slot>& out) noexcept {
    out = lend<std::remove_const_t<Slot>>(end, max);
    return !out.empty() || max == 0;
}

/// Hands the first `count` slots lent over to the other end, with one store: committed records
/// for the sender, consumed ones for the receiver. EINVAL past what is still lent.
inline void hand_over(channel_end& end, std::size_t count, const char* verb) {
    lent_slots& lent = end.lent();
    check_end(end, verb);
    const std::uint32_t own = end.own();
    const std::uint32_t left = lent.at == own ? lent.count : 0; // moved since: nothing is
    if (count > left) {
        throw_error(std::error_code(EINVAL, std::system_category()),
                    std::string(verb) + " channel " + end.name() + " (" + std::to_string(count) +
                        " records, " + std::to_string(left) + " lent in place)");
    }
    if (count > 0) {
        lent = {own + static_cast<std::uint32_t>(count), left - static_cast<std::uint32_t>(count)};
        end.publish(lent.at);
    }
}

} // namespace ringio::detail
