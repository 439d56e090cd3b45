// The direct JSON writer of `status`: its text must read back as the document nlohmann
// would have written, and its strings must be escaped byte for byte as nlohmann's dump
// (error_handler_t::replace) escapes them, invalid UTF-8 included.
#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <random>
#include <string>

#include "json/json_writer.h"
#include "control/protocol.h"

using namespace fdsup::control;
using fdsup::JsonWriter;
using fdsup::append_json_string;

namespace {

std::string nlohmann_string(const std::string& text) {
    return Json(text).dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string written_string(const std::string& text) {
    std::string out;
    append_json_string(out, text);
    return out;
}

}  // namespace

TEST_CASE("json writer: nested objects and arrays, every value kind, read back equal") {
    JsonWriter w;
    w.begin_object()
        .member("ok", true)
        .member("no", false)
        .member("int", -42)
        .member("big", std::numeric_limits<uint64_t>::max())
        .member("min", std::numeric_limits<int64_t>::min())
        .member("pi", 3.25)
        .member("whole", 3.0)
        .member("tiny", 1e-7)
        .member("name", "web")
        .key("nothing")
        .null()
        .key("empty_array")
        .begin_array()
        .end_array()
        .key("empty_object")
        .begin_object()
        .end_object()
        .key("list")
        .begin_array()
        .value(1)
        .begin_object()
        .member("k", "v")
        .end_object()
        .begin_array()
        .null()
        .end_array()
        .value("x")
        .end_array()
        .end_object();
    std::string line = std::move(w).line();
    REQUIRE(line.back() == '\n');
    Json j = Json::parse(line);
    Json expected = Json{{"ok", true},
                         {"no", false},
                         {"int", -42},
                         {"big", std::numeric_limits<uint64_t>::max()},
                         {"min", std::numeric_limits<int64_t>::min()},
                         {"pi", 3.25},
                         {"whole", 3.0},
                         {"tiny", 1e-7},
                         {"name", "web"},
                         {"nothing", nullptr},
                         {"empty_array", Json::array()},
                         {"empty_object", Json::object()},
                         {"list", Json::array({1, Json{{"k", "v"}}, Json::array({nullptr}), "x"})}};
    CHECK(j == expected);
    // Member order is kept (people read replies top down), and a whole double stays a double.
    CHECK(j.begin().key() == "ok");
    CHECK(j["whole"].is_number_float());
    CHECK(line.find("\"whole\":3.0") != std::string::npos);
}

TEST_CASE("json writer: NaN and infinity are written as null (JSON has neither)") {
    JsonWriter w;
    w.begin_array()
        .value(std::numeric_limits<double>::quiet_NaN())
        .value(std::numeric_limits<double>::infinity())
        .end_array();
    CHECK(w.text() == "[null,null]");
}

TEST_CASE("json writer: escapes as nlohmann does: quotes, backslash, control bytes, DEL, slash") {
    for (std::string text : {std::string("plain"), std::string("a\"b\\c/d"), std::string("\b\f\n\r\t"),
                             std::string("\x01\x1f\x7f", 3), std::string("nul\0inside", 10), std::string("")})
        CHECK(written_string(text) == nlohmann_string(text));
}

TEST_CASE("json writer: valid UTF-8 passes through, invalid bytes become U+FFFD exactly as nlohmann's") {
    // Hand-picked edges: overlongs, surrogates, above U+10FFFF, truncated sequences (also
    // at the very end), stray continuation bytes, a bad byte inside a sequence.
    const char* cases[] = {"h\xC3\xA9llo",   "\xE2\x82\xAC",     "\xF0\x9F\x98\x80", "\xC0\xAF",
                           "\xE0\x80\xAF",   "\xED\xA0\x80",     "\xF4\x90\x80\x80", "\xF5\x80",
                           "\x80\x80x",      "\xC3",             "abc\xE2\x82",      "\xE2\x28\xA1",
                           "\xF0\x9F\x98x",  "\xFF\xFE",         "\xED\x9F\xBF",     "\xF4\x8F\xBF\xBF"};
    for (const char* text : cases) {
        CAPTURE(std::string(text));
        CHECK(written_string(text) == nlohmann_string(text));
    }
    // And 20,000 random byte strings, biased towards the bytes that make UTF-8 go wrong.
    std::mt19937 random(12345);
    const unsigned char interesting[] = {0x00, 0x1F, 0x22, 0x5C, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF,
                                         0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF};
    for (int round = 0; round < 20000; ++round) {
        std::string text;
        size_t length = random() % 12;
        for (size_t i = 0; i < length; ++i)
            text += static_cast<char>(random() % 3 == 0 ? random() % 256 : interesting[random() % sizeof interesting]);
        CAPTURE(text);
        REQUIRE(written_string(text) == nlohmann_string(text));
    }
}

TEST_CASE("json writer: reserve makes room without changing the text") {
    JsonWriter w;
    w.begin_array().value(1);
    w.reserve(1 << 20);
    CHECK(w.text() == "[1");
    CHECK(w.text().capacity() >= (1u << 20));
    const char* before = w.text().data();
    for (int i = 0; i < 10000; ++i) w.value(i);
    CHECK(w.text().data() == before);  // grown in place: no copy
    w.end_array();
    CHECK(Json::parse(w.text()).size() == 10001);
}

TEST_CASE("json writer: array elements written apart are spliced in as the array's next, commas right") {
    auto elements = [](int from, int to) {
        JsonWriter part = JsonWriter::array_elements();
        for (int i = from; i < to; ++i) part.begin_object().member("i", i).key("l").begin_array().value(i).end_array().end_object();
        return part;
    };
    auto spliced = [&](int own, int apart) {
        JsonWriter w;
        w.begin_object().key("a").begin_array();
        for (int i = 0; i < own; ++i) w.begin_object().member("i", i).key("l").begin_array().value(i).end_array().end_object();
        w.splice_elements(elements(own, own + apart)).end_array().member("after", true).end_object();
        return std::move(w).line();
    };
    auto whole = [](int count) {
        Json a = Json::array();
        for (int i = 0; i < count; ++i) a.push_back(Json{{"i", i}, {"l", Json::array({i})}});
        return Json{{"a", a}, {"after", true}};
    };
    CHECK(Json::parse(spliced(3, 2)) == whole(5));
    CHECK(Json::parse(spliced(0, 2)) == whole(2));  // no comma before the first
    CHECK(Json::parse(spliced(2, 0)) == whole(2));  // nothing spliced: no stray comma
    CHECK(Json::parse(spliced(0, 0)) == whole(0));
    CHECK(spliced(1, 1) == R"({"a":[{"i":0,"l":[0]},{"i":1,"l":[1]}],"after":true})" "\n");
}

TEST_CASE("json writer: names and strings short and long, plain and escaped, each written as nlohmann would") {
    // Around the lengths and bytes where a writer might take a shortcut (no escaping).
    const std::string plain64(64, 'k'), plain65(65, 'k');
    const std::vector<std::string> texts{"",        "a",          plain64,          plain65,         "quote\"d",
                                         "back\\",  "tab\there",  "\x01" "ctl",     "caf\xC3\xA9",   "bad\xFF",
                                         std::string(63, 'x') + "\"", std::string(200, 'y')};
    JsonWriter w;
    Json expected = Json::object();
    w.begin_object();
    for (size_t i = 0; i < texts.size(); ++i) {
        std::string name = texts[i] + "#" + std::to_string(i);  // distinct names
        w.key(name).begin_array().value(texts[i]).value(int64_t{-7}).value(uint64_t{7}).value(2.0).null().end_array();
        expected[name] = Json::array({Json(texts[i]), -7, 7u, 2.0, nullptr});
    }
    w.end_object();
    CHECK(w.text() == expected.dump(-1, ' ', false, Json::error_handler_t::replace));
}

namespace {

// A random document of nested objects and arrays (integers, strings, booleans and
// nulls: nlohmann writes doubles in a format of its own), `depth` levels at most.
Json random_document(std::mt19937& random, int depth) {
    int kind = static_cast<int>(random() % (depth > 0 ? 7 : 5));
    switch (kind) {
        case 0: return nullptr;
        case 1: return random() % 2 == 0;
        case 2: return static_cast<int64_t>(random()) - (int64_t{1} << 31);
        case 3: return static_cast<uint64_t>(random()) << 32 | random();
        case 4: return std::string(random() % 4, static_cast<char>('a' + random() % 26));
        case 5: {
            Json array = Json::array();
            for (int n = static_cast<int>(random() % 4); n > 0; --n) array.push_back(random_document(random, depth - 1));
            return array;
        }
        default: {
            Json object = Json::object();
            for (int n = static_cast<int>(random() % 4); n > 0; --n)
                object["k" + std::to_string(random() % 8)] = random_document(random, depth - 1);
            return object;
        }
    }
}

// `j` written through the writer's calls, walking it as the code that builds replies does.
void write_document(JsonWriter& w, const Json& j) {
    if (j.is_object()) {
        w.begin_object();
        for (const auto& [name, member] : j.items()) {
            w.key(name);
            write_document(w, member);
        }
        w.end_object();
    } else if (j.is_array()) {
        w.begin_array();
        for (const auto& element : j) write_document(w, element);
        w.end_array();
    } else if (j.is_null()) {
        w.null();
    } else if (j.is_boolean()) {
        w.value(j.get<bool>());
    } else if (j.is_number_unsigned()) {
        w.value(j.get<uint64_t>());
    } else if (j.is_number_integer()) {
        w.value(j.get<int64_t>());
    } else {
        w.value(j.get<std::string>());
    }
}

}  // namespace

TEST_CASE("json writer: random nestings come out byte for byte as nlohmann's dump (commas, brackets, colons)") {
    std::mt19937 random(20261207);
    for (int round = 0; round < 2000; ++round) {
        Json document = random_document(random, 5);
        JsonWriter w;
        write_document(w, document);
        REQUIRE_MESSAGE(w.text() == document.dump(), "round " << round);
    }
}
