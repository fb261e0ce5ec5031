#pragma once

#include <sys/mman.h>
#include <sys/types.h>

#include <cstdint>

namespace ringio {

/// Whether writes to a mapping are shared with the file and other processes or kept private.
/// With `mapped<const T>` both are read-only: `shared` is the plain read-only view, and
/// `private_copy` a private read-only one.
enum class map_mode {
    /// `MAP_SHARED`: writes reach the file and every process that maps it, and outlive the
    /// process.
    shared,
    /// `MAP_PRIVATE`: writes are copied on write and stay in this process; the file and other
    /// processes keep the original. Until this process writes a page, it sees what others write.
    private_copy,
};

/// How to map an existing file.
struct map_options {
    /// Shared with the file and other processes, or a private copy.
    map_mode mode = map_mode::shared;
    /// Byte offset of the view in the file: any multiple of `alignof(T)`; ringio rounds the
    /// mapping down to a page and keeps the slack.
    std::uint64_t offset = 0;
    /// Faults every page in at once (`MAP_POPULATE`) instead of at first touch.
    bool populate = false;
};

/// How to create a file for a mapping; a created file is always mapped shared and writable.
struct create_options {
    /// Mode bits of the new file, less the process's umask.
    ::mode_t permissions = 0600;
    /// Unlinks an existing regular file first (processes that map it keep their pages); anything
    /// else there (a directory, a symbolic link, a FIFO, a socket, a device) is EEXIST, as is an
    /// existing file without this option.
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
    /// The view is not needed now: drop its pages. A shared view reads them back from the file;
    /// a private view loses its changes (the file's or zero bytes come back).
    dont_need = MADV_DONTNEED,
};

} // namespace ringio
