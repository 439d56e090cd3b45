#include "control/commands.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <string_view>

#include "config/values.h"
#include "control/metrics.h"
#include "control/status_json.h"
#include "version.h"
#include "sys/signal_names.h"

namespace fdsup::control {
namespace {

constexpr std::string_view kCommands[] = {"status", "start",    "stop",     "restart", "signal", "scale",
                                          "reload", "logs",     "shutdown", "upgrade", "version", "metrics"};
constexpr long long kDefaultLogLines = 50;

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
              {"unchanged", result.workers_unchanged}}},
        {"sockets",
         Json{{"added", result.sockets_added},
              {"removed", result.sockets_removed},
              {"replaced", result.sockets_replaced},
              {"updated", result.sockets_updated}}},
        {"warnings", result.warnings},
        {"instances", std::move(instances)},
    };
    if (!result.ok) {
        reply["error"] = result.error;
        reply["errors"] = result.config_errors;
    }
    return reply;
}

ProgressFn progress_to(const Responder& responder) {
    return [responder](const std::string& message) { responder.progress(message); };
}

// A command whose reply waits for the processes: start, stop, restart.
void run_names_command(CommandContext& context, const std::string& cmd, const Json& request,
                       const Responder& responder) {
    auto names = names_field(request, "names", true);
    if (!names) return responder.finish(error_reply(names.error().text()));
    auto done = [responder](OperationResult result) { responder.finish(operation_reply(result)); };
    Supervisor& s = context.supervisor;
    if (cmd == "start") s.start_workers(*names, progress_to(responder), done);
    else if (cmd == "stop") s.stop_workers(*names, progress_to(responder), done);
    else s.restart_workers(*names, progress_to(responder), done);
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

void run_logs(CommandContext& context, const Json& request, const Responder& responder) {
    auto name = string_field(request, "name");
    if (!name) return responder.finish(error_reply(name.error().text()));
    auto lines = optional_int_field(request, "lines");
    if (!lines) return responder.finish(error_reply(lines.error().text()));
    auto follow = bool_field(request, "follow", false);
    if (!follow) return responder.finish(error_reply(follow.error().text()));
    if (context.supervisor.find_worker(*name) == nullptr)
        return responder.finish(error_reply("unknown worker \"" + *name + "\""));
    long long count = lines->value_or(kDefaultLogLines);
    if (count < 0) return responder.finish(error_reply("field \"lines\" must not be negative"));
    LogBook& book = context.supervisor.logs();
    Json recent = Json::array();
    for (const auto& line : book.recent(*name, static_cast<size_t>(std::min<long long>(count, LogBook::kMaxLines))))
        recent.push_back(log_line_json(line));
    responder.finish(Json{{"ok", true}, {"worker", *name}, {"lines", std::move(recent)}, {"follow", *follow}});
    if (!*follow || !responder.connected()) return;
    uint64_t id = book.follow(*name, [responder](const LogLine& line) {
        responder.stream(Json{{"log", log_line_json(line)}});
    });
    responder.on_gone([&book, id] { book.unfollow(id); });
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

    if (cmd == "metrics") return responder.finish(Json{{"ok", true}, {"text", metrics_text(supervisor, context.requests, context.notify_dropped())}});

    if (cmd == "status") {
        auto names = names_field(request, "names", false);
        if (!names) return responder.finish(error_reply(names.error().text()));
        auto reply = status_reply(supervisor, context.notify_dropped(), *names);
        if (!reply) return responder.finish(error_reply(reply.error().text()));
        return responder.finish_encoded(std::move(*reply));
    }
    if (cmd == "start" || cmd == "stop" || cmd == "restart") return run_names_command(context, cmd, request, responder);
    if (cmd == "signal") return run_signal(context, request, responder);
    if (cmd == "scale") return run_scale(context, request, responder);
    if (cmd == "logs") return run_logs(context, request, responder);
    if (cmd == "reload") {
        return supervisor.reload(progress_to(responder),
                                 [responder](ReloadResult result) { responder.finish(reload_reply(result)); });
    }
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
