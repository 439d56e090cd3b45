#include "ctl/arguments.h"
#include "sys/signal_names.h"

#include <sys/un.h>
#include <unistd.h>

#include <csignal>

#include <algorithm>
#include <limits>
#include <cctype>
#include <chrono>
#include <cmath>
#include <charconv>
#include <cstdlib>
#include <expected>
#include <functional>
#include <type_traits>

namespace fdsup::ctl {

using control::Json;

namespace {

constexpr std::string_view kUsagePrefix = "usage: fdsupctl [-s SOCKET] [--json] ";

// What a verb's arguments turned into.
struct VerbRequest {
    explicit VerbRequest(Json request, bool follow = false, std::optional<ExecPlan> exec = std::nullopt)
        : request(std::move(request)), follow(follow), exec(std::move(exec)) {}
    Json request;
    bool follow = false;
    std::optional<ExecPlan> exec;  // exec: no request; the fd socket path is filled in later
    std::optional<TopPlan> top;
};

struct VerbError {
    std::string message;
    bool show_synopsis = true;  // false for "not supported yet": the synopsis would not help
};

using Built = std::expected<VerbRequest, VerbError>;
// `args` are the verb's own arguments: global options removed, "--" kept (after it,
// nothing is an option).
using BuildRequest = Built (*)(std::string_view verb, const std::vector<std::string>& args);

struct Verb {
    std::string_view name;
    std::string_view synopsis;     // after "fdsupctl [-s SOCKET] [--json] "
    std::string_view summary;      // one line in the verb list
    std::string_view description;  // wrapped at 80 columns
    std::string_view options;      // "  -x, --long  what\n" lines, or empty
    BuildRequest build;            // nullptr for help, which parse_arguments handles itself
};

// "-x", "--long"; "-" alone and negative numbers ("-1") are arguments, so that `scale
// web -1` complains about the number rather than about an unknown option.
bool looks_like_option(std::string_view arg) {
    return arg.size() > 1 && arg[0] == '-' && !std::isdigit(static_cast<unsigned char>(arg[1]));
}

std::optional<long long> parse_non_negative(std::string_view text) {
    if (text.empty() || !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return std::nullopt;
    long long value = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc{} || end != text.data() + text.size()) return std::nullopt;
    return value;
}

// An option that takes a value, as found at args[i]: "-n 5", "-n5", "--lines 5" or
// "--lines=5" (no short form when `short_name` is empty).
struct ValueOption {
    bool matched = false;              // args[i] is this option
    std::optional<std::string> value;  // nullopt: the arguments end without its value
};

// Advances `i` past a value that is an argument of its own.
ValueOption value_option(const std::vector<std::string>& args, size_t& i, std::string_view short_name,
                         std::string_view long_name) {
    const std::string& arg = args[i];
    if (arg == long_name || (!short_name.empty() && arg == short_name)) {
        if (i + 1 >= args.size()) return {true, std::nullopt};
        return {true, args[++i]};
    }
    if (arg.starts_with(long_name) && arg.size() > long_name.size() && arg[long_name.size()] == '=')
        return {true, arg.substr(long_name.size() + 1)};
    if (!short_name.empty() && arg.starts_with(short_name) && !arg.starts_with("--"))
        return {true, arg.substr(short_name.size())};  // -n20
    return {};
}

std::string in_quotes(std::string_view text) {
    return "\"" + std::string(text) + "\"";
}

// The value of an option value_option() found, parsed: "-n needs WHAT" when there is
// none, "INVALID, not \"x\"" when `parse` refuses it (nullopt).
template <class Parse>
auto parsed_value(const std::string& option, const ValueOption& found, std::string_view what, Parse parse,
                  std::string_view invalid)
    -> std::expected<typename std::invoke_result_t<Parse, const std::string&>::value_type, VerbError> {
    if (!found.value) return std::unexpected(VerbError{option + " needs " + std::string(what)});
    auto value = parse(*found.value);
    if (!value) return std::unexpected(VerbError{std::string(invalid) + ", not " + in_quotes(*found.value)});
    return *value;
}

// What an option handler says of args[i]: taken (its value too, `i` moved past it),
// not an option of its verb (false), or wrong (why).
using OptionTaken = std::expected<bool, VerbError>;
using OptionHandler = std::function<OptionTaken(size_t& i)>;

// A verb's positional arguments, in order (after "--", everything is one); each option
// goes to `on_option`, and one it does not take (any, without a handler) is an error.
std::expected<std::vector<std::string>, VerbError> walk_arguments(std::string_view verb,
                                                                  const std::vector<std::string>& args,
                                                                  const OptionHandler& on_option) {
    std::vector<std::string> positionals;
    bool options_ended = false;
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string& arg = args[i];
        if (options_ended || !looks_like_option(arg)) {
            positionals.push_back(arg);
        } else if (arg == "--") {
            options_ended = true;
        } else {
            OptionTaken taken = on_option ? on_option(i) : OptionTaken(false);
            if (!taken) return std::unexpected(taken.error());
            if (!*taken) return std::unexpected(VerbError{"unknown option " + arg + " for " + std::string(verb)});
        }
    }
    return positionals;
}

// The verb's arguments when it takes no options.
std::expected<std::vector<std::string>, VerbError> positionals_only(std::string_view verb,
                                                                    const std::vector<std::string>& args) {
    return walk_arguments(verb, args, nullptr);
}

Json request_for(std::string_view verb) {
    return Json{{"cmd", std::string(verb)}};
}

// status [NAME...]
Built build_status(std::string_view verb, const std::vector<std::string>& args) {
    auto names = positionals_only(verb, args);
    if (!names) return std::unexpected(names.error());
    Json request = request_for(verb);
    if (!names->empty()) request["names"] = *names;
    return VerbRequest{std::move(request)};
}

// start|stop|restart NAME...
Built build_names(std::string_view verb, const std::vector<std::string>& args) {
    auto names = positionals_only(verb, args);
    if (!names) return std::unexpected(names.error());
    if (names->empty()) return std::unexpected(VerbError{std::string(verb) + " needs at least one worker name"});
    Json request = request_for(verb);
    request["names"] = *names;
    return VerbRequest{std::move(request)};
}

std::optional<long long> parse_positive(std::string_view text) {
    auto number = parse_non_negative(text);
    if (number == 0) return std::nullopt;
    return number;
}

// "30s", "500ms", "1m", "2h" as fdsupd reads durations (config/values.h): checked here
// too, so that a typo is a usage error.
bool looks_like_duration(std::string_view text) {
    size_t digits = 0;
    while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
    std::string_view unit = text.substr(digits);
    bool zero = std::all_of(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(digits), [](char c) { return c == '0'; });
    return digits > 0 && digits <= 12 && !zero && (unit == "ms" || unit == "s" || unit == "m" || unit == "h");
}

// --canary N [--pause DURATION], for restart and reload; the rest are positionals.
std::expected<std::vector<std::string>, VerbError> canary_arguments(std::string_view verb,
                                                                    const std::vector<std::string>& args,
                                                                    Json& request) {
    auto walked = walk_arguments(verb, args, [&](size_t& i) -> OptionTaken {
        const std::string& arg = args[i];
        if (auto count = value_option(args, i, "", "--canary"); count.matched) {
            auto n = parsed_value(arg, count, "a number of instances", parse_positive,
                                  "the canary must be a positive number of instances");
            if (!n) return std::unexpected(n.error());
            request["canary"] = *n;
            return true;
        }
        if (auto pause = value_option(args, i, "", "--pause"); pause.matched) {
            auto text = parsed_value(arg, pause, "a duration",
                                     [](const std::string& t) { return looks_like_duration(t) ? std::optional(t) : std::nullopt; },
                                     "the pause must be a duration above 0 such as 30s, 500ms, 5m or 1h");
            if (!text) return std::unexpected(text.error());
            request["pause"] = *text;
            return true;
        }
        return false;
    });
    if (!walked) return walked;
    if (request.contains("pause") && !request.contains("canary"))
        return std::unexpected(VerbError{"--pause needs --canary N"});
    return walked;
}

// restart NAME... [--canary N [--pause DURATION]]
Built build_restart(std::string_view verb, const std::vector<std::string>& args) {
    Json request = request_for(verb);
    auto names = canary_arguments(verb, args, request);
    if (!names) return std::unexpected(names.error());
    if (names->empty()) return std::unexpected(VerbError{std::string(verb) + " needs at least one worker name"});
    request["names"] = *names;
    return VerbRequest{std::move(request)};
}

// reload [--canary N [--pause DURATION]]
Built build_reload(std::string_view verb, const std::vector<std::string>& args) {
    Json request = request_for(verb);
    auto extra = canary_arguments(verb, args, request);
    if (!extra) return std::unexpected(extra.error());
    if (!extra->empty())
        return std::unexpected(VerbError{std::string(verb) + " takes no arguments, got " + in_quotes(extra->front())});
    return VerbRequest{std::move(request)};
}

// rollout [promote|abort] NAME...
Built build_rollout(std::string_view verb, const std::vector<std::string>& args) {
    auto positionals = positionals_only(verb, args);
    if (!positionals) return std::unexpected(positionals.error());
    Json request = request_for(verb);
    std::vector<std::string> names = *positionals;
    if (!names.empty() && (names.front() == "promote" || names.front() == "abort")) {
        request["action"] = names.front();
        names.erase(names.begin());
    }
    if (names.empty()) return std::unexpected(VerbError{"rollout needs at least one worker name"});
    request["names"] = names;
    return VerbRequest{std::move(request)};
}

// reload, shutdown, version, metrics, reopen-logs
Built build_no_arguments(std::string_view verb, const std::vector<std::string>& args) {
    auto extra = positionals_only(verb, args);
    if (!extra) return std::unexpected(extra.error());
    if (!extra->empty())
        return std::unexpected(VerbError{std::string(verb) + " takes no arguments, got " + in_quotes(extra->front())});
    return VerbRequest{request_for(verb)};
}

// "HUP", "SIGHUP", "hup" -> "HUP"; "RTMIN+3" as is; "9" -> 9, checked with fdsupd's own
// reader (sys/signal_names.h): a signal fdsupd would not know is a usage error here,
// before fdsupd is asked.
std::expected<Json, std::string> parse_signal(std::string_view text) {
    std::string upper;
    for (char c : text) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    bool digits = !upper.empty() && std::all_of(upper.begin(), upper.end(), [](char c) {
        return std::isdigit(static_cast<unsigned char>(c));
    });
    if (fdsup::parse_signal(upper)) {
        if (digits) return Json(std::stoi(upper));
        return Json(upper.starts_with("SIG") ? upper.substr(3) : upper);
    }
    if (digits) return std::unexpected("no signal number " + std::string(text));
    return std::unexpected("unknown signal " + in_quotes(text) +
                           " (a name like HUP or SIGHUP, RTMIN+N, RTMAX-N, or a number 1-64)");
}

// signal NAME [SIG]
Built build_signal(std::string_view verb, const std::vector<std::string>& args) {
    auto positionals = positionals_only(verb, args);
    if (!positionals) return std::unexpected(positionals.error());
    if (positionals->empty()) return std::unexpected(VerbError{"signal needs a worker name"});
    if (positionals->size() > 2) return std::unexpected(VerbError{"signal takes a worker name and at most one signal"});
    Json request = request_for(verb);
    request["name"] = (*positionals)[0];
    if (positionals->size() == 2) {
        auto signal = parse_signal((*positionals)[1]);
        if (!signal) return std::unexpected(VerbError{signal.error()});
        request["signal"] = *signal;
    }
    return VerbRequest{std::move(request)};
}

// scale NAME N
Built build_scale(std::string_view verb, const std::vector<std::string>& args) {
    auto positionals = positionals_only(verb, args);
    if (!positionals) return std::unexpected(positionals.error());
    if (positionals->size() != 2) return std::unexpected(VerbError{"scale needs a worker name and an instance count"});
    auto count = parse_non_negative((*positionals)[1]);
    if (!count)
        return std::unexpected(VerbError{"the instance count must be a non-negative integer, not " + in_quotes((*positionals)[1])});
    Json request = request_for(verb);
    request["name"] = (*positionals)[0];
    request["instances"] = *count;
    return VerbRequest{std::move(request)};
}

// logs NAME [-n N] [-f] [--since DURATION] [--instance N]
Built build_logs(std::string_view verb, const std::vector<std::string>& args) {
    long long lines = kDefaultLogLines;
    bool follow = false;
    std::optional<std::string> since;
    std::optional<long long> instance;
    auto walked = walk_arguments(verb, args, [&](size_t& i) -> OptionTaken {
        const std::string& arg = args[i];
        if (arg == "-f" || arg == "--follow") {
            follow = true;
            return true;
        }
        if (auto since_text = value_option(args, i, "", "--since"); since_text.matched) {
            auto text = parsed_value(arg, since_text, "a duration",
                                     [](const std::string& t) { return looks_like_duration(t) ? std::optional(t) : std::nullopt; },
                                     "--since needs a duration above 0 such as 30s, 10m or 1h");
            if (!text) return std::unexpected(text.error());
            since = *text;
            return true;
        }
        if (auto index_text = value_option(args, i, "", "--instance"); index_text.matched) {
            auto n = parsed_value(arg, index_text, "an instance index", parse_non_negative,
                                  "the instance must be a non-negative integer (its index: 0, 1, ...)");
            if (!n) return std::unexpected(n.error());
            if (*n > std::numeric_limits<int>::max())
                return std::unexpected(VerbError{"the instance index " + std::to_string(*n) + " is too large"});
            instance = *n;
            return true;
        }
        auto count_text = value_option(args, i, "-n", "--lines");
        if (!count_text.matched) return false;
        auto count = parsed_value(arg, count_text, "a number of lines", parse_non_negative,
                                  "the number of lines must be a non-negative integer");
        if (!count) return std::unexpected(count.error());
        lines = *count;
        return true;
    });
    if (!walked) return std::unexpected(walked.error());
    const std::vector<std::string>& positionals = *walked;
    if (positionals.empty()) return std::unexpected(VerbError{"logs needs a worker name"});
    if (positionals.size() > 1) return std::unexpected(VerbError{"logs takes one worker name, got " + in_quotes(positionals[1]) + " too"});
    Json request = request_for(verb);
    request["name"] = positionals[0];
    request["lines"] = lines;
    request["follow"] = follow;
    if (since) request["since"] = *since;
    if (instance) request["instance"] = *instance;
    return VerbRequest{std::move(request), follow};
}

// adopt SOCKET --pid PID [--fd N]
Built build_adopt(std::string_view verb, const std::vector<std::string>& args) {
    std::optional<long long> pid;
    std::optional<long long> fd;
    auto walked = walk_arguments(verb, args, [&](size_t& i) -> OptionTaken {
        const std::string& arg = args[i];
        if (auto found = value_option(args, i, "", "--pid"); found.matched) {
            auto value = parsed_value(arg, found, "a process id", parse_positive, "the pid must be a positive integer");
            if (!value) return std::unexpected(value.error());
            pid = *value;
        } else if (auto number = value_option(args, i, "", "--fd"); number.matched) {
            auto value = parsed_value(arg, number, "an fd number", parse_non_negative,
                                      "the fd must be a non-negative integer");
            if (!value) return std::unexpected(value.error());
            fd = *value;
        } else {
            return false;
        }
        return true;
    });
    if (!walked) return std::unexpected(walked.error());
    if (walked->empty()) return std::unexpected(VerbError{"adopt needs a socket name"});
    if (walked->size() > 1)
        return std::unexpected(VerbError{"adopt takes one socket name, got " + in_quotes((*walked)[1]) + " too"});
    if (!pid) return std::unexpected(VerbError{"adopt needs --pid PID (the process to take the socket from)"});
    if (*pid > std::numeric_limits<int>::max()) return std::unexpected(VerbError{"the pid must be a positive integer"});
    if (fd && *fd > std::numeric_limits<int>::max()) return std::unexpected(VerbError{"the fd must be a non-negative integer"});
    Json request = request_for(verb);
    request["socket"] = (*walked)[0];
    request["pid"] = *pid;
    if (fd) request["fd"] = *fd;
    return VerbRequest{std::move(request)};
}

// events [-f] [NAME...]
Built build_events(std::string_view verb, const std::vector<std::string>& args) {
    bool follow = false;
    auto walked = walk_arguments(verb, args, [&](size_t& i) -> OptionTaken {
        if (args[i] != "-f" && args[i] != "--follow") return false;
        follow = true;
        return true;
    });
    if (!walked) return std::unexpected(walked.error());
    Json request = request_for(verb);
    request["names"] = *walked;
    request["follow"] = follow;
    return VerbRequest{std::move(request), follow};
}

// "0.5" (seconds) -> 500ms; nullopt for anything but a number of seconds from
// kLeastTopInterval to a day.
std::optional<std::chrono::milliseconds> parse_interval(std::string_view text) {
    double seconds = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), seconds);
    if (text.empty() || error != std::errc{} || end != text.data() + text.size() || !std::isfinite(seconds) ||
        seconds > 86400)
        return std::nullopt;
    std::chrono::milliseconds interval{std::llround(seconds * 1000)};
    if (interval < kLeastTopInterval) return std::nullopt;
    return interval;
}

// top [NAME...] [-d SEC] [-n N] [--sort KEY]: the request is status's.
Built build_top(std::string_view verb, const std::vector<std::string>& args) {
    TopPlan plan;
    auto names = walk_arguments(verb, args, [&](size_t& i) -> OptionTaken {
        const std::string& arg = args[i];
        if (auto seconds = value_option(args, i, "-d", "--interval"); seconds.matched) {
            auto interval = parsed_value(arg, seconds, "a number of seconds", parse_interval,
                                         "the interval must be a number of seconds from 0.1 to 86400");
            if (!interval) return std::unexpected(interval.error());
            plan.interval = *interval;
        } else if (auto count = value_option(args, i, "-n", "--iterations"); count.matched) {
            auto iterations = parsed_value(arg, count, "a number of frames", parse_positive,
                                           "the number of iterations must be a positive integer");
            if (!iterations) return std::unexpected(iterations.error());
            plan.iterations = *iterations;
        } else if (auto key = value_option(args, i, "", "--sort"); key.matched) {
            auto sort = parsed_value(arg, key, "cpu, memory, name, restarts or uptime", top_sort_named,
                                     "the sort must be cpu, memory, name, restarts or uptime");
            if (!sort) return std::unexpected(sort.error());
            plan.sort = *sort;
        } else {
            return false;
        }
        return true;
    });
    if (!names) return std::unexpected(names.error());
    Json request = request_for("status");
    if (!names->empty()) request["names"] = *names;
    VerbRequest built{std::move(request)};
    built.top = plan;
    return built;
}

// exec --fd N=SOCKET... [--fd-socket PATH] [--] CMD ARGS...
Built build_exec(std::string_view, const std::vector<std::string>& args) {
    ExecPlan plan;
    std::optional<std::string> fd_socket;
    size_t i = 0;
    for (; i < args.size(); ++i) {
        const std::string& arg = args[i];
        if (arg == "--") {
            ++i;
            break;
        }
        auto value = [&](std::string_view option) -> std::optional<std::string> {
            if (arg == option) return i + 1 < args.size() ? std::optional(args[++i]) : std::nullopt;
            return arg.substr(option.size() + 1);  // --option=value
        };
        if (arg == "--fd" || arg.starts_with("--fd=")) {
            auto spec = value("--fd");
            if (!spec) return std::unexpected(VerbError{"--fd needs N=SOCKET"});
            size_t equals = spec->find('=');
            int number = -1;
            std::string digits = spec->substr(0, equals == std::string::npos ? 0 : equals);
            auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), number);
            if (equals == std::string::npos || digits.empty() || ec != std::errc() ||
                end != digits.data() + digits.size() || number < 0 || number > 65535 || equals + 1 == spec->size())
                return std::unexpected(VerbError{"--fd " + in_quotes(*spec) + ": expected N=SOCKET, e.g. 3=http"});
            for (const auto& [taken, name] : plan.fds)
                if (taken == number)
                    return std::unexpected(VerbError{"fd " + std::to_string(number) + " is given twice"});
            plan.fds.emplace_back(number, spec->substr(equals + 1));
        } else if (arg == "--fd-socket" || arg.starts_with("--fd-socket=")) {
            fd_socket = value("--fd-socket");
            if (!fd_socket || fd_socket->empty()) return std::unexpected(VerbError{"--fd-socket needs a path"});
        } else if (arg.starts_with("-")) {
            return std::unexpected(VerbError{"unknown option " + in_quotes(arg)});
        } else {
            break;  // the command starts here
        }
    }
    plan.argv.assign(args.begin() + static_cast<std::ptrdiff_t>(i), args.end());
    if (plan.fds.empty()) return std::unexpected(VerbError{"exec needs at least one --fd N=SOCKET"});
    if (plan.argv.empty()) return std::unexpected(VerbError{"exec needs a command to run"});
    if (fd_socket) plan.fd_socket = *fd_socket;
    return VerbRequest{Json::object(), false, std::move(plan)};
}

// upgrade [--binary PATH]: the path made absolute here (fdsupd has its own cwd).
Built build_upgrade(std::string_view verb, const std::vector<std::string>& args) {
    Json request = request_for(verb);
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string& arg = args[i];
        std::optional<std::string> binary;
        if (arg == "--binary") {
            if (i + 1 >= args.size()) return std::unexpected(VerbError{"--binary needs a path"});
            binary = args[++i];
        } else if (arg.starts_with("--binary=")) {
            binary = arg.substr(9);
        } else {
            return std::unexpected(VerbError{"unexpected argument " + in_quotes(arg) + " for upgrade"});
        }
        if (binary->empty()) return std::unexpected(VerbError{"--binary needs a path"});
        if (binary->front() != '/') {
            char* cwd = ::getcwd(nullptr, 0);
            if (cwd != nullptr) {
                *binary = std::string(cwd) + "/" + *binary;
                std::free(cwd);
            }
        }
        request["binary"] = *binary;
    }
    return VerbRequest{std::move(request)};
}

constexpr std::string_view kNoOptions = "";

constexpr Verb kVerbs[] = {
    {"status", "status [NAME...]", "show the workers, their instances and the sockets",
     "Show the supervisor (version, pid, uptime, configuration file), one row per\n"
     "worker instance (state, pid, uptime, restarts, last exit, readiness, the fds it\n"
     "inherits) and the sockets with the addresses they are bound to. With NAMEs, only\n"
     "those workers.\n",
     kNoOptions, build_status},
    {"top", "top [NAME...] [-d SEC] [-n N] [--sort KEY]", "a live view of the instances' CPU, memory and restarts",
     "Show the workers (with NAMEs, only those) and their instances, refreshed every\n"
     "interval: pid, state, CPU%, memory, processes, restarts and uptime; a worker's\n"
     "row adds up its instances' (its uptime is its oldest instance's). CPU, memory\n"
     "and processes are fdsupd's usage figures, \"-\" where it has none. On a terminal\n"
     "(standard input and output both), a full screen: q or Ctrl-C quits; c, m, n, r\n"
     "and u sort by CPU, memory, name, restarts or uptime (the workers, and the\n"
     "instances within each); the arrow keys, PgUp and PgDn scroll. Otherwise, one\n"
     "frame per interval on standard output: a line with the time and a summary, then\n"
     "the table (with --json, fdsupd's status reply as one line). If fdsupd cannot be\n"
     "reached at the start, the exit status is 3 (1 if it refuses, as for an unknown\n"
     "NAME). Once running, top rides out fdsupd going away (a restart, an in-place\n"
     "upgrade): it says so and asks again every interval; with -n, the exit status is\n"
     "then the last frame's.\n",
     "  -d, --interval SEC   seconds between frames (default 1, at least 0.1)\n"
     "  -n, --iterations N   stop after N frames\n"
     "  --sort KEY           cpu, memory, name (the default), restarts or uptime\n",
     build_top},
    {"start", "start NAME...", "start stopped, exited or failed workers",
     "Start the instances of each named worker that are not running (stopped, exited\n"
     "or failed; a failed worker's start limit is cleared) and wait until they have\n"
     "started. An idle on-demand worker starts now, as if a connection had come.\n",
     kNoOptions, build_names},
    {"stop", "stop NAME...", "stop workers gracefully and wait for them",
     "Stop every instance of each named worker gracefully (its stop_signal, then\n"
     "SIGKILL after stop_timeout) and wait until they have exited. They stay stopped\n"
     "until `fdsupctl start` (an on-demand worker too: its sockets are not watched).\n",
     kNoOptions, build_names},
    {"restart", "restart NAME... [--canary N [--pause DURATION]]", "restart workers per their restart_strategy",
     "Restart each named worker per its restart_strategy. rolling: start a new\n"
     "instance, wait until it is ready, then stop an old one, one at a time; if a new\n"
     "instance fails, the rollout stops, the old instances keep serving and the exit\n"
     "status is 1. stop-start: stop all instances, then start them again. A rolling\n"
     "restart goes on across an in-place upgrade of fdsupd: fdsupctl then connects\n"
     "again (a note on standard error) and reports how it ended in the new image.\n"
     "With --canary N, only N instances are replaced, then the rollout holds for the\n"
     "pause (without --pause, until `fdsupctl rollout promote NAME`) and goes on with\n"
     "the rest. If a canary exits, stops being ready or fails its liveness probe, or\n"
     "the worker restarts an instance, while it holds (or `fdsupctl rollout abort\n"
     "NAME`), the rollout aborts: the canaries are put back on the previous spec, the\n"
     "other instances never change, and the exit status is 1 with the reason.\n",
     "  --canary N           replace N instances first, then hold\n"
     "  --pause DURATION     how long to hold (30s, 500ms, 5m); default: until promoted\n",
     build_restart},
    {"rollout", "rollout [promote|abort] NAME...", "show, promote or abort a rolling restart",
     "Without an action, show where each named worker's rolling restart is: its\n"
     "phase (canary, paused, rolling, aborted), how many instances are replaced, and\n"
     "the time left in a canary's pause. promote: a canary that holds goes on with\n"
     "the rest at once. abort: the rollout stops, replacements not yet in service are\n"
     "stopped, and the instances it replaced are put back on the previous spec (the\n"
     "old command, for a reload's). Refused for fdsupd's own rollouts (a liveness\n"
     "replacement, a recycle, a rollback).\n",
     kNoOptions, build_rollout},
    {"signal", "signal NAME [SIG]", "send a signal to every instance of a worker",
     "Send SIG to every running instance of NAME. SIG is a name (HUP, SIGHUP, RTMIN+3)\n"
     "or a number from 1 to 64; without it, the worker's reload_signal is sent. An\n"
     "unknown signal is a usage error (exit status 2).\n",
     kNoOptions, build_signal},
    {"scale", "scale NAME N", "change the number of instances of a worker",
     "Change the number of instances of NAME to N at run time: new instances are\n"
     "started, surplus ones are stopped gracefully. Waits until done.\n",
     kNoOptions, build_scale},
    {"reload", "reload", "re-read the configuration and apply the difference",
     "Re-read the configuration file and apply the difference: added sockets are\n"
     "opened, removed ones closed once no worker maps them; added workers start,\n"
     "removed ones stop, changed ones are restarted per their restart_strategy, and\n"
     "unchanged ones are not touched. An invalid configuration changes nothing: its\n"
     "errors are printed as FILE:LINE:COL: message and the exit status is 1. With\n"
     "--canary, each changed worker that a rolling restart replaces gets a canary,\n"
     "as `restart --canary` gives it; the new spec runs only on the canaries until\n"
     "the pause ends or it is promoted.\n",
     "  --canary N           replace N instances of each changed worker first, then hold\n"
     "  --pause DURATION     how long to hold; default: until promoted\n",
     build_reload},
    {"adopt", "adopt SOCKET --pid PID [--fd N]", "take over a running server's listening socket",
     "Reload the configuration file, taking [sockets.SOCKET] (new in the file) from\n"
     "the running process PID instead of binding it: fdsupd gets the very socket the\n"
     "process listens on (pidfd_getfd), with its accept queue, and from then on owns\n"
     "it as if it had bound it (workers inherit it, upgrades carry it). The workers\n"
     "the file adds or changes start as `reload` starts them. The process goes on\n"
     "accepting until it is stopped; no connection is refused meanwhile. Without\n"
     "--fd, the process's socket listening on SOCKET's address is taken. Refused,\n"
     "changing nothing (exit status 1), when the file has no [sockets.SOCKET], fdsupd\n"
     "owns it already, the caller is neither root nor PID's user, fdsupd may not\n"
     "ptrace PID, or the fd is not a listening socket of SOCKET's kind and address.\n",
     "  --pid PID           the process to take the socket from\n"
     "  --fd N              its fd number (default: the one listening on the address)\n",
     build_adopt},
    {"logs", "logs NAME [-n N] [-f] [--since DURATION] [--instance N]", "print the recent output of a worker",
     "Print the most recent captured output (stdout and stderr) of NAME's instances,\n"
     "each line with the time it was read (local time, milliseconds; --json: \"time\" in\n"
     "unix seconds and \"timestamp\" in RFC 3339, UTC, microseconds) and its instance.\n"
     "fdsupd keeps the last 1,000 lines (1 MiB) of each worker, across in-place\n"
     "upgrades. --since and --instance choose among them (then -n takes the last N of\n"
     "those). With -f, keep printing new lines (of that instance, with --instance) as\n"
     "they arrive until fdsupd closes the connection or Ctrl-C; across an in-place\n"
     "upgrade of fdsupd, from the new image on (a note on standard error), no line\n"
     "lost or printed twice.\n",
     "  -n, --lines N        print the last N lines (default 50)\n"
     "  -f, --follow         then print new lines as they arrive\n"
     "  --since DURATION     only lines read in the last DURATION (30s, 10m, 1h)\n"
     "  --instance N         only instance N's lines (its index: 0, 1, ...)\n",
     build_logs},
    {"events", "events [-f] [NAME...]", "print what happened to workers and fdsupd",
     "Print the events fdsupd keeps (the last 1,000): starts, readiness, exits with\n"
     "their status or signal and reason, scheduled restarts, stops, probe failures,\n"
     "recycles, rollouts and their steps, reloads and upgrades, one line each. With\n"
     "NAME, only those workers' events and fdsupd's own. With -f, keep printing them\n"
     "as they happen until Ctrl-C; across an in-place upgrade of fdsupd, from the new\n"
     "image on (a note on standard error), none lost or printed twice. With --json,\n"
     "each event is one JSON object on a line of its own, as fdsupd sends it.\n",
     "  -f, --follow         then print new events as they happen\n",
     build_events},
    {"shutdown", "shutdown", "stop every worker, then fdsupd",
     "Stop every worker gracefully (dependents before what they depend on), then the\n"
     "supervisor itself. Returns once all workers have stopped.\n",
     kNoOptions, build_no_arguments},
    {"version", "version", "print the versions of fdsupctl and fdsupd",
     "Print the version of fdsupctl and of the running fdsupd, with their control\n"
     "protocol versions and fdsupd's upgrade state format and pid. If fdsupd cannot\n"
     "be reached, fdsupctl's version is still printed (exit status 3).\n",
     kNoOptions, build_no_arguments},
    {"exec", "exec --fd N=SOCKET... -- CMD ARGS...", "run a command with sockets fetched from fdsupd",
     "Fetch sockets from fdsupd over SCM_RIGHTS and exec CMD with them at the given fd\n"
     "numbers (in this process: CMD keeps fdsupctl's pid, stdio and environment). When\n"
     "the numbers are exactly 3, 4, ..., LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID are\n"
     "set, so sd_listen_fds() apps work as under fdsupd. Only root, fdsupd's uid and the\n"
     "workers owning a socket may fetch it. The fd socket is --fd-socket, else\n"
     "$FDSUP_FD_SOCKET, else fds.sock beside the control socket.\n",
     "  --fd N=SOCKET       put socket SOCKET at fd N (repeatable)\n"
     "  --fd-socket PATH    the fd socket to ask\n",
     build_exec},
    {"upgrade", "upgrade [--binary PATH]", "re-exec fdsupd in place from a new binary",
     "Re-exec the supervisor in place from PATH (default: the path fdsupd was started\n"
     "from): same pid, listening sockets never closed, workers untouched. PATH is first\n"
     "tried out (--check-config, --state-formats); if it fails, nothing happens (exit 1).\n"
     "If the new image cannot restore the state, the previous one takes over again and\n"
     "the reason is printed (exit 1). Waits for the new image; prints both versions.\n",
     "  --binary PATH       the new fdsupd binary\n",
     build_upgrade},
    {"reopen-logs", "reopen-logs", "reopen every rotate: log file (after logrotate)",
     "Open every log file fdsupd writes for its workers (stdout or stderr =\n"
     "\"rotate:PATH\") again at its path: what was written so far is flushed, the\n"
     "file is closed and opened again, so that after an outside rotation (logrotate's\n"
     "postrotate) new lines go into a new file at PATH. Prints how many files were\n"
     "reopened; a file that cannot be opened again keeps the one open before, is\n"
     "named on standard error, and the exit status is 1. SIGUSR1 to fdsupd does the\n"
     "same.\n",
     kNoOptions, build_no_arguments},
    {"metrics", "metrics", "print the Prometheus metrics",
     "Print the supervisor's metrics in the Prometheus text exposition format, as\n"
     "[supervisor] metrics_listen serves them over HTTP (which need not be set).\n",
     kNoOptions, build_no_arguments},
    {"help", "help [VERB]", "print this help, or a verb's",
     "Print the usage of fdsupctl, or of VERB.\n",
     kNoOptions, nullptr},
};

const Verb* find_verb(std::string_view name) {
    for (const auto& verb : kVerbs)
        if (verb.name == name) return &verb;
    return nullptr;
}

std::string synopsis_line(const Verb* verb) {
    if (verb == nullptr) return std::string(kUsagePrefix) + "VERB [ARGS...]";
    return std::string(kUsagePrefix) + std::string(verb->synopsis);
}

constexpr std::string_view kCommonOptions =
    "  -s, --socket SOCKET  the control socket (see `fdsupctl help`)\n"
    "  --json               print fdsupd's reply as received, one JSON object\n"
    "  -h, --help           print this help\n";

std::string general_help() {
    std::string text = std::string(kUsagePrefix) + "VERB [ARGS...]\n\n";
    text += "Control a running fdsupd over its control socket.\n\nverbs:\n";
    // A synopsis too long for the column (exec's) puts its summary on the next line.
    constexpr size_t kColumn = 24;
    for (const auto& verb : kVerbs) {
        text += "  " + std::string(verb.synopsis);
        if (verb.synopsis.size() > kColumn) text += "\n  ";
        text += std::string(kColumn + 2 - (verb.synopsis.size() > kColumn ? 0 : verb.synopsis.size()), ' ');
        text += std::string(verb.summary) + "\n";
    }
    text +=
        "\noptions (before or after the verb):\n"
        "  -s, --socket SOCKET  the control socket; default: $FDSUP_CONTROL, else\n"
        "                       $RUNTIME_DIRECTORY/control.sock, else " + std::string(kDefaultSocket) + "\n"
        "  --json               print fdsupd's reply as received, one JSON object\n"
        "  -h, --help           print this help; `fdsupctl help VERB` for a verb's\n"
        "\nexit status: 0 done, 1 fdsupd refused or the operation failed, 2 usage error,\n"
        "3 cannot reach fdsupd (or it went away before it answered).\n";
    return text;
}

// Text for roff: a leading '.' or '\'' would be a request, '\' an escape, '-' a hyphen.
std::string roff_escaped(std::string_view text) {
    std::string out;
    bool line_start = true;
    for (char c : text) {
        if (line_start && (c == '.' || c == '\'')) out += "\\&";
        if (c == '\\') out += "\\e";
        else if (c == '-') out += "\\-";
        else out += c;
        line_start = c == '\n';
    }
    return out;
}

std::string verb_help(const Verb& verb) {
    std::string text = synopsis_line(&verb) + "\n\n" + std::string(verb.description);
    text += "\noptions:\n" + std::string(verb.options) + std::string(kCommonOptions);
    return text;
}

// Options fdsupctl takes before or after the verb.
struct GlobalOptions {
    std::optional<std::string> socket;
    bool json = false;
    bool help = false;
};

enum class Taken { no, yes, error };

// Consumes args[i] (and its value) if it is a global option.
Taken take_global_option(std::span<const std::string> args, size_t& i, GlobalOptions& options,
                         std::string& error) {
    const std::string& arg = args[i];
    if (arg == "-s" || arg == "--socket") {
        if (i + 1 >= args.size()) {
            error = arg + " needs a socket path";
            return Taken::error;
        }
        options.socket = args[++i];
    } else if (arg.starts_with("--socket=")) {
        options.socket = arg.substr(9);
    } else if (arg.starts_with("-s") && !arg.starts_with("--")) {
        options.socket = arg.substr(2);  // -s/path
    } else if (arg == "--json") {
        options.json = true;
    } else if (arg == "-h" || arg == "--help") {
        options.help = true;
    } else {
        return Taken::no;
    }
    return Taken::yes;
}

std::optional<std::string> non_empty_env(const char* name) {
    const char* value = std::getenv(name);
    if (value == nullptr || *value == '\0') return std::nullopt;
    return std::string(value);
}

}  // namespace

std::string man_page(std::string_view version) {
    std::string page = ".TH FDSUPCTL 8 \"2026\" \"fdsup " + std::string(version) + "\" \"System Administration\"\n";
    page += ".SH NAME\nfdsupctl \\- control a running fdsupd\n";
    page += ".SH SYNOPSIS\n.B fdsupctl\n.RB [ \\-s\n.IR SOCKET ]\n.RB [ \\-\\-json ]\n.I VERB\n.RI [ ARGS... ]\n";
    page += ".SH DESCRIPTION\nfdsupctl talks to\n.BR fdsupd (8)\nover its control socket, one JSON line each way.\n";
    page += ".SH OPTIONS\n"
            ".TP\n.BR \\-s \", \" \\-\\-socket \" \\fISOCKET\\fR\"\n"
            "The control socket; default: \\fB$FDSUP_CONTROL\\fR, else \\fB$RUNTIME_DIRECTORY\\fR/control.sock, else\n" +
            roff_escaped(kDefaultSocket) +
            ".\n.TP\n.B \\-\\-json\nPrint fdsupd's reply as received, one JSON object.\n"
            ".TP\n.BR \\-h \", \" \\-\\-help\nPrint the usage; \\fBfdsupctl help\\fR \\fIVERB\\fR for a verb's.\n";
    page += ".SH VERBS\n";
    for (const auto& verb : kVerbs) {
        page += ".TP\n.B " + roff_escaped(verb.synopsis) + "\n" + roff_escaped(verb.description);
        if (!verb.options.empty()) page += ".IP\n.nf\n" + roff_escaped(verb.options) + ".fi\n";
    }
    page += ".SH EXIT STATUS\n0 done; 1 fdsupd refused or the operation failed (the reason on standard error);\n"
            "2 usage error; 3 fdsupd cannot be reached, or went away before it answered (an\n"
            "in-place upgrade it did not come back from).\n";
    page += ".SH SEE ALSO\n.BR fdsupd (8),\n.BR fdsup.toml (5)\n";
    return page;
}


Environment Environment::from_process() {
    return Environment{non_empty_env("FDSUP_CONTROL"), non_empty_env("RUNTIME_DIRECTORY"),
                       non_empty_env("FDSUP_FD_SOCKET")};
}

std::string resolve_socket_path(const std::optional<std::string>& from_option, const Environment& env) {
    if (from_option) return *from_option;
    if (env.fdsup_control && !env.fdsup_control->empty()) return *env.fdsup_control;
    if (env.runtime_directory) {
        // systemd sets RUNTIME_DIRECTORY=a:b when RuntimeDirectory= names several.
        std::string directory = env.runtime_directory->substr(0, env.runtime_directory->find(':'));
        while (directory.size() > 1 && directory.ends_with('/')) directory.pop_back();
        if (!directory.empty()) return directory + (directory == "/" ? "" : "/") + "control.sock";
    }
    return kDefaultSocket;
}

ParseOutcome parse_arguments(std::span<const std::string> args, const Environment& env) {
    GlobalOptions options;
    std::string error;
    size_t i = 0;
    // Global options up to the verb.
    for (; i < args.size(); ++i) {
        if (args[i] == "--") {
            ++i;
            break;
        }
        if (!looks_like_option(args[i])) break;
        Taken taken = take_global_option(args, i, options, error);
        if (taken == Taken::error) return UsageError{error, synopsis_line(nullptr)};
        if (taken == Taken::no) return UsageError{"unknown option " + args[i], synopsis_line(nullptr)};
    }
    if (i >= args.size()) {
        if (options.help) return Help{general_help()};
        return UsageError{"no verb given (`fdsupctl help` lists them)", synopsis_line(nullptr)};
    }
    const std::string& verb_name = args[i++];
    const Verb* verb = find_verb(verb_name);
    if (verb == nullptr) return UsageError{"unknown verb " + in_quotes(verb_name), synopsis_line(nullptr)};

    // The verb's own arguments; global options may follow the verb too, up to "--".
    std::vector<std::string> verb_args;
    bool options_ended = false;
    for (; i < args.size(); ++i) {
        if (options_ended) {
            verb_args.push_back(args[i]);
            continue;
        }
        if (args[i] == "--") {
            options_ended = true;
            verb_args.push_back(args[i]);
            continue;
        }
        Taken taken = take_global_option(args, i, options, error);
        if (taken == Taken::error) return UsageError{error, synopsis_line(verb)};
        if (taken == Taken::no) verb_args.push_back(args[i]);
    }
    if (options.help) return Help{verb_help(*verb)};

    if (verb->build == nullptr) {  // help [VERB]
        auto positionals = positionals_only(verb->name, verb_args);
        if (!positionals) return UsageError{positionals.error().message, synopsis_line(verb)};
        if (positionals->empty()) return Help{general_help()};
        if (positionals->size() > 1) return UsageError{"help takes at most one verb", synopsis_line(verb)};
        const Verb* about = find_verb(positionals->front());
        if (about == nullptr) return UsageError{"unknown verb " + in_quotes(positionals->front()), synopsis_line(verb)};
        return Help{verb_help(*about)};
    }

    auto built = verb->build(verb->name, verb_args);
    if (!built) {
        return UsageError{built.error().message, built.error().show_synopsis ? synopsis_line(verb) : std::string()};
    }

    std::string socket_path = resolve_socket_path(options.socket, env);
    if (socket_path.empty()) return UsageError{"the socket path is empty", synopsis_line(verb)};
    constexpr size_t kMaxPath = sizeof(sockaddr_un::sun_path) - 1;  // room for the NUL
    if (socket_path.size() > kMaxPath) {
        return UsageError{"socket path too long for a unix socket (" + std::to_string(socket_path.size()) +
                              " bytes, at most " + std::to_string(kMaxPath) + "): " + socket_path,
                          synopsis_line(verb)};
    }
    if (built->exec && built->exec->fd_socket.empty()) {
        if (env.fdsup_fd_socket) {
            built->exec->fd_socket = *env.fdsup_fd_socket;
        } else {
            size_t slash = socket_path.find_last_of('/');
            built->exec->fd_socket = (slash == std::string::npos ? std::string(".") : socket_path.substr(0, slash)) +
                                     "/fds.sock";
        }
    }
    return Command{std::move(socket_path), options.json, std::string(verb->name), std::move(built->request),
                   built->follow, std::move(built->exec), built->top};
}

ParseOutcome parse_arguments(int argc, const char* const* argv, const Environment& env) {
    std::vector<std::string> args;
    for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
    return parse_arguments(std::span<const std::string>(args), env);
}

std::vector<std::string_view> verb_names() {
    std::vector<std::string_view> names;
    for (const auto& verb : kVerbs) names.push_back(verb.name);
    return names;
}

std::optional<std::string> help_text(std::string_view verb) {
    if (verb.empty()) return general_help();
    const Verb* found = find_verb(verb);
    if (found == nullptr) return std::nullopt;
    return verb_help(*found);
}

}  // namespace fdsup::ctl
