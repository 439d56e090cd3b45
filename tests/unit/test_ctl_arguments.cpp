// fdsupctl's command line: the request each verb sends, usage errors, help, and where
// the control socket is looked for.
#include <doctest/doctest.h>

#include <cctype>
#include <chrono>
#include <csignal>
#include <cstring>
#include <initializer_list>
#include <string>
#include <vector>

#include "sys/signal_names.h"
#include "ctl/arguments.h"

using fdsup::ctl::Command;
using fdsup::ctl::Environment;
using fdsup::ctl::Help;
using fdsup::control::Json;
using fdsup::ctl::ParseOutcome;
using fdsup::ctl::UsageError;

namespace {

ParseOutcome parse(std::initializer_list<std::string> args, const Environment& env = {}) {
    std::vector<std::string> list(args);
    return fdsup::ctl::parse_arguments(std::span<const std::string>(list), env);
}

Command command(std::initializer_list<std::string> args, const Environment& env = {}) {
    ParseOutcome outcome = parse(args, env);
    if (const auto* usage = std::get_if<UsageError>(&outcome)) FAIL("usage error: " << usage->message);
    REQUIRE(std::holds_alternative<Command>(outcome));
    return std::get<Command>(outcome);
}

UsageError usage_error(std::initializer_list<std::string> args) {
    ParseOutcome outcome = parse(args);
    if (const auto* parsed = std::get_if<Command>(&outcome)) FAIL("parsed: " << parsed->request.dump());
    REQUIRE(std::holds_alternative<UsageError>(outcome));
    return std::get<UsageError>(outcome);
}

std::string help(std::initializer_list<std::string> args) {
    ParseOutcome outcome = parse(args);
    REQUIRE(std::holds_alternative<Help>(outcome));
    return std::get<Help>(outcome).text;
}

Json request(std::initializer_list<std::string> args) {
    return command(args).request;
}

}  // namespace

TEST_CASE("ctl arguments: the request each verb sends") {
    CHECK(request({"status"}) == Json::parse(R"({"cmd":"status"})"));
    CHECK(request({"status", "web", "db"}) == Json::parse(R"({"cmd":"status","names":["web","db"]})"));
    CHECK(request({"start", "web"}) == Json::parse(R"({"cmd":"start","names":["web"]})"));
    CHECK(request({"stop", "web", "api"}) == Json::parse(R"({"cmd":"stop","names":["web","api"]})"));
    CHECK(request({"restart", "web"}) == Json::parse(R"({"cmd":"restart","names":["web"]})"));
    CHECK(request({"signal", "web"}) == Json::parse(R"({"cmd":"signal","name":"web"})"));
    CHECK(request({"signal", "web", "HUP"}) == Json::parse(R"({"cmd":"signal","name":"web","signal":"HUP"})"));
    CHECK(request({"signal", "web", "sigusr2"}) == Json::parse(R"({"cmd":"signal","name":"web","signal":"USR2"})"));
    CHECK(request({"signal", "web", "9"}) == Json::parse(R"({"cmd":"signal","name":"web","signal":9})"));
    CHECK(request({"signal", "web", "rtmin+3"}) == Json::parse(R"({"cmd":"signal","name":"web","signal":"RTMIN+3"})"));
    CHECK(request({"scale", "web", "3"}) == Json::parse(R"({"cmd":"scale","name":"web","instances":3})"));
    CHECK(request({"scale", "web", "0"}) == Json::parse(R"({"cmd":"scale","name":"web","instances":0})"));
    CHECK(request({"reload"}) == Json::parse(R"({"cmd":"reload"})"));
    CHECK(request({"shutdown"}) == Json::parse(R"({"cmd":"shutdown"})"));
    CHECK(request({"version"}) == Json::parse(R"({"cmd":"version"})"));
    CHECK(request({"logs", "web"}) == Json::parse(R"({"cmd":"logs","name":"web","lines":50,"follow":false})"));
}

TEST_CASE("ctl arguments: canaries and the rollout verb") {
    CHECK(request({"restart", "web", "--canary", "1", "--pause", "30s"}) ==
          Json::parse(R"({"cmd":"restart","canary":1,"pause":"30s","names":["web"]})"));
    CHECK(request({"restart", "--canary=2", "web", "api"}) ==
          Json::parse(R"({"cmd":"restart","canary":2,"names":["web","api"]})"));
    CHECK(request({"reload", "--canary", "1", "--pause=500ms"}) ==
          Json::parse(R"({"cmd":"reload","canary":1,"pause":"500ms"})"));
    CHECK(request({"rollout", "web"}) == Json::parse(R"({"cmd":"rollout","names":["web"]})"));
    CHECK(request({"rollout", "promote", "web"}) ==
          Json::parse(R"({"cmd":"rollout","action":"promote","names":["web"]})"));
    CHECK(request({"rollout", "abort", "web", "api"}) ==
          Json::parse(R"({"cmd":"rollout","action":"abort","names":["web","api"]})"));

    CHECK(usage_error({"restart", "web", "--canary", "0"}).message.find("positive") != std::string::npos);
    CHECK(usage_error({"restart", "web", "--canary"}).message == "--canary needs a number of instances");
    CHECK(usage_error({"restart", "web", "--pause", "1s"}).message == "--pause needs --canary N");
    CHECK(usage_error({"restart", "web", "--canary", "1", "--pause", "1 s"}).message.find("duration") !=
          std::string::npos);
    CHECK(usage_error({"restart", "web", "--canary", "1", "--pause", "1.5s"}).message.find("duration") !=
          std::string::npos);
    CHECK(usage_error({"reload", "web"}).message == "reload takes no arguments, got \"web\"");
    CHECK(usage_error({"rollout"}).message == "rollout needs at least one worker name");
    CHECK(usage_error({"rollout", "abort"}).message == "rollout needs at least one worker name");
}

TEST_CASE("ctl arguments: logs options in every spelling") {
    Command follow = command({"logs", "web", "-n", "5", "-f"});
    CHECK(follow.request == Json::parse(R"({"cmd":"logs","name":"web","lines":5,"follow":true})"));
    CHECK(follow.follow);
    CHECK(request({"logs", "--follow", "--lines", "0", "web"}) ==
          Json::parse(R"({"cmd":"logs","name":"web","lines":0,"follow":true})"));
    CHECK(request({"logs", "web", "--lines=7"})["lines"] == 7);
    CHECK(request({"logs", "web", "-n20"})["lines"] == 20);
    CHECK_FALSE(command({"logs", "web"}).follow);
}

TEST_CASE("ctl arguments: logs --since and --instance") {
    CHECK(request({"logs", "web", "--since", "10m", "--instance", "1"}) ==
          Json::parse(R"({"cmd":"logs","name":"web","lines":50,"follow":false,"since":"10m","instance":1})"));
    CHECK(request({"logs", "--since=500ms", "web", "--instance=0", "-n", "3", "-f"}) ==
          Json::parse(R"({"cmd":"logs","name":"web","lines":3,"follow":true,"since":"500ms","instance":0})"));
    CHECK(request({"logs", "web", "--since", "2h"})["since"] == "2h");
    CHECK_FALSE(request({"logs", "web"}).contains("since"));
    CHECK_FALSE(request({"logs", "web"}).contains("instance"));
    CHECK(usage_error({"logs", "web", "--since"}).message == "--since needs a duration");
    CHECK(usage_error({"logs", "web", "--since", "ten"}).message.find("such as 30s, 10m or 1h") != std::string::npos);
    CHECK(usage_error({"logs", "web", "--since", "0s"}).message.find("above 0") != std::string::npos);
    CHECK(usage_error({"logs", "web", "--since", "-5m"}).message.find("duration") != std::string::npos);
    CHECK(usage_error({"logs", "web", "--instance"}).message == "--instance needs an instance index");
    CHECK(usage_error({"logs", "web", "--instance", "-1"}).message.find("non-negative integer") != std::string::npos);
    CHECK(usage_error({"logs", "web", "--instance", "one"}).message.find("non-negative integer") != std::string::npos);
    CHECK(usage_error({"logs", "web", "--instance", "99999999999"}).message.find("too large") != std::string::npos);
    CHECK(request({"events"}) == Json::parse(R"({"cmd":"events","names":[],"follow":false})"));
    Command events = command({"events", "-f", "web", "db"});
    CHECK(events.follow);
    CHECK(events.request == Json::parse(R"({"cmd":"events","names":["web","db"],"follow":true})"));
    CHECK(request({"events", "web", "--follow"})["follow"] == true);
}

TEST_CASE("ctl arguments: top asks for status; its interval, frames and sort in every spelling") {
    using std::chrono::milliseconds;
    Command plain = command({"top"});
    CHECK(plain.verb == "top");
    CHECK(plain.request == Json::parse(R"({"cmd":"status"})"));
    REQUIRE(plain.top);
    CHECK(plain.top->interval == milliseconds(1000));
    CHECK(plain.top->iterations == std::nullopt);
    CHECK(plain.top->sort == fdsup::ctl::TopSort::name);
    CHECK_FALSE(command({"status"}).top);

    Command every = command({"top", "web", "-d", "0.2", "-n", "2", "--sort", "cpu", "api"});
    CHECK(every.request == Json::parse(R"({"cmd":"status","names":["web","api"]})"));
    CHECK(every.top->interval == milliseconds(200));
    CHECK(every.top->iterations == 2);
    CHECK(every.top->sort == fdsup::ctl::TopSort::cpu);
    Command joined = command({"top", "-d2.5", "-n3", "--sort=uptime"});
    CHECK(joined.top->interval == milliseconds(2500));
    CHECK(joined.top->iterations == 3);
    CHECK(joined.top->sort == fdsup::ctl::TopSort::uptime);
    Command spelled = command({"top", "--interval", "10", "--iterations=1", "--sort", "memory"});
    CHECK(spelled.top->interval == milliseconds(10000));
    CHECK(spelled.top->iterations == 1);
    CHECK(command({"top", "--interval=0.1"}).top->interval == milliseconds(100));
    CHECK(command({"top", "--", "-d"}).request["names"] == Json::parse(R"(["-d"])"));

    CHECK(usage_error({"top", "-d"}).message == "-d needs a number of seconds");
    for (const char* bad : {"0", "0.05", "-1", "x", "1s", "nan", "inf", "86401", ""}) {
        CAPTURE(bad);
        CHECK(usage_error({"top", "-d", bad}).message ==
              "the interval must be a number of seconds from 0.1 to 86400, not \"" + std::string(bad) + "\"");
    }
    CHECK(usage_error({"top", "-n", "0"}).message == "the number of iterations must be a positive integer, not \"0\"");
    CHECK(usage_error({"top", "--iterations"}).message == "--iterations needs a number of frames");
    CHECK(usage_error({"top", "--sort", "mem"}).message ==
          "the sort must be cpu, memory, name, restarts or uptime, not \"mem\"");
    CHECK(usage_error({"top", "--sort"}).message == "--sort needs cpu, memory, name, restarts or uptime");
    auto bad_option = usage_error({"top", "-x"});
    CHECK(bad_option.message == "unknown option -x for top");
    CHECK(bad_option.synopsis == "usage: fdsupctl [-s SOCKET] [--json] top [NAME...] [-d SEC] [-n N] [--sort KEY]");
    CHECK(help({"help", "top"}).find("-d, --interval SEC   seconds between frames") != std::string::npos);
}

TEST_CASE("ctl arguments: global options before or after the verb") {
    Command plain = command({"status"});
    CHECK_FALSE(plain.json);
    CHECK(plain.verb == "status");
    CHECK(command({"--json", "status"}).json);
    CHECK(command({"status", "--json"}).json);
    CHECK(command({"status", "web", "--json"}).request["names"] == Json::parse(R"(["web"])"));
    CHECK(command({"-s", "/tmp/a.sock", "status"}).socket_path == "/tmp/a.sock");
    CHECK(command({"--socket", "/tmp/b.sock", "status"}).socket_path == "/tmp/b.sock");
    CHECK(command({"--socket=/tmp/c.sock", "status"}).socket_path == "/tmp/c.sock");
    CHECK(command({"status", "-s", "/tmp/d.sock"}).socket_path == "/tmp/d.sock");
    // After "--" nothing is an option, not even a global one.
    CHECK(request({"status", "--", "--json"})["names"] == Json::parse(R"(["--json"])"));
    CHECK_FALSE(command({"status", "--", "--json"}).json);
}

TEST_CASE("ctl arguments: usage errors say what is wrong and show the verb's synopsis") {
    auto missing_names = usage_error({"start"});
    CHECK(missing_names.message == "start needs at least one worker name");
    CHECK(missing_names.synopsis == "usage: fdsupctl [-s SOCKET] [--json] start NAME...");
    CHECK(usage_error({"stop"}).message == "stop needs at least one worker name");
    CHECK(usage_error({"restart"}).synopsis.ends_with("restart NAME... [--canary N [--pause DURATION]]"));

    auto bad_count = usage_error({"scale", "web", "many"});
    CHECK(bad_count.message == "the instance count must be a non-negative integer, not \"many\"");
    CHECK(bad_count.synopsis.ends_with("scale NAME N"));
    CHECK(usage_error({"scale", "web", "-1"}).message.find("non-negative integer, not \"-1\"") != std::string::npos);
    CHECK(usage_error({"scale", "web", "1.5"}).message.find("non-negative") != std::string::npos);
    CHECK(usage_error({"scale", "web", "99999999999999999999999"}).message.find("non-negative") != std::string::npos);
    CHECK(usage_error({"scale", "web"}).message == "scale needs a worker name and an instance count");
    CHECK(usage_error({"scale", "web", "1", "2"}).message == "scale needs a worker name and an instance count");

    CHECK(usage_error({"logs"}).message == "logs needs a worker name");
    CHECK(usage_error({"logs", "web", "-n"}).message == "-n needs a number of lines");
    CHECK(usage_error({"logs", "web", "-n", "all"}).message.find("not \"all\"") != std::string::npos);
    CHECK(usage_error({"logs", "web", "db"}).message.find("one worker name") != std::string::npos);
    auto bad_option = usage_error({"logs", "web", "--tail"});
    CHECK(bad_option.message == "unknown option --tail for logs");
    CHECK(bad_option.synopsis.ends_with("logs NAME [-n N] [-f] [--since DURATION] [--instance N]"));

    CHECK(usage_error({"signal"}).message == "signal needs a worker name");
    CHECK(usage_error({"signal", "web", "HUP", "TERM"}).message.find("at most one signal") != std::string::npos);
    CHECK(usage_error({"signal", "web", "0"}).message == "no signal number 0");
    CHECK(usage_error({"signal", "web", "H U P"}).message.find("unknown signal") != std::string::npos);
    CHECK(usage_error({"signal", "web", "BOGUS"}).message ==
          "unknown signal \"BOGUS\" (a name like HUP or SIGHUP, RTMIN+N, RTMAX-N, or a number 1-64)");
    CHECK(usage_error({"signal", "web", "65"}).message == "no signal number 65");
    CHECK(usage_error({"signal", "web", "RTMIN+99"}).message.find("unknown signal") != std::string::npos);
    CHECK(usage_error({"reload", "now"}).message == "reload takes no arguments, got \"now\"");
    CHECK(usage_error({"status", "-x"}).message == "unknown option -x for status");

    auto unknown_verb = usage_error({"frobnicate"});
    CHECK(unknown_verb.message == "unknown verb \"frobnicate\"");
    CHECK(unknown_verb.synopsis == "usage: fdsupctl [-s SOCKET] [--json] VERB [ARGS...]");
    CHECK(usage_error({"--verbose", "status"}).message == "unknown option --verbose");
    CHECK(usage_error({"-s"}).message == "-s needs a socket path");
    CHECK(usage_error({}).message.starts_with("no verb given"));
    CHECK(usage_error({"-s", "", "status"}).message == "the socket path is empty");
}

TEST_CASE("ctl arguments: exec's fds, command and fd socket") {
    auto c = command({"-s", "/run/x/control.sock", "exec", "--fd", "3=http", "--fd=4=admin", "--", "srv", "-s", "y"});
    REQUIRE(c.exec.has_value());
    CHECK(c.exec->fds == std::vector<std::pair<int, std::string>>{{3, "http"}, {4, "admin"}});
    CHECK(c.exec->argv == std::vector<std::string>{"srv", "-s", "y"});  // after --, nothing is an option
    CHECK(c.exec->fd_socket == "/run/x/fds.sock");                    // beside the control socket
    CHECK(command({"exec", "--fd", "0=http", "--fd-socket", "/f.sock", "inetd-app"}).exec->fd_socket == "/f.sock");
    Environment env{std::nullopt, std::nullopt, "/env/fds.sock"};
    CHECK(command({"exec", "--fd", "3=http", "--", "x"}, env).exec->fd_socket == "/env/fds.sock");

    CHECK(usage_error({"exec", "--", "x"}).message == "exec needs at least one --fd N=SOCKET");
    CHECK(usage_error({"exec", "--fd", "3=http"}).message == "exec needs a command to run");
    CHECK(usage_error({"exec", "--fd", "3=http", "--fd", "3=admin", "--", "x"}).message == "fd 3 is given twice");
    for (std::string bad : {"3", "=http", "x=http", "3=", "-1=http", "70000=http"}) {
        CAPTURE(bad);
        CHECK(usage_error({"exec", "--fd", bad, "--", "x"}).message ==
              "--fd \"" + bad + "\": expected N=SOCKET, e.g. 3=http");
    }
    CHECK(usage_error({"exec", "--fd"}).message == "--fd needs N=SOCKET");
    CHECK(usage_error({"exec", "--bogus", "--", "x"}).message == "unknown option \"--bogus\"");
}

TEST_CASE("ctl arguments: upgrade, with the binary made absolute") {
    CHECK(command({"upgrade"}).request == Json::parse(R"({"cmd":"upgrade"})"));
    CHECK(command({"upgrade", "--binary", "/usr/sbin/fdsupd"}).request ==
          Json::parse(R"({"cmd":"upgrade","binary":"/usr/sbin/fdsupd"})"));
    std::string relative = command({"upgrade", "--binary=build/fdsupd"}).request["binary"].get<std::string>();
    CHECK(relative.starts_with("/"));
    CHECK(relative.ends_with("/build/fdsupd"));
    CHECK(usage_error({"upgrade", "--binary"}).message == "--binary needs a path");
    CHECK(usage_error({"upgrade", "now"}).message == "unexpected argument \"now\" for upgrade");
}

TEST_CASE("ctl arguments: adopt SOCKET --pid PID [--fd N]") {
    auto request = [](std::initializer_list<std::string> args) { return command(args).request; };
    CHECK(request({"adopt", "web", "--pid", "1234"}) == Json::parse(R"({"cmd":"adopt","socket":"web","pid":1234})"));
    CHECK(request({"adopt", "--pid=1234", "web", "--fd", "6"}) ==
          Json::parse(R"({"cmd":"adopt","socket":"web","pid":1234,"fd":6})"));
    CHECK(usage_error({"adopt", "web"}).message == "adopt needs --pid PID (the process to take the socket from)");
    CHECK(usage_error({"adopt", "--pid", "1"}).message == "adopt needs a socket name");
    CHECK(usage_error({"adopt", "web", "api", "--pid", "1"}).message == "adopt takes one socket name, got \"api\" too");
    CHECK(usage_error({"adopt", "web", "--pid", "0"}).message.find("positive integer") != std::string::npos);
    CHECK(usage_error({"adopt", "web", "--pid", "99999999999"}).message.find("positive integer") != std::string::npos);
    CHECK(usage_error({"adopt", "web", "--pid", "1", "--fd", "x"}).message.find("non-negative") != std::string::npos);
    CHECK(usage_error({"adopt", "web", "--pid"}).message == "--pid needs a process id");
    CHECK(usage_error({"adopt", "web", "--pid", "1", "--port", "2"}).message == "unknown option --port for adopt");
}

TEST_CASE("ctl arguments: metrics takes no arguments") {
    CHECK(command({"metrics"}).request == Json::parse(R"({"cmd":"metrics"})"));
    CHECK(usage_error({"metrics", "web"}).message == "metrics takes no arguments, got \"web\"");
}

TEST_CASE("ctl arguments: reopen-logs takes no arguments") {
    CHECK(command({"reopen-logs"}).request == Json::parse(R"({"cmd":"reopen-logs"})"));
    CHECK(usage_error({"reopen-logs", "web"}).message == "reopen-logs takes no arguments, got \"web\"");
}

TEST_CASE("ctl arguments: help for fdsupctl and per verb") {
    std::string general = help({"--help"});
    CHECK(general.starts_with("usage: fdsupctl [-s SOCKET] [--json] VERB"));
    for (auto verb : fdsup::ctl::verb_names()) {
        CAPTURE(verb);
        CHECK(general.find("\n  " + std::string(verb)) != std::string::npos);
    }
    CHECK(general.find("$FDSUP_CONTROL") != std::string::npos);
    CHECK(help({"-h"}) == general);
    CHECK(help({"help"}) == general);

    std::string logs = help({"help", "logs"});
    CHECK(logs.starts_with("usage: fdsupctl [-s SOCKET] [--json] logs NAME [-n N] [-f] [--since DURATION] [--instance N]\n\n"));
    CHECK(logs.find("captured output") != std::string::npos);  // the description
    CHECK(logs.find("-n, --lines N") != std::string::npos);
    CHECK(logs.find("-f, --follow") != std::string::npos);
    CHECK(help({"logs", "--help"}) == logs);
    CHECK(help({"--help", "logs"}) == logs);
    CHECK(help({"logs", "web", "-n", "bogus", "-h"}) == logs);  // help wins over bad arguments

    std::string scale = help({"scale", "-h"});
    CHECK(scale.starts_with("usage: fdsupctl [-s SOCKET] [--json] scale NAME N\n"));
    CHECK(scale.find("--lines") == std::string::npos);
    CHECK(help({"help", "metrics"}).find("Prometheus text exposition") != std::string::npos);
    CHECK(help({"help", "upgrade"}).find("--binary PATH") != std::string::npos);
    CHECK(help({"help", "exec"}).find("--fd N=SOCKET") != std::string::npos);

    CHECK(usage_error({"help", "bogus"}).message == "unknown verb \"bogus\"");
    CHECK(usage_error({"help", "logs", "status"}).message == "help takes at most one verb");
    CHECK(fdsup::ctl::help_text("bogus") == std::nullopt);
    CHECK(fdsup::ctl::help_text("status").value().find("status [NAME...]") != std::string::npos);
}

TEST_CASE("ctl arguments: the socket is -s, else $FDSUP_CONTROL, else $RUNTIME_DIRECTORY, else the default") {
    using fdsup::ctl::resolve_socket_path;
    Environment both{"/env/control.sock", "/run/unit:/run/other", std::nullopt};
    CHECK(resolve_socket_path(std::string("/opt/s.sock"), both) == "/opt/s.sock");
    CHECK(resolve_socket_path(std::nullopt, both) == "/env/control.sock");
    Environment runtime_only{std::nullopt, "/run/unit:/run/other", std::nullopt};
    CHECK(resolve_socket_path(std::nullopt, runtime_only) == "/run/unit/control.sock");
    CHECK(resolve_socket_path(std::nullopt, Environment{std::nullopt, "/run/unit/", std::nullopt}) == "/run/unit/control.sock");
    CHECK(resolve_socket_path(std::nullopt, Environment{"", ":/run/x", std::nullopt}) == "/run/fdsup/control.sock");
    CHECK(resolve_socket_path(std::nullopt, Environment{}) == "/run/fdsup/control.sock");

    CHECK(command({"status"}, both).socket_path == "/env/control.sock");
    CHECK(command({"-s", "/opt/s.sock", "status"}, both).socket_path == "/opt/s.sock");
    CHECK(command({"status"}, runtime_only).socket_path == "/run/unit/control.sock");
    CHECK(command({"status"}).socket_path == "/run/fdsup/control.sock");
}

TEST_CASE("ctl arguments: a socket path too long for sun_path is a usage error") {
    std::string longest = "/" + std::string(106, 'x');  // 107 bytes + NUL = sizeof sun_path
    CHECK(command({"-s", longest, "status"}).socket_path == longest);
    auto error = usage_error({"-s", longest + "x", "status"});
    CHECK(error.message.starts_with("socket path too long for a unix socket (108 bytes, at most 107)"));
    CHECK(error.synopsis.ends_with("status [NAME...]"));
}

// fdsupctl checks signals itself (a usage error, before fdsupd is asked) with fdsupd's
// reader: the two must accept the same texts (fdsupctl in any case, fdsupd the
// upper-cased form fdsupctl sends), and what fdsupctl sends must be the signal fdsupd
// reads from the text.
TEST_CASE("ctl arguments: fdsupctl accepts exactly the signals fdsupd knows") {
    std::vector<std::string> names = {"", "SIG", "BOGUS", "H U P", "SIGHUP ", "CLD", "EXIT", "RTMIN", "RTMAX",
                                      "RTMIN+", "RTMAX-", "RTMIN-1", "RTMAX+1", "RTMINX", "RTMIN+1x", "IOT",
                                      "POLL", "9x", "-1", "+1", "0x1", "09", "064", "99999999999999999999",
                                      "RTMIN+99999999999999999999", "RTMIN+-1"};
    for (int n = 0; n <= 70; ++n) names.push_back(std::to_string(n));
    for (int n = 1; n < NSIG; ++n)  // the C library's names, an independent list
        if (const char* abbreviation = sigabbrev_np(n)) names.push_back(abbreviation);
    for (int n = 0; n <= 40; ++n) {
        names.push_back("RTMIN+" + std::to_string(n));
        names.push_back("RTMAX-" + std::to_string(n));
    }
    auto upper = [](std::string text) {
        for (char& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        return text;
    };
    auto lower = [](std::string text) {
        for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        return text;
    };
    int accepted = 0;
    for (const auto& name : names) {
        for (const auto& text : {name, "SIG" + name, lower(name), "sig" + lower(name)}) {
            CAPTURE(text);
            std::vector<std::string> args = {"signal", "web", text};
            ParseOutcome outcome = fdsup::ctl::parse_arguments(std::span<const std::string>(args), Environment{});
            const auto* parsed = std::get_if<Command>(&outcome);
            std::optional<int> known = fdsup::parse_signal(upper(text));
            CHECK((parsed != nullptr) == known.has_value());
            if (parsed == nullptr || !known) continue;
            ++accepted;
            const Json& sent = parsed->request["signal"];
            std::string sent_text = sent.is_string() ? sent.get<std::string>() : std::to_string(sent.get<long long>());
            CHECK(fdsup::parse_signal(sent_text) == known);
        }
    }
    CHECK(accepted > 300);
}
