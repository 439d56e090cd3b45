// The control protocol codec: line splitting with the 64 KiB limit, decoding that never
// throws, encoding that survives invalid UTF-8, and the request field readers.
#include <doctest/doctest.h>

#include <string>

#include "control/json_skim.h"
#include "control/protocol.h"

using namespace fdsup::control;

namespace {

std::vector<std::string> drain(LineSplitter& s, std::vector<bool>* too_long = nullptr) {
    std::vector<std::string> out;
    while (auto line = s.next()) {
        out.push_back(line->text);
        if (too_long) too_long->push_back(line->too_long);
    }
    return out;
}

}  // namespace

TEST_CASE("protocol: lines split across feeds, several per feed, and a partial kept") {
    LineSplitter s(100);
    s.feed("{\"a\":1}\n{\"b\"");
    CHECK(drain(s) == std::vector<std::string>{"{\"a\":1}"});
    CHECK(s.pending() == 4);
    s.feed(":2}\n\n{\"c\":3}\n");
    CHECK(drain(s) == std::vector<std::string>{"{\"b\":2}", "", "{\"c\":3}"});
    CHECK(s.pending() == 0);
}

TEST_CASE("protocol: a line over the limit is reported once and skipped up to its newline") {
    LineSplitter s(10);
    s.feed("ok\n");
    s.feed(std::string(8, 'x'));
    s.feed(std::string(1000, 'y'));  // now over the limit, still no newline
    s.feed(std::string(5000, 'z'));
    s.feed("zzz\nnext\n");
    std::vector<bool> too_long;
    CHECK(drain(s, &too_long) == std::vector<std::string>{"ok", "", "next"});
    CHECK(too_long == std::vector<bool>{false, true, false});
    CHECK(s.pending() == 0);
}

TEST_CASE("protocol: a too-long line that arrives whole, between good ones") {
    LineSplitter s(10);
    s.feed("a\n" + std::string(11, 'x') + "\nb\n");
    std::vector<bool> too_long;
    CHECK(drain(s, &too_long) == std::vector<std::string>{"a", "", "b"});
    CHECK(too_long == std::vector<bool>{false, true, false});
    // exactly at the limit is fine
    s.feed(std::string(10, 'k') + "\n");
    CHECK(drain(s) == std::vector<std::string>{std::string(10, 'k')});
}

TEST_CASE("protocol: a megabyte without a newline holds at most the limit") {
    LineSplitter s(kMaxRequestLine);
    for (int i = 0; i < 16; ++i) {
        s.feed(std::string(64 * 1024, 'q'));
        CHECK(s.pending() <= kMaxRequestLine);
    }
    s.feed("\n{\"cmd\":\"status\"}\n");
    std::vector<bool> too_long;
    CHECK(drain(s, &too_long) == std::vector<std::string>{"", "{\"cmd\":\"status\"}"});
    CHECK(too_long == std::vector<bool>{true, false});
}

TEST_CASE("protocol: decode_line_without leaves out one top-level member, still checked") {
    auto reply = decode_line_without(
        "{\"ok\":true,\"workers\":[{\"name\":\"w\",\"workers\":1}],\"error\":\"x\",\"follow\":false,"
        "\"more\":{\"workers\":[1]}}",
        "workers");
    REQUIRE(reply);
    CHECK(*reply == Json::parse("{\"ok\":true,\"error\":\"x\",\"follow\":false,\"more\":{\"workers\":[1]}}"));
    CHECK(reply->begin().key() == "ok");
    // What it leaves out must still be valid JSON, and the rest an object.
    CHECK(decode_line_without("{\"ok\":true,\"workers\":[{\"name\":}]}", "workers").error().text() == "invalid JSON");
    CHECK(decode_line_without("{\"ok\":true,\"workers\":[1,2]", "workers").error().text() == "invalid JSON");
    CHECK(decode_line_without("[1,2]", "workers").error().text() == "a request must be a JSON object");
    CHECK(*decode_line_without("{\"ok\":true,\"workers\":null}", "workers") == Json::parse("{\"ok\":true}"));
}

TEST_CASE("protocol: skim_json accepts exactly what nlohmann's parser accepts") {
    // Differential: every text below, and every one-byte change of a reply-like line,
    // is valid for the skimmer if and only if nlohmann accepts it.
    std::vector<std::string> texts = {
        "{}", "[]", "0", "-0", "1.5e+3", "-12.25E-2", "true", "false", "null", "\"x\"", " {\"a\" : [ 1 , {} , [] ] } ",
        "01", "1.", ".5", "-", "1e", "+1", "tru", "nul", "{", "[1,]", "{\"a\":1,}", "{\"a\"}", "{1:2}", "[1 2]",
        "{\"a\":1}x", "\"\\u00e9\\ud83d\\ude00\"", "\"\\ud83d\"", "\"\\ude00\"", "\"\\ud83dx\"", "\"\\u12g4\"",
        "\"\\q\"", "\"a\tb\"", "\"\xc3\xa9\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"",
        "\"\xe2\x82\"", "\"\xf0\x9f\x98\x80\"", "\"\x80\"", "", "  ", "[[[[[]]]]]", "[[[[[]]]]", "{\"a\":{\"b\":{}}}"};
    std::string reply =
        "{\"ok\":true,\"workers\":[{\"name\":\"w\",\"instances\":[{\"pid\":12,\"usage\":{\"cpu\":0.5,"
        "\"fds\":null,\"ok\":false}}]}],\"text\":\"\xc3\xa9\\n\\u00e9\"}";
    texts.push_back(reply);
    for (size_t i = 0; i < reply.size(); ++i)
        for (char c : {'"', ',', ':', '{', '}', '[', ']', '\\', '1', 'x', ' ', '\x01', '\xc3'}) {
            std::string changed = reply;
            changed[i] = c;
            texts.push_back(changed);
            texts.push_back(reply.substr(0, i) + reply.substr(i + 1));  // and each byte left out
        }
    for (const auto& text : texts) {
        CAPTURE(text);
        CHECK(fdsup::control::skim_json(text, "workers").valid == Json::accept(text));
    }
    auto skimmed = fdsup::control::skim_json(reply, "workers");
    REQUIRE(skimmed.member);
    CHECK(reply.substr(skimmed.member->first, skimmed.member->second - skimmed.member->first).starts_with("[{\"name\""));
    CHECK(reply.substr(skimmed.member->second).starts_with(",\"text\""));
    CHECK_FALSE(fdsup::control::skim_json("{\"a\":{\"workers\":1}}", "workers").member);
    auto scalar = fdsup::control::skim_json("{\"workers\" : 5 }", "workers");
    CHECK((scalar.member == std::pair<size_t, size_t>{13, 14}));
}

TEST_CASE("protocol: decode_line accepts objects only and never throws") {
    auto ok = decode_line("{\"cmd\":\"status\",\"names\":[\"web\"]}");
    REQUIRE(ok);
    CHECK((*ok)["cmd"] == "status");
    CHECK(decode_line("not json").error().text() == "invalid JSON");
    CHECK(decode_line("{\"cmd\":").error().text() == "invalid JSON");
    CHECK(decode_line("[1,2]").error().text() == "a request must be a JSON object");
    CHECK(decode_line("\"status\"").error().text() == "a request must be a JSON object");
    CHECK(decode_line("").error().text() == "invalid JSON");
    CHECK(!decode_line(std::string("{\"a\":\"\0\"}", 9)));  // a raw NUL inside a string
    // Deep nesting within the line limit must neither crash nor throw.
    std::string deep = std::string(30000, '[') + std::string(30000, ']');
    CHECK(decode_line(deep).error().text() == "a request must be a JSON object");
}

TEST_CASE("protocol: encode_line is one line, replaces invalid UTF-8, keeps key order") {
    Json value{{"ok", true}, {"text", std::string("a\xff\xfe" "b\nc")}};
    std::string line = encode_line(value);
    CHECK(line.back() == '\n');
    CHECK(line.find('\n') == line.size() - 1);  // the embedded newline is escaped
    CHECK(line.rfind("{\"ok\":true,", 0) == 0);
    auto back = decode_line(line.substr(0, line.size() - 1));
    REQUIRE(back);
    CHECK((*back)["text"] == "a\xEF\xBF\xBD\xEF\xBF\xBD" "b\nc");  // U+FFFD twice
}

TEST_CASE("protocol: field readers say which field is wrong") {
    Json r = Json::parse(R"({"name":"web","names":["a","b"],"bad":[1],"n":3,"f":true,"s":"x","empty":[]})");
    CHECK(*string_field(r, "name") == "web");
    CHECK(string_field(r, "nope").error().text() == "missing field \"nope\"");
    CHECK(string_field(r, "n").error().text() == "field \"n\" must be a non-empty string");
    CHECK(*names_field(r, "names", true) == std::vector<std::string>{"a", "b"});
    CHECK(names_field(r, "bad", true).error().text() == "field \"bad\" must be a list of worker names");
    CHECK(names_field(r, "s", false).error().text() == "field \"s\" must be a list of worker names");
    CHECK(names_field(r, "missing", false)->empty());
    CHECK(names_field(r, "missing", true).error().text() == "missing field \"missing\"");
    CHECK(names_field(r, "empty", true).error().text() == "field \"empty\" must name at least one worker");
    CHECK(**optional_int_field(r, "n") == 3);
    CHECK(!*optional_int_field(r, "missing"));
    CHECK(optional_int_field(r, "s").error().text() == "field \"s\" must be an integer");
    CHECK(*bool_field(r, "f", false) == true);
    CHECK(*bool_field(r, "missing", true) == true);
    CHECK(bool_field(r, "n", false).error().text() == "field \"n\" must be true or false");
    CHECK(error_reply("boom") == Json{{"ok", false}, {"error", "boom"}});
}
