#include "ctl/event_line.h"

#include <string_view>

#include "ctl/render.h"
#include "ctl/terminal_safe.h"

namespace fdsup::ctl {
namespace {

// The members every EVENT has: shown in the line's head, not as details.
bool is_common(std::string_view key) {
    return key == "seq" || key == "time" || key == "worker" || key == "instance" || key == "pid" || key == "event";
}

std::string detail_text(const Json& value) {
    if (!value.is_array()) return printable(value);
    std::string joined;
    for (const auto& item : value) joined += (joined.empty() ? "" : ",") + printable(item);
    return joined.empty() ? "-" : joined;
}

}  // namespace

std::string render_event(const Json& event) {
    if (!event.is_object()) return printable(event) + "\n";
    const Json& time = field_or_null(event, "time");
    std::string line = time.is_number() ? format_log_time(time.get<double>()) : printable(time);
    const Json& worker = field_or_null(event, "worker");
    line += " " + (worker.is_null() ? std::string("fdsupd") : printable(worker));
    if (const Json& index = field_or_null(event, "instance"); !index.is_null()) line += "[" + printable(index) + "]";
    if (const Json& pid = field_or_null(event, "pid"); !pid.is_null()) line += " pid " + printable(pid);
    line += " " + printable(field_or_null(event, "event"));
    std::string details;
    for (const auto& [key, value] : event.items()) {
        if (is_common(key) || value.is_null()) continue;
        details += (details.empty() ? ": " : " ") + terminal_safe(key) + "=" + detail_text(value);
    }
    return line + details + "\n";
}

std::string render_events(const Json& reply) { return render_each(reply, "events", render_event); }

}  // namespace fdsup::ctl
