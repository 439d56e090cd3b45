// The config loader on invalid configs: every error, each at its exact FILE:LINE:COL,
// in file order, and no config.
#include <doctest/doctest.h>

#include <sys/resource.h>

#include <string>
#include <vector>

#include "config/loader.h"
#include "config_test_support.h"

using namespace std::chrono_literals;

// ---------------------------------------------------------------------------------
// Errors: where and what

TEST_CASE("errors: ConfigError::text is FILE:LINE:COL: message, or FILE: message") {
    CHECK(ConfigError{"a.toml", 3, 7, "boom"}.text() == "a.toml:3:7: boom");
    CHECK(ConfigError{"a.toml", 0, 0, "cannot read: x"}.text() == "a.toml: cannot read: x");
}

TEST_CASE("errors: a syntax error is one error at its position, and no config") {
    auto r = load(R"(
[workers.web]
command = ["/bin/x",
instances = 2
)");
    REQUIRE(r.errors.size() == 1);
    CHECK(!r.config);
    CHECK(r.errors[0].file == "t.toml");
    // toml++ stops at `instances`, which cannot start a value ("inf"?).
    CHECK(r.errors[0].line == 3);
    CHECK(r.errors[0].column == 3);
    CHECK(!r.errors[0].message.empty());

    auto dup = load("[workers.web]\ncommand = [\"a\"]\ncommand = [\"b\"]\n");
    REQUIRE(dup.errors.size() == 1);
    CHECK(dup.errors[0].line == 3);
}

TEST_CASE("errors: every mistake is reported, in file order, and the config is empty") {
    auto r = load(R"(
[supervisor]
log_level = "loud"
[sockets.http]
listen = "tcp://127.0.0.1:8080"
[workers.web]
command = ["/bin/app"]
instances = "4"
backoff = "10x"
fds = { 3 = "htp" }
)");
    CHECK(!r.config);
    std::vector<std::string> texts;
    for (const auto& e : r.errors) texts.push_back(e.text());
    CHECK(texts == std::vector<std::string>{
                       "t.toml:2:13: supervisor.log_level: invalid value \"loud\" (expected "
                       "trace, debug, info, warn or error)",
                       "t.toml:7:13: workers.web.instances: expected an integer, got a string",
                       "t.toml:8:11: workers.web.backoff: invalid duration \"10x\" (use e.g. "
                       "\"250ms\", \"10s\", \"5m\", \"1h\"; at most 876000h)",
                       "t.toml:9:13: workers.web.fds.3: unknown socket \"htp\" (did you mean "
                       "\"http\"?)",
                   });
}

TEST_CASE("errors: unknown keys at every level, at the key") {
    auto errors = errors_of(R"(
[supervisor]
log_levl = "info"
[sockets.http]
listen = "tcp://127.0.0.1:1"
bakclog = 5
[workers.web]
comand = ["/bin/x"]
[wokers.db]
)");
    CHECK(errors == std::vector<std::string>{
                        "t.toml:2:1: unknown key \"log_levl\" in [supervisor] (did you mean "
                        "\"log_level\"?)",
                        "t.toml:5:1: unknown key \"bakclog\" in [sockets.http] (did you mean "
                        "\"backlog\"?)",
                        "t.toml:6:1: workers.web: missing required key \"command\"",
                        "t.toml:7:1: unknown key \"comand\" in [workers.web] (did you mean "
                        "\"command\"?)",
                        "t.toml:8:2: unknown key \"wokers\" (the tables are [supervisor], "
                        "[sockets.NAME] and [workers.NAME]) (did you mean \"workers\"?)",
                    });
    // No suggestion when nothing is close.
    CHECK(one_error("zzz = 1") ==
          "t.toml:1:1: unknown key \"zzz\" (the tables are [supervisor], [sockets.NAME] and "
          "[workers.NAME])");
}

TEST_CASE("errors: missing required keys point at the table header") {
    auto errors = errors_of(R"(
[sockets.http]
backlog = 5

[workers.web]
instances = 1
)");
    CHECK(errors == std::vector<std::string>{
                        "t.toml:1:1: sockets.http: missing required key \"listen\"",
                        "t.toml:4:1: workers.web: missing required key \"command\"",
                    });
}

TEST_CASE("errors: wrong types name what was expected and what was found") {
    auto errors = errors_of(R"(
supervisor = 5
[sockets.http]
listen = 8080
backlog = "big"
nodelay = "yes"
[workers.web]
command = "/bin/app --serve"
instances = 1.5
env = { A = 1 }
clear_env = 1
success_exit_codes = [0, "1"]
after = "db"
user = true
[workers.db]
command = ["/bin/db", 7]
)");
    CHECK(errors == std::vector<std::string>{
                        "t.toml:1:14: supervisor: expected a table, got an integer",
                        "t.toml:3:10: sockets.http.listen: expected a string, got an integer",
                        "t.toml:4:11: sockets.http.backlog: expected an integer, got a string",
                        "t.toml:5:11: sockets.http.nodelay: expected a boolean, got a string",
                        "t.toml:7:11: workers.web.command: expected an array, got a string",
                        "t.toml:8:13: workers.web.instances: expected an integer, got a float",
                        "t.toml:9:13: workers.web.env.A: expected a string, got an integer",
                        "t.toml:10:13: workers.web.clear_env: expected a boolean, got an integer",
                        "t.toml:11:26: workers.web.success_exit_codes[1]: expected an integer, "
                        "got a string",
                        "t.toml:12:9: workers.web.after: expected an array, got a string",
                        "t.toml:13:8: workers.web.user: expected a name or a numeric id, got a "
                        "boolean",
                        "t.toml:15:23: workers.db.command[1]: expected a string, got an integer",
                    });
}

TEST_CASE("errors: sockets and workers must be tables of tables") {
    CHECK(one_error("sockets = 1") == "t.toml:1:11: sockets: expected a table, got an integer");
    CHECK(one_error("workers = []") == "t.toml:1:11: workers: expected a table, got an array");
    CHECK(one_error("[workers]\nweb = \"x\"") ==
          "t.toml:2:7: workers.web: expected a table, got a string");
}

TEST_CASE("errors: bad durations") {
    auto errors = errors_of(R"(
[supervisor]
shutdown_timeout = 30
[workers.web]
command = ["/bin/x"]
backoff = "1.5s"
healthy_after = "10 s"
stop_timeout = ""
watchdog = "-1s"
)");
    CHECK(errors == std::vector<std::string>{
                        "t.toml:2:20: supervisor.shutdown_timeout: expected a duration string "
                        "like \"10s\", got an integer",
                        "t.toml:5:11: workers.web.backoff: invalid duration \"1.5s\" (use e.g. "
                        "\"250ms\", \"10s\", \"5m\", \"1h\"; at most 876000h)",
                        "t.toml:6:17: workers.web.healthy_after: invalid duration \"10 s\" (use "
                        "e.g. \"250ms\", \"10s\", \"5m\", \"1h\"; at most 876000h)",
                        "t.toml:7:16: workers.web.stop_timeout: invalid duration \"\" (use e.g. "
                        "\"250ms\", \"10s\", \"5m\", \"1h\"; at most 876000h)",
                        "t.toml:8:12: workers.web.watchdog: invalid duration \"-1s\" (use e.g. "
                        "\"250ms\", \"10s\", \"5m\", \"1h\"; at most 876000h)",
                    });
}

TEST_CASE("errors: duration relations: backoff_max >= backoff, ready_timeout > 0") {
    CHECK(one_error(R"(
[workers.web]
command = ["/bin/x"]
backoff = "10s"
backoff_max = "5s"
)") == "t.toml:4:15: workers.web.backoff_max: 5s is less than backoff (10s)");
    // Without backoff_max the default cap applies; the error goes where the fix is.
    CHECK(one_error(R"(
[workers.web]
command = ["/bin/x"]
backoff = "1m"
)") == "t.toml:3:11: workers.web.backoff: 1m is more than backoff_max (30s by default); set "
       "backoff_max too");
    CHECK(one_error(R"(
[workers.web]
command = ["/bin/x"]
ready_timeout = "0ms"
)") == "t.toml:3:17: workers.web.ready_timeout: must be greater than 0");
}

TEST_CASE("errors: bad modes") {
    auto errors = errors_of(R"(
[supervisor]
control_mode = 600
[sockets.u]
listen = "unix:/run/u.sock"
mode = "0800"
[workers.web]
command = ["/bin/x"]
umask = "1022"
)");
    CHECK(errors == std::vector<std::string>{
                        "t.toml:2:16: supervisor.control_mode: expected an octal string like "
                        "\"0600\", got an integer",
                        "t.toml:5:8: sockets.u.mode: invalid mode \"0800\" (use octal digits, "
                        "e.g. \"0660\")",
                        "t.toml:8:9: workers.web.umask: a umask has at most the permission bits "
                        "(0777)",
                    });
}

TEST_CASE("errors: bad signals") {
    auto errors = errors_of(R"(
[workers.web]
command = ["/bin/x"]
stop_signal = "TERMX"
reload_signal = "hup"
[workers.db]
command = ["/bin/x"]
stop_signal = 99
reload_signal = ["HUP"]
)");
    CHECK(errors == std::vector<std::string>{
                        "t.toml:3:15: workers.web.stop_signal: unknown signal \"TERMX\"",
                        "t.toml:4:17: workers.web.reload_signal: unknown signal \"hup\"",
                        "t.toml:7:15: workers.db.stop_signal: unknown signal 99",
                        "t.toml:8:17: workers.db.reload_signal: expected a signal name like "
                        "\"TERM\", got an array",
                    });
}

TEST_CASE("errors: invalid choices list what is allowed") {
    auto errors = errors_of(R"(
[workers.web]
command = ["/bin/x"]
restart = "sometimes"
ready = "ready"
kill_mode = "all"
restart_strategy = "blue-green"
notify_access = "none"
stdout = "syslog"
stderr = "file:logs/err.log"
)");
    CHECK(errors == std::vector<std::string>{
                        "t.toml:3:11: workers.web.restart: invalid value \"sometimes\" (expected "
                        "always, on-failure or never)",
                        "t.toml:4:9: workers.web.ready: invalid value \"ready\" (expected exec, "
                        "notify, delay, accepting or probe)",
                        "t.toml:5:13: workers.web.kill_mode: invalid value \"all\" (expected "
                        "process, group or cgroup)",
                        "t.toml:6:20: workers.web.restart_strategy: invalid value \"blue-green\" "
                        "(expected rolling or stop-start)",
                        "t.toml:7:17: workers.web.notify_access: invalid value \"none\" (expected "
                        "main or all)",
                        "t.toml:8:10: workers.web.stdout: invalid value \"syslog\" (expected log, "
                        "inherit, null, journal, \"file:/path\" or \"rotate:/path\")",
                        "t.toml:9:10: workers.web.stderr: \"file:logs/err.log\": the file must be "
                        "an absolute path",
                    });
}

TEST_CASE("errors: integer ranges") {
    auto errors = errors_of(R"(
[sockets.http]
listen = "tcp://127.0.0.1:1"
backlog = 0
receive_buffer = -1
[workers.web]
command = ["/bin/x"]
instances = 100001
success_exit_codes = [0, 256]
start_limit_burst = 0
max_surge = 0
fd_store_max = -1
)");
    CHECK(errors == std::vector<std::string>{
                        "t.toml:3:11: sockets.http.backlog: must be at least 1, got 0",
                        "t.toml:4:18: sockets.http.receive_buffer: must be at least 0, got -1",
                        "t.toml:7:13: workers.web.instances: must be between 0 and 100000, got "
                        "100001",
                        "t.toml:8:26: workers.web.success_exit_codes[1]: must be between 0 and "
                        "255, got 256",
                        "t.toml:9:21: workers.web.start_limit_burst: must be at least 1, got 0",
                        "t.toml:10:13: workers.web.max_surge: must be at least 1, got 0",
                        "t.toml:11:16: workers.web.fd_store_max: must be between 0 and 4096, got -1",
                    });
    CHECK(valid("[workers.w]\ncommand = [\"/x\"]\ninstances = 0").workers[0].instances == 0);
}

TEST_CASE("fd_store_max: stored fds follow the sockets, so those must be 3, 4, ... without a gap") {
    auto config = valid(R"(
[sockets.http]
listen = "tcp://127.0.0.1:1"
[sockets.admin]
listen = "tcp://127.0.0.1:2"
[workers.web]
command = ["/bin/x"]
fds = { 0 = "admin", 3 = "http" }
fd_store_max = 16
)");
    CHECK(config.workers[0].fd_store_max == 16);
    CHECK(one_error(R"(
[sockets.http]
listen = "tcp://127.0.0.1:1"
[workers.web]
command = ["/bin/x"]
fds = { 3 = "http", 5 = "http" }
fd_store_max = 1
)") == "t.toml:6:16: workers.web.fd_store_max: an fd store needs the worker's fds at 3, 4, ... without a gap "
          "(stored fds follow them in LISTEN_FDS); fd 5 leaves one");
    CHECK(one_error("[workers.web]\ncommand = [\"/x\"]\nfd_store_max = 4097") ==
          "t.toml:3:16: workers.web.fd_store_max: must be between 0 and 4096, got 4097");
}

TEST_CASE("errors: command must name a program") {
    CHECK(one_error("[workers.web]\ncommand = []") ==
          "t.toml:2:11: workers.web.command: must not be empty (it names the program to run)");
    CHECK(one_error("[workers.web]\ncommand = [\"\", \"x\"]") ==
          "t.toml:2:12: workers.web.command[0]: must not be empty");
    // Later arguments may be empty strings.
    CHECK(valid("[workers.web]\ncommand = [\"/x\", \"\"]").workers[0].command.size() == 2);
}

TEST_CASE("errors: dangling socket names in fds, sockets, scm_rights and {fd:NAME}") {
    auto errors = errors_of(R"(
[sockets.http]
listen = "tcp://127.0.0.1:8080"
[sockets.admin]
listen = "tcp://127.0.0.1:8081"
[workers.a]
command = ["/bin/x", "--fd={fd:http}", "{fd:admin}", "{fd:nope}"]
fds = { 3 = "http", 4 = "htp" }
[workers.b]
command = ["/bin/x"]
sockets = ["http", "amdin"]
[workers.c]
command = ["/bin/x"]
scm_rights = ["metrics"]
)");
    CHECK(errors == std::vector<std::string>{
                        "t.toml:6:40: workers.a.command[2]: {fd:admin}: socket \"admin\" is not "
                        "in this worker's fds",
                        "t.toml:6:54: workers.a.command[3]: {fd:nope}: unknown socket \"nope\"",
                        "t.toml:7:25: workers.a.fds.4: unknown socket \"htp\" (did you mean "
                        "\"http\"?)",
                        "t.toml:10:20: workers.b.sockets[1]: unknown socket \"amdin\" (did you "
                        "mean \"admin\"?)",
                        // both: fixing the name alone would not make it load
                        "t.toml:13:15: workers.c.scm_rights[0]: unknown socket \"metrics\"",
                    });
}

TEST_CASE("errors: {fd:NAME} is checked after the sockets shorthand is expanded") {
    Config c = valid(R"(
[sockets.http]
listen = "tcp://127.0.0.1:8080"
[workers.a]
command = ["/bin/x", "{fd:http}", "{fd:", "{fd:http", "{}", "{{fd}}"]
sockets = ["http"]
)");
    CHECK(c.workers[0].fds.at(3) == "http");
}

TEST_CASE("errors: fds keys must be fd numbers, each given once") {
    auto errors = errors_of(R"(
[sockets.http]
listen = "tcp://127.0.0.1:8080"
[workers.web]
command = ["/bin/x"]
fds = { x = "http", 65536 = "http", -1 = "http", 3 = "http", 03 = "http" }
)");
    CHECK(errors == std::vector<std::string>{
                        "t.toml:5:9: workers.web.fds: \"x\" is not an fd number (0..65535)",
                        "t.toml:5:21: workers.web.fds: \"65536\" is not an fd number (0..65535)",
                        "t.toml:5:37: workers.web.fds: \"-1\" is not an fd number (0..65535)",
                        "t.toml:5:62: workers.web.fds.03: fd 3 is given twice",
                    });
}

TEST_CASE("errors: sockets and fds together") {
    CHECK(one_error(R"(
[sockets.http]
listen = "tcp://127.0.0.1:8080"
[workers.web]
command = ["/bin/x"]
fds = { 3 = "http" }
sockets = ["http"]
)") == "t.toml:6:11: workers.web.sockets: give either sockets or fds, not both");
}

TEST_CASE("errors: after names an unknown worker or itself") {
    auto errors = errors_of(R"(
[workers.web]
command = ["/bin/x"]
after = ["db", "web", "cache"]
[workers.db]
command = ["/bin/x"]
)");
    CHECK(errors == std::vector<std::string>{
                        "t.toml:3:16: workers.web.after[1]: a worker cannot start after itself",
                        "t.toml:3:23: workers.web.after[2]: unknown worker \"cache\"",
                    });
}

TEST_CASE("errors: an after cycle is reported once, with its path") {
    CHECK(one_error(R"(
[workers.a]
command = ["/bin/x"]
after = ["b"]
[workers.b]
command = ["/bin/x"]
after = ["a"]
)") == "t.toml:3:10: workers.a.after: dependency cycle a -> b -> a");

    // Three workers, found from outside the cycle, still named from its first member.
    CHECK(one_error(R"(
[workers.z]
command = ["/bin/x"]
after = ["d", "c"]
[workers.c]
command = ["/bin/x"]
after = ["e"]
[workers.e]
command = ["/bin/x"]
after = ["d"]
[workers.d]
command = ["/bin/x"]
after = ["c"]
)") == "t.toml:6:10: workers.c.after: dependency cycle c -> e -> d -> c");

    // A diamond is not a cycle.
    valid(R"(
[workers.a]
command = ["/bin/x"]
after = ["b", "c"]
[workers.b]
command = ["/bin/x"]
after = ["d"]
[workers.c]
command = ["/bin/x"]
after = ["d"]
[workers.d]
command = ["/bin/x"]
)");
}

TEST_CASE("errors: two sockets on one address") {
    auto errors = errors_of(R"(
[sockets.web]
listen = "tcp://127.0.0.1:8080"
[sockets.a-copy]
listen = "tcp://127.0.0.1:8080"
[sockets.u1]
listen = "unix:/run/app.sock"
[sockets.u2]
listen = "unixpacket:/run/app.sock"
[sockets.x1]
listen = "unix:@name"
[sockets.x2]
listen = "unix:@name"
[sockets.x3]
listen = "unix:/name"
)");
    CHECK(errors == std::vector<std::string>{
                        "t.toml:4:10: sockets.a-copy.listen: same address as sockets.web (line 2)",
                        "t.toml:8:10: sockets.u2.listen: same address as sockets.u1 (line 6)",
                        "t.toml:12:10: sockets.x2.listen: same address as sockets.x1 (line 10)",
                    });
}

TEST_CASE("errors: a listen address that does not parse") {
    auto r = load(R"(
[sockets.http]
listen = "http://127.0.0.1:80"
)");
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].line == 2);
    CHECK(r.errors[0].column == 10);
    CHECK(r.errors[0].message.starts_with("sockets.http.listen: "));
    CHECK(r.errors[0].message.size() > std::string("sockets.http.listen: ").size());
}

TEST_CASE("errors: options on the wrong kind of socket") {
    auto errors = errors_of(R"(
[sockets.tcp]
listen = "tcp://127.0.0.1:1"
mode = "0660"
[sockets.udp]
listen = "udp://127.0.0.1:2"
nodelay = true
reuse_port = true
[sockets.abs]
listen = "unix:@abs"
owner = "www-data"
[sockets.unix]
listen = "unixgram:/run/g.sock"
keepalive = false
free_bind = true
group = "www-data"
mode = "0600"
)");
    CHECK(errors == std::vector<std::string>{
                        "t.toml:3:8: sockets.tcp.mode: only for unix sockets with a filesystem "
                        "path (this is a tcp socket)",
                        "t.toml:6:11: sockets.udp.nodelay: only for tcp sockets (this is a udp "
                        "socket)",
                        "t.toml:10:9: sockets.abs.owner: only for unix sockets with a filesystem "
                        "path (this is an abstract unix socket)",
                        "t.toml:13:13: sockets.unix.keepalive: only for tcp sockets (this is a "
                        "unixgram socket)",
                        "t.toml:14:13: sockets.unix.free_bind: only for tcp and udp sockets "
                        "(this is a unixgram socket)",
                    });
}

TEST_CASE("kill_mode: process, group and cgroup") {
    for (auto [text, mode] : {std::pair{"process", KillMode::process}, std::pair{"group", KillMode::group},
                              std::pair{"cgroup", KillMode::cgroup}}) {
        CAPTURE(text);
        auto config = valid(std::string("[workers.web]\ncommand = [\"/bin/x\"]\nkill_mode = \"") + text + "\"\n");
        CHECK(config.workers.at(0).kill_mode == mode);
    }
    CHECK(errors_of("[workers.web]\ncommand = [\"/bin/x\"]\nkill_mode = \"tree\"\n").size() == 1);
}

TEST_CASE("config: metrics_listen is HOST:PORT") {
    valid(R"(
[supervisor]
metrics_listen = "127.0.0.1:9187"
)");
    valid(R"(
[supervisor]
metrics_listen = "[::1]:0"
)");
    auto errors = errors_of(R"(
[supervisor]
metrics_listen = "9187"
)");
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].starts_with("t.toml:2:18: supervisor.metrics_listen: must be HOST:PORT ("));
}

TEST_CASE("errors: names of sockets and workers") {
    auto errors = errors_of(R"(
[sockets."a.b"]
listen = "tcp://127.0.0.1:1"
[workers."w x"]
command = ["/bin/x"]
)");
    CHECK(errors == std::vector<std::string>{
                        "t.toml:1:10: sockets.\"a.b\": invalid socket name (use letters, digits, "
                        "'_' and '-')",
                        "t.toml:3:10: workers.\"w x\": invalid worker name (use letters, digits, "
                        "'_', '.' and '-')",
                    });
}

TEST_CASE("errors: socket names that would share one FDSUP_FD_<NAME> variable") {
    CHECK(one_error(R"(
[sockets.admin-api]
listen = "tcp://127.0.0.1:1"
[sockets.Admin_API]
listen = "tcp://127.0.0.1:2"
)") == "t.toml:3:10: sockets.Admin_API: its variable FDSUP_FD_ADMIN_API would be the same as "
       "socket \"admin-api\"'s");
}

TEST_CASE("errors: env, rlimits, user") {
    auto errors = errors_of(R"(
[workers.web]
command = ["/bin/x"]
env = { "A=B" = "x", "" = "y", OK = "z" }
rlimits = { nofiles = 1, core = -1, nproc = "lots", nofile = 1024 }
user = ""
group = -5
)");
    CHECK(errors == std::vector<std::string>{
                        "t.toml:3:9: workers.web.env: invalid variable name \"A=B\" (must be "
                        "non-empty, without '=')",
                        "t.toml:3:22: workers.web.env: invalid variable name \"\" (must be "
                        "non-empty, without '=')",
                        "t.toml:4:13: workers.web.rlimits: unknown limit \"nofiles\" (did you mean "
                        "\"nofile\"?)",
                        "t.toml:4:33: workers.web.rlimits.core: must not be negative, got -1",
                        "t.toml:4:45: workers.web.rlimits.nproc: expected a non-negative integer "
                        "or \"infinity\", got a string",
                        "t.toml:5:8: workers.web.user: must not be empty",
                        "t.toml:6:9: workers.web.group: invalid id -5",
                    });
}

TEST_CASE("errors: supervisor values") {
    auto errors = errors_of(R"(
[supervisor]
control_socket = ""
control_group = ""
control_idle_timeout = "0s"
control_max_clients = 0
)");
    CHECK(errors == std::vector<std::string>{
                        "t.toml:2:18: supervisor.control_socket: must not be empty",
                        "t.toml:3:17: supervisor.control_group: must not be empty",
                        "t.toml:4:24: supervisor.control_idle_timeout: must be more than 0s",
                        "t.toml:5:23: supervisor.control_max_clients: must be between 1 and 100000, got 0",
                    });
    std::string long_path = "/" + std::string(120, 'x');
    CHECK(one_error("[supervisor]\ncontrol_socket = \"" + long_path + "\"") ==
          "t.toml:2:18: supervisor.control_socket: path is too long for a unix socket (121 "
          "bytes, at most 107)");
}


TEST_CASE("errors: one rotate: file is rotated one way, and never also a worker's file: output") {
    auto r = load(R"([workers.a]
command = ["/bin/a"]
instances = 2
stdout = "rotate:/var/log/x-{instance}.log"
log_keep = 3
[workers.b]
command = ["/bin/b"]
stdout = "rotate:/var/log/x-1.log"
stderr = "file:/var/log/x-0.log"
[workers.c]
command = ["/bin/c"]
stdout = "rotate:/var/log/c.log"
stderr = "rotate:/var/log/c.log"
instances = 3
)");
    CHECK(!r.config);
    REQUIRE(r.errors.size() == 2);
    CHECK(r.errors[0].text() ==
          "t.toml:8:10: workers.b.stdout: rotate file \"/var/log/x-1.log\" is also worker \"a\"'s stdout, with other "
          "options (log_max_size 10485760, log_keep 3, log_compress false, log_timestamps utc; here log_max_size "
          "10485760, log_keep 5, log_compress false, log_timestamps utc): one file is rotated one way; give both the "
          "same log_* options or different paths");
    CHECK(r.errors[1].text() ==
          "t.toml:9:10: workers.b.stderr: \"/var/log/x-0.log\" is also worker \"a\"'s stdout as \"rotate:\": fdsupd "
          "would rotate a file a worker writes itself; use one form for both");
    // The same options: shared, fine (c's stdout and stderr, its instances; a and b alike).
    auto shared = load(R"([workers.a]
command = ["/bin/a"]
stdout = "rotate:/var/log/one.log"
log_compress = true
[workers.b]
command = ["/bin/b"]
stdout = "rotate:/var/log/one.log"
stderr = "rotate:/var/log/one.log"
log_compress = true
instances = 2
)");
    CHECK(shared.errors.empty());
}

TEST_CASE("errors: a path is never one of the names a rotate: file is rotated through") {
    auto r = load(R"([workers.a]
command = ["/bin/a"]
stdout = "rotate:/l/app.log"
[workers.b]
command = ["/bin/b"]
stdout = "rotate:/l/app.log.1"
stderr = "file:/l/app.log.3.gz"
[workers.c]
command = ["/bin/c"]
instances = 3
stdout = "rotate:/l/app.log.{instance}"
stderr = "file:/l/.app.log.gz-tmp-12"
[workers.d]
command = ["/bin/d"]
stdout = "rotate:/l/d.log.1"
stderr = "rotate:/l/d.log"
)");
    CHECK(!r.config);
    std::vector<std::string> texts;
    for (const auto& e : r.errors) texts.push_back(e.text());
    auto names = [](const std::string& at, const std::string& path, const std::string& whose,
                    const std::string& base) {
        return at + ": \"" + path + "\" is one of the names " + whose + "'s rotate file \"" + base +
               "\" is rotated through (.N, .N.gz, .NAME.gz-tmp-*): its rotation would rename or delete it; use "
               "another path";
    };
    CHECK(texts == std::vector<std::string>{
                       names("t.toml:6:10: workers.b.stdout", "/l/app.log.1", "worker \"a\"'s stdout", "/l/app.log"),
                       names("t.toml:7:10: workers.b.stderr", "/l/app.log.3.gz", "worker \"a\"'s stdout",
                             "/l/app.log"),
                       // {instance} 1 and 2 (0 is no rotated name); one error per stream.
                       names("t.toml:11:10: workers.c.stdout", "/l/app.log.1", "worker \"a\"'s stdout",
                             "/l/app.log"),
                       names("t.toml:12:10: workers.c.stderr", "/l/.app.log.gz-tmp-12", "worker \"a\"'s stdout",
                             "/l/app.log"),
                       // The rotating file later in the file; the same worker's other stream.
                       names("t.toml:15:10: workers.d.stdout", "/l/d.log.1", "stderr", "/l/d.log"),
                   });
    // Not rotated names: .0, a leading zero, no number, another directory, a plain suffix.
    auto fine = load(R"([workers.a]
command = ["/bin/a"]
stdout = "rotate:/l/app.log"
[workers.b]
command = ["/bin/b"]
stdout = "rotate:/l/app.log.0"
stderr = "file:/l/app.log.01"
[workers.c]
command = ["/bin/c"]
stdout = "rotate:/l/app.log.x"
stderr = "file:/m/app.log.1"
[workers.d]
command = ["/bin/d"]
stdout = "rotate:/l/app.log.1x"
stderr = "file:/l/app.log.gz"
)");
    CHECK(fine.errors.empty());
}

TEST_CASE("errors: rotate: and file: paths are compared normalised") {
    auto r = load(R"([workers.a]
command = ["/bin/a"]
stdout = "rotate:/l//x/./a.log"
log_keep = 2
[workers.b]
command = ["/bin/b"]
stdout = "rotate:/l/x/a.log"
stderr = "file:/l/y/../x/a.log"
[workers.c]
command = ["/bin/c"]
stdout = "rotate:/l/x//a.log.2"
)");
    CHECK(!r.config);
    REQUIRE(r.errors.size() == 3);
    CHECK(r.errors[0].text() ==
          "t.toml:7:10: workers.b.stdout: rotate file \"/l/x/a.log\" is also worker \"a\"'s stdout, with other "
          "options (log_max_size 10485760, log_keep 2, log_compress false, log_timestamps utc; here log_max_size "
          "10485760, log_keep 5, log_compress false, log_timestamps utc): one file is rotated one way; give both the "
          "same log_* options or different paths");
    CHECK(r.errors[1].text() ==
          "t.toml:8:10: workers.b.stderr: \"/l/x/a.log\" is also worker \"a\"'s stdout as \"rotate:\": fdsupd "
          "would rotate a file a worker writes itself; use one form for both");
    CHECK(r.errors[2].text().starts_with("t.toml:11:10: workers.c.stdout: \"/l/x/a.log.2\" is one of the names "
                                         "worker \"a\"'s stdout's rotate file \"/l/x/a.log\" is rotated through"));
    // A rotate: target is read in its normal spelling (what the open files are keyed by);
    // a file: target is left as written.
    auto ok = load(R"([workers.a]
command = ["/bin/a"]
stdout = "rotate:/l//x/./a-{instance}.log"
stderr = "file:/l//x/./b.log"
)");
    REQUIRE(ok.config);
    CHECK(ok.config->workers[0].stdout_target.path == "/l/x/a-{instance}.log");
    CHECK(ok.config->workers[0].stderr_target.path == "/l//x/./b.log");
    CHECK(one_error("[workers.a]\ncommand = [\"/bin/a\"]\nstdout = \"rotate:/l/a.log/.\"") ==
          "t.toml:3:10: workers.a.stdout: \"rotate:/l/a.log/.\": names a directory, not a file");
}

TEST_CASE("errors: log_format is text or json") {
    auto r = load("[supervisor]\nlog_format = \"xml\"\n");
    CHECK(!r.config);
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].text() == "t.toml:2:14: supervisor.log_format: invalid value \"xml\" (expected text or json)");
}
