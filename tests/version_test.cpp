#include <ringio/version.hpp>

#include <ringio/ringio.hpp>

#include <catch2/catch.hpp>

TEST_CASE("version: the combined number agrees with its parts", "[version]") {
    STATIC_REQUIRE(RINGIO_VERSION == RINGIO_VERSION_MAJOR * 10000 + RINGIO_VERSION_MINOR * 100 +
                                         RINGIO_VERSION_PATCH);
    STATIC_REQUIRE(RINGIO_VERSION_MINOR < 100);
    STATIC_REQUIRE(RINGIO_VERSION_PATCH < 100);
}
