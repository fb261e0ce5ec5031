#include <ringio/map_options.hpp>

#include <ringio/mapped.hpp>

#include <catch2/catch.hpp>

#include "temp_dir.hpp"

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>

using namespace ringio::testing;

TEST_CASE("map_options: the defaults map a file shared from its start", "[map_options]") {
    constexpr ringio::map_options options;
    STATIC_REQUIRE(options.mode == ringio::map_mode::shared);
    STATIC_REQUIRE(options.offset == 0);
    STATIC_REQUIRE_FALSE(options.populate);
}

TEST_CASE("create_options: new files are for their owner only and never replace another",
          "[map_options]") {
    constexpr ringio::create_options options;
    STATIC_REQUIRE(options.permissions == 0600);
    STATIC_REQUIRE_FALSE(options.replace_existing);
}

namespace {

// The resident size in KiB of this process's mapping that starts at `start`, from
// /proc/self/smaps: pages the mapping has in its page tables, not merely in the page cache.
std::size_t resident_kib(const void* start) {
    std::ifstream smaps("/proc/self/smaps");
    std::ostringstream wanted;
    wanted << std::hex << reinterpret_cast<std::uintptr_t>(start) << '-';
    bool in_mapping = false;
    for (std::string line; std::getline(smaps, line);) {
        if (line.find('-') != std::string::npos && line.find(':') > line.find(' ')) {
            in_mapping = line.starts_with(wanted.str());
        } else if (in_mapping && line.starts_with("Rss:")) {
            return std::stoul(line.substr(4));
        }
    }
    FAIL("no mapping at " << start << " in /proc/self/smaps");
    return 0;
}

} // namespace

TEST_CASE("map_options: populate faults every page in at once", "[map_options]") {
    temp_dir dir;
    const std::size_t bytes = 64 * ringio::detail::page_size();
    ringio::mapped<std::byte[]>::create(dir / "f", bytes);

    auto lazy = ringio::mapped<const std::byte[]>::open(dir / "f");
    auto eager = ringio::mapped<const std::byte[]>::open(dir / "f", {.populate = true});
    CHECK(resident_kib(lazy.data()) == 0);
    CHECK(resident_kib(eager.data()) == bytes / 1024);
}

TEST_CASE("map_advice: each value is the madvise constant it names", "[map_options]") {
    STATIC_REQUIRE(static_cast<int>(ringio::map_advice::normal) == MADV_NORMAL);
    STATIC_REQUIRE(static_cast<int>(ringio::map_advice::random) == MADV_RANDOM);
    STATIC_REQUIRE(static_cast<int>(ringio::map_advice::sequential) == MADV_SEQUENTIAL);
    STATIC_REQUIRE(static_cast<int>(ringio::map_advice::will_need) == MADV_WILLNEED);
    STATIC_REQUIRE(static_cast<int>(ringio::map_advice::dont_need) == MADV_DONTNEED);
}
