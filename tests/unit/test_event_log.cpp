// The event journal: numbered in order, bounded to kCapacity (the oldest dropped),
// read after a sequence number, followers that may unfollow while being called, the
// closed list of names, and a restore that goes on numbering where it left off.
#include <doctest/doctest.h>

#include <string>

#include "events/event_log.h"

using fdsup::Event;
using fdsup::EventKind;
using fdsup::EventLog;

namespace {
Event event(EventKind kind, std::string worker = "web", int instance = 0) {
    Event e;
    e.kind = kind;
    e.worker = std::move(worker);
    e.instance = instance;
    return e;
}
}  // namespace

TEST_CASE("event log: numbered from 1 in order, read after a number") {
    EventLog log;
    CHECK(log.last_seq() == 0);
    log.add(event(EventKind::started));
    log.add(event(EventKind::ready));
    log.add(event(EventKind::reload, ""));
    CHECK(log.last_seq() == 3);
    auto all = log.after(0);
    REQUIRE(all.size() == 3);
    CHECK(all[0].seq == 1);
    CHECK(all[2].seq == 3);
    CHECK(all[0].time.time_since_epoch().count() > 0);
    auto later = log.after(2);
    REQUIRE(later.size() == 1);
    CHECK(later[0].kind == EventKind::reload);
    CHECK(log.after(3).empty());
    CHECK(log.after(99).empty());
    auto picked = log.after(0, [](const Event& e) { return e.worker == "web"; });
    CHECK(picked.size() == 2);
    CHECK(log.mentions("web"));
    CHECK_FALSE(log.mentions("db"));
}

TEST_CASE("event log: keeps the last kCapacity, the oldest dropped, numbers go on") {
    EventLog log;
    const size_t total = EventLog::kCapacity + 250;
    for (size_t i = 0; i < total; ++i) log.add(event(EventKind::exited, "w" + std::to_string(i)));
    auto kept = log.after(0);
    REQUIRE(kept.size() == EventLog::kCapacity);
    CHECK(kept.front().seq == 251);
    CHECK(kept.back().seq == total);
    CHECK_FALSE(log.mentions("w0"));
    CHECK(log.mentions("w250"));
    // After a number older than the ring: everything kept, no more.
    CHECK(log.after(10).size() == EventLog::kCapacity);
    CHECK(log.after(total - 5).size() == 5);
}

TEST_CASE("event log: followers get later events; one may unfollow itself or another inside the call") {
    EventLog log;
    log.add(event(EventKind::started));  // before anyone follows: not handed over
    std::vector<uint64_t> first_seen, second_seen;
    uint64_t second = 0;
    uint64_t first = log.follow([&](const Event& e) {
        first_seen.push_back(e.seq);
        if (e.seq == 3) {
            log.unfollow(first);   // itself
            log.unfollow(second);  // and the one after it, before it is called
        }
    });
    second = log.follow([&](const Event& e) { second_seen.push_back(e.seq); });
    CHECK(log.follower_count() == 2);
    log.add(event(EventKind::ready));
    log.add(event(EventKind::exited));
    log.add(event(EventKind::restart_scheduled));
    CHECK(first_seen == std::vector<uint64_t>{2, 3});
    CHECK(second_seen == std::vector<uint64_t>{2});
    CHECK(log.follower_count() == 0);
    CHECK(log.after(0).size() == 4);  // kept whether followed or not
}

TEST_CASE("event log: a restore keeps the numbers and goes on from them") {
    EventLog old_image;
    for (int i = 0; i < 5; ++i) old_image.add(event(EventKind::started));
    EventLog next;
    next.restore(old_image.kept(), old_image.next_seq());
    CHECK(next.last_seq() == 5);
    next.add(event(EventKind::upgrade_done, ""));
    auto all = next.after(4);
    REQUIRE(all.size() == 2);
    CHECK(all[0].seq == 5);
    CHECK(all[1].seq == 6);
    CHECK(all[1].kind == EventKind::upgrade_done);
    // A next number below what is kept (a damaged state) never numbers twice.
    EventLog damaged;
    damaged.restore(old_image.kept(), 2);
    CHECK(damaged.next_seq() == 6);
}

TEST_CASE("event names: a closed list, each name read back as its kind") {
    for (size_t i = 0; i < fdsup::kEventKinds; ++i) {
        auto kind = static_cast<EventKind>(i);
        auto back = fdsup::event_kind(fdsup::event_name(kind));
        REQUIRE(back.has_value());
        CHECK(*back == kind);
    }
    CHECK(std::string(fdsup::event_name(EventKind::rollout_step)) == "rollout_step");
    CHECK_FALSE(fdsup::event_kind("exploded").has_value());
}

TEST_CASE("event log: each event bounded: long texts cut, long lists shortened") {
    EventLog log;
    Event e = event(EventKind::start_failed);
    std::string long_text(EventLog::kMaxText + 500, 'x');
    long_text[EventLog::kMaxText - 1] = '\xc3';  // a two-byte character across the cut
    long_text[EventLog::kMaxText] = '\xa9';
    std::vector<std::string> many;
    for (int i = 0; i < 100; ++i) many.push_back("e" + std::to_string(i));
    e.fields = {{"error", long_text}, {"errors", many}, {"short", std::string("ok")}};
    log.add(e);
    auto all = log.after(0);
    const auto& kept = all.at(0).fields;
    const auto& text = std::get<std::string>(kept[0].second);
    CHECK(text.size() == EventLog::kMaxText - 1 + 3);
    CHECK(text.ends_with("x..."));
    const auto& list = std::get<std::vector<std::string>>(kept[1].second);
    REQUIRE(list.size() == EventLog::kMaxList);
    CHECK(list.front() == "e0");
    CHECK(list.back() == "... " + std::to_string(100 - (EventLog::kMaxList - 1)) + " more");
    CHECK(std::get<std::string>(kept[2].second) == "ok");
}
