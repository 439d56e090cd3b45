// A directory from mkdtemp for a unit test, removed with everything in it at the end.
#pragma once

#include <doctest/doctest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>

struct TempDir {
    std::string path;
    // "/tmp/fdsup-test-TAG-XXXXXX"
    explicit TempDir(const std::string& tag) {
        std::string name = "/tmp/fdsup-test-" + tag + "-XXXXXX";
        REQUIRE(::mkdtemp(name.data()) != nullptr);
        path = name;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    std::string operator/(const std::string& relative) const { return path + "/" + relative; }
};
