// Mapped memory against the system calls it replaces, on one file of 64-byte records.
//
//   mapped_bench --file PATH --size BYTES --prepare
//       creates the file (record i holds a pattern computed from i) unless a file of that size
//       with that pattern is there already, then reads it once so that it is cached
//   mapped_bench --file PATH --size BYTES [--reads N] [--cold-reads N] [--seed S] [--round R]
//                [--parts random,cold_random,warm,cold] [--evict fadvise|drop_caches]
//       one round of every method, in an order rotated by R; prints one JSON object
//
// random: N uniformly random record indices (the same seeded sequence for every method) are read
//   from the cached file and one field of each summed, through mapped<const record[]> (a fresh
//   mapping whose pages fault in on first touch; one populated at open; one already faulted in),
//   pread, ringio's read_at with 1 and with 32 reads in flight, and liburing with 1 and 32.
// cold_random: the first --cold-reads of those indices from the evicted file, through a mapping
//   without advice and one advised random, pread, and ringio's read_at with 32 in flight.
// warm, cold: every 8-byte word of the file is summed, through read() in 1 MiB chunks and through
//   mapped<const std::uint64_t[]> plain, advised sequential, and populated at open.
//
// Setting up and tearing down (open, mmap, munmap, close) is inside every timing. Each method
// also reports its page faults and the bytes it made storage read (/proc/self/io read_bytes).
// Cold runs first evict the file from the page cache: posix_fadvise(POSIX_FADV_DONTNEED) on the
// file alone, or, with --evict drop_caches or when that leaves more than 1% of the file cached,
// sync and `3 > /proc/sys/vm/drop_caches`. mincore(2) reports how much of the file stayed cached.
//
// Every sum is checked against the value the pattern predicts: a method that reads a wrong byte
// fails the run (exit status 1).
#include <ringio/descriptor.hpp>
#include <ringio/io_context.hpp>
#include <ringio/mapped.hpp>
#include <ringio/task.hpp>

#include <fcntl.h>
#include <liburing.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace {

struct record {
    std::uint64_t key;
    std::uint64_t value;
    std::array<std::uint64_t, 6> payload;
};
static_assert(sizeof(record) == 64);

constexpr std::size_t chunk_bytes = std::size_t{1} << 20;

std::uint64_t mix(std::uint64_t x) noexcept { // splitmix64's finaliser
    x += 0x9e3779b97f4a7c15;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9;
    x = (x ^ (x >> 27)) * 0x94d049bb133111eb;
    return x ^ (x >> 31);
}

record pattern(std::uint64_t index) noexcept {
    record r{index, mix(index), {}};
    for (std::size_t j = 0; j < r.payload.size(); ++j) {
        r.payload[j] = r.value ^ (j + 1);
    }
    return r;
}

std::uint64_t words_sum(const record& r) noexcept {
    std::uint64_t s = r.key + r.value;
    for (std::uint64_t w : r.payload) {
        s += w;
    }
    return s;
}

[[noreturn]] void fail(const std::string& what) {
    std::fprintf(stderr, "mapped_bench: FAILED: %s\n", what.c_str());
    std::exit(1);
}

[[noreturn]] void fail_errno(const std::string& what) {
    fail(what + ": " + std::strerror(errno));
}

struct fd_guard {
    int fd;
    explicit fd_guard(int f) : fd(f) {}
    fd_guard(const fd_guard&) = delete;
    fd_guard& operator=(const fd_guard&) = delete;
    ~fd_guard() {
        if (fd >= 0) {
            ::close(fd);
        }
    }
};

fd_guard open_read(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fail_errno("open " + path);
    }
    return fd_guard(fd);
}

// Eight independent sums, so that the compiler vectorises the loop and the scan is limited by
// memory, not by one chain of additions.
std::uint64_t sum_words(std::span<const std::uint64_t> words) noexcept {
    std::array<std::uint64_t, 8> s{};
    std::size_t i = 0;
    for (; i + 8 <= words.size(); i += 8) {
        for (std::size_t j = 0; j < 8; ++j) {
            s[j] += words[i + j];
        }
    }
    std::uint64_t total = 0;
    for (; i < words.size(); ++i) {
        total += words[i];
    }
    for (std::uint64_t x : s) {
        total += x;
    }
    return total;
}

// ---------------------------------------------------------------------------------------------
// The page cache.

// The share of the file's pages that are in the page cache, from mincore(2) on a mapping that
// is never touched.
double cached_fraction(const std::string& path) {
    fd_guard f = open_read(path);
    struct stat st {};
    if (::fstat(f.fd, &st) != 0) {
        fail_errno("fstat");
    }
    const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    const auto length = static_cast<std::size_t>(st.st_size);
    void* base = ::mmap(nullptr, length, PROT_READ, MAP_SHARED, f.fd, 0);
    if (base == MAP_FAILED) {
        fail_errno("mmap for mincore");
    }
    std::vector<unsigned char> pages((length + page - 1) / page);
    if (::mincore(base, length, pages.data()) != 0) {
        fail_errno("mincore");
    }
    ::munmap(base, length);
    const auto resident =
        std::count_if(pages.begin(), pages.end(), [](unsigned char c) { return (c & 1) != 0; });
    return static_cast<double>(resident) / static_cast<double>(pages.size());
}

// Reads the whole file once with read(2), so that every page is cached.
void warm(const std::string& path) {
    fd_guard f = open_read(path);
    std::vector<std::byte> buffer(chunk_bytes);
    while (true) {
        const ssize_t n = ::read(f.fd, buffer.data(), buffer.size());
        if (n < 0) {
            fail_errno("read " + path);
        }
        if (n == 0) {
            break;
        }
    }
}

struct eviction {
    std::string method;
    double cached_after;
};

bool drop_caches() {
    ::sync();
    const int f = ::open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
    if (f < 0) {
        return false;
    }
    const bool ok = ::write(f, "3", 1) == 1;
    ::close(f);
    return ok;
}

eviction evict(const std::string& path, bool global) {
    {
        fd_guard f = open_read(path);
        // Dirty pages cannot be dropped: write them first (the file is clean unless just made).
        ::fdatasync(f.fd);
        if (const int e = ::posix_fadvise(f.fd, 0, 0, POSIX_FADV_DONTNEED); e != 0) {
            errno = e;
            fail_errno("posix_fadvise(POSIX_FADV_DONTNEED)");
        }
    }
    eviction result{"posix_fadvise(POSIX_FADV_DONTNEED)", cached_fraction(path)};
    if (global || result.cached_after > 0.01) {
        if (drop_caches()) {
            result = {"sync; echo 3 > /proc/sys/vm/drop_caches", cached_fraction(path)};
        } else if (global) {
            fail_errno("write /proc/sys/vm/drop_caches");
        }
    }
    return result;
}

// ---------------------------------------------------------------------------------------------
// The file.

bool has_pattern(const std::string& path, std::uint64_t records) {
    fd_guard f = open_read(path);
    for (std::uint64_t i : {std::uint64_t{0}, records / 2, records - 1}) {
        record r{};
        if (::pread(f.fd, &r, sizeof r, static_cast<off_t>(i * sizeof r)) != sizeof r) {
            return false;
        }
        const record expected = pattern(i);
        if (std::memcmp(&r, &expected, sizeof r) != 0) {
            return false;
        }
    }
    return true;
}

// Returns whether the file had to be written.
bool prepare(const std::string& path, std::uint64_t bytes) {
    struct stat st {};
    const std::uint64_t records = bytes / sizeof(record);
    if (::stat(path.c_str(), &st) == 0 && static_cast<std::uint64_t>(st.st_size) == bytes &&
        has_pattern(path, records)) {
        return false;
    }
    const std::string temporary = path + ".partial";
    fd_guard f(::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (f.fd < 0) {
        fail_errno("create " + temporary);
    }
    std::vector<record> chunk(chunk_bytes / sizeof(record));
    for (std::uint64_t first = 0; first < records; first += chunk.size()) {
        const std::uint64_t n = std::min<std::uint64_t>(chunk.size(), records - first);
        for (std::uint64_t i = 0; i < n; ++i) {
            chunk[i] = pattern(first + i);
        }
        const auto length = static_cast<std::size_t>(n * sizeof(record));
        if (::write(f.fd, chunk.data(), length) != static_cast<ssize_t>(length)) {
            fail_errno("write " + temporary);
        }
    }
    if (::fsync(f.fd) != 0) {
        fail_errno("fsync " + temporary);
    }
    if (::rename(temporary.c_str(), path.c_str()) != 0) {
        fail_errno("rename to " + path);
    }
    return true;
}

// ---------------------------------------------------------------------------------------------
// Measurement.

struct sample {
    double seconds;
    long faults; // minor + major page faults of this process meanwhile
    long major_faults;
    long long read_bytes; // bytes this process (io_uring's workers included) made storage read
};

// read_bytes from /proc/self/io: what the process caused to be read from storage, page cache
// misses and readahead included, whether through read(2), a page fault or an io_uring worker.
long long storage_read_bytes() {
    std::FILE* io = std::fopen("/proc/self/io", "r");
    if (io == nullptr) {
        return -1;
    }
    char line[128];
    long long bytes = -1;
    while (std::fgets(line, sizeof line, io) != nullptr) {
        if (std::sscanf(line, "read_bytes: %lld", &bytes) == 1) {
            break;
        }
    }
    std::fclose(io);
    return bytes;
}

long faults_now(long* major) {
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    *major = ru.ru_majflt;
    return ru.ru_minflt + ru.ru_majflt;
}

// Times `work`, which returns a checksum, and fails unless the checksum is `expected`.
sample timed(std::string_view name, std::uint64_t expected,
             const std::function<std::uint64_t()>& work) {
    long major0 = 0;
    long major1 = 0;
    const long long b0 = storage_read_bytes();
    const long f0 = faults_now(&major0);
    const auto t0 = std::chrono::steady_clock::now();
    const std::uint64_t got = work();
    const auto t1 = std::chrono::steady_clock::now();
    const long f1 = faults_now(&major1);
    const long long b1 = storage_read_bytes();
    if (got != expected) {
        fail(std::string(name) + ": checksum " + std::to_string(got) + ", expected " +
             std::to_string(expected));
    }
    return {std::chrono::duration<double>(t1 - t0).count(), f1 - f0, major1 - major0,
            b0 < 0 || b1 < 0 ? -1 : b1 - b0};
}

// --- random reads

ringio::task<> reader(ringio::io_context& context, int fd, std::span<const std::uint32_t> indices,
                      std::size_t first, std::size_t stride, std::uint64_t& sum) {
    record r{};
    const std::span<std::byte> bytes = std::as_writable_bytes(std::span{&r, 1});
    std::uint64_t s = 0;
    for (std::size_t k = first; k < indices.size(); k += stride) {
        const std::size_t n =
            co_await ringio::read_at(context, fd, std::uint64_t{indices[k]} * sizeof r, bytes);
        if (n != sizeof r) {
            throw std::runtime_error("read_at: short read");
        }
        s += r.value;
    }
    sum = s;
}

std::uint64_t ringio_reads(int fd, std::span<const std::uint32_t> indices, unsigned depth) {
    ringio::io_context context;
    std::vector<std::uint64_t> sums(depth);
    for (unsigned w = 0; w < depth; ++w) {
        ringio::spawn(context, reader(context, fd, indices, w, depth, sums[w]));
    }
    context.run();
    std::uint64_t total = 0;
    for (std::uint64_t s : sums) {
        total += s;
    }
    return total;
}

// The same with liburing by hand: `depth` reads in flight, each completion's slot refilled at
// once, one io_uring_submit_and_wait per batch of completions.
std::uint64_t liburing_reads(int fd, std::span<const std::uint32_t> indices, unsigned depth) {
    io_uring ring{};
    io_uring_params params{};
    params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    if (io_uring_queue_init_params(64, &ring, &params) < 0) {
        params = {};
        if (const int e = io_uring_queue_init_params(64, &ring, &params); e < 0) {
            errno = -e;
            fail_errno("io_uring_queue_init_params");
        }
    }
    std::vector<record> slots(depth);
    std::size_t next = 0;
    std::size_t done = 0;
    std::uint64_t sum = 0;
    auto issue = [&](unsigned slot) {
        io_uring_sqe* sqe = io_uring_get_sqe(&ring);
        io_uring_prep_read(sqe, fd, &slots[slot], sizeof(record),
                           std::uint64_t{indices[next]} * sizeof(record));
        sqe->user_data = slot;
        ++next;
    };
    for (unsigned slot = 0; slot < depth && next < indices.size(); ++slot) {
        issue(slot);
    }
    while (done < indices.size()) {
        if (const int e = io_uring_submit_and_wait(&ring, 1); e < 0) {
            errno = -e;
            fail_errno("io_uring_submit_and_wait");
        }
        io_uring_cqe* cqe = nullptr;
        unsigned head = 0;
        unsigned seen = 0;
        io_uring_for_each_cqe(&ring, head, cqe) {
            if (cqe->res != static_cast<int>(sizeof(record))) {
                fail("liburing read: result " + std::to_string(cqe->res));
            }
            const auto slot = static_cast<unsigned>(cqe->user_data);
            sum += slots[slot].value;
            ++done;
            ++seen;
            if (next < indices.size()) {
                issue(slot);
            }
        }
        io_uring_cq_advance(&ring, seen);
    }
    io_uring_queue_exit(&ring);
    return sum;
}

std::uint64_t mapped_reads(const ringio::mapped<const record[]>& view,
                           std::span<const std::uint32_t> indices) {
    std::uint64_t s = 0;
    for (std::uint32_t i : indices) {
        s += view[i].value;
    }
    return s;
}

std::uint64_t pread_reads(int fd, std::span<const std::uint32_t> indices) {
    std::uint64_t s = 0;
    record r{};
    for (std::uint32_t i : indices) {
        if (::pread(fd, &r, sizeof r, static_cast<off_t>(std::uint64_t{i} * sizeof r)) !=
            sizeof r) {
            fail_errno("pread");
        }
        s += r.value;
    }
    return s;
}

// --- options and output

struct options {
    std::string file;
    std::uint64_t size = 0;
    std::uint64_t reads = 2'000'000;
    std::uint64_t cold_reads = 20'000;
    std::uint64_t seed = 1;
    unsigned round = 0;
    bool prepare = false;
    bool random = true;
    bool warm = true;
    bool cold = true;
    bool cold_random = true;
    bool drop_caches = false;
};

[[noreturn]] void usage() {
    std::fprintf(
        stderr,
        "usage: mapped_bench --file PATH --size BYTES --prepare\n"
        "       mapped_bench --file PATH --size BYTES [--reads N] [--cold-reads N]\n"
        "                    [--seed S] [--round R] [--parts random,warm,cold,cold_random]\n"
        "                    [--evict fadvise|drop_caches]\n");
    std::exit(2);
}

options parse(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                usage();
            }
            return argv[++i];
        };
        if (arg == "--file") {
            o.file = value();
        } else if (arg == "--size") {
            o.size = std::stoull(value());
        } else if (arg == "--reads") {
            o.reads = std::stoull(value());
        } else if (arg == "--cold-reads") {
            o.cold_reads = std::stoull(value());
        } else if (arg == "--seed") {
            o.seed = std::stoull(value());
        } else if (arg == "--round") {
            o.round = static_cast<unsigned>(std::stoul(value()));
        } else if (arg == "--prepare") {
            o.prepare = true;
        } else if (arg == "--parts") {
            const std::string parts = "," + value() + ",";
            o.random = parts.find(",random,") != std::string::npos;
            o.warm = parts.find(",warm,") != std::string::npos;
            o.cold = parts.find(",cold,") != std::string::npos;
            o.cold_random = parts.find(",cold_random,") != std::string::npos;
        } else if (arg == "--evict") {
            const std::string how = value();
            if (how != "fadvise" && how != "drop_caches") {
                usage();
            }
            o.drop_caches = how == "drop_caches";
        } else {
            usage();
        }
    }
    const std::uint64_t records = o.size / sizeof(record);
    if (o.file.empty() || o.size == 0 || o.size % chunk_bytes != 0 || o.reads == 0 ||
        o.cold_reads == 0 || o.cold_reads > o.reads || records > UINT32_MAX) {
        usage();
    }
    return o;
}

// Ends a section's JSON with how its file was evicted and how much of it stayed cached.
void print_evictions(const std::vector<eviction>& evictions) {
    double worst = 0;
    std::string how;
    for (const eviction& e : evictions) {
        worst = std::max(worst, e.cached_after);
        if (how.find(e.method) == std::string::npos) {
            how += (how.empty() ? "" : " or ") + e.method;
        }
    }
    std::printf("}, \"eviction\": \"%s\", \"cached_after_eviction\": %.4f}", how.c_str(), worst);
}

struct method {
    std::string name;
    std::function<std::uint64_t()> work;
};

// Runs `methods` in an order rotated by `round` and prints them as `"name": {...}` entries.
void run_all(std::vector<method> methods, unsigned round, std::uint64_t expected,
             const std::function<void()>& before_each, const char* indent) {
    std::rotate(methods.begin(), methods.begin() + round % methods.size(), methods.end());
    bool first = true;
    for (const method& m : methods) {
        before_each();
        const sample s = timed(m.name, expected, m.work);
        std::printf("%s\n%s\"%s\": {\"seconds\": %.9f, \"faults\": %ld, \"major_faults\": %ld, "
                    "\"read_bytes\": %lld}",
                    first ? "" : ",", indent, m.name.c_str(), s.seconds, s.faults, s.major_faults,
                    s.read_bytes);
        first = false;
    }
}

} // namespace

int main(int argc, char** argv) {
    const options o = parse(argc, argv);
    const std::uint64_t records = o.size / sizeof(record);
    const std::string& path = o.file;

    if (o.prepare) {
        const auto t0 = std::chrono::steady_clock::now();
        const bool created = prepare(path, o.size);
        warm(path);
        const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::printf("{\"created\": %s, \"seconds\": %.3f, \"cached\": %.4f}\n",
                    created ? "true" : "false", seconds, cached_fraction(path));
        return 0;
    }
    if (!has_pattern(path, records)) {
        fail(path + " does not hold the pattern: run with --prepare first");
    }

    std::printf("{\"file_bytes\": %llu, \"record_bytes\": %zu, \"round\": %u",
                static_cast<unsigned long long>(o.size), sizeof(record), o.round);

    // The same seeded sequence for every method; the cold test reads a prefix of it.
    std::mt19937_64 random(o.seed);
    std::uniform_int_distribution<std::uint32_t> pick(0, static_cast<std::uint32_t>(records - 1));
    std::vector<std::uint32_t> indices(o.reads);
    for (std::uint32_t& i : indices) {
        i = pick(random);
    }
    auto expected_of = [](std::span<const std::uint32_t> some) {
        std::uint64_t sum = 0;
        for (std::uint32_t i : some) {
            sum += pattern(i).value;
        }
        return sum;
    };
    using record_view = ringio::mapped<const record[]>;

    if (o.random) {
        const std::span<const std::uint32_t> idx = indices;
        const std::uint64_t expected = expected_of(idx);
        warm(path);
        const double cached = cached_fraction(path);
        // One mapping that stays faulted in from an untimed pass over the indices on.
        const record_view steady = record_view::open(path);
        if (mapped_reads(steady, idx) != expected) {
            fail("mapped, untimed pass: wrong checksum");
        }
        const fd_guard f = open_read(path);
        const int fd = f.fd;
        std::vector<method> methods = {
            {"mapped_first_touch",
             [&] {
                 return mapped_reads(record_view::open(path), idx);
             }},
            {"mapped_populate",
             [&] {
                 return mapped_reads(record_view::open(path, {.populate = true}), idx);
             }},
            {"mapped_steady",
             [&] {
                 return mapped_reads(steady, idx);
             }},
            {"pread",
             [&] {
                 return pread_reads(fd, idx);
             }},
            {"ringio_qd1",
             [&] {
                 return ringio_reads(fd, idx, 1);
             }},
            {"ringio_qd32",
             [&] {
                 return ringio_reads(fd, idx, 32);
             }},
            {"liburing_qd1",
             [&] {
                 return liburing_reads(fd, idx, 1);
             }},
            {"liburing_qd32",
             [&] {
                 return liburing_reads(fd, idx, 32);
             }},
        };
        std::printf(
            ",\n\"random\": {\"reads\": %llu, \"seed\": %llu, \"cached\": %.4f, \"methods\": {",
            static_cast<unsigned long long>(o.reads), static_cast<unsigned long long>(o.seed),
            cached);
        run_all(
            std::move(methods), o.round, expected, [] {}, "  ");
        std::printf("}}");
    }

    if (o.cold_random) {
        // Random reads from a file that is not cached: every miss waits for storage, and what
        // the kernel reads around a miss decides how much more than 64 bytes that costs.
        const std::span<const std::uint32_t> idx = std::span{indices}.first(o.cold_reads);
        const std::uint64_t expected = expected_of(idx);
        const fd_guard f = open_read(path);
        const int fd = f.fd;
        std::vector<method> methods = {
            {"mapped",
             [&] {
                 return mapped_reads(record_view::open(path), idx);
             }},
            {"mapped_random",
             [&] {
                 const record_view v = record_view::open(path);
                 v.advise(ringio::map_advice::random);
                 return mapped_reads(v, idx);
             }},
            {"pread",
             [&] {
                 return pread_reads(fd, idx);
             }},
            {"ringio_qd32",
             [&] {
                 return ringio_reads(fd, idx, 32);
             }},
        };
        std::vector<eviction> evictions;
        std::printf(",\n\"cold_random\": {\"reads\": %llu, \"methods\": {",
                    static_cast<unsigned long long>(o.cold_reads));
        run_all(
            std::move(methods), o.round, expected,
            [&] { evictions.push_back(evict(path, o.drop_caches)); }, "  ");
        print_evictions(evictions);
    }

    if (o.warm || o.cold) {
        std::uint64_t expected = 0;
        for (std::uint64_t i = 0; i < records; ++i) {
            expected += words_sum(pattern(i));
        }
        using view = ringio::mapped<const std::uint64_t[]>;
        auto scan_view = [&](view v) {
            return sum_words(std::span{v.data(), v.size()});
        };
        std::vector<method> methods = {
            {"read_1mib",
             [&] {
                 fd_guard f = open_read(path);
                 std::vector<std::uint64_t> buffer(chunk_bytes / sizeof(std::uint64_t));
                 std::uint64_t s = 0;
                 while (true) {
                     const ssize_t n = ::read(f.fd, buffer.data(), chunk_bytes);
                     if (n < 0) {
                         fail_errno("read");
                     }
                     if (n == 0) {
                         break;
                     }
                     s += sum_words(std::span{buffer}.first(static_cast<std::size_t>(n) / 8));
                 }
                 return s;
             }},
            {"mapped",
             [&] {
                 return scan_view(view::open(path));
             }},
            {"mapped_sequential",
             [&] {
                 view v = view::open(path);
                 v.advise(ringio::map_advice::sequential);
                 return scan_view(std::move(v));
             }},
            {"mapped_populate",
             [&] {
                 return scan_view(view::open(path, {.populate = true}));
             }},
        };
        if (o.warm) {
            warm(path);
            std::printf(",\n\"warm\": {\"cached\": %.4f, \"methods\": {", cached_fraction(path));
            run_all(
                methods, o.round, expected, [] {}, "  ");
            std::printf("}}");
        }
        if (o.cold) {
            std::vector<eviction> evictions;
            std::printf(",\n\"cold\": {\"methods\": {");
            run_all(
                methods, o.round, expected,
                [&] { evictions.push_back(evict(path, o.drop_caches)); }, "  ");
            print_evictions(evictions);
        }
    }
    std::printf("}\n");
    return 0;
}
