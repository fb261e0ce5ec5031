#pragma once

/// The options of `mapped`'s factories: sharing, offset, creation, and advice to the kernel.

#include <sys/mman.h>
#include <sys/types.h>

#include <cstdint>

namespace ringio {

/// Whether writes to a mapping reach the file and other processes, or stay in this process.
enum class map_mode {
    /// `MAP_SHARED`: writes reach the file and every process that maps it.
    shared,
    /// `MAP_PRIVATE`: writes are copied on write and stay in this process; until it writes a
    /// page, it sees what others write there.
    private_copy,
};

/// How to map an existing file.
struct map_options {
    /// Shared with the file and other processes, or a private copy.
    map_mode mode = map_mode::shared;
    /// Byte offset of the view in the file: any multiple of `alignof(T)`.
    std::uint64_t offset = 0;
    /// Faults every page in at once (`MAP_POPULATE`) instead of at first touch.
    bool populate = false;
};

/// How to create a file for a mapping, which is always shared and writable.
struct create_options {
    /// Mode bits of the new file, less the process's umask.
    ::mode_t permissions = 0600;
    /// Unlinks an existing regular file first; anything else there is EEXIST, as without it.
    bool replace_existing = false;
    /// Faults every page in at once (`MAP_POPULATE`).
    bool populate = false;
};

/// What the program will do with a view, as advice to the kernel (`madvise`).
enum class map_advice : int {
    /// No special treatment.
    normal = MADV_NORMAL,
    /// Random access: read ahead less.
    random = MADV_RANDOM,
    /// Sequential access: read ahead more, drop pages behind.
    sequential = MADV_SEQUENTIAL,
    /// The view will be needed soon: start reading it in.
    will_need = MADV_WILLNEED,
    /// Drop the view's pages: a shared view reads them back, a private one loses its changes.
    dont_need = MADV_DONTNEED,
};

} // namespace ringio
