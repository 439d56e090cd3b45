#include "ctl/top_table.h"
#include "ctl/render.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <utility>

namespace fdsup::ctl {

namespace {

constexpr std::pair<TopSort, std::string_view> kSortNames[] = {
    {TopSort::cpu, "cpu"}, {TopSort::memory, "memory"}, {TopSort::name, "name"},
    {TopSort::restarts, "restarts"}, {TopSort::uptime, "uptime"},
};

// A figure of the reply: nullopt for null, a missing field, another type, or a value no
// figure can have (negative, NaN).

// What a row is sorted by, and what a worker's row adds up.
struct Figures {
    std::optional<double> cpu, memory, processes, restarts, uptime;

    std::optional<double> by(TopSort sort) const {
        switch (sort) {
            case TopSort::cpu: return cpu;
            case TopSort::memory: return memory;
            case TopSort::restarts: return restarts;
            case TopSort::uptime: return uptime;
            case TopSort::name: break;
        }
        return std::nullopt;
    }
};

// Known figures add up; an unknown one is left out, so a worker shows "-" only when none
// of its instances reports the figure.
void add(std::optional<double>& total, std::optional<double> value) {
    if (value) total = total.value_or(0) + *value;
}

// A row with what it is sorted by.
struct Entry {
    TopRow row;
    Figures figures;
    std::string name;  // the worker's (instances of one worker: all the same)
    double index = 0;  // an instance's
};

bool goes_before(const Entry& a, const Entry& b, TopSort sort) {
    if (sort != TopSort::name) {
        auto x = a.figures.by(sort);
        auto y = b.figures.by(sort);
        if (x.has_value() != y.has_value()) return x.has_value();  // unknown last
        if (x && *x != *y) return *x > *y;                         // largest first
    }
    if (a.name != b.name) return a.name < b.name;
    return a.index < b.index;
}

// Stable: the two rows a rollout shows for one index keep fdsupd's order.
void sort_entries(std::vector<Entry>& entries, TopSort sort) {
    std::stable_sort(entries.begin(), entries.end(),
                     [sort](const Entry& a, const Entry& b) { return goes_before(a, b, sort); });
}

std::string formatted(const char* format, double value) {
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, format, value);
    return buffer;
}

std::string count_text(std::optional<double> count) {
    return count ? formatted("%.0f", *count) : "-";
}

std::string duration_text(std::optional<double> seconds) {
    return seconds ? format_duration(*seconds) : "-";
}

Entry instance_entry(const Json& instance) {
    const Json& usage = field_or_null(instance, "usage");
    Entry entry;
    entry.figures = {figure_of(field_or_null(usage, "cpu_percent")), figure_of(field_or_null(usage, "memory_bytes")),
                     figure_of(field_or_null(usage, "processes")), figure_of(field_or_null(instance, "restarts")),
                     figure_of(field_or_null(instance, "uptime_s"))};
    const Json& index = field_or_null(instance, "index");
    entry.index = figure_of(index).value_or(-1);
    // A rollout shows two rows for one index: the old process and its replacement.
    std::string label = "  [" + printable(index) + "]";
    if (field_or_null(instance, "replacement") == Json(true)) label += " new";
    else if (field_or_null(instance, "retiring") == Json(true)) label += " old";
    const Figures& f = entry.figures;
    entry.row = {false, std::move(label), printable(field_or_null(instance, "pid")),
                 printable(field_or_null(instance, "state")), cpu_text(f.cpu), memory_text(f.memory),
                 count_text(f.processes), count_text(f.restarts), duration_text(f.uptime)};
    return entry;
}

// A worker's row (its instances' figures summed; its uptime is its oldest instance's),
// then its instances' rows, sorted.
std::vector<TopRow> worker_rows(const Json& worker, TopSort sort, Figures& totals, size_t& instances,
                                size_t& running) {
    std::vector<Entry> entries;
    const Json& list = field_or_null(worker, "instances");
    if (list.is_array())
        for (const auto& instance : list) entries.push_back(instance_entry(instance));
    sort_entries(entries, sort);
    for (const auto& entry : entries) {
        add(totals.cpu, entry.figures.cpu);
        add(totals.memory, entry.figures.memory);
        add(totals.processes, entry.figures.processes);
        add(totals.restarts, entry.figures.restarts);
        if (entry.figures.uptime) totals.uptime = std::max(totals.uptime.value_or(0), *entry.figures.uptime);
        if (entry.row.state == "running") ++running;
    }
    instances += entries.size();
    std::vector<TopRow> rows{{true, printable(field_or_null(worker, "name")), "",
                              printable(field_or_null(worker, "state")), cpu_text(totals.cpu),
                              memory_text(totals.memory), count_text(totals.processes),
                              count_text(totals.restarts), duration_text(totals.uptime)}};
    for (auto& entry : entries) rows.push_back(std::move(entry.row));
    return rows;
}

std::string counted(size_t count, const char* noun) {
    return std::to_string(count) + " " + noun + (count == 1 ? "" : "s");
}

// "fdsupd 0.1.0, pid 4242, up 3m02s; " as far as the reply says.
std::string supervisor_part(const Json& supervisor) {
    if (!supervisor.is_object()) return "";
    std::string part = "fdsupd";
    const Json& version = field_or_null(supervisor, "version");
    if (!version.is_null()) part += " " + printable(version);
    const Json& pid = field_or_null(supervisor, "pid");
    if (!pid.is_null()) part += ", pid " + printable(pid);
    const Json& uptime = field_or_null(supervisor, "uptime_s");
    if (!uptime.is_null()) part += ", up " + format_uptime(uptime);
    return part + "; ";
}

// The columns, left to right.
struct Column {
    std::string_view heading;
    size_t least;  // the width kept when every cell is narrower (the screen does not jump),
                   // and NAME's however narrow the terminal ("  [10]" fits)
    bool right;    // numbers are right-aligned
    std::string TopRow::*cell;
};

constexpr Column kColumns[] = {
    {"NAME", 6, false, &TopRow::name},         {"PID", 7, true, &TopRow::pid},
    {"STATE", 8, false, &TopRow::state},       {"CPU%", 6, true, &TopRow::cpu},
    {"MEM", 6, true, &TopRow::memory},         {"PROCS", 5, true, &TopRow::processes},
    {"RESTARTS", 8, true, &TopRow::restarts},  {"UPTIME", 7, true, &TopRow::uptime},
};
constexpr size_t kColumnCount = std::size(kColumns);
constexpr size_t kProcsColumn = 5;
constexpr size_t kGap = 2;
// Less room than this for NAME on a narrow terminal, and PROCS gives it its room.
constexpr size_t kLeastNameWidth = 12;

std::string line_of(const std::vector<std::string>& cells, const std::vector<size_t>& widths,
                    const std::vector<bool>& shown) {
    std::string line;
    for (size_t column = 0; column < kColumnCount; ++column) {
        if (!shown[column]) continue;
        std::string cell = cut_to_width(cells[column], widths[column]);
        std::string padding(widths[column] - display_width(cell), ' ');
        if (!line.empty()) line += std::string(kGap, ' ');
        line += kColumns[column].right ? padding + cell : cell + padding;
    }
    while (line.ends_with(' ')) line.pop_back();
    return line;
}

}  // namespace

std::string cut_to_width(const std::string& text, size_t width) {
    if (display_width(text) <= width) return text;
    if (width == 0) return "";
    std::string cut;
    size_t shown = 0;
    for (char c : text) {
        bool starts_character = (static_cast<unsigned char>(c) & 0xC0) != 0x80;
        if (starts_character && ++shown == width) break;
        cut += c;
    }
    return cut + "~";
}

std::string_view top_sort_name(TopSort sort) {
    for (const auto& [value, name] : kSortNames)
        if (value == sort) return name;
    return "name";
}

std::optional<TopSort> top_sort_named(std::string_view name) {
    for (const auto& [value, known] : kSortNames)
        if (known == name) return value;
    return std::nullopt;
}

std::optional<TopSort> top_sort_for_key(int key) {
    if (key >= 'A' && key <= 'Z') key += 'a' - 'A';
    for (const auto& [value, name] : kSortNames)
        if (key == name.front()) return value;
    return std::nullopt;
}

TopTable top_table(const Json& status_reply, TopSort sort) {
    std::vector<std::pair<Entry, std::vector<TopRow>>> workers;
    size_t instances = 0;
    size_t running = 0;
    const Json& list = field_or_null(status_reply, "workers");
    if (list.is_array()) {
        for (const auto& worker : list) {
            Entry entry;
            auto rows = worker_rows(worker, sort, entry.figures, instances, running);
            entry.name = rows.front().name;
            workers.emplace_back(std::move(entry), std::move(rows));
        }
    }
    std::stable_sort(workers.begin(), workers.end(),
                     [sort](const auto& a, const auto& b) { return goes_before(a.first, b.first, sort); });
    TopTable table;
    table.summary = supervisor_part(field_or_null(status_reply, "supervisor")) + counted(workers.size(), "worker") +
                    ", " + counted(instances, "instance") + " (" + std::to_string(running) + " running)";
    table.sort = sort;
    for (auto& [entry, rows] : workers)
        for (auto& row : rows) table.rows.push_back(std::move(row));
    return table;
}

std::vector<std::string> top_lines(const TopTable& table, std::optional<size_t> width) {
    std::vector<size_t> widths;
    std::vector<std::string> headings;
    for (const auto& column : kColumns) {
        size_t widest = std::max(column.least, column.heading.size());
        for (const auto& row : table.rows) widest = std::max(widest, display_width(row.*column.cell));
        widths.push_back(widest);
        headings.emplace_back(column.heading);
    }
    std::vector<bool> shown(kColumnCount, true);
    if (width) {
        size_t rest = 0;  // what the columns after NAME take, with their gaps
        for (size_t column = 1; column < kColumnCount; ++column) rest += kGap + widths[column];
        if (rest + kLeastNameWidth > *width) {
            shown[kProcsColumn] = false;
            rest -= kGap + widths[kProcsColumn];
        }
        size_t room = *width > rest ? *width - rest : 0;
        widths[0] = std::min(widths[0], std::max(room, kColumns[0].least));
    }
    std::vector<std::string> lines{line_of(headings, widths, shown)};
    for (const auto& row : table.rows) {
        std::vector<std::string> cells;
        for (const auto& column : kColumns) cells.push_back(row.*column.cell);
        lines.push_back(line_of(cells, widths, shown));
    }
    if (table.rows.empty()) lines.emplace_back("no workers");
    return lines;
}

std::string top_summary_line(const TopTable& table, std::optional<size_t> width) {
    std::string sort = "; sort: " + std::string(top_sort_name(table.sort));
    if (!width || display_width(table.summary) + sort.size() <= *width) return table.summary + sort;
    return cut_to_width(table.summary, *width > sort.size() ? *width - sort.size() : 0) + sort;
}

std::string top_frame(const TopTable& table, std::string_view time) {
    std::string frame = std::string(time) + "  " + top_summary_line(table, std::nullopt) + "\n";
    for (const auto& line : top_lines(table, std::nullopt)) frame += line + "\n";
    return frame + "\n";
}

}  // namespace fdsup::ctl
