// fdsupctl's human output: the status table, durations, last exits, reload summaries,
// log lines, failures, and replies of unexpected shape.
#include <doctest/doctest.h>

#include <cstdlib>
#include <ctime>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "ctl/event_line.h"
#include "ctl/render.h"
#include "ctl/terminal_safe.h"

using fdsup::ctl::Json;
using fdsup::ctl::render_reply;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream stream(text);
    for (std::string line; std::getline(stream, line);) lines.push_back(line);
    return lines;
}

// Sets TZ for the test's lifetime: log times are printed in local time.
class TimeZone {
public:
    explicit TimeZone(const char* zone) {
        if (const char* old = std::getenv("TZ")) previous_ = old;
        setenv("TZ", zone, 1);
        tzset();
    }
    ~TimeZone() {
        if (previous_) setenv("TZ", previous_->c_str(), 1);
        else unsetenv("TZ");
        tzset();
    }

private:
    std::optional<std::string> previous_;
};

const char* kStatusReply = R"({"ok":true,
 "supervisor":{"pid":4242,"version":"0.1.0","protocol":1,"uptime_s":123.5,"config":"/etc/fdsup/fdsup.toml"},
 "sockets":[{"name":"http","listen":"tcp://127.0.0.1:0","bound":"127.0.0.1:41234","used_by":["web","api"]},
            {"name":"admin","listen":"unix:/run/a.sock","bound":"/run/a.sock","used_by":[]}],
 "workers":[{"name":"web","state":"running","instances_wanted":2,"waiting_for":[],
             "fds":{"3":"http","10":"extra","4":"admin"},
             "instances":[{"index":0,"pid":4250,"state":"running","ready":true,"restarts":0,
                           "uptime_s":12.1,"last_exit":{"code":null,"signal":null},"last_error":null,
                           "usage":{"cpu_seconds":1.5,"cpu_percent":3.456,"memory_bytes":12345678,"processes":2},
                           "health":{"checking":"liveness_probe","accepting":null,"failures":2,"failures_allowed":3,
                                     "last":{"passed":false,"detail":"GET http://127.0.0.1:9000/healthz: 503",
                                             "latency_ms":1.25,"age_s":0.5},
                                     "replaced":"pid 4200: liveness probe failed 3 times: timed out after 1s"}},
                          {"index":1,"pid":null,"state":"backoff","ready":false,"restarts":12,
                           "uptime_s":null,"last_exit":{"code":null,"signal":"KILL"},
                           "last_error":"exec /srv/app: Permission denied"}]},
            {"name":"db","state":"stopped","instances_wanted":0,"waiting_for":["cache","queue"],
             "fds":{},"instances":[]}]})";

}  // namespace

TEST_CASE("ctl render: durations") {
    using fdsup::ctl::format_duration;
    CHECK(format_duration(0) == "0ms");
    CHECK(format_duration(0.35) == "350ms");
    CHECK(format_duration(0.29) == "290ms");
    CHECK(format_duration(0.9999) == "999ms");
    CHECK(format_duration(1) == "1s");
    CHECK(format_duration(12.9) == "12s");  // truncated: never claims more uptime than there was
    CHECK(format_duration(59.99) == "59s");
    CHECK(format_duration(60) == "1m00s");
    CHECK(format_duration(123) == "2m03s");
    CHECK(format_duration(3 * 3600 + 4 * 60 + 59) == "3h04m");
    CHECK(format_duration(2 * 86400 + 3 * 3600 + 5) == "2d03h");
    CHECK(format_duration(400 * 86400) == "400d00h");
    CHECK(format_duration(-5) == "0ms");  // a clock step on the other side is not an error
    CHECK(format_duration(1e300) != "");
}

TEST_CASE("ctl render: last exit") {
    using fdsup::ctl::format_last_exit;
    CHECK(format_last_exit(Json::parse(R"({"code":0,"signal":null})")) == "exit 0");
    CHECK(format_last_exit(Json::parse(R"({"code":3,"signal":null})")) == "exit 3");
    CHECK(format_last_exit(Json::parse(R"({"code":null,"signal":"KILL"})")) == "SIGKILL");
    CHECK(format_last_exit(Json::parse(R"({"signal":"SIGTERM"})")) == "SIGTERM");
    CHECK(format_last_exit(Json::parse(R"({"signal":9})")) == "signal 9");
    CHECK(format_last_exit(Json::parse(R"({"code":null,"signal":null})")) == "-");
    CHECK(format_last_exit(Json()) == "-");
    CHECK(format_last_exit(Json::parse(R"({"code":"weird"})")) == "weird");
}

TEST_CASE("ctl render: an OOM kill") {
    CHECK(fdsup::ctl::format_last_exit(Json::parse(
              R"x({"code":null,"signal":"KILL","oom_kill":true,"text":"killed by the OOM killer (memory_max 64M)"})x")) ==
          "OOM-killed");
}

TEST_CASE("ctl render: the HEALTH column") {
    using fdsup::ctl::format_health;
    CHECK(format_health(Json()) == "-");
    CHECK(format_health(Json::parse(R"({"checking":null,"accepting":null,"failures":0,"last":null})")) == "-");
    CHECK(format_health(Json::parse(R"({"checking":"accepting","accepting":null,"last":null})")) == "checking");
    CHECK(format_health(Json::parse(R"({"checking":null,"accepting":"epoll, pid 3 fd 3","last":null})")) ==
          "accepting");
    CHECK(format_health(Json::parse(R"({"failures":0,"last":{"passed":true,"latency_ms":1.234}})")) == "ok 1.2ms");
    CHECK(format_health(Json::parse(R"({"failures":1,"failures_allowed":3,"last":{"passed":false}})")) ==
          "fail 1/3");
    CHECK(format_health(Json::parse(R"({"failures":0,"last":{"passed":false}})")) == "fail");  // a ready probe
}

TEST_CASE("ctl render: status header, instance table, notes, sockets") {
    auto rendered = render_reply("status", Json::parse(R"({"cmd":"status"})"), Json::parse(kStatusReply));
    CHECK(rendered.err.empty());
    CHECK(rendered.out ==
          "fdsupd 0.1.0, pid 4242, up 2m03s, config /etc/fdsup/fdsup.toml\n"
          "\n"
          "WORKER  INSTANCE  STATE    PID   CPU%  MEM    UPTIME  RESTARTS  LAST-EXIT  READY  HEALTH    FDS\n"
          "web     0         running  4250  3.5   11.8M  12s     0         -          yes    fail 2/3  3=http 4=admin 10=extra\n"
          "web     1         backoff  -     -     -      -       12        SIGKILL    no     -         3=http 4=admin 10=extra\n"
          "db      -         stopped  -     -     -      -       -         -          -      -         -\n"
          "web[0]: probe failed: GET http://127.0.0.1:9000/healthz: 503\n"
          "web[0]: replaced by its liveness probe: pid 4200: liveness probe failed 3 times: timed out after 1s\n"
          "web[1]: exec /srv/app: Permission denied\n"
          "db: waiting for cache, queue to be ready\n"
          "\n"
          "SOCKET  LISTEN             BOUND            USED-BY\n"
          "http    tcp://127.0.0.1:0  127.0.0.1:41234  web, api\n"
          "admin   unix:/run/a.sock   /run/a.sock      -\n");
}

TEST_CASE("ctl render: sockets taken over SCM_RIGHTS show under USED-BY and FDS") {
    auto reply = Json::parse(R"({"ok":true,
        "supervisor":{"pid":1,"version":"0.1.0","uptime_s":1,"config":"/c"},
        "sockets":[{"name":"http","listen":"tcp://127.0.0.1:80","bound":"127.0.0.1:80","used_by":["web"],
                    "used_by_scm_rights":[]},
                   {"name":"metrics","listen":"tcp://127.0.0.1:9","bound":"127.0.0.1:9","used_by":["api"],
                    "used_by_scm_rights":["web","batch"]},
                   {"name":"admin","listen":"unix:/a","bound":"/a","used_by":[],"used_by_scm_rights":["web"]}],
        "workers":[{"name":"web","state":"running","fds":{"3":"http"},"scm_rights":["metrics","admin"],
                    "waiting_for":[],"instances":[{"index":0,"pid":10,"state":"running","ready":true,
                    "restarts":0,"uptime_s":5,"last_exit":null,"last_error":null}]},
                   {"name":"batch","state":"running","fds":{},"scm_rights":["metrics"],"waiting_for":[],
                    "instances":[{"index":0,"pid":11,"state":"running","ready":true,"restarts":0,"uptime_s":5,
                    "last_exit":null,"last_error":null}]}]})");
    auto out = render_reply("status", Json::parse(R"({"cmd":"status"})"), reply).out;
    CHECK(out.find("  3=http metrics (scm) admin (scm)\n") != std::string::npos);
    CHECK(out.find("  metrics (scm)\n") != std::string::npos);  // nothing inherited: only what it fetches
    CHECK(out.find("SOCKET   LISTEN              BOUND         USED-BY\n"
                   "http     tcp://127.0.0.1:80  127.0.0.1:80  web\n"
                   "metrics  tcp://127.0.0.1:9   127.0.0.1:9   api, web (scm), batch (scm)\n"
                   "admin    unix:/a             /a            web (scm)\n") != std::string::npos);
    // An fdsupd older than protocol 2 does not say: as before.
    reply["sockets"][2].erase("used_by_scm_rights");
    reply["workers"][1].erase("scm_rights");
    out = render_reply("status", Json::parse(R"({"cmd":"status"})"), reply).out;
    CHECK(out.find("admin    unix:/a             /a            -\n") != std::string::npos);
    CHECK(out.find("batch   0         running  11   -     -    5s      0         -          yes    -       -\n") !=
          std::string::npos);
}

TEST_CASE("ctl render: a rollout in progress, and what workers said over sd_notify") {
    auto reply = Json::parse(R"({"ok":true,
        "supervisor":{"pid":1,"version":"0.1.0","uptime_s":1,"config":"/c"},
        "sockets":[],
        "workers":[{"name":"web","state":"starting","fds":{"3":"http"},"waiting_for":[],
                    "rollout":{"total":2,"replaced":0,"replacing":1},
                    "instances":[
                      {"index":0,"pid":10,"state":"running","ready":true,"restarts":0,"uptime_s":5,
                       "last_exit":null,"last_error":null,"status":"serving 3 req/s"},
                      {"index":0,"pid":11,"state":"starting","ready":false,"restarts":0,"uptime_s":0.1,
                       "last_exit":null,"last_error":null,"status":null,"replacement":true},
                      {"index":1,"pid":12,"state":"stopping","ready":false,"restarts":0,"uptime_s":5,
                       "last_exit":null,"last_error":null,"status":null,"retiring":true}]}]})");
    auto out = render_reply("status", Json::parse(R"({"cmd":"status"})"), reply).out;
    CHECK(out.find("web     0         running         10") != std::string::npos);
    CHECK(out.find("web     0         starting (new)  11") != std::string::npos);
    CHECK(out.find("web     1         stopping (old)  12") != std::string::npos);
    CHECK(out.find("web: rolling restart in progress, 0 of 2 replaced\n") != std::string::npos);
    CHECK(out.find("web[0]: status: serving 3 req/s\n") != std::string::npos);
}

TEST_CASE("ctl render: the fd store of each instance, names with their counts") {
    auto reply = Json::parse(R"({"ok":true,
        "supervisor":{"pid":1,"version":"0.1.0","uptime_s":1,"config":"/c"},
        "sockets":[],
        "workers":[{"name":"web","state":"running","fds":{"3":"http"},"waiting_for":[],"rollout":null,
                    "fd_store":{"max":8,"instances":[
                      {"index":0,"fds":3,"names":[{"name":"conn-7","fds":2},{"name":"state","fds":1}]},
                      {"index":2,"fds":1,"names":[{"name":"stored","fds":1}]}]},
                    "instances":[{"index":0,"pid":10,"state":"running","ready":true,"restarts":0,"uptime_s":5,
                                  "last_exit":null,"last_error":null,"status":null}]}]})");
    auto out = render_reply("status", Json::parse(R"({"cmd":"status"})"), reply).out;
    CHECK(out.find("web[0]: fd store: 3 of 8 fds: conn-7 (2), state (1)\n") != std::string::npos);
    CHECK(out.find("web[2]: fd store: 1 of 8 fds: stored (1)\n") != std::string::npos);
}

TEST_CASE("ctl render: status columns follow their widest cell") {
    auto reply = Json::parse(kStatusReply);
    reply["workers"][0]["name"] = "a-much-longer-worker-name";
    reply["workers"][0]["instances"][0]["pid"] = 1234567;
    auto lines = lines_of(fdsup::ctl::render_status(reply));
    REQUIRE(lines.size() > 4);
    const std::string& header = lines[2];
    size_t state_at = header.find("STATE");
    size_t uptime_at = header.find("UPTIME");
    CHECK(header.find("INSTANCE") == std::string("a-much-longer-worker-name  ").size());
    for (size_t row = 3; row <= 5; ++row) {
        CAPTURE(lines[row]);
        CHECK(lines[row][state_at - 1] == ' ');
        CHECK(lines[row][state_at] != ' ');
        CHECK(lines[row][uptime_at] != ' ');
    }
    CHECK(lines[3].find("1234567  3.5   11.8M  12s") != std::string::npos);
}

TEST_CASE("ctl render: status of an empty supervisor and of odd field types") {
    auto empty = fdsup::ctl::render_status(Json::parse(R"({"ok":true,"workers":[],"sockets":[]})"));
    CHECK(empty == "fdsupd -, pid -, up -, config -\n\nno workers\n");

    // A newer or broken server: wrong types everywhere. Printed as JSON, never thrown.
    auto odd = Json::parse(R"({"ok":true,
        "supervisor":{"pid":"4242","version":1.5,"uptime_s":"long","config":null},
        "sockets":[{"name":7,"listen":["a"],"bound":null,"used_by":"web"}, 3],
        "workers":[{"name":"web","state":{"x":1},"fds":[3,4],"waiting_for":"db",
                    "instances":[{"index":"zero","pid":12.5,"ready":"maybe","restarts":null,
                                  "last_exit":"exit?","uptime_s":[1],"last_error":{"why":"?"}}, 42]},
                   "not an object"]})");
    std::string out;
    REQUIRE_NOTHROW(out = render_reply("status", Json::parse(R"({"cmd":"status"})"), odd).out);
    CHECK(out.starts_with("fdsupd 1.5, pid 4242, up long, config -\n"));
    CHECK(out.find("\nweb     zero      -      12.5  -     -    [1]     -         exit?      maybe  -       [3,4]\n"
                   "web     -         -      -     -     -    -       -         -          -      -       [3,4]\n"  // the 42
                   "-       -         -      -     -     -    -       -         -          -      -       -\n")  // "not an object"
          != std::string::npos);
    CHECK(out.find("web: waiting for db to be ready") != std::string::npos);
    CHECK(out.find("web[zero]: {\"why\":\"?\"}") != std::string::npos);
    CHECK(out.find("\n7       [\"a\"]   -      web\n") != std::string::npos);

    REQUIRE_NOTHROW(render_reply("status", Json::parse(R"({"cmd":"status"})"),
                                 Json::parse(R"({"ok":true,"workers":{"web":1},"sockets":"none","supervisor":[]})")));
}

TEST_CASE("ctl render: start, stop, restart, scale print each instance's message") {
    auto reply = Json::parse(R"({"ok":true,"instances":[
        {"worker":"web","index":0,"state":"running","pid":1250,"previous_pid":1234,"message":"web[0]: started pid 1250"},
        {"worker":"web","index":1,"state":"stopped","pid":null}]})");
    for (const char* verb : {"start", "stop", "restart", "scale"}) {
        CAPTURE(verb);
        auto rendered = render_reply(verb, Json::object(), reply);
        CHECK(rendered.out == "web[0]: started pid 1250\nweb[1]: stopped\n");
        CHECK(rendered.err.empty());
    }
    // A failed rollout still shows what was done before the failure, then the error.
    auto failed = render_reply("restart", Json::object(), Json::parse(R"({"ok":false,
        "error":"web[1]: not ready within 60s; rollout stopped, old instances keep serving",
        "instances":[{"message":"web[0]: replaced pid 1234 with pid 1250"}]})"));
    CHECK(failed.out == "web[0]: replaced pid 1234 with pid 1250\n");
    CHECK(failed.err == "fdsupctl: web[1]: not ready within 60s; rollout stopped, old instances keep serving\n");
    CHECK_FALSE(fdsup::ctl::reply_ok(Json::parse(R"({"ok":false})")));
    CHECK_FALSE(fdsup::ctl::reply_ok(Json::parse(R"({"ok":"yes"})")));
    CHECK(fdsup::ctl::reply_ok(Json::parse(R"({"ok":true})")));
}

TEST_CASE("ctl render: signal") {
    auto request = Json::parse(R"({"cmd":"signal","name":"web"})");
    CHECK(render_reply("signal", request, Json::parse(R"({"ok":true,"signal":"HUP","pids":[123,124]})")).out ==
          "sent SIGHUP to web: pids 123, 124\n");
    CHECK(render_reply("signal", request, Json::parse(R"({"ok":true,"signal":"HUP","pids":[]})")).out ==
          "web: no running instance to signal\n");
    CHECK(render_reply("signal", Json::parse(R"({"cmd":"signal","name":"web","signal":9})"),
                       Json::parse(R"({"ok":true,"pids":[5]})")).out == "sent signal 9 to web: pids 5\n");
}

TEST_CASE("ctl render: reopen-logs counts the files, and names each that failed on stderr") {
    auto request = Json::parse(R"({"cmd":"reopen-logs"})");
    auto done = render_reply("reopen-logs", request,
                             Json::parse(R"({"ok":true,"reopened":["/var/log/a.log","/var/log/b.log"],"failed":[]})"));
    CHECK(done.out == "2 log files reopened\n");
    CHECK(done.err.empty());
    CHECK(render_reply("reopen-logs", request, Json::parse(R"({"ok":true,"reopened":["/a"],"failed":[]})")).out ==
          "1 log file reopened\n");
    auto failed = render_reply("reopen-logs", request, Json::parse(R"({"ok":false,"error":"1 of 2 ...",
        "reopened":["/a"],"failed":["open /b: Permission denied"]})"));
    CHECK(failed.out == "1 log file reopened\n");
    CHECK(failed.err == "fdsupctl: not reopened: open /b: Permission denied\n");
}

TEST_CASE("ctl render: reload summary, socket changes, warnings and errors") {
    auto full = render_reply("reload", Json::object(), Json::parse(R"({"ok":true,"config":"/etc/fdsup.toml",
        "workers":{"added":["api"],"removed":["old"],"changed":["web"],"scaled":["db"],"unchanged":["x","y"]},
        "sockets":{"added":["a"],"removed":["b"],"replaced":["c"]},
        "warnings":["socket b is closed once web stops using it"]})"));
    CHECK(full.out ==
          "reloaded /etc/fdsup.toml: added api; removed old; changed web; scaled db; unchanged x, y\n"
          "sockets: added a; removed b; replaced c\n");
    CHECK(full.err == "warning: socket b is closed once web stops using it\n");

    auto some = render_reply("reload", Json::object(), Json::parse(R"({"ok":true,"config":"/c.toml",
        "workers":{"added":[],"removed":[],"changed":["web"],"scaled":[],"unchanged":[]},
        "sockets":{"added":[],"removed":[],"replaced":[]},"warnings":[]})"));
    CHECK(some.out == "reloaded /c.toml: changed web\n");
    CHECK(some.err.empty());

    auto nothing = render_reply("reload", Json::object(), Json::parse(R"({"ok":true,"config":"/c.toml",
        "workers":{"added":[],"removed":[],"changed":[],"scaled":[],"unchanged":[]},"sockets":{}})"));
    CHECK(nothing.out == "reloaded /c.toml: no changes\n");

    auto invalid = render_reply("reload", Json::object(), Json::parse(R"({"ok":false,
        "error":"invalid configuration, nothing changed",
        "errors":["/c.toml:3:1: unknown key \"x\"","/c.toml:9:11: bad duration \"10x\""]})"));
    CHECK(invalid.out.empty());
    CHECK(invalid.err ==
          "fdsupctl: invalid configuration, nothing changed\n"
          "/c.toml:3:1: unknown key \"x\"\n"
          "/c.toml:9:11: bad duration \"10x\"\n");
}

TEST_CASE("ctl render: an event per line, its own fields as key=value, nulls left out") {
    TimeZone utc("UTC0");
    auto exited = Json::parse(R"({"seq":7,"time":1763900000.123,"worker":"web","instance":0,"pid":4250,
        "event":"exited","status":null,"signal":9,"reason":"crash","ran":1.5})");
    CHECK(fdsup::ctl::render_event(exited) ==
          "2025-11-23 12:13:20.123 web[0] pid 4250 exited: signal=9 reason=crash ran=1.5\n");
    auto reload = Json::parse(R"({"seq":8,"time":1763900001.0,"worker":null,"instance":null,"pid":null,
        "event":"reload","ok":true,"added":["side","more"],"removed":[]})");
    CHECK(fdsup::ctl::render_event(reload) == "2025-11-23 12:13:21.000 fdsupd reload: ok=true added=side,more removed=-\n");
    auto rollout = Json::parse(R"({"seq":9,"time":1763900002.0,"worker":"web","instance":null,"pid":null,
        "event":"rollout_finished","replaced":2,"total":2})");
    CHECK(fdsup::ctl::render_events(Json{{"ok", true}, {"events", Json::array({rollout})}}) ==
          "2025-11-23 12:13:22.000 web rollout_finished: replaced=2 total=2\n");
    // What a worker named itself cannot move the terminal.
    auto hostile = Json::parse(R"({"time":1763900003.0,"worker":"w\u001b[2J","instance":0,"pid":1,"event":"started"})");
    CHECK(fdsup::ctl::render_event(hostile).find('\x1b') == std::string::npos);
}

TEST_CASE("ctl render: log lines in local time with milliseconds") {
    TimeZone utc("UTC0");
    auto stdout_line = Json::parse(
        R"({"time":1763900000.123,"worker":"web","instance":0,"stream":"stdout","text":"listening on fd 3"})");
    CHECK(fdsup::ctl::render_log_line(stdout_line) == "2025-11-23 12:13:20.123 web[0]: listening on fd 3\n");
    auto stderr_line = Json::parse(
        R"({"time":1763900000.9996,"worker":"web","instance":2,"stream":"stderr","text":"oops"})");
    CHECK(fdsup::ctl::render_log_line(stderr_line) == "2025-11-23 12:13:21.000 web[2] stderr: oops\n");

    auto reply = Json::parse(R"({"ok":true,"follow":false,"lines":[
        {"time":1763900000,"worker":"web","instance":0,"stream":"stdout","text":""},
        {"time":"later","worker":"web","stream":"stdout","text":"no instance"}]})");
    CHECK(render_reply("logs", Json::object(), reply).out ==
          "2025-11-23 12:13:20.000 web[0]: \n"
          "later web: no instance\n");

    TimeZone tokyo("JST-9");  // POSIX form: UTC+9, needs no tzdata
    CHECK(fdsup::ctl::format_log_time(1763900000.5) == "2025-11-23 21:13:20.500");
}

TEST_CASE("ctl render: a worker's output cannot drive the operator's terminal") {
    TimeZone utc("UTC0");
    // ESC [ 2 J (clear screen), a bell, a carriage return that would overwrite the
    // line, DEL, and CSI as a C1 control in UTF-8; tabs and other UTF-8 stay.
    Json line = {{"time", 1763900000}, {"worker", "web"}, {"instance", 0}, {"stream", "stdout"},
                 {"text", "a\x1b[2Jb\a\rc\x7f\xc2\x9b" "31md\tcaf\xc3\xa9"}};
    CHECK(fdsup::ctl::render_log_line(line) ==
          "2025-11-23 12:13:20.000 web[0]: a\\x1b[2Jb\\x07\\x0dc\\x7f\\u009b31md\tcaf\xc3\xa9\n");
    CHECK(fdsup::ctl::terminal_safe("plain text") == "plain text");
    CHECK(fdsup::ctl::terminal_safe("\xc2") == "\xc2");  // a lone lead byte is not a C1 control
    CHECK(fdsup::ctl::terminal_safe("two\nlines") == "two\nlines");  // fdsupd's own texts keep theirs
    // Not only strings: a list dumped as JSON keeps C1 raw (JSON escapes only C0).
    CHECK(fdsup::ctl::printable(Json::array({"\xc2\x9b" "2J"})) == "[\"\\u009b2J\"]");
}

TEST_CASE("ctl --json: DEL and C1 controls escaped, the same JSON to a parser") {
    std::string raw = Json({{"status", "a\x7f" "b\xc2\x9b" "2J caf\xc3\xa9 \xc2\xa0"}}).dump();
    REQUIRE(raw.find('\x7f') != std::string::npos);  // nlohmann, like fdsupd's writer, leaves them raw
    std::string safe = fdsup::ctl::json_terminal_safe(raw);
    CHECK(safe == "{\"status\":\"a\\u007fb\\u009b2J caf\xc3\xa9 \xc2\xa0\"}");  // U+00A0 is no control
    CHECK(Json::parse(safe) == Json::parse(raw));
    CHECK(fdsup::ctl::json_terminal_safe("\xc2") == "\xc2");
    // The taking form: the same text, whether there is anything to escape or not.
    CHECK(fdsup::ctl::json_terminal_safe_owned(raw) == safe);
    CHECK(fdsup::ctl::json_terminal_safe_owned(safe) == safe);
}

TEST_CASE("ctl render: version, shutdown, failures without a message") {
    CHECK(fdsup::ctl::client_version_line() == "fdsupctl 0.1.0 (protocol 3)");
    CHECK(render_reply("version", Json::object(),
                       Json::parse(R"({"ok":true,"version":"0.1.0","protocol":1,"state_format":1,"pid":77})")).out ==
          "fdsupd 0.1.0 (protocol 1, state format 1, pid 77)\n");
    CHECK(render_reply("shutdown", Json::object(), Json::parse(R"({"ok":true,"message":"all workers stopped"})")).out ==
          "all workers stopped\n");
    auto refused = render_reply("status", Json::object(), Json::parse(R"({"ok":false,"error":"unknown worker \"wbe\""})"));
    CHECK(refused.out.empty());
    CHECK(refused.err == "fdsupctl: unknown worker \"wbe\"\n");
    CHECK(render_reply("stop", Json::object(), Json::parse(R"({"ok":false})")).err ==
          "fdsupctl: fdsupd reported a failure without saying why\n");
    CHECK(fdsup::ctl::render_progress(Json::parse(R"({"progress":"web[0]: pid 1 exited"})")) ==
          "  web[0]: pid 1 exited\n");
}
