#include "control/commands.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <limits>
#include <string_view>

#include "config/values.h"
#include "control/event_json.h"
#include "control/metrics.h"
#include "control/status_json.h"
#include "rollout/rolling_restart.h"
#include "version.h"
#include "sys/signal_names.h"

namespace fdsup::control {
namespace {

constexpr std::string_view kCommands[] = {"status",  "start",   "stop",    "restart", "signal",
                                          "scale",   "reload",  "logs",    "shutdown", "upgrade",
                                          "version", "metrics", "rollout", "adopt", "events", "reopen-logs"};
constexpr long long kDefaultLogLines = 50;

Json reopen_logs_reply(const Outputs::Reopened& result) {
    Json reply{{"ok", result.failed.empty()}, {"reopened", result.reopened}, {"failed", result.failed}};
    if (!result.failed.empty())
        reply["error"] = std::to_string(result.failed.size()) + " of " +
                         std::to_string(result.failed.size() + result.reopened.size()) +
                         " log file(s) could not be reopened (each goes on with the file open before): " +
                         result.failed.front() + (result.failed.size() > 1 ? ", ..." : "");
    return reply;
}

Json operation_reply(const OperationResult& result) {
    Json instances = Json::array();
    for (const auto& report : result.instances) instances.push_back(instance_report_json(report));
    Json reply{{"ok", result.ok}, {"instances", std::move(instances)}};
    if (!result.ok) reply["error"] = result.error;
    return reply;
}

Json reload_reply(const ReloadResult& result) {
    Json instances = Json::array();
    for (const auto& report : result.instances) instances.push_back(instance_report_json(report));
    Json reply{
        {"ok", result.ok},
        {"config", result.config_path},
        {"workers",
         Json{{"added", result.workers_added},
              {"removed", result.workers_removed},
              {"changed", result.workers_changed},
              {"scaled", result.workers_scaled},
              {"unchanged", result.workers_unchanged},
              {"retuned", result.workers_retuned}}},
        {"sockets",
         Json{{"added", result.sockets_added},
              {"removed", result.sockets_removed},
              {"replaced", result.sockets_replaced},
              {"updated", result.sockets_updated}}},
        {"warnings", result.warnings},
        {"instances", std::move(instances)},
    };
    Json adopted = Json::array();
    for (const auto& a : result.sockets_adopted)
        adopted.push_back(Json{{"socket", a.socket}, {"pid", a.pid}, {"fd", a.fd}, {"bound", a.bound}});
    reply["sockets"]["adopted"] = std::move(adopted);
    if (!result.ok) {
        reply["error"] = result.error;
        reply["errors"] = result.config_errors;
    }
    return reply;
}

// "canary": N and "pause": "30s" of a restart or reload (CanaryOptions).
Result<CanaryOptions> canary_fields(const Json& request) {
    CanaryOptions canary;
    auto count = optional_int_field(request, "canary");
    if (!count) return std::unexpected(count.error());
    if (*count) {
        if (**count < 1 || **count > 100000) return fail("field \"canary\" must be between 1 and 100000");
        canary.count = static_cast<int>(**count);
    }
    if (auto it = request.find("pause"); it != request.end() && !it->is_null()) {
        if (!it->is_string()) return fail("field \"pause\" must be a duration such as \"30s\"");
        auto pause = config::parse_duration(it->get<std::string>());
        if (!pause) return fail("field \"pause\": invalid duration \"" + it->get<std::string>() + "\"");
        if (canary.count == 0) return fail("field \"pause\" needs \"canary\"");
        if (pause->count() <= 0) return fail("field \"pause\" must be more than 0 (leave it out to hold until promoted)");
        canary.pause = *pause;
    }
    return canary;
}

ProgressFn progress_to(const Responder& responder) {
    return [responder](const std::string& message) { responder.progress(message); };
}

Json instances_json(const std::vector<InstanceReport>& reports) {
    Json instances = Json::array();
    for (const auto& report : reports) instances.push_back(instance_report_json(report));
    return instances;
}

// A restart across an in-place upgrade: only its rolling restarts can be going on then
// (Supervisor::upgrade_refusal), and they are carried over. Its client is told to ask
// the next image for them (`rollout` with "wait"), and given what is done already.
void resume_restart_after_upgrade(const Supervisor& supervisor, const std::vector<std::string>& names,
                                  const Responder& responder,
                                  const std::shared_ptr<std::vector<InstanceReport>>& done_before) {
    responder.on_upgrade([&supervisor, names, done_before] {
        std::vector<std::string> rolling;
        for (const auto& name : names) {
            bool reported = std::any_of(done_before->begin(), done_before->end(),
                                        [&](const InstanceReport& r) { return r.worker == name; });
            const Worker* worker = supervisor.find_worker(name);
            if (!reported && worker != nullptr && worker->rollout &&
                std::find(rolling.begin(), rolling.end(), name) == rolling.end())
                rolling.push_back(name);
        }
        Json note{{"instances", instances_json(*done_before)}};
        if (!rolling.empty()) note["resume"] = Json{{"cmd", "rollout"}, {"names", rolling}, {"wait", true}};
        return note;
    });
}

// A command whose reply waits for the processes: start, stop, restart.
void run_names_command(CommandContext& context, const std::string& cmd, const Json& request,
                       const Responder& responder) {
    auto names = names_field(request, "names", true);
    if (!names) return responder.finish(error_reply(names.error().text()));
    auto done = [responder](OperationResult result) { responder.finish(operation_reply(result)); };
    Supervisor& s = context.supervisor;
    if (cmd == "start") return s.start_workers(*names, progress_to(responder), done);
    if (cmd == "stop") return s.stop_workers(*names, progress_to(responder), done);
    auto canary = canary_fields(request);
    if (!canary) return responder.finish(error_reply(canary.error().text()));
    auto done_before = std::make_shared<std::vector<InstanceReport>>();
    resume_restart_after_upgrade(s, *names, responder, done_before);
    s.restart_workers(
        *names, progress_to(responder), done,
        [done_before](const std::vector<InstanceReport>& part) {
            done_before->insert(done_before->end(), part.begin(), part.end());
        },
        *canary);
}

// ROLLOUT (protocol.h) of one worker: the rollout in progress, else the last one.
Json rollout_json(const Worker& worker) {
    const RollingRestart* rollout = worker.rollout ? worker.rollout.get() : worker.last_rollout.get();
    if (rollout == nullptr)
        return Json{{"worker", worker.config.name}, {"state", "none"}, {"total", 0}, {"replaced", 0},
                    {"replacing", 0}, {"stop_reason", nullptr}};
    const RolloutPlan& plan = rollout->plan;
    const char* state = !rollout->finished() ? "running" : plan.stopped() ? "stopped" : "done";
    Json pause_left = nullptr;
    if (plan.holding() && rollout->hold_until != Clock::time_point::max() && rollout->restarts_at_hold >= 0)
        pause_left = std::max<double>(0.0, std::chrono::duration<double>(rollout->hold_until - Clock::now()).count());
    return Json{{"worker", worker.config.name},
                {"state", state},
                {"total", plan.size()},
                {"replaced", plan.count(RolloutPlan::SlotState::done) + plan.count(RolloutPlan::SlotState::draining)},
                {"replacing", plan.count(RolloutPlan::SlotState::replacing)},
                {"stop_reason", rollout->stop_reason.empty() ? Json(nullptr) : Json(rollout->stop_reason)},
                {"phase", rollout->phase()},
                {"canary", plan.canary()},
                {"pause", plan.canary() > 0 ? Json(std::chrono::duration<double>(rollout->pause).count()) : Json(nullptr)},
                {"pause_left", pause_left},
                {"reason", rollout->reason.empty() ? Json(nullptr) : Json(rollout->reason)}};
}

Json rollout_reply(const Supervisor& supervisor, const std::vector<std::string>& names, bool wait) {
    Json rollouts = Json::array();
    std::vector<InstanceReport> reports;
    std::string unknown;
    for (const auto& name : names) {
        const Worker* worker = supervisor.find_worker(name);
        if (worker == nullptr) {  // removed while the client waited
            rollouts.push_back(Json{{"worker", name}, {"state", "none"}, {"total", 0}, {"replaced", 0},
                                    {"replacing", 0}, {"stop_reason", "the worker was removed"}});
            if (unknown.empty()) unknown = "worker " + name + " was removed";
            continue;
        }
        rollouts.push_back(rollout_json(*worker));
        if (!worker->rollout && worker->last_rollout)
            reports.insert(reports.end(), worker->last_rollout->outcome.begin(), worker->last_rollout->outcome.end());
        else if (!worker->rollout && unknown.empty())
            unknown = "worker " + name + ": no rolling restart is known to this fdsupd (none finished since it started " +
                      "or was last upgraded in place)";
    }
    Json reply{{"ok", true}, {"rollouts", std::move(rollouts)}, {"instances", instances_json(reports)}};
    if (!wait) return reply;
    // As `restart` says it (Supervisor's result_of).
    size_t failed = std::count_if(reports.begin(), reports.end(), [](const InstanceReport& r) { return !r.ok; });
    if (failed > 0) {
        auto first = std::find_if(reports.begin(), reports.end(), [](const InstanceReport& r) { return !r.ok; });
        reply["ok"] = false;
        reply["error"] = "restart failed for " + std::to_string(failed) + " of " + std::to_string(reports.size()) +
                         " instance" + (reports.size() == 1 ? "" : "s") + ": " + first->message;
    } else if (!unknown.empty()) {
        reply["ok"] = false;
        reply["error"] = unknown;
    }
    return reply;
}

// `rollout`: where the named workers' rolling restarts are; with "wait", once none is
// in progress any more. A wait goes on across an in-place upgrade (its client asks the
// next image the same), as the rollouts themselves do.
void run_rollout(CommandContext& context, const Json& request, const Responder& responder) {
    auto names = names_field(request, "names", true);
    if (!names) return responder.finish(error_reply(names.error().text()));
    auto wait = bool_field(request, "wait", false);
    if (!wait) return responder.finish(error_reply(wait.error().text()));
    std::string action;
    if (request.contains("action")) {
        auto given = string_field(request, "action");
        if (!given) return responder.finish(error_reply(given.error().text()));
        if (*given != "promote" && *given != "abort")
            return responder.finish(error_reply("field \"action\" must be \"promote\" or \"abort\""));
        if (*wait) return responder.finish(error_reply("field \"action\" cannot go with \"wait\""));
        action = *given;
    }
    Supervisor& supervisor = context.supervisor;
    for (const auto& name : *names)
        if (supervisor.find_worker(name) == nullptr) return responder.finish(error_reply("unknown worker \"" + name + "\""));
    if (!action.empty()) {
        std::vector<std::string> unique;  // "rollout abort web web" acts once
        for (const auto& name : *names)
            if (std::find(unique.begin(), unique.end(), name) == unique.end()) unique.push_back(name);
        *names = std::move(unique);
        // Every named worker is checked before any is acted on: all or nothing.
        for (const auto& name : *names)
            if (auto refusal = supervisor.steerable_rollout(name, action == "promote"); !refusal)
                return responder.finish(error_reply(refusal.error().text()));
        for (const auto& name : *names) {
            auto acted = action == "promote" ? supervisor.promote_rollout(name) : supervisor.abort_rollout(name);
            if (!acted) return responder.finish(error_reply(acted.error().text()));
            spdlog::info("control: rollout of {}: {}", name, action == "promote" ? "promoted" : "aborted");
        }
        return responder.finish(rollout_reply(supervisor, *names, false));
    }
    std::vector<std::shared_ptr<RollingRestart>> running;
    for (const auto& name : *names)
        if (const Worker* worker = supervisor.find_worker(name); worker->rollout &&
            std::find(running.begin(), running.end(), worker->rollout) == running.end())
            running.push_back(worker->rollout);
    if (!*wait || running.empty()) return responder.finish(rollout_reply(supervisor, *names, *wait));

    auto remaining = std::make_shared<size_t>(running.size());
    auto watches = std::make_shared<std::vector<std::pair<std::weak_ptr<RollingRestart>, uint64_t>>>();
    for (const auto& rollout : running) {
        uint64_t id = rollout->when_finished([&supervisor, names = *names, responder, remaining] {
            if (--*remaining == 0) responder.finish(rollout_reply(supervisor, names, true));
        });
        watches->emplace_back(rollout, id);
    }
    responder.on_upgrade([request] { return Json{{"resume", request}}; });
    responder.on_gone([watches] {
        for (auto& [rollout, id] : *watches)
            if (auto alive = rollout.lock()) alive->forget(id);
    });
}

void run_signal(CommandContext& context, const Json& request, const Responder& responder) {
    auto name = string_field(request, "name");
    if (!name) return responder.finish(error_reply(name.error().text()));
    std::optional<std::string> signal;
    if (auto it = request.find("signal"); it != request.end() && !it->is_null()) {
        if (it->is_string()) signal = it->get<std::string>();
        else if (it->is_number_integer()) signal = std::to_string(it->get<long long>());
        else return responder.finish(error_reply("field \"signal\" must be a signal name or number"));
    }
    auto sent = context.supervisor.signal_worker(*name, signal);
    if (!sent) return responder.finish(error_reply(sent.error().text()));
    responder.finish(Json{{"ok", true}, {"worker", *name}, {"signal", signal_name(sent->signal)}, {"pids", sent->pids}});
}

void run_scale(CommandContext& context, const Json& request, const Responder& responder) {
    auto name = string_field(request, "name");
    if (!name) return responder.finish(error_reply(name.error().text()));
    auto count = optional_int_field(request, "instances");
    if (!count) return responder.finish(error_reply(count.error().text()));
    if (!*count) return responder.finish(error_reply("missing field \"instances\""));
    if (**count < 0 || **count > 100000) return responder.finish(error_reply("instances must be between 0 and 100000"));
    const Worker* worker = context.supervisor.find_worker(*name);
    int from = worker ? static_cast<int>(worker->instances.size()) : 0;
    int to = static_cast<int>(**count);
    context.supervisor.scale_worker(*name, to, progress_to(responder),
                                    [responder, name = *name, from, to](OperationResult result) {
                                        Json reply = operation_reply(result);
                                        reply["worker"] = name;
                                        reply["from"] = from;
                                        reply["to"] = to;
                                        responder.finish(reply);
                                    });
}

// logs' "instance", "since" (a duration back from now: "10m") and "after" (the last
// seq a follower had, when it resumes across an in-place upgrade).
Result<LogFilter> logs_filter(const Json& request) {
    LogFilter filter;
    auto instance = optional_int_field(request, "instance");
    if (!instance) return std::unexpected(instance.error());
    if (*instance) {
        if (**instance < 0 || **instance > std::numeric_limits<int>::max())
            return fail("field \"instance\" must be a non-negative integer");
        filter.instance = static_cast<int>(**instance);
    }
    if (auto it = request.find("since"); it != request.end() && !it->is_null()) {
        if (!it->is_string()) return fail("field \"since\" must be a duration such as \"10m\"");
        auto since = config::parse_duration(it->get<std::string>());
        if (!since || *since <= config::Duration::zero())
            return fail("field \"since\": invalid duration \"" + it->get<std::string>() +
                        "\" (such as 30s, 10m or 1h)");
        filter.since = std::chrono::system_clock::now() - *since;
    }
    auto after = optional_int_field(request, "after");
    if (!after) return std::unexpected(after.error());
    if (*after && **after < 0) return fail("field \"after\" must not be negative");
    filter.after = static_cast<uint64_t>(after->value_or(0));
    return filter;
}

void run_logs(CommandContext& context, const Json& request, const Responder& responder) {
    auto name = string_field(request, "name");
    if (!name) return responder.finish(error_reply(name.error().text()));
    auto lines = optional_int_field(request, "lines");
    if (!lines) return responder.finish(error_reply(lines.error().text()));
    auto follow = bool_field(request, "follow", false);
    if (!follow) return responder.finish(error_reply(follow.error().text()));
    auto filter = logs_filter(request);
    if (!filter) return responder.finish(error_reply(filter.error().text()));
    if (context.supervisor.find_worker(*name) == nullptr)
        return responder.finish(error_reply("unknown worker \"" + *name + "\""));
    long long count = lines->value_or(kDefaultLogLines);
    if (count < 0) return responder.finish(error_reply("field \"lines\" must not be negative"));
    LogBook& book = context.supervisor.logs();
    Json recent = Json::array();
    for (const auto& line :
         book.recent(*name, static_cast<size_t>(std::min<long long>(count, LogBook::kMaxLines)), *filter))
        recent.push_back(log_line_json(line));
    Json reply{{"ok", true}, {"worker", *name}, {"lines", std::move(recent)}, {"follow", *follow}};
    if (!*follow) return responder.finish(reply);
    responder.finish_streaming(reply);
    if (!responder.connected()) return;
    // The last line this client has been through (sent, or passed over by its filter):
    // where the next image picks up after an in-place upgrade, the ring being carried.
    auto seen = std::make_shared<uint64_t>(book.next_seq() - 1);
    std::optional<int> instance = filter->instance;
    uint64_t id = book.follow(*name, [responder, seen, instance](const LogLine& line) {
        *seen = line.seq;
        if (!instance || line.instance == *instance) responder.stream(Json{{"log", log_line_json(line)}});
    });
    responder.on_gone([&book, id] { book.unfollow(id); });
    responder.on_upgrade([name = *name, seen, instance] {
        Json resume{{"cmd", "logs"}, {"name", name}, {"lines", LogBook::kMaxLines}, {"follow", true}, {"after", *seen}};
        if (instance) resume["instance"] = *instance;
        return Json{{"resume", std::move(resume)}};
    });
}

// adopt: a reload in which [sockets.SOCKET] is taken over from a running process
// (Supervisor::reload, sockets/take_over.h); the caller is held to ptrace's rule.
void run_adopt(CommandContext& context, const Json& request, const Responder& responder) {
    auto socket = string_field(request, "socket");
    if (!socket) return responder.finish(error_reply(socket.error().text()));
    auto pid = optional_int_field(request, "pid");
    if (!pid) return responder.finish(error_reply(pid.error().text()));
    if (!*pid || **pid <= 0 || **pid > std::numeric_limits<pid_t>::max())
        return responder.finish(error_reply("field \"pid\" must be a positive integer"));
    auto fd = optional_int_field(request, "fd");
    if (!fd) return responder.finish(error_reply(fd.error().text()));
    if (*fd && (**fd < 0 || **fd > std::numeric_limits<int>::max()))
        return responder.finish(error_reply("field \"fd\" must be a non-negative integer"));
    std::optional<ucred> caller =
        context.client_credentials ? context.client_credentials(responder.client_id()) : std::nullopt;
    if (!caller) return responder.finish(error_reply("the requesting client is gone"));
    Supervisor::AdoptRequest adopt{*socket, TakeOverRequest{static_cast<pid_t>(**pid), std::nullopt, caller}};
    if (*fd) adopt.from.fd = static_cast<int>(**fd);
    spdlog::info("control: adopt socket {} from pid {}{} (uid {})", *socket, **pid,
                 *fd ? " fd " + std::to_string(**fd) : std::string(), caller->uid);
    context.supervisor.reload(progress_to(responder),
                              [responder](ReloadResult result) { responder.finish(reload_reply(result)); }, {},
                              std::move(adopt));
}

// `events`: the kept events after "after" (of the named workers, and fdsupd's own),
// then, with "follow", each one as it happens. A slow reader is dropped as a `logs -f`
// one is (kMaxPendingOutput). Across an in-place upgrade the client resumes with
// "after": the last event this image handed to it, so that none is lost or repeated.
void run_events(CommandContext& context, const Json& request, const Responder& responder) {
    auto names = names_field(request, "names", false);
    if (!names) return responder.finish(error_reply(names.error().text()));
    auto follow = bool_field(request, "follow", false);
    if (!follow) return responder.finish(error_reply(follow.error().text()));
    auto after = optional_int_field(request, "after");
    if (!after) return responder.finish(error_reply(after.error().text()));
    if (*after && **after < 0) return responder.finish(error_reply("field \"after\" must not be negative"));
    EventLog& log = context.supervisor.events();
    // A worker removed since may still be asked about while events of it are kept.
    for (const auto& name : *names)
        if (context.supervisor.find_worker(name) == nullptr && !log.mentions(name))
            return responder.finish(error_reply("unknown worker \"" + name + "\""));
    auto pick = [names = *names](const Event& e) {
        return names.empty() || e.worker.empty() || std::find(names.begin(), names.end(), e.worker) != names.end();
    };
    Json kept = Json::array();
    for (const auto& event : log.after(static_cast<uint64_t>(after->value_or(0)), pick)) kept.push_back(event_json(event));
    Json reply{{"ok", true}, {"events", std::move(kept)}, {"follow", *follow}};
    if (!*follow) return responder.finish(reply);
    responder.finish_streaming(reply);
    if (!responder.connected()) return;
    auto last = std::make_shared<uint64_t>(log.last_seq());  // the last one handed to this client (or passed over)
    uint64_t id = log.follow([responder, pick, last](const Event& event) {
        *last = event.seq;
        if (pick(event)) responder.stream(Json{{"event", event_json(event)}});
    });
    responder.on_gone([&log, id] { log.unfollow(id); });
    responder.on_upgrade([names = *names, last] {
        return Json{{"resume", Json{{"cmd", "events"}, {"names", names}, {"follow", true}, {"after", *last}}}};
    });
}

}  // namespace

void handle_request(CommandContext& context, const Json& request, const Responder& responder) {
    auto cmd_field = request.find("cmd");
    if (cmd_field == request.end() || !cmd_field->is_string())
        return responder.finish(error_reply("missing field \"cmd\" (a string)"));
    const std::string& cmd = cmd_field->get_ref<const std::string&>();
    spdlog::debug("control: {}", cmd);
    Supervisor& supervisor = context.supervisor;
    bool is_command = std::find(std::begin(kCommands), std::end(kCommands), cmd) != std::end(kCommands);
    ++context.requests[is_command ? cmd : "unknown"];  // not every string a client sends: a bounded set

    if (cmd == "metrics") {
        supervisor.gather_usage();  // the usage is gathered when asked for, never on a timer
        return responder.finish(
            Json{{"ok", true}, {"text", metrics_text(supervisor, context.requests, context.notify_dropped())}});
    }

    if (cmd == "status") {
        auto names = names_field(request, "names", false);
        if (!names) return responder.finish(error_reply(names.error().text()));
        const std::vector<std::string>& asked = *names;
        supervisor.gather_usage([&](const Worker& w) {
            return asked.empty() || std::find(asked.begin(), asked.end(), w.config.name) != asked.end();
        });
        auto reply = status_reply(supervisor, context.notify_dropped(), *names);
        if (!reply) return responder.finish(error_reply(reply.error().text()));
        return responder.finish_encoded(std::move(*reply));
    }
    if (cmd == "start" || cmd == "stop" || cmd == "restart") return run_names_command(context, cmd, request, responder);
    if (cmd == "signal") return run_signal(context, request, responder);
    if (cmd == "scale") return run_scale(context, request, responder);
    if (cmd == "logs") return run_logs(context, request, responder);
    if (cmd == "rollout") return run_rollout(context, request, responder);
    if (cmd == "events") return run_events(context, request, responder);
    if (cmd == "reload") {
        auto canary = canary_fields(request);
        if (!canary) return responder.finish(error_reply(canary.error().text()));
        return supervisor.reload(
            progress_to(responder), [responder](ReloadResult result) { responder.finish(reload_reply(result)); },
            *canary);
    }
    if (cmd == "adopt") return run_adopt(context, request, responder);
    if (cmd == "reopen-logs") return responder.finish(reopen_logs_reply(supervisor.reopen_logs()));
    if (cmd == "shutdown") {
        spdlog::info("control: shutdown requested");
        return context.shutdown([responder, &supervisor] {
            std::string message = "all workers stopped; fdsupd is exiting";
            if (supervisor.shutdown_forced()) message += " (some had to be SIGKILLed after their stop_timeout)";
            responder.finish(Json{{"ok", true}, {"message", message}});
        });
    }
    if (cmd == "upgrade") {
        std::optional<std::string> binary;
        if (request.contains("binary")) {
            auto given = string_field(request, "binary");
            if (!given) return responder.finish(error_reply(given.error().text()));
            if (given->empty() || given->front() != '/')
                return responder.finish(error_reply("field \"binary\" must be an absolute path"));
            binary = *given;
        }
        spdlog::info("control: upgrade requested{}", binary ? " from " + *binary : "");
        return context.upgrade(std::move(binary), responder);
    }
    if (cmd == "version") {
        return responder.finish(Json{{"ok", true},
                                     {"version", kVersion},
                                     {"protocol", kProtocolVersion},
                                     {"state_format", kStateVersion},
                                     {"pid", ::getpid()},
                                     {"upgrades", context.supervisor.upgrades()}});
    }
    std::string known;
    for (auto c : kCommands) known += (known.empty() ? "" : ", ") + std::string(c);
    responder.finish(error_reply("unknown command \"" + cmd + "\" (commands: " + known + ")"));
}

}  // namespace fdsup::control
