#include <ringio/mappable.hpp>

#include <catch2/catch.hpp>

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

namespace {

struct plain {
    std::uint32_t ready;
    double value;
    char name[16];
};

struct with_constructor {
    with_constructor() : value(1) {}
    int value;
};

struct with_destructor {
    ~with_destructor() {}
    int value;
};

struct with_pointer_member {
    int* pointer;
};

union either {
    std::uint32_t word;
    float number;
};

enum class colour : std::uint8_t { red, green };

} // namespace

TEST_CASE("mappable: admits trivially copyable implicit-lifetime types", "[mappable]") {
    STATIC_REQUIRE(ringio::mappable<int>);
    STATIC_REQUIRE(ringio::mappable<std::byte>);
    STATIC_REQUIRE(ringio::mappable<double>);
    STATIC_REQUIRE(ringio::mappable<colour>);
    STATIC_REQUIRE(ringio::mappable<plain>);
    STATIC_REQUIRE(ringio::mappable<either>);
    STATIC_REQUIRE(ringio::mappable<plain[4]>);
    STATIC_REQUIRE(ringio::mappable<std::array<std::uint64_t, 3>>);
    // A trivial copy with a user-provided constructor: still implicit-lifetime through its
    // trivial copy constructor.
    STATIC_REQUIRE(ringio::mappable<with_constructor>);
}

TEST_CASE("mappable: rejects pointers, references, const, volatile and std::atomic", "[mappable]") {
    STATIC_REQUIRE_FALSE(ringio::mappable<int*>);
    STATIC_REQUIRE_FALSE(ringio::mappable<int* [4]>);
    STATIC_REQUIRE_FALSE(ringio::mappable<void (*)()>);
    STATIC_REQUIRE_FALSE(ringio::mappable<void (plain::*)()>);
    STATIC_REQUIRE_FALSE(ringio::mappable<int&>);
    STATIC_REQUIRE_FALSE(ringio::mappable<const int>);
    STATIC_REQUIRE_FALSE(ringio::mappable<volatile int>);
    STATIC_REQUIRE_FALSE(ringio::mappable<std::atomic<int>>);
    STATIC_REQUIRE_FALSE(ringio::mappable<std::atomic<int>[2]>);
    STATIC_REQUIRE_FALSE(ringio::mappable<std::atomic_flag>);
    STATIC_REQUIRE_FALSE(ringio::mappable<void>);
    STATIC_REQUIRE_FALSE(ringio::mappable<int()>);
}

TEST_CASE("mappable: rejects types whose bytes are not their value", "[mappable]") {
    STATIC_REQUIRE_FALSE(ringio::mappable<std::string>);
    STATIC_REQUIRE_FALSE(ringio::mappable<with_destructor>);
}

TEST_CASE("mappable: a class holding a pointer passes, as the language cannot see inside",
          "[mappable]") {
    // Documented limit: the concept checks the type, not its members' meaning.
    STATIC_REQUIRE(ringio::mappable<with_pointer_member>);
}
