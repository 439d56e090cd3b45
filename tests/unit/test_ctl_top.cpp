// fdsupctl top's table: rows from a status reply, the usage figures and their absence,
// a worker's sums, each sort, the columns in 80 and fewer, and the plain frame.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "ctl/render.h"
#include "ctl/top_table.h"

namespace ctl = fdsup::ctl;
using ctl::Json;
using ctl::TopRow;
using ctl::TopSort;

namespace {

// web: two instances with usage; api: one without "usage" (an older fdsupd), one whose
// members are null; idle: scaled to 0.
const char* kReply = R"({"ok":true,
 "supervisor":{"pid":4242,"version":"0.1.0","uptime_s":182.5,"config":"/etc/fdsup/fdsup.toml"},
 "workers":[
  {"name":"web","state":"running","instances":[
    {"index":0,"pid":4250,"state":"running","ready":true,"restarts":1,"uptime_s":65,
     "usage":{"cpu_seconds":1.25,"cpu_percent":3.5,"memory_bytes":12897484,"processes":3}},
    {"index":1,"pid":4251,"state":"running","ready":true,"restarts":4,"uptime_s":7200,
     "usage":{"cpu_seconds":9.5,"cpu_percent":40.25,"memory_bytes":1048576,"processes":1}}]},
  {"name":"api","state":"running","instances":[
    {"index":0,"pid":5000,"state":"running","ready":true,"restarts":0,"uptime_s":30},
    {"index":1,"pid":null,"state":"backoff","ready":false,"restarts":7,"uptime_s":null,
     "usage":{"cpu_seconds":null,"cpu_percent":null,"memory_bytes":null,"processes":null}}]},
  {"name":"idle","state":"stopped","instances":[]}]})";

std::vector<std::string> names(const std::vector<TopRow>& rows) {
    std::vector<std::string> shown;
    for (const auto& row : rows) shown.push_back(row.name);
    return shown;
}

const TopRow& row_named(const std::vector<TopRow>& rows, const std::string& worker, const std::string& name) {
    bool in_worker = false;
    for (const auto& row : rows) {
        if (row.worker) in_worker = row.name == worker;
        if (in_worker && row.name == name) return row;
    }
    FAIL("no row " << worker << " " << name);
    return rows.front();
}

}  // namespace

TEST_CASE("ctl top: memory and CPU as an operator reads them; anything odd is -") {
    CHECK(ctl::format_memory(Json(900)) == "900B");
    CHECK(ctl::format_memory(Json(512 * 1024)) == "512K");
    CHECK(ctl::format_memory(Json(12897484)) == "12.3M");
    CHECK(ctl::format_memory(Json(1288490189LL)) == "1.2G");
    CHECK(ctl::format_memory(Json(512LL * 1024 * 1024)) == "512M");
    CHECK(ctl::format_memory(Json(3LL << 40)) == "3.0T");
    CHECK(ctl::format_memory(Json(0)) == "0B");
    CHECK(ctl::format_memory(Json()) == "-");
    CHECK(ctl::format_memory(Json(-1)) == "-");
    CHECK(ctl::format_memory(Json("12M")) == "-");
    CHECK(ctl::format_cpu_percent(Json(3.5)) == "3.5");
    CHECK(ctl::format_cpu_percent(Json(150)) == "150.0");
    CHECK(ctl::format_cpu_percent(Json(0.04)) == "0.0");
    CHECK(ctl::format_cpu_percent(Json()) == "-");
    CHECK(ctl::format_cpu_percent(Json(true)) == "-");
}

TEST_CASE("ctl top: a worker's row, then its instances'; the worker sums them") {
    auto table = ctl::top_table(Json::parse(kReply), TopSort::name);
    CHECK(names(table.rows) == std::vector<std::string>{"api", "  [0]", "  [1]", "idle", "web", "  [0]", "  [1]"});

    const TopRow& web = table.rows[4];
    CHECK(web.worker);
    CHECK(web.pid == "");
    CHECK(web.state == "running");
    CHECK(web.cpu == "43.8");         // 3.5 + 40.25
    CHECK(web.memory == "13.3M");     // 12897484 + 1048576 bytes
    CHECK(web.processes == "4");
    CHECK(web.restarts == "5");
    CHECK(web.uptime == "2h00m");     // its oldest instance's

    const TopRow& web0 = row_named(table.rows, "web", "  [0]");
    CHECK_FALSE(web0.worker);
    CHECK(web0.pid == "4250");
    CHECK(web0.cpu == "3.5");
    CHECK(web0.memory == "12.3M");
    CHECK(web0.processes == "3");
    CHECK(web0.restarts == "1");
    CHECK(web0.uptime == "1m05s");

    // No "usage" (an older fdsupd), or null members: "-", and a worker with no figure
    // at all shows "-" rather than 0.
    const TopRow& api0 = row_named(table.rows, "api", "  [0]");
    CHECK(api0.cpu == "-");
    CHECK(api0.memory == "-");
    CHECK(api0.processes == "-");
    const TopRow& api1 = row_named(table.rows, "api", "  [1]");
    CHECK(api1.pid == "-");
    CHECK(api1.state == "backoff");
    CHECK(api1.cpu == "-");
    CHECK(api1.uptime == "-");
    const TopRow& api = table.rows[0];
    CHECK(api.cpu == "-");
    CHECK(api.memory == "-");
    CHECK(api.restarts == "7");
    CHECK(api.uptime == "30s");

    const TopRow& idle = table.rows[3];  // scaled to 0: the worker alone
    CHECK(idle.state == "stopped");
    CHECK(idle.restarts == "-");

    CHECK(table.summary == "fdsupd 0.1.0, pid 4242, up 3m02s; 3 workers, 4 instances (3 running)");
    CHECK(ctl::top_summary_line(table, std::nullopt) == table.summary + "; sort: name");
    CHECK(ctl::top_summary_line(table, 80) == table.summary + "; sort: name");
    // Narrower: the summary gives way, the sort stays.
    CHECK(ctl::top_summary_line(table, 40) == "fdsupd 0.1.0, pid 4242, up ~; sort: name");
    CHECK(ctl::top_summary_line(table, 5) == "; sort: name");
}

TEST_CASE("ctl top: each sort orders the workers and the instances within each, largest first") {
    Json reply = Json::parse(kReply);
    CHECK(names(ctl::top_table(reply, TopSort::cpu).rows) ==
          std::vector<std::string>{"web", "  [1]", "  [0]", "api", "  [0]", "  [1]", "idle"});  // unknown last
    CHECK(names(ctl::top_table(reply, TopSort::memory).rows) ==
          std::vector<std::string>{"web", "  [0]", "  [1]", "api", "  [0]", "  [1]", "idle"});
    CHECK(names(ctl::top_table(reply, TopSort::restarts).rows) ==
          std::vector<std::string>{"api", "  [1]", "  [0]", "web", "  [1]", "  [0]", "idle"});
    CHECK(names(ctl::top_table(reply, TopSort::uptime).rows) ==
          std::vector<std::string>{"web", "  [1]", "  [0]", "api", "  [0]", "  [1]", "idle"});
    CHECK(ctl::top_summary_line(ctl::top_table(reply, TopSort::uptime), 80).ends_with("; sort: uptime"));

    // Ties: by name, and instances by index.
    Json tied = Json::parse(R"({"workers":[
        {"name":"b","state":"running","instances":[{"index":1,"restarts":0},{"index":0,"restarts":0}]},
        {"name":"a","state":"running","instances":[{"index":0,"restarts":0}]}]})");
    CHECK(names(ctl::top_table(tied, TopSort::restarts).rows) ==
          std::vector<std::string>{"a", "  [0]", "b", "  [0]", "  [1]"});
}

TEST_CASE("ctl top: sort names and keys") {
    for (TopSort sort : {TopSort::name, TopSort::cpu, TopSort::memory, TopSort::restarts, TopSort::uptime}) {
        CHECK(ctl::top_sort_named(ctl::top_sort_name(sort)) == sort);
        CHECK(ctl::top_sort_for_key(ctl::top_sort_name(sort).front()) == sort);
    }
    CHECK(ctl::top_sort_for_key('C') == TopSort::cpu);
    CHECK(ctl::top_sort_for_key('M') == TopSort::memory);
    CHECK(ctl::top_sort_for_key('q') == std::nullopt);
    CHECK(ctl::top_sort_for_key(0x102) == std::nullopt);  // KEY_DOWN
    CHECK(ctl::top_sort_named("mem") == std::nullopt);
}

TEST_CASE("ctl top: a rollout's two rows for one index are told apart") {
    Json reply = Json::parse(R"({"workers":[{"name":"web","state":"running","instances":[
        {"index":0,"pid":10,"state":"running","retiring":true},
        {"index":0,"pid":11,"state":"starting","replacement":true}]}]})");
    CHECK(names(ctl::top_table(reply, TopSort::name).rows) ==
          std::vector<std::string>{"web", "  [0] old", "  [0] new"});
}

TEST_CASE("ctl top: the columns fit 80 (and fewer); a long name is cut, PROCS goes first") {
    Json reply = Json::parse(kReply);
    auto table = ctl::top_table(reply, TopSort::name);
    auto lines = ctl::top_lines(table, 80);
    REQUIRE(lines.size() == table.rows.size() + 1);
    CHECK(lines[0] == "NAME        PID  STATE       CPU%     MEM  PROCS  RESTARTS   UPTIME");
    CHECK(lines[3] == "  [1]         -  backoff        -       -      -         7        -");
    CHECK(lines[5] == "web              running     43.8   13.3M      4         5    2h00m");
    CHECK(lines[6] == "  [0]      4250  running      3.5   12.3M      3         1    1m05s");

    reply["workers"][0]["name"] = "a-worker-whose-name-is-far-too-long-for-any-terminal";
    table = ctl::top_table(reply, TopSort::name);
    for (size_t width : {80, 60}) {
        CAPTURE(width);
        for (const auto& line : ctl::top_lines(table, width)) CHECK(line.size() <= width);
    }
    CHECK(ctl::top_lines(table, 80)[1].starts_with("a-worker-whose-nam~           running"));
    CHECK(ctl::top_lines(table, 80)[0].find("PROCS") != std::string::npos);
    CHECK(ctl::top_lines(table, 60)[0].find("PROCS") == std::string::npos);
    CHECK(ctl::top_lines(table, std::nullopt)[1].starts_with("a-worker-whose-name-is-far-too-long-for-any-terminal  "));

    // UTF-8 names are cut by characters, not bytes.
    CHECK(ctl::cut_to_width("dépôt-principal", 6) == "dépôt~");
    CHECK(ctl::cut_to_width("web", 6) == "web");
}

TEST_CASE("ctl top: the plain frame; odd replies do not throw") {
    auto frame = ctl::top_frame(ctl::top_table(Json::parse(kReply), TopSort::cpu), "2026-11-23 10:00:00.123");
    CHECK(frame.starts_with("2026-11-23 10:00:00.123  fdsupd 0.1.0, pid 4242, up 3m02s; 3 workers, 4 instances "
                            "(3 running); sort: cpu\nNAME "));
    CHECK(frame.find("\nweb ") != std::string::npos);
    CHECK(frame.ends_with("\n\n"));

    // No supervisor object (an odd reply): the counts still; no workers: said so.
    auto empty = ctl::top_table(Json::parse(R"({"ok":true,"workers":[]})"), TopSort::name);
    CHECK(empty.summary == "0 workers, 0 instances (0 running)");
    CHECK(ctl::top_lines(empty, 80).back() == "no workers");
    for (const char* odd : {R"(null)", R"([1,2])", R"({"workers":5})", R"({"workers":[5,"x",null]})",
                            R"({"workers":[{"name":7,"instances":{"0":1}}]})",
                            R"({"supervisor":[],"workers":[{"instances":[{"index":"x","usage":[1],)"
                            R"("uptime_s":-5}]}]})"}) {
        CAPTURE(odd);
        auto table = ctl::top_table(Json::parse(odd), TopSort::memory);
        CHECK_FALSE(ctl::top_lines(table, 80).empty());
    }
}
