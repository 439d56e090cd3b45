// The upgrade state's reader (json/json_reader.h) must accept and refuse exactly what
// nlohmann::json::parse does, and build the same document, value types included: it
// replaced that parse on the restore path, so any difference would be a behaviour
// change for a damaged state. Checked on hand-picked edge cases and on thousands of
// random mutations of a state-like text.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <random>
#include <string>
#include <vector>

#include "json/json_reader.h"
#include "json/json_writer.h"

using fdsup::read_json;
using Json = nlohmann::json;

namespace {

// Equal, and every value of the same type (an int64 5 and a uint64 5 compare equal).
bool same(const Json& a, const Json& b) {
    if (a.type() != b.type()) return false;
    if (a.is_array()) {
        if (a.size() != b.size()) return false;
        for (size_t i = 0; i < a.size(); ++i)
            if (!same(a[i], b[i])) return false;
        return true;
    }
    if (a.is_object()) {
        if (a.size() != b.size()) return false;
        for (auto it = a.begin(); it != a.end(); ++it) {
            auto other = b.find(it.key());
            if (other == b.end() || !same(*it, *other)) return false;
        }
        return true;
    }
    if (a.is_number_float()) return a.get<double>() == b.get<double>();
    return a == b;
}

bool has_float(const Json& j) {
    if (j.is_number_float()) return true;
    if (j.is_structured())
        for (const auto& item : j)
            if (has_float(item)) return true;
    return false;
}

// What nlohmann makes of `text` and what read_json does agree.
void check_agrees(const std::string& text) {
    CAPTURE(text);
    Json expected = Json::parse(text, nullptr, false);
    auto read = read_json(text);
    REQUIRE(read.has_value() == !expected.is_discarded());
    if (!read) return;
    CHECK(same(read->document, expected));
    CHECK(read->integers_only == !has_float(expected));
}

// A text shaped like the upgrade state: objects, positional records, nested arrays,
// strings with escapes and non-ASCII text, integers of both signs.
std::string state_like_text() {
    fdsup::JsonWriter w;
    w.begin_object().member("version", 8).member("started_at", int64_t{-12345}).key("workers").begin_array();
    for (int worker = 0; worker < 3; ++worker) {
        w.begin_object().member("name", "web-" + std::to_string(worker)).key("instances").begin_array();
        for (int i = 0; i < 4; ++i) {
            w.begin_array()
                .value(uint64_t{1000} + static_cast<uint64_t>(i))
                .value(i)
                .value(false)
                .value("running")
                .value(int64_t{-1})
                .begin_array()
                .value(uint64_t{18446744073709551615ULL})
                .end_array()
                .value("status \"quoted\" \\ tab\t nl\n ctl\x01 é ✓ 😀")
                .null()
                .begin_array()
                .value(0)
                .null()
                .value("")
                .end_array()
                .end_array();
        }
        w.end_array().end_object();
    }
    w.end_array().member("keep", "[1, 2]").end_object();
    return w.text();
}

}  // namespace

TEST_CASE("json reader: the same document as nlohmann, value types included") {
    for (const char* text : {
             "{}", "[]", " \t\r\n[ 1 , -2 , 0 , -0 ] ", "{\"a\": {\"b\": [true, false, null]}}",
             "\"top-level string\"", "42", "-9223372036854775808", "-9223372036854775809",
             "18446744073709551615", "18446744073709551616", "9223372036854775808", "[1.5, -0.0, 1e3, 2E-2, 1e+2]",
             "[1e400]", "[-1e400]", "[1e-400]", "{\"a\": 1, \"a\": 2}", "{\"a\": 1, \"b\": {\"a\": [3]}, \"a\": []}",
             "\"\\u0041\\u00e9\\u20ac\\ud83d\\ude00\\u0000\"", "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"é✓😀\"",
             "\xEF\xBB\xBF{\"bom\": 1}", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
             "{\"big\": 1.58558e+137}",
         })
        check_agrees(text);
    check_agrees(state_like_text());
    // Deep: nlohmann has no depth limit, nor has this (it does not recurse).
    check_agrees(std::string(5000, '[') + std::string(5000, ']'));
}

TEST_CASE("json reader: refuses what nlohmann refuses") {
    for (const char* text : {
             "", " ", "[", "]", "{", "[1,]", "[,1]", "{\"a\":1,}", "{\"a\" 1}", "{a: 1}", "{\"a\":}", "[1 2]",
             "01", "-", "-01", "1.", ".5", "1e", "1e+", "+1", "0x10", "[NaN]", "[Infinity]", "tru", "truex",
             "nul", "[null,]", "\"unterminated", "\"bad escape \\x\"", "\"\\u12\"", "\"\\u12G4\"",
             "\"\\ud83d\"", "\"\\ud83d\\u0041\"", "\"\\ude00\"", "\"\\ud83d\\\"", "\"tab\tinside\"",
             "\"\xC0\x80\"", "\"\xC3\"", "\"\xE0\x80\x80\"", "\"\xED\xA0\x80\"", "\"\xF4\x90\x80\x80\"",
             "\"\xF5\x80\x80\x80\"", "\"\xFF\"", "\"\x80\"", "\xEF\xBB{}", "\xEF{}", "{} {}", "[] x",
             "// comment\n{}", "{\"a\":1}/**/",
         })
        check_agrees(text);
    check_agrees(std::string("[1]\0", 4));
    check_agrees(std::string("[1] \0 trailing", 14));  // nlohmann stops at a NUL
    check_agrees(std::string("[1\0]", 4));
    check_agrees(std::string("\0", 1));
    check_agrees(std::string("\"a\0b\"", 5));
}

TEST_CASE("json reader: random damage to a state reads as nlohmann reads it") {
    const std::string text = state_like_text();
    std::mt19937 random(20261207);
    std::string alphabet = "{}[],:\"\\ 0123456789-+.eEtrufalsn\x01\x80\xC3\xE2\xF0\xBF";
    alphabet += '\0';
    for (int round = 0; round < 20000; ++round) {
        std::string damaged = text;
        int changes = 1 + static_cast<int>(random() % 3);
        for (int i = 0; i < changes; ++i) {
            size_t at = random() % damaged.size();
            switch (random() % 3) {
                case 0: damaged[at] = alphabet[random() % alphabet.size()]; break;
                case 1: damaged.erase(at, 1 + random() % 4); break;
                default: damaged.insert(at, 1, alphabet[random() % alphabet.size()]); break;
            }
            if (damaged.empty()) damaged = "x";
        }
        check_agrees(damaged);
    }
}
