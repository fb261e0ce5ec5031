#pragma once

// input_buffer: bytes read ahead of what has been consumed, in storage the user owns, and the
// request that reads into it until a record is complete (read_until).

#include <ringio/detail/bytes.hpp>
#include <ringio/detail/valgrind.hpp>

#include <liburing.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>

namespace ringio {

namespace detail {
template <class Match>
struct until_op;
} // namespace detail

/// The storage of `read_until`: what was read past the record returned stays here for the
/// next call. The storage's size is the longest record it can return.
class input_buffer {
public:
    /// Reads into `storage` (any byte or character range), which must outlive the buffer.
    template <class R>
    requires detail::mutable_byte_range<R>
    explicit input_buffer(R& storage) noexcept
        : storage_(reinterpret_cast<char*>(std::data(storage)), std::size(storage)) {}

    /// Reads into storage of its own, `capacity` bytes allocated now (never per call).
    explicit input_buffer(std::size_t capacity)
        : owned_(std::make_unique<char[]>(capacity)), storage_(owned_.get(), capacity) {}

    /// What was read and not yet returned.
    [[nodiscard]] std::string_view data() const noexcept {
        return {storage_.data() + begin_ + taken_, end_ - begin_ - taken_};
    }
    /// The longest record it can hold.
    [[nodiscard]] std::size_t capacity() const noexcept { return storage_.size(); }
    /// Discards what was read and not returned (after EMSGSIZE, to go on past a long record).
    void clear() noexcept { begin_ = end_ = taken_ = 0; }

private:
    template <class Match>
    friend struct detail::until_op;

    // Forgets the record returned last (its place too if nothing else was read), then looks for
    // the next one in what was read.
    template <class Match>
    bool find_next(const Match& match) {
        begin_ += taken_;
        taken_ = searched_ = 0;
        if (begin_ == end_) {
            begin_ = end_ = 0;
        }
        return find(match);
    }
    // Where the next read goes: moves what is kept to the front only when the end is reached.
    std::span<char> room() noexcept {
        if (begin_ > 0 && end_ == storage_.size()) {
            std::memmove(storage_.data(), storage_.data() + begin_, end_ - begin_);
            end_ -= begin_;
            begin_ = 0;
        }
        return storage_.subspan(end_);
    }
    void filled(std::size_t count) noexcept {
        detail::mark_received(storage_.data() + end_, count);
        end_ += count;
    }
    // Looks for a record in what was read, past what was searched before.
    template <class Match>
    bool find(const Match& match) {
        const std::string_view data = unread();
        std::tie(found_, delimiter_) = match.find(data, match.resume(searched_));
        searched_ = data.size();
        return found_ != std::string_view::npos;
    }
    // At the end of the stream, what is left (if anything) is the last record.
    bool find_last() noexcept {
        if (!unread().empty()) {
            found_ = unread().size();
            delimiter_ = 0;
        }
        return found_ != std::string_view::npos;
    }
    [[nodiscard]] bool full() const noexcept { return end_ - begin_ == storage_.size(); }
    // The record found, its delimiter then dropped at the next call.
    std::optional<std::string_view> take() noexcept {
        if (found_ == std::string_view::npos) {
            return std::nullopt;
        }
        taken_ = found_ + delimiter_;
        return unread().substr(0, found_);
    }
    [[nodiscard]] std::string_view unread() const noexcept {
        return {storage_.data() + begin_, end_ - begin_};
    }

    std::unique_ptr<char[]> owned_; // null when the storage is the caller's
    std::span<char> storage_;
    std::size_t begin_ = 0;    // the first byte of the last record returned
    std::size_t end_ = 0;      // past the last byte read
    std::size_t taken_ = 0;    // bytes of the last record returned, its delimiter included
    std::size_t searched_ = 0; // bytes after begin_ searched for a record
    std::size_t found_ = std::string_view::npos; // the length of the record found, if any
    std::size_t delimiter_ = 0;                  // and of the delimiter after it
};

namespace detail {

/// Finds a delimiter: the length of the record before it and of the delimiter itself.
struct delimiter {
    std::string text; // short delimiters stay inline
    /// The record's length, and the delimiter's, in `data` (searched from `from`); none: npos.
    [[nodiscard]] std::pair<std::size_t, std::size_t> find(std::string_view data,
                                                           std::size_t from) const noexcept {
        const std::size_t at = data.find(text, from);
        return {at, text.size()};
    }
    /// Where a search may start again after `seen` bytes were searched: a delimiter may straddle.
    [[nodiscard]] std::size_t resume(std::size_t seen) const noexcept {
        return seen >= text.size() ? seen - text.size() + 1 : 0;
    }
};

/// A predicate: the length of the complete record at the start of `data`, or 0 for none yet.
template <class Predicate>
struct predicate {
    Predicate complete;
    [[nodiscard]] std::pair<std::size_t, std::size_t> find(std::string_view data,
                                                           std::size_t /*from*/) const {
        const std::size_t length = complete(data);
        return {length == 0 ? std::string_view::npos : length, 0};
    }
    [[nodiscard]] static std::size_t resume(std::size_t /*seen*/) noexcept { return 0; }
};

} // namespace detail

} // namespace ringio
