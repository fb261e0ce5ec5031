#pragma once

// Lets Catch2 print endpoints in failed assertions as their text form, e.g. [::1]:80, instead of
// "{?}".

#include <ringio/endpoint.hpp>

#include <catch2/catch.hpp>

#include <string>

namespace Catch {
template <>
struct StringMaker<ringio::endpoint> {
    static std::string convert(const ringio::endpoint& e) {
        return e.empty() ? std::string("(empty endpoint)") : e.to_string();
    }
};
} // namespace Catch
