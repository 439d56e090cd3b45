#include "ctl/render.h"

#include "ctl/event_line.h"
#include "ctl/terminal_safe.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <exception>
#include <utility>
#include <vector>

#include "version.h"

namespace fdsup::ctl {

namespace {

// The field `key` of `object`, or nullptr when `object` is not an object or lacks it.
const Json* field(const Json& object, const char* key) {
    if (!object.is_object()) return nullptr;
    auto it = object.find(key);
    return it == object.end() ? nullptr : &*it;
}

std::string text(const Json& object, const char* key) {
    return printable(field_or_null(object, key));
}

bool is_empty_value(const Json& value) {
    return value.is_null() || ((value.is_array() || value.is_object() || value.is_string()) && value.empty());
}

// ["db", "cache"] -> "db, cache"; a non-list as its printable text; null -> "".
std::string join_list(const Json& list, std::string_view separator = ", ") {
    if (list.is_null()) return "";
    if (!list.is_array()) return printable(list);
    std::string joined;
    for (const auto& item : list) {
        if (!joined.empty()) joined += separator;
        joined += printable(item);
    }
    return joined;
}

// "web[0]"; just "web" when the instance is not known.
std::string instance_label(const Json& worker_name, const Json& index) {
    std::string label = printable(worker_name);
    if (!index.is_null()) label += "[" + printable(index) + "]";
    return label;
}

std::string format_ready(const Json& value) {
    if (value.is_boolean()) return value.get<bool>() ? "yes" : "no";
    return printable(value);
}

}  // namespace

// The HEALTH column: the last probe check ("ok 1.2ms", "fail 2/3"), "checking" before
// the first, "accepting" once ready = "accepting" saw it; "-" without health checks.
std::string format_health(const Json& health) {
    if (!health.is_object()) return "-";
    const Json& last = field_or_null(health, "last");
    if (last.is_object()) {
        if (field_or_null(last, "passed") == Json(true)) {
            const Json& ms = field_or_null(last, "latency_ms");
            if (!ms.is_number()) return "ok";
            char buffer[32];
            std::snprintf(buffer, sizeof buffer, "ok %.1fms", ms.get<double>());
            return buffer;
        }
        const Json& allowed = field_or_null(health, "failures_allowed");
        const Json& failures = field_or_null(health, "failures");
        if (allowed.is_number_integer() && failures.is_number_integer() && failures.get<int64_t>() > 0)
            return "fail " + printable(failures) + "/" + printable(allowed);
        return "fail";
    }
    if (!field_or_null(health, "checking").is_null()) return "checking";
    if (field_or_null(health, "accepting").is_string()) return "accepting";
    return "-";
}

namespace {

// Under the table: a failed last check, and a replacement the liveness probe made.
void health_notes(const std::string& label, const Json& health, std::vector<std::string>& notes) {
    if (!health.is_object()) return;
    const Json& last = field_or_null(health, "last");
    if (last.is_object() && field_or_null(last, "passed") == Json(false))
        notes.push_back(label + ": probe failed: " + text(last, "detail"));
    const Json& replaced = field_or_null(health, "replaced");
    if (replaced.is_string()) notes.push_back(label + ": replaced by its liveness probe: " + printable(replaced));
}

// "KILL" -> "SIGKILL", 9 -> "signal 9".
std::string signal_name(const Json& value) {
    if (value.is_string()) {
        const auto& name = value.get_ref<const std::string&>();
        return name.starts_with("SIG") ? name : "SIG" + name;
    }
    if (value.is_number_integer()) return "signal " + printable(value);
    return printable(value);
}

// ["web", "api"] -> "web (scm), api (scm)": what is taken over SCM_RIGHTS, marked so.
std::string scm_list(const Json& names, std::string_view separator) {
    if (!names.is_array()) return printable(names) + " (scm)";
    std::string joined;
    for (const auto& name : names) {
        if (!joined.empty()) joined += separator;
        joined += printable(name) + " (scm)";
    }
    return joined;
}

// {"4": "admin", "3": "http"} -> "3=http 4=admin" (by fd number, not as strings sort),
// then the sockets fetched over SCM_RIGHTS: "3=http metrics (scm)".
std::string format_fds(const Json& fds, const Json& scm_rights) {
    std::string fetched = is_empty_value(scm_rights) ? "" : scm_list(scm_rights, " ");
    if (is_empty_value(fds)) return fetched.empty() ? "-" : fetched;
    if (!fds.is_object()) return printable(fds) + (fetched.empty() ? "" : " " + fetched);
    std::vector<std::pair<long long, std::string>> entries;
    for (const auto& [key, name] : fds.items()) {
        long long number = -1;
        auto [end, error] = std::from_chars(key.data(), key.data() + key.size(), number);
        if (error != std::errc{} || end != key.data() + key.size()) number = -1;  // odd keys sort first
        entries.emplace_back(number, key + "=" + printable(name));
    }
    std::stable_sort(entries.begin(), entries.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    std::string joined;
    for (const auto& [number, entry] : entries) {
        if (!joined.empty()) joined += ' ';
        joined += entry;
    }
    if (!fetched.empty()) joined += " " + fetched;
    return joined;
}

using Row = std::vector<std::string>;

// Columns are as wide as their widest cell (display_width).
std::string format_table(const std::vector<Row>& rows) {
    std::vector<size_t> widths;
    for (const auto& row : rows) {
        if (widths.size() < row.size()) widths.resize(row.size(), 0);
        for (size_t column = 0; column < row.size(); ++column)
            widths[column] = std::max(widths[column], display_width(row[column]));
    }
    std::string table;
    for (const auto& row : rows) {
        std::string line;
        for (size_t column = 0; column < row.size(); ++column) {
            line += row[column];
            if (column + 1 < row.size()) line += std::string(widths[column] - display_width(row[column]) + 2, ' ');
        }
        while (line.ends_with(' ')) line.pop_back();
        table += line + "\n";
    }
    return table;
}

std::string status_header(const Json& supervisor) {
    return "fdsupd " + text(supervisor, "version") + ", pid " + text(supervisor, "pid") + ", up " +
           format_uptime(field_or_null(supervisor, "uptime_s")) + ", config " + text(supervisor, "config") + "\n";
}

// One row per instance of every worker, and the notes to print under the table.
void worker_rows(const Json& workers, std::vector<Row>& rows, std::vector<std::string>& notes) {
    for (const auto& worker : workers) {
        const Json& name = field_or_null(worker, "name");
        std::string fds = format_fds(field_or_null(worker, "fds"), field_or_null(worker, "scm_rights"));
        const Json& instances = field_or_null(worker, "instances");
        if (instances.is_array() && !instances.empty()) {
            for (const auto& instance : instances) {
                // A rollout shows two rows for one index: the old process and its replacement.
                std::string state = text(instance, "state");
                if (field_or_null(instance, "draining") == Json(true)) state = "draining";
                if (state == "idle") state += " (on demand)";
                if (field_or_null(instance, "replacement") == Json(true)) state += " (new)";
                else if (field_or_null(instance, "retiring") == Json(true)) state += " (old)";
                const Json& usage = field_or_null(instance, "usage");
                rows.push_back({printable(name), text(instance, "index"), state, text(instance, "pid"),
                                format_cpu_percent(field_or_null(usage, "cpu_percent")),
                                format_memory(field_or_null(usage, "memory_bytes")),
                                format_uptime(field_or_null(instance, "uptime_s")),
                                text(instance, "restarts"), format_last_exit(field_or_null(instance, "last_exit")),
                                format_ready(field_or_null(instance, "ready")),
                                format_health(field_or_null(instance, "health")), fds});
            }
        } else {
            // Scaled to 0 (or an odd reply): the worker still gets a row, with its state.
            rows.push_back({printable(name), "-", text(worker, "state") + (text(worker, "state") == "idle" ? " (on demand)" : ""), "-", "-", "-", "-", "-", "-", "-", "-", fds});
        }
        const Json& waiting_for = field_or_null(worker, "waiting_for");
        if (!is_empty_value(waiting_for))
            notes.push_back(printable(name) + ": waiting for " + join_list(waiting_for) + " to be ready");
        const Json& rollout = field_or_null(worker, "rollout");
        if (rollout.is_object()) {
            const Json& reason = field_or_null(rollout, "reason");
            std::string phase = text(rollout, "phase");
            std::string held;
            if (phase == "paused") {
                const Json& left = field_or_null(rollout, "pause_left");
                held = left.is_number() ? "; canary holding, " + format_duration(left.get<double>()) + " left"
                                        : "; canary holding until promoted";
                held += " (fdsupctl rollout promote|abort " + printable(name) + ")";
            } else if (phase == "canary") {
                held = "; canary of " + text(rollout, "canary") + " starting";
            } else if (phase == "aborted") {
                held = "; aborted";
            }
            notes.push_back(printable(name) + ": rolling restart in progress" +
                            (reason.is_string() ? " (" + printable(reason) + ")" : "") + ", " +
                            text(rollout, "replaced") + " of " + text(rollout, "total") + " replaced" + held);
        }
        const Json& fd_store = field_or_null(worker, "fd_store");
        if (fd_store.is_object()) {
            const Json& slots = field_or_null(fd_store, "instances");
            if (slots.is_array())
                for (const auto& slot : slots) {
                    std::string names;
                    const Json& entries = field_or_null(slot, "names");
                    if (entries.is_array())
                        for (const auto& entry : entries)
                            names += (names.empty() ? "" : ", ") + text(entry, "name") + " (" + text(entry, "fds") + ")";
                    notes.push_back(instance_label(name, field_or_null(slot, "index")) + ": fd store: " +
                                    text(slot, "fds") + " of " + text(fd_store, "max") + " fds: " + names);
                }
        }
        if (!instances.is_array()) continue;
        for (const auto& instance : instances) {
            std::string label = instance_label(name, field_or_null(instance, "index"));
            const Json& status = field_or_null(instance, "status");
            if (status.is_string()) notes.push_back(label + ": status: " + printable(status));
            const Json& last_error = field_or_null(instance, "last_error");
            if (!last_error.is_null()) notes.push_back(label + ": " + printable(last_error));
            health_notes(label, field_or_null(instance, "health"), notes);
            const Json& recycled = field_or_null(instance, "recycled");
            if (recycled.is_string()) notes.push_back(label + ": replaced by recycling: " + printable(recycled));
            const Json& last_exit = field_or_null(instance, "last_exit");
            if (field_or_null(last_exit, "oom_kill") == Json(true))
                notes.push_back(label + ": last exit: " + text(last_exit, "text"));
        }
    }
}

// `rollout`: one line per worker, where its rolling restart is.
std::string render_rollouts(const Json& reply) {
    std::string out;
    const Json& rollouts = field_or_null(reply, "rollouts");
    if (!rollouts.is_array()) return out;
    for (const auto& rollout : rollouts) {
        std::string name = text(rollout, "worker");
        std::string state = text(rollout, "state");
        if (state == "none") {
            out += name + ": no rolling restart known\n";
            continue;
        }
        std::string phase = text(rollout, "phase");
        std::string line = name + ": " + (state == "running" ? phase : state) + ", " + text(rollout, "replaced") +
                           " of " + text(rollout, "total") + " replaced";
        if (field_or_null(rollout, "replacing").is_number() && field_or_null(rollout, "replacing") != Json(0))
            line += ", " + text(rollout, "replacing") + " starting";
        const Json& canary = field_or_null(rollout, "canary");
        if (canary.is_number() && canary != Json(0)) line += "; canary " + text(rollout, "canary");
        if (state == "running" && phase == "paused") {
            const Json& left = field_or_null(rollout, "pause_left");
            line += left.is_number() ? ", holding, " + format_duration(left.get<double>()) + " left"
                                     : ", holding until promoted";
        }
        const Json& reason = field_or_null(rollout, "reason");
        if (reason.is_string()) line += " (" + printable(reason) + ")";
        const Json& stop_reason = field_or_null(rollout, "stop_reason");
        if (stop_reason.is_string()) line += ": " + printable(stop_reason);
        out += line + "\n";
    }
    return out;
}

// "added api" for a non-empty group, nothing for an empty one.
void add_group(std::vector<std::string>& groups, const char* label, const Json& names) {
    if (is_empty_value(names)) return;
    groups.push_back(std::string(label) + " " + join_list(names));
}

std::string join_groups(const std::vector<std::string>& groups) {
    std::string joined;
    for (const auto& group : groups) {
        if (!joined.empty()) joined += "; ";
        joined += group;
    }
    return joined;
}

std::string error_text(const Json& reply) {
    std::string err = "fdsupctl: ";
    const Json& error = field_or_null(reply, "error");
    err += error.is_null() ? "fdsupd reported a failure without saying why" : printable(error);
    err += "\n";
    const Json& errors = field_or_null(reply, "errors");
    if (errors.is_array()) {
        for (const auto& line : errors) err += printable(line) + "\n";
    } else if (!errors.is_null()) {
        err += printable(errors) + "\n";
    }
    return err;
}

// "3 log files reopened", and on failure each one that was not (on standard error).
std::string render_reopened(const Json& reply) {
    const Json& reopened = field_or_null(reply, "reopened");
    size_t count = reopened.is_array() ? reopened.size() : 0;
    return std::to_string(count) + " log file" + (count == 1 ? "" : "s") + " reopened\n";
}

Rendered render_verb(std::string_view verb, const Json& request, const Json& reply) {
    bool ok = reply_ok(reply);
    Rendered rendered;
    if (verb == "start" || verb == "stop" || verb == "restart" || verb == "scale") {
        rendered.out = render_instances(reply);  // also on failure: what was done before it
    } else if (!ok) {
        // Other verbs report nothing useful besides the error when they fail.
    } else if (verb == "status") {
        rendered.out = render_status(reply);
    } else if (verb == "signal") {
        rendered.out = render_signal(request, reply);
    } else if (verb == "reload" || verb == "adopt") {
        rendered = render_reload(reply);
    } else if (verb == "logs") {
        rendered.out = render_logs(reply);
    } else if (verb == "rollout") {
        rendered.out = render_rollouts(reply);
    } else if (verb == "events") {
        rendered.out = render_events(reply);
    } else if (verb == "version") {
        rendered.out = render_version(reply);
    } else if (verb == "metrics") {
        const Json& metrics = field_or_null(reply, "text");
        if (metrics.is_string()) rendered.out = metrics.get<std::string>();  // already lines
    } else if (verb == "upgrade") {
        rendered.out = "fdsupd upgraded in place: " + text(reply, "old_version") + " -> " + text(reply, "version") +
                       " (pid " + text(reply, "pid") + ", state format " + text(reply, "state_format") + ", upgrade #" +
                       text(reply, "upgrades") + ")\n";
    } else if (verb == "reopen-logs") {
        rendered.out = render_reopened(reply);
    } else if (verb == "shutdown") {
        const Json& message = field_or_null(reply, "message");
        if (!message.is_null()) rendered.out = printable(message) + "\n";
    } else {
        rendered.out = printable(reply) + "\n";
    }
    if ((verb == "reload" || verb == "adopt") && !ok) {
        // An invalid config may still come with warnings about the parts that parsed;
        // a valid one that failed while applying says what happened to each instance.
        rendered.err = render_reload(reply).err;
        rendered.out = render_instances(reply);
    }
    if (verb == "reopen-logs" && !ok) {
        rendered.out = render_reopened(reply);
        const Json& failed = field_or_null(reply, "failed");
        if (failed.is_array())
            for (const auto& line : failed) rendered.err += "fdsupctl: not reopened: " + printable(line) + "\n";
        return rendered;
    }
    if (!ok) rendered.err += error_text(reply);
    return rendered;
}

}  // namespace

std::string printable(const Json& value) {
    switch (value.type()) {
        case Json::value_t::null: return "-";
        case Json::value_t::discarded: return "-";
        case Json::value_t::string: return terminal_safe(value.get_ref<const std::string&>());
        default: return terminal_safe(value.dump(-1, ' ', false, Json::error_handler_t::replace));
    }
}

const Json& field_or_null(const Json& object, const char* key) {
    static const Json null_value;
    const Json* value = field(object, key);
    return value != nullptr ? *value : null_value;
}

// In characters (UTF-8 code points), so that a worker named in another script does not
// skew a table.
size_t display_width(std::string_view text) {
    return static_cast<size_t>(std::count_if(text.begin(), text.end(), [](char c) {
        return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    }));
}

std::string format_uptime(const Json& value) {
    if (value.is_number()) return format_duration(value.get<double>());
    return printable(value);
}

bool reply_ok(const Json& reply) {
    const Json* ok = field(reply, "ok");
    return ok != nullptr && ok->is_boolean() && ok->get<bool>();
}

std::string client_version_line() {
    return std::string("fdsupctl ") + kVersion + " (protocol " + std::to_string(control::kProtocolVersion) + ")";
}

std::string format_duration(double seconds) {
    if (std::isnan(seconds)) return "-";
    seconds = std::clamp(seconds, 0.0, 1e12);  // keeps the conversions below defined
    if (seconds < 1) {
        // The epsilon keeps 0.29 (289.999... in binary) at 290ms.
        return std::to_string(static_cast<long long>(std::floor(seconds * 1000 + 1e-6))) + "ms";
    }
    auto whole = static_cast<long long>(seconds);
    char buffer[64];
    if (whole < 60) {
        std::snprintf(buffer, sizeof buffer, "%llds", whole);
    } else if (whole < 3600) {
        std::snprintf(buffer, sizeof buffer, "%lldm%02llds", whole / 60, whole % 60);
    } else if (whole < 86400) {
        std::snprintf(buffer, sizeof buffer, "%lldh%02lldm", whole / 3600, whole % 3600 / 60);
    } else {
        std::snprintf(buffer, sizeof buffer, "%lldd%02lldh", whole / 86400, whole % 86400 / 3600);
    }
    return buffer;
}

std::string format_last_exit(const Json& last_exit) {
    if (!last_exit.is_object()) return printable(last_exit);
    if (field_or_null(last_exit, "oom_kill") == Json(true)) return "OOM-killed";
    const Json& signal = field_or_null(last_exit, "signal");
    if (!signal.is_null()) return signal_name(signal);
    const Json& code = field_or_null(last_exit, "code");
    if (code.is_number_integer()) return "exit " + printable(code);
    return printable(code);
}

std::optional<double> figure_of(const Json& value) {
    if (!value.is_number()) return std::nullopt;
    double number = value.get<double>();
    if (!std::isfinite(number) || number < 0) return std::nullopt;
    return number;
}

std::string cpu_text(std::optional<double> percent) {
    if (!percent) return "-";
    char text[32];
    std::snprintf(text, sizeof text, "%.1f", *percent);
    return text;
}

std::string memory_text(std::optional<double> bytes) {
    if (!bytes) return "-";
    char text[32];
    if (*bytes < 1024) {
        std::snprintf(text, sizeof text, "%.0fB", *bytes);
        return text;
    }
    constexpr std::string_view kUnits = "KMGTPE";
    double value = *bytes / 1024;
    size_t unit = 0;
    while (value >= 1024 && unit + 1 < kUnits.size()) {
        value /= 1024;
        ++unit;
    }
    // K whole: a tenth of a kilobyte says nothing; a tenth of a megabyte may.
    std::snprintf(text, sizeof text, unit == 0 || value >= 99.95 ? "%.0f%c" : "%.1f%c", value, kUnits[unit]);
    return text;
}

std::string format_memory(const Json& bytes) { return memory_text(figure_of(bytes)); }

std::string format_cpu_percent(const Json& percent) { return cpu_text(figure_of(percent)); }

std::string format_log_time(double unix_seconds) {
    // Outside years 1..9999 (or NaN) there is no sensible calendar time to print.
    if (!(unix_seconds > -6e10 && unix_seconds < 2.5e11)) return printable(Json(unix_seconds));
    double whole = std::floor(unix_seconds);
    // Rounded: 1763900000.123 is 1763900000.12299990... as a double.
    long long millis = std::llround((unix_seconds - whole) * 1000);
    if (millis >= 1000) {
        whole += 1;
        millis -= 1000;
    }
    auto seconds = static_cast<std::time_t>(whole);
    std::tm local{};
    if (localtime_r(&seconds, &local) == nullptr) return printable(Json(unix_seconds));
    char date[64];
    std::strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S", &local);
    char buffer[96];
    std::snprintf(buffer, sizeof buffer, "%s.%03lld", date, millis);
    return buffer;
}

std::string render_log_line(const Json& logline) {
    const Json& time = field_or_null(logline, "time");
    std::string line = time.is_number() ? format_log_time(time.get<double>()) : printable(time);
    line += " " + instance_label(field_or_null(logline, "worker"), field_or_null(logline, "instance"));
    const Json& stream = field_or_null(logline, "stream");
    if (stream.is_string() && stream.get_ref<const std::string&>() == "stderr") line += " stderr";
    line += ": ";
    const Json& text_value = field_or_null(logline, "text");
    if (!text_value.is_null()) line += printable(text_value);  // an empty line stays empty
    return line + "\n";
}

std::string render_progress(const Json& progress_line) {
    return "  " + text(progress_line, "progress") + "\n";
}

std::string render_status(const Json& reply) {
    std::string out = status_header(field_or_null(reply, "supervisor")) + "\n";

    const Json& workers = field_or_null(reply, "workers");
    std::vector<Row> rows{{"WORKER", "INSTANCE", "STATE", "PID", "CPU%", "MEM", "UPTIME", "RESTARTS", "LAST-EXIT", "READY", "HEALTH", "FDS"}};
    std::vector<std::string> notes;
    if (workers.is_array()) worker_rows(workers, rows, notes);
    if (rows.size() == 1) {
        out += "no workers\n";
    } else {
        out += format_table(rows);
    }
    for (const auto& note : notes) out += note + "\n";

    const Json& sockets = field_or_null(reply, "sockets");
    if (sockets.is_array() && !sockets.empty()) {
        std::vector<Row> socket_rows{{"SOCKET", "LISTEN", "BOUND", "USED-BY"}};
        for (const auto& socket : sockets) {
            // Workers that inherit it, then those that fetch it over SCM_RIGHTS.
            const Json& used_by = field_or_null(socket, "used_by");
            const Json& fetched_by = field_or_null(socket, "used_by_scm_rights");
            std::string users = is_empty_value(used_by) ? "" : join_list(used_by);
            if (!is_empty_value(fetched_by)) users += (users.empty() ? "" : ", ") + scm_list(fetched_by, ", ");
            // A socket taken over from a running server says from which (fdsupctl adopt).
            const Json& from = field_or_null(socket, "adopted_from");
            std::string bound = text(socket, "bound");
            if (from.is_object()) bound += " (from pid " + text(from, "pid") + ")";
            socket_rows.push_back({text(socket, "name"), text(socket, "listen"), bound, users.empty() ? "-" : users});
        }
        out += "\n" + format_table(socket_rows);
    }
    return out;
}

std::string render_instances(const Json& reply) {
    std::string out;
    const Json& instances = field_or_null(reply, "instances");
    if (!instances.is_array()) return out;
    for (const auto& instance : instances) {
        const Json& message = field_or_null(instance, "message");
        if (!message.is_null()) {
            out += printable(message) + "\n";
        } else {
            out += instance_label(field_or_null(instance, "worker"), field_or_null(instance, "index")) + ": " +
                   text(instance, "state") + "\n";
        }
    }
    return out;
}

std::string render_signal(const Json& request, const Json& reply) {
    const Json* worker = field(reply, "worker");
    std::string name = printable(worker != nullptr ? *worker : field_or_null(request, "name"));
    const Json& pids = field_or_null(reply, "pids");
    if (is_empty_value(pids)) return name + ": no running instance to signal\n";
    const Json* signal = field(reply, "signal");
    if (signal == nullptr || signal->is_null()) signal = field(request, "signal");
    std::string sent = signal != nullptr && !signal->is_null() ? signal_name(*signal) : "its reload signal";
    return "sent " + sent + " to " + name + ": pids " + join_list(pids) + "\n";
}

Rendered render_reload(const Json& reply) {
    Rendered rendered;
    const Json& workers = field_or_null(reply, "workers");
    std::vector<std::string> groups;
    for (const char* group : {"added", "removed", "changed", "scaled", "unchanged", "retuned"})
        add_group(groups, group, field_or_null(workers, group));
    const Json& sockets = field_or_null(reply, "sockets");
    std::vector<std::string> socket_groups;
    for (const char* group : {"added", "removed", "replaced"})
        add_group(socket_groups, group, field_or_null(sockets, group));

    std::string reloaded = "reloaded " + text(reply, "config");
    if (groups.empty() && socket_groups.empty()) {
        rendered.out = reloaded + ": no changes\n";
    } else {
        rendered.out = reloaded + (groups.empty() ? "" : ": " + join_groups(groups)) + "\n";
        if (!socket_groups.empty()) rendered.out += "sockets: " + join_groups(socket_groups) + "\n";
    }
    const Json& adopted = field_or_null(sockets, "adopted");
    if (adopted.is_array())
        for (const auto& a : adopted)
            rendered.out += "socket " + text(a, "socket") + ": taken over from pid " + text(a, "pid") + " fd " +
                            text(a, "fd") + ", listening on " + text(a, "bound") + "\n";

    const Json& warnings = field_or_null(reply, "warnings");
    if (warnings.is_array()) {
        for (const auto& warning : warnings) rendered.err += "warning: " + printable(warning) + "\n";
    } else if (!warnings.is_null()) {
        rendered.err += "warning: " + printable(warnings) + "\n";
    }
    return rendered;
}

std::string render_each(const Json& reply, const char* key, std::string (*render)(const Json&)) {
    std::string out;
    const Json& items = field_or_null(reply, key);
    if (!items.is_array()) return out;
    for (const auto& item : items) out += render(item);
    return out;
}

std::string render_logs(const Json& reply) { return render_each(reply, "lines", render_log_line); }

std::string render_version(const Json& reply) {
    return "fdsupd " + text(reply, "version") + " (protocol " + text(reply, "protocol") + ", state format " +
           text(reply, "state_format") + ", pid " + text(reply, "pid") + ")\n";
}

Rendered render_reply(std::string_view verb, const Json& request, const Json& reply) {
    try {
        return render_verb(verb, request, reply);
    } catch (const std::exception&) {
        // A bug here must not hide the answer: print the reply as it came.
        Rendered raw{printable(reply) + "\n", {}};
        if (!reply_ok(reply)) raw.err = "fdsupctl: fdsupd refused the request\n";
        return raw;
    }
}

}  // namespace fdsup::ctl
