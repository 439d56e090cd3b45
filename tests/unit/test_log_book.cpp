// The logs ring: bounded per worker by lines and bytes, recent() in order, followers
// that may unfollow themselves while being called.
#include <doctest/doctest.h>

#include "output/log_book.h"

using fdsup::LogBook;
using fdsup::LogLine;

namespace {
LogLine line(const std::string& worker, std::string text) {
    return LogLine{std::chrono::system_clock::now(), worker, 0, false, std::move(text), 0};
}
}  // namespace

TEST_CASE("log book: recent lines per worker, oldest first, bounded by count") {
    LogBook book;
    for (int i = 0; i < 5; ++i) book.add(line("web", "w" + std::to_string(i)));
    book.add(line("db", "d0"));
    auto recent = book.recent("web", 3);
    REQUIRE(recent.size() == 3);
    CHECK(recent[0].text == "w2");
    CHECK(recent[2].text == "w4");
    CHECK(book.recent("web", 100).size() == 5);
    CHECK(book.recent("db", 100).size() == 1);
    CHECK(book.recent("nobody", 10).empty());
    book.forget("web");
    CHECK(book.recent("web", 10).empty());
}

TEST_CASE("log book: the ring drops the oldest lines past kMaxLines and kMaxBytes") {
    LogBook book;
    for (size_t i = 0; i < LogBook::kMaxLines + 10; ++i) book.add(line("web", std::to_string(i)));
    auto all = book.recent("web", 1000000);
    CHECK(all.size() == LogBook::kMaxLines);
    CHECK(all.front().text == "10");

    std::string big(16 * 1024, 'x');
    for (int i = 0; i < 100; ++i) book.add(line("big", big));
    size_t bytes = 0;
    for (const auto& l : book.recent("big", 1000000)) bytes += l.text.size();
    CHECK(bytes <= LogBook::kMaxBytes);
    CHECK(bytes > LogBook::kMaxBytes - big.size() - 1);
}

TEST_CASE("log book: followers see their worker's lines; unfollow from inside the call is safe") {
    LogBook book;
    std::vector<std::string> seen_a, seen_b;
    uint64_t a = 0;
    a = book.follow("web", [&](const LogLine& l) {
        seen_a.push_back(l.text);
        if (l.text == "stop") book.unfollow(a);
    });
    uint64_t b = book.follow("web", [&](const LogLine& l) { seen_b.push_back(l.text); });
    book.follow("db", [&](const LogLine&) { FAIL("a db follower saw a web line"); });
    book.add(line("web", "one"));
    book.add(line("web", "stop"));
    book.add(line("web", "after"));
    CHECK(seen_a == std::vector<std::string>{"one", "stop"});
    CHECK(seen_b == std::vector<std::string>{"one", "stop", "after"});
    book.unfollow(b);
    book.add(line("web", "later"));
    CHECK(seen_b.size() == 3);
}

namespace {
LogLine line_of(int instance, bool from_stderr, std::string text, std::chrono::system_clock::time_point time) {
    return LogLine{time, "web", instance, from_stderr, std::move(text), 0};
}
}  // namespace

TEST_CASE("log book: lines are numbered in order over all workers") {
    LogBook book;
    CHECK(book.next_seq() == 1);
    book.add(line("web", "a"));
    book.add(line("db", "b"));
    book.add(line("web", "c"));
    auto web = book.recent("web", 10);
    REQUIRE(web.size() == 2);
    CHECK(web[0].seq == 1);
    CHECK(web[1].seq == 3);
    CHECK(book.next_seq() == 4);
}

TEST_CASE("log book: filters by instance, by time and by seq; -n counts what matches") {
    using namespace std::chrono;
    LogBook book;
    auto t0 = system_clock::time_point(seconds(1000));
    for (int i = 0; i < 6; ++i) book.add(line_of(i % 2, i == 5, "l" + std::to_string(i), t0 + seconds(i)));
    // instance 1: l1, l3, l5
    fdsup::LogFilter one;
    one.instance = 1;
    auto ones = book.recent("web", 10, one);
    REQUIRE(ones.size() == 3);
    CHECK(ones[0].text == "l1");
    CHECK(ones[2].text == "l5");
    CHECK(ones[2].from_stderr);
    // the last 2 of them, not the last 2 lines filtered
    auto last_two = book.recent("web", 2, one);
    REQUIRE(last_two.size() == 2);
    CHECK(last_two[0].text == "l3");
    CHECK(last_two[1].text == "l5");
    // an index no instance has: nothing, not an error
    fdsup::LogFilter none;
    none.instance = 7;
    CHECK(book.recent("web", 10, none).empty());
    // since: read at or after
    fdsup::LogFilter since;
    since.since = t0 + seconds(3);
    auto late = book.recent("web", 10, since);
    REQUIRE(late.size() == 3);
    CHECK(late[0].text == "l3");
    // both, with a count
    since.instance = 0;
    auto both = book.recent("web", 10, since);
    REQUIRE(both.size() == 1);
    CHECK(both[0].text == "l4");
    // after: seq above (a resumed follower)
    fdsup::LogFilter after;
    after.after = 4;
    auto rest = book.recent("web", 10, after);
    REQUIRE(rest.size() == 2);
    CHECK(rest[0].text == "l4");
    CHECK(book.recent("web", 0, one).empty());
}

TEST_CASE("log book: restore keeps numbers and times; new lines number on") {
    using namespace std::chrono;
    LogBook book;
    auto t = system_clock::time_point(microseconds(1763900000123456));
    std::vector<LogLine> carried{LogLine{t, "web", 1, true, "old", 41}, LogLine{t, "db", 0, false, "older", 40}};
    book.restore(std::move(carried), 42);
    auto web = book.recent("web", 10);
    REQUIRE(web.size() == 1);
    CHECK(web[0].seq == 41);
    CHECK(web[0].time == t);
    CHECK(web[0].instance == 1);
    CHECK(web[0].from_stderr);
    book.add(line("web", "new"));
    web = book.recent("web", 10);
    REQUIRE(web.size() == 2);
    CHECK(web[1].seq == 42);
    // a next_seq below what the lines say is not trusted
    LogBook other;
    other.restore({LogLine{t, "web", 0, false, "x", 9}}, 3);
    CHECK(other.next_seq() == 10);
}
