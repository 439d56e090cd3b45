// The config loader and its value parsers: exact values for valid configs (the errors
// of invalid ones: test_config_errors.cpp).
#include <doctest/doctest.h>

#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "config/loader.h"
#include "config/values.h"
#include "sys/signal_names.h"
#include "config_test_support.h"

using namespace std::chrono_literals;
using fdsup::parse_signal;
using fdsup::signal_name;

// ---------------------------------------------------------------------------------
// Value parsers

TEST_CASE("parse_duration: an integer and exactly one unit") {
    CHECK(parse_duration("0ms") == 0ms);
    CHECK(parse_duration("250ms") == 250ms);
    CHECK(parse_duration("10s") == 10s);
    CHECK(parse_duration("5m") == 5min);
    CHECK(parse_duration("1h") == 1h);
    CHECK(parse_duration("0s") == 0ms);
    CHECK(parse_duration("007s") == 7s);
    CHECK(parse_duration("86400s") == 24h);

    for (const char* bad : {"", "10", "s", "ms", "10x", "10 s", " 10s", "10s ", "1.5s", "-1s",
                            "+1s", "10S", "10sec", "1h30m", "10ms5", "1e3ms", "0x10s", "10us"})
        CHECK_MESSAGE(!parse_duration(bad), bad);
    // Far too large to be meant (and would overflow milliseconds): rejected, not wrapped.
    CHECK(!parse_duration("99999999999999999999s"));
    // 100 years at most: a deadline on the steady clock's nanoseconds cannot overflow.
    CHECK(parse_duration("876000h") == std::chrono::hours(876000));
    CHECK(!parse_duration("876001h"));
    CHECK(!parse_duration("3153600000001ms"));
    CHECK(!parse_duration("9223372036854775807h"));
}

TEST_CASE("parse_mode: 1-4 octal digits, optional 0o, at most 07777") {
    CHECK(parse_mode("0600") == 0600u);
    CHECK(parse_mode("660") == 0660u);
    CHECK(parse_mode("0o755") == 0755u);
    CHECK(parse_mode("0o0755") == 0755u);
    CHECK(parse_mode("0") == 0u);
    CHECK(parse_mode("7777") == 07777u);
    CHECK(parse_mode("0o7") == 07u);
    for (const char* bad : {"", "0o", "0800", "0609", "17777", "00755", "0x755", "rw-r--r--",
                            " 0600", "0600 ", "-600", "0O755", "0o", "0o17777"})
        CHECK_MESSAGE(!parse_mode(bad), bad);
}

TEST_CASE("parse_signal: names with or without SIG, numbers 1..64, real-time") {
    CHECK(parse_signal("TERM") == SIGTERM);
    CHECK(parse_signal("SIGTERM") == SIGTERM);
    CHECK(parse_signal("HUP") == SIGHUP);
    CHECK(parse_signal("SIGUSR2") == SIGUSR2);
    CHECK(parse_signal("KILL") == SIGKILL);
    CHECK(parse_signal("STOP") == SIGSTOP);
    CHECK(parse_signal("WINCH") == SIGWINCH);
    CHECK(parse_signal("IOT") == SIGABRT);  // alias
    CHECK(parse_signal("15") == 15);
    CHECK(parse_signal("1") == 1);
    CHECK(parse_signal("64") == 64);
    CHECK(parse_signal("RTMIN") == SIGRTMIN);
    CHECK(parse_signal("RTMIN+3") == SIGRTMIN + 3);
    CHECK(parse_signal("SIGRTMIN+3") == SIGRTMIN + 3);
    CHECK(parse_signal("RTMAX") == SIGRTMAX);
    CHECK(parse_signal("RTMAX-1") == SIGRTMAX - 1);
    CHECK(parse_signal(std::string("RTMIN+") + std::to_string(SIGRTMAX - SIGRTMIN)) == SIGRTMAX);

    for (const char* bad : {"", "0", "65", "-15", "+15", "term", "Term", "sigterm", "SIG",
                            "TERMX", "SIGSIGTERM", " TERM", "RTMIN+", "RTMIN-1", "RTMAX+1",
                            "RTMIN+99", "15x", "1.5"})
        CHECK_MESSAGE(!parse_signal(bad), bad);
}

TEST_CASE("signal_name is the inverse of parse_signal") {
    CHECK(signal_name(SIGTERM) == "TERM");
    CHECK(signal_name(SIGHUP) == "HUP");
    CHECK(signal_name(SIGKILL) == "KILL");
    CHECK(signal_name(SIGABRT) == "ABRT");
    CHECK(signal_name(SIGRTMIN) == "RTMIN");
    CHECK(signal_name(SIGRTMIN + 3) == "RTMIN+3");
    for (int s = 1; s <= SIGRTMAX; ++s) {
        if (s > SIGSYS && s < SIGRTMIN) continue;  // glibc-internal: no name, shown as a number
        CHECK_MESSAGE(parse_signal(signal_name(s)) == s, s);
    }
}

// ---------------------------------------------------------------------------------
// Valid configs

TEST_CASE("config: [supervisor] log_format") {
    Config c = valid(R"(
[supervisor]
log_format = "json"
[workers.web]
command = ["/bin/true"]
)");
    CHECK(c.supervisor.log_format == "json");
}

TEST_CASE("config: a minimal config takes every default") {
    EnvGuard guard("RUNTIME_DIRECTORY");
    unsetenv("RUNTIME_DIRECTORY");
    Config c = valid(R"(
[workers.web]
command = ["/bin/true"]
)");
    CHECK(c.path == "t.toml");
    CHECK(c.supervisor.control_socket == "/run/fdsup/control.sock");
    CHECK(c.supervisor.runtime_dir == "/run/fdsup");
    CHECK(c.supervisor.control_mode == 0600u);
    CHECK(!c.supervisor.control_group);
    CHECK(c.supervisor.log_level == "info");
    CHECK(c.supervisor.log_format == "text");
    CHECK(!c.supervisor.metrics_listen);
    CHECK(c.supervisor.shutdown_timeout == 30s);
    CHECK(c.sockets.empty());
    REQUIRE(c.workers.size() == 1);

    WorkerConfig expected;  // model.h's defaults are the SPEC's
    expected.name = "web";
    expected.command = {"/bin/true"};
    CHECK(c.workers[0] == expected);
    const WorkerConfig& w = c.workers[0];
    CHECK(w.instances == 1);
    CHECK(w.restart == RestartPolicy::always);
    CHECK(w.success_exit_codes == std::vector<int>{0});
    CHECK(w.backoff == 100ms);
    CHECK(w.backoff_max == 30s);
    CHECK(w.stop_signal == SIGTERM);
    CHECK(w.reload_signal == SIGHUP);
    CHECK(w.kill_mode == KillMode::group);
    CHECK(w.stdout_target.kind == OutputKind::log);
    CHECK(w.stderr_target.kind == OutputKind::log);
    CHECK(w.pos.line == 1);
}

TEST_CASE("config: an empty file is a valid config with nothing to run") {
    Config c = valid("");
    CHECK(c.sockets.empty());
    CHECK(c.workers.empty());
}

TEST_CASE("config: control_socket defaults to the first $RUNTIME_DIRECTORY entry") {
    EnvGuard guard("RUNTIME_DIRECTORY");
    setenv("RUNTIME_DIRECTORY", "/run/app:/run/other", 1);
    Config c = valid("");
    CHECK(c.supervisor.control_socket == "/run/app/control.sock");
    CHECK(c.supervisor.runtime_dir == "/run/app");

    setenv("RUNTIME_DIRECTORY", "", 1);
    CHECK(valid("").supervisor.control_socket == "/run/fdsup/control.sock");
}

TEST_CASE("config: runtime_dir defaults to the control socket's directory") {
    CHECK(valid("[supervisor]\ncontrol_socket = \"/tmp/x/ctl.sock\"").supervisor.runtime_dir ==
          "/tmp/x");
    CHECK(valid("[supervisor]\ncontrol_socket = \"/ctl.sock\"").supervisor.runtime_dir == "/");
    CHECK(valid("[supervisor]\ncontrol_socket = \"ctl.sock\"").supervisor.runtime_dir == ".");
    auto c = valid("[supervisor]\ncontrol_socket = \"/a/ctl.sock\"\nruntime_dir = \"/b\"");
    CHECK(c.supervisor.runtime_dir == "/b");
}

TEST_CASE("config: a full config gives exactly the values written") {
    Config c = valid(R"(
[supervisor]
control_socket = "/run/test/ctl.sock"
control_mode = "0660"
control_group = "ops"
runtime_dir = "/run/test-rt"
log_level = "debug"
shutdown_timeout = "45s"
control_idle_timeout = "5s"
control_max_clients = 8

[sockets.http]
listen = "tcp://0.0.0.0:8080"
backlog = 4096
reuse_port = true
free_bind = true
ipv6_only = false
nodelay = true
keepalive = true
receive_buffer = 65536
send_buffer = 131072

[sockets.admin]
listen = "unix:/run/test/admin.sock"
mode = "0o660"
owner = "www-data"
group = 33

[sockets.dns]
listen = "udp://[::]:5353"
ipv6_only = true

[workers.web]
command = ["/usr/bin/app", "--fd", "{fd:http}", "--id", "{instance}", "{name}", "{literal}"]
instances = 4
sockets = ["http", "admin"]
env = { APP_ENV = "prod", EMPTY = "" }
clear_env = true
working_dir = "/srv/app"
user = "www-data"
group = 1000
umask = "0022"
rlimits = { nofile = 65536, core = "infinity", stack = "unlimited" }
restart = "on-failure"
success_exit_codes = [0, 3, 255]
backoff = "250ms"
backoff_max = "5m"
healthy_after = "1h"
start_limit_burst = 3
start_limit_interval = "2m"
ready = "delay"
ready_delay = "2s"
ready_timeout = "90s"
watchdog = "0s"
notify_access = "all"
stop_signal = "SIGQUIT"
stop_timeout = "20s"
kill_mode = "process"
after = ["db"]
reload_signal = "USR1"
restart_strategy = "stop-start"
max_surge = 2
fd_store_max = 0
stdout = "file:/var/log/web.log"
stderr = "null"

[workers.db]
command = ["/usr/bin/db"]
fds = { 0 = "dns", 7 = "http" }
stop_signal = 2
stdout = "inherit"
)");
    CHECK(c.supervisor.control_socket == "/run/test/ctl.sock");
    CHECK(c.supervisor.control_mode == 0660u);
    CHECK(c.supervisor.control_group == "ops");
    CHECK(c.supervisor.runtime_dir == "/run/test-rt");
    CHECK(c.supervisor.log_level == "debug");
    CHECK(c.supervisor.shutdown_timeout == 45s);
    CHECK(c.supervisor.control_idle_timeout == 5s);
    CHECK(c.supervisor.control_max_clients == 8);

    // sorted by name, whatever the file order
    REQUIRE(c.sockets.size() == 3);
    CHECK(c.sockets[0].name == "admin");
    CHECK(c.sockets[1].name == "dns");
    CHECK(c.sockets[2].name == "http");

    const SocketConfig& http = *c.find_socket("http");
    CHECK(http.listen == "tcp://0.0.0.0:8080");
    CHECK(http.address.kind == fdsup::SocketKind::tcp);
    CHECK(http.address.port == 8080);
    CHECK(http.backlog == 4096);
    CHECK(http.reuse_port);
    CHECK(http.free_bind);
    CHECK(!http.ipv6_only);
    CHECK(http.nodelay);
    CHECK(http.keepalive);
    CHECK(http.receive_buffer == 65536);
    CHECK(http.send_buffer == 131072);
    CHECK(!http.mode);
    CHECK(http.pos.line == 11);
    CHECK(http.pos.column == 1);

    const SocketConfig& admin = *c.find_socket("admin");
    CHECK(admin.address.kind == fdsup::SocketKind::unix_stream);
    CHECK(admin.address.path == "/run/test/admin.sock");
    CHECK(admin.backlog == SOMAXCONN);
    CHECK(admin.mode == 0660u);
    CHECK(admin.owner == "www-data");
    CHECK(admin.group == "33");

    const SocketConfig& dns = *c.find_socket("dns");
    CHECK(dns.address.kind == fdsup::SocketKind::udp);
    CHECK(dns.ipv6_only);

    REQUIRE(c.workers.size() == 2);
    CHECK(c.workers[0].name == "db");
    CHECK(c.workers[1].name == "web");

    const WorkerConfig& web = *c.find_worker("web");
    CHECK(web.command == std::vector<std::string>{"/usr/bin/app", "--fd", "{fd:http}", "--id",
                                                  "{instance}", "{name}", "{literal}"});
    CHECK(web.instances == 4);
    CHECK(web.fds == std::map<int, std::string>{{3, "http"}, {4, "admin"}});  // shorthand
    CHECK(web.scm_rights.empty());
    CHECK(web.env == std::map<std::string, std::string>{{"APP_ENV", "prod"}, {"EMPTY", ""}});
    CHECK(web.clear_env);
    CHECK(web.working_dir == "/srv/app");
    CHECK(web.user == "www-data");
    CHECK(web.group == "1000");
    CHECK(web.umask == 0022u);
    REQUIRE(web.rlimits.size() == 3);
    CHECK(web.rlimits[0] == RlimitSetting{RLIMIT_CORE, "core", RLIM_INFINITY});
    CHECK(web.rlimits[1] == RlimitSetting{RLIMIT_NOFILE, "nofile", 65536});
    CHECK(web.rlimits[2] == RlimitSetting{RLIMIT_STACK, "stack", RLIM_INFINITY});
    CHECK(web.restart == RestartPolicy::on_failure);
    CHECK(web.success_exit_codes == std::vector<int>{0, 3, 255});
    CHECK(web.backoff == 250ms);
    CHECK(web.backoff_max == 5min);
    CHECK(web.healthy_after == 1h);
    CHECK(web.start_limit_burst == 3);
    CHECK(web.start_limit_interval == 2min);
    CHECK(web.ready == ReadyMode::delay);
    CHECK(web.ready_delay == 2s);
    CHECK(web.ready_timeout == 90s);
    CHECK(web.watchdog == 0s);
    CHECK(web.notify_access == NotifyAccess::all);
    CHECK(web.stop_signal == SIGQUIT);
    CHECK(web.stop_timeout == 20s);
    CHECK(web.kill_mode == KillMode::process);
    CHECK(web.after == std::vector<std::string>{"db"});
    CHECK(web.reload_signal == SIGUSR1);
    CHECK(web.restart_strategy == RestartStrategy::stop_start);
    CHECK(web.max_surge == 2);
    CHECK(web.fd_store_max == 0);
    CHECK(web.stdout_target == OutputTarget{OutputKind::file, "/var/log/web.log"});
    CHECK(web.stderr_target == OutputTarget{OutputKind::null, ""});
    CHECK(web.pos.line == 32);

    const WorkerConfig& db = *c.find_worker("db");
    CHECK(db.fds == std::map<int, std::string>{{0, "dns"}, {7, "http"}});
    CHECK(db.stop_signal == SIGINT);
    CHECK(db.stdout_target.kind == OutputKind::inherit);
    CHECK(db.stderr_target.kind == OutputKind::log);
    CHECK(db.rlimits.empty());
}

TEST_CASE("config: names with the allowed characters, dotted keys and inline tables") {
    Config c = valid(R"(
sockets.my-sock_1 = { listen = "tcp://127.0.0.1:0" }
[workers."web.v2-x_1"]
command = ["/bin/x", "{fd:my-sock_1}"]
sockets = ["my-sock_1"]
)");
    CHECK(c.sockets[0].name == "my-sock_1");
    CHECK(c.workers[0].name == "web.v2-x_1");
    CHECK(c.workers[0].fds.at(3) == "my-sock_1");
}

TEST_CASE("config: two sockets may both ask for port 0, and tcp and udp may share a port") {
    Config c = valid(R"(
[sockets.a]
listen = "tcp://127.0.0.1:0"
[sockets.b]
listen = "tcp://127.0.0.1:0"
[sockets.c]
listen = "tcp://127.0.0.1:53"
[sockets.d]
listen = "udp://127.0.0.1:53"
)");
    CHECK(c.sockets.size() == 4);
}

// ---------------------------------------------------------------------------------
// Files

TEST_CASE("load_config_file: reads the file, and names it in errors") {
    char dir_template[] = "/tmp/fdsup-test-config-XXXXXX";
    REQUIRE(mkdtemp(dir_template) != nullptr);
    std::string dir = dir_template, path = dir + "/fdsup.toml";

    auto missing = load_config_file(path);
    REQUIRE(missing.errors.size() == 1);
    CHECK(missing.errors[0].text() == path + ": cannot read: No such file or directory");
    CHECK(!missing.config);

    auto directory = load_config_file(dir);
    REQUIRE(directory.errors.size() == 1);
    CHECK(directory.errors[0].text() == dir + ": cannot read: Is a directory");

    std::ofstream(path) << "[workers.web]\ncommand = [\"/bin/true\"]\nbackoff = \"x\"\n";
    auto bad = load_config_file(path);
    REQUIRE(bad.errors.size() == 1);
    CHECK(bad.errors[0].text().starts_with(path + ":3:11: workers.web.backoff: "));

    std::ofstream(path) << "[workers.web]\ncommand = [\"/bin/true\"]\n";
    auto good = load_config_file(path);
    CHECK(good.errors.empty());
    REQUIRE(good.config);
    CHECK(good.config->path == path);
    CHECK(good.config->workers[0].command[0] == "/bin/true");

    std::remove(path.c_str());
    rmdir(dir.c_str());
}

TEST_CASE("config: a socket on fd 1 or 2 with that stream logged is valid, with a warning at fds") {
    auto r = load(R"(
[sockets.http]
listen = "tcp://127.0.0.1:0"
[workers.inetd]
command = ["/bin/cat"]
fds = { 1 = "http", 2 = "http" }
stderr = "null"
)");
    REQUIRE(r.errors.empty());
    REQUIRE(r.config.has_value());
    REQUIRE(r.warnings.size() == 1);
    CHECK(r.warnings[0].text() ==
          "t.toml:5:7: warning: workers.inetd.fds: fd 1 is socket \"http\", so stdout = \"log\" captures nothing "
          "(the worker's stdout is the socket); set stdout = \"null\" to say so");
    // Said so: nothing to warn about.
    CHECK(load(R"(
[sockets.http]
listen = "tcp://127.0.0.1:0"
[workers.inetd]
command = ["/bin/cat"]
fds = { 0 = "http", 1 = "http" }
stdout = "null"
)").warnings.empty());
}
