// The logs ring: bounded per worker by lines and bytes, recent() in order, followers
// that may unfollow themselves while being called.
#include <doctest/doctest.h>

#include "output/log_book.h"

using fdsup::LogBook;
using fdsup::LogLine;

namespace {
LogLine line(const std::string& worker, std::string text) {
    return LogLine{std::chrono::system_clock::now(), worker, 0, false, std::move(text)};
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
