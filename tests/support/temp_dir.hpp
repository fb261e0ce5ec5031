#pragma once

// A temporary directory per test, for the tests that need real files.

#include <stdlib.h>

#include <cerrno>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

namespace ringio::testing {

/// A directory of the test's own under the system's temporary directory, removed with everything
/// in it when the test ends.
class temp_dir {
public:
    temp_dir() {
        std::string pattern =
            (std::filesystem::temp_directory_path() / "ringio-test-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) {
            throw std::system_error(errno, std::system_category(), "mkdtemp " + pattern);
        }
        path_ = pattern;
    }

    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;

    ~temp_dir() {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }

    /// The directory.
    [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }

    /// A path named `name` in the directory.
    [[nodiscard]] std::filesystem::path operator/(std::string_view name) const {
        return path_ / name;
    }

private:
    std::filesystem::path path_;
};

} // namespace ringio::testing
