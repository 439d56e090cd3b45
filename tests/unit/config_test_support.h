// What the config loader's tests share: loading a config written in the test (line
// numbers as counted there), its errors, and a readable print of error lists.
#pragma once

#include <doctest/doctest.h>

#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/loader.h"

using namespace fdsup::config;

// Failed comparisons of error lists print every error, one per line.
namespace doctest {
template <>
struct StringMaker<std::vector<std::string>> {
    static String convert(const std::vector<std::string>& lines) {
        std::string text = "{";
        for (const auto& line : lines) text += "\n    " + line;
        return String((text + "\n}").c_str());
    }
};
}  // namespace doctest

namespace config_test {

// Configs are written as raw strings starting on the line after R"( so that the
// line numbers in the assertions are the ones you count in the test.
inline LoadResult load(std::string_view text) {
    if (text.starts_with('\n')) text.remove_prefix(1);
    return load_config_string(text, "t.toml");
}

inline std::vector<std::string> errors_of(std::string_view text) {
    std::vector<std::string> out;
    for (const auto& e : load(text).errors) out.push_back(e.text());
    return out;
}

// The single error of a config that must have exactly one.
inline std::string one_error(std::string_view text) {
    auto errors = errors_of(text);
    REQUIRE_MESSAGE(errors.size() == 1, doctest::toString(errors.size()) << " errors");
    return errors[0];
}

// Loads a config that must be valid.
inline Config valid(std::string_view text) {
    auto r = load(text);
    for (const auto& e : r.errors) FAIL_CHECK(e.text());
    REQUIRE(r.config.has_value());
    return *r.config;
}

// Restores an environment variable when the test ends.
struct EnvGuard {
    std::string name;
    std::optional<std::string> old;
    explicit EnvGuard(std::string n) : name(std::move(n)) {
        if (const char* v = std::getenv(name.c_str())) old = v;
    }
    ~EnvGuard() {
        if (old) setenv(name.c_str(), old->c_str(), 1);
        else unsetenv(name.c_str());
    }
};

}  // namespace config_test

using namespace config_test;
