// fdsupctl's human output: a reply (protocol.h) -> the text to print.
//
// Pure functions of the JSON they are given, except that times are shown in the local
// time zone. Replies come from another program that may be older or newer than this
// one: a missing field prints as "-", a field of an unexpected type as its JSON text.
// Nothing here throws on any input.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "control/protocol.h"

namespace fdsup::ctl {

using control::Json;

// What one reply prints: `out` goes to stdout, `err` to stderr.
struct Rendered {
    std::string out;
    std::string err;
};

// The final reply of `verb`, for humans. `request` is what was sent (signal's reply does
// not repeat the worker's name). When the reply has ok=false: what it still reports
// (start's instances) on stdout, "fdsupctl: <error>" and each of "errors" on stderr.
Rendered render_reply(std::string_view verb, const Json& request, const Json& reply);

// True when the reply has "ok": true (anything else is a failure).
bool reply_ok(const Json& reply);

// "fdsupctl X.Y.Z (protocol N)"
std::string client_version_line();

// The pieces render_reply is made of.

// null -> "-", a string as is, anything else as compact JSON; either terminal_safe.
std::string printable(const Json& value);
// The field `key` of `object`; null when `object` is not an object or lacks it.
const Json& field_or_null(const Json& object, const char* key);
// The columns `text` takes on a terminal, counted as UTF-8 code points.
size_t display_width(std::string_view text);
// 350ms, 12s, 2m03s, 3h04m, 2d03h (truncated, never rounded up).
std::string format_duration(double seconds);
// A number of seconds as format_duration; anything else as printable ("-" for null).
std::string format_uptime(const Json& value);
// {"code": 3, "signal": null} -> "exit 3"; {"signal": "KILL"} -> "SIGKILL"; nothing -> "-".
std::string format_last_exit(const Json& last_exit);
// A usage figure: a finite number >= 0, else nothing (null, a string, a negative).
std::optional<double> figure_of(const Json& value);
// 12897484 -> "12.3M", 524288 -> "512K", 900 -> "900B" (base 1024; K whole); none: "-".
std::string memory_text(std::optional<double> bytes);
std::string format_memory(const Json& bytes);
// 3.456 -> "3.5" (a CPU%, 100 = one CPU); none: "-".
std::string cpu_text(std::optional<double> percent);
std::string format_cpu_percent(const Json& percent);
// An instance's "health" -> "ok 1.2ms", "fail 2/3", "fail", "checking", "accepting"; "-".
std::string format_health(const Json& health);
// Unix seconds -> "2026-11-23 10:00:00.123" in the local time zone.
std::string format_log_time(double unix_seconds);
// A LOGLINE -> "2026-11-23 10:00:00.123 web[0]: text\n" ("web[0] stderr: " for stderr).
std::string render_log_line(const Json& logline);
// A progress line {"progress": "..."} -> "  ...\n".
std::string render_progress(const Json& progress_line);

std::string render_status(const Json& reply);
std::string render_instances(const Json& reply);                     // start, stop, restart, scale
std::string render_signal(const Json& request, const Json& reply);
Rendered render_reload(const Json& reply);
// The reply's list `key`, each element rendered by `render` (a line each), in order.
std::string render_each(const Json& reply, const char* key, std::string (*render)(const Json&));
std::string render_logs(const Json& reply);
std::string render_version(const Json& reply);                       // the fdsupd line

}  // namespace fdsup::ctl
