// `fdsupctl top`'s table: a status reply (SPEC "fdsupctl", and the instance field
// "usage" of SPEC "Resources") -> sorted rows -> aligned lines.
//
// Pure, like render.h: no terminal, no clock, no syscalls, so the screen (top_screen.h)
// and the plain frames (top.h) print exactly what the unit tests check. Replies may come
// from an older or newer fdsupd: a missing or null field shows as "-" ("usage" is absent
// before fdsupd reports it, and each of its members may be null). Nothing here throws
// on any input.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control/protocol.h"

namespace fdsup::ctl {

using control::Json;

// What the rows are sorted by: name ascending (instances by index), the others largest
// first (unknown last); ties by name.
enum class TopSort { name, cpu, memory, restarts, uptime };

// "cpu", "memory", "name", "restarts", "uptime" (--sort's words, and the header's).
std::string_view top_sort_name(TopSort sort);
std::optional<TopSort> top_sort_named(std::string_view name);
// The screen's keys: c, m, n, r, u (either case); nullopt for any other.
std::optional<TopSort> top_sort_for_key(int key);

// One line of the table: a worker (its instances summed), or one of its instances.
struct TopRow {
    bool worker = false;
    std::string name;  // "web", or "  [0]" under it ("  [0] new"/" old" during a rollout)
    std::string pid, state, cpu, memory, processes, restarts, uptime;
};

struct TopTable {
    // "fdsupd 0.1.0, pid 4242, up 3m02s; 2 workers, 3 instances (3 running)" (fdsupd's
    // part only as far as the reply has it)
    std::string summary;
    TopSort sort = TopSort::name;
    std::vector<TopRow> rows;  // each worker, then its instances
};

TopTable top_table(const Json& status_reply, TopSort sort);

// The summary, then "; sort: cpu". With `width`, the line fits in it and the sort is
// always shown: the summary gives way.
std::string top_summary_line(const TopTable& table, std::optional<size_t> width);

// The table as text lines, the column headings first. With `width`, the lines fit in
// it: a long NAME is cut (ending in "~"), and PROCS is left out when NAME would be left
// too little room. Without, NAME is as wide as the widest.
std::vector<std::string> top_lines(const TopTable& table, std::optional<size_t> width);

// `text` in at most `width` columns (display_width): cut, ending in "~", if it is wider.
std::string cut_to_width(const std::string& text, size_t width);

// One frame of the plain (not a terminal) output: "TIME  SUMMARY; sort: KEY", the lines,
// a blank line.
std::string top_frame(const TopTable& table, std::string_view time);

// format_memory and format_cpu_percent (render.h) make the MEM and CPU% cells.

}  // namespace fdsup::ctl
