#include "config/value_reader.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <filesystem>

#include "config/values.h"
#include "sys/decimal.h"
#include "sys/signal_names.h"

namespace fdsup::config {

bool name_is_made_of(std::string_view name, std::string_view extra_chars) {
    if (name.empty()) return false;
    return std::all_of(name.begin(), name.end(), [&](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               extra_chars.find(c) != std::string_view::npos;
    });
}

// A key as TOML would need it written: bare when it can be, else quoted, so that a
// path like `workers."web.v2".backoff` stays unambiguous.
std::string key_part(std::string_view key) {
    if (name_is_made_of(key, "_-")) return std::string(key);
    std::string quoted = "\"";
    for (char c : key) {
        if (c == '"' || c == '\\') quoted += '\\';
        quoted += c;
    }
    return quoted + "\"";
}

std::string quote(std::string_view text) { return "\"" + std::string(text) + "\""; }

std::string type_phrase(const toml::node& node) {
    switch (node.type()) {
        case toml::node_type::table: return "a table";
        case toml::node_type::array: return "an array";
        case toml::node_type::string: return "a string";
        case toml::node_type::integer: return "an integer";
        case toml::node_type::floating_point: return "a float";
        case toml::node_type::boolean: return "a boolean";
        case toml::node_type::date: return "a date";
        case toml::node_type::time: return "a time";
        case toml::node_type::date_time: return "a date-time";
        case toml::node_type::none: break;
    }
    return "nothing";
}

size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<size_t> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
        size_t diagonal = row[0];
        row[0] = i;
        for (size_t j = 1; j <= b.size(); ++j) {
            size_t above = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
            diagonal = above;
        }
    }
    return row[b.size()];
}

void ValueReader::check_keys(const Section& s, std::span<const std::string_view> known) {
    for (auto&& [key, value] : s.table) {
        if (std::find(known.begin(), known.end(), key.str()) != known.end()) continue;
        error(key.source(), "unknown key " + quote(key.str()) + " in [" + s.path + "]" +
                                did_you_mean(key.str(), known));
    }
}

const toml::table* ValueReader::as_table(const toml::node& n, const std::string& path) {
    if (const auto* t = n.as_table()) return t;
    type_error(n, path, "a table");
    return nullptr;
}

const toml::array* ValueReader::as_array(const toml::node& n, const std::string& path) {
    if (const auto* a = n.as_array()) return a;
    type_error(n, path, "an array");
    return nullptr;
}

std::optional<std::string> ValueReader::as_string(const toml::node& n, const std::string& path) {
    const auto* s = n.as_string();
    if (!s) {
        type_error(n, path, "a string");
        return std::nullopt;
    }
    // argv, envp and paths are C strings: a NUL would silently cut the value short.
    if (s->get().find('\0') != std::string::npos) {
        error(n, path, "must not contain a NUL character");
        return std::nullopt;
    }
    return s->get();
}

std::optional<std::string> ValueReader::as_nonempty_string(const toml::node& n,
                                                      const std::string& path) {
    auto s = as_string(n, path);
    if (s && s->empty()) {
        error(n, path, "must not be empty");
        return std::nullopt;
    }
    return s;
}

std::optional<int64_t> ValueReader::as_integer(const toml::node& n, const std::string& path,
                                          int64_t min, int64_t max) {
    const auto* i = n.as_integer();
    if (!i) {
        type_error(n, path, "an integer");
        return std::nullopt;
    }
    int64_t v = i->get();
    if (v >= min && v <= max) return v;
    if (max == INT_MAX || max == INT64_MAX)
        error(n, path, "must be at least " + std::to_string(min) + ", got " + std::to_string(v));
    else
        error(n, path, "must be between " + std::to_string(min) + " and " + std::to_string(max) +
                           ", got " + std::to_string(v));
    return std::nullopt;
}

std::optional<bool> ValueReader::as_bool(const toml::node& n, const std::string& path) {
    if (const auto* b = n.as_boolean()) return b->get();
    type_error(n, path, "a boolean");
    return std::nullopt;
}

std::optional<Duration> ValueReader::as_duration(const toml::node& n, const std::string& path) {
    // A bare number is the classic mistake ("is 30 seconds or milliseconds?"): say so.
    if (!n.is_string()) {
        type_error(n, path, "a duration string like \"10s\"");
        return std::nullopt;
    }
    auto text = as_string(n, path);
    if (!text) return std::nullopt;
    if (auto d = parse_duration(*text)) return d;
    error(n, path,
          "invalid duration " + quote(*text) + " (use e.g. \"250ms\", \"10s\", \"5m\", \"1h\"; at most " +
              std::to_string(kMaxDurationHours) + "h)");
    return std::nullopt;
}

std::optional<mode_t> ValueReader::as_mode(const toml::node& n, const std::string& path) {
    // An integer 0600 in TOML is decimal 600, not what anyone means: demand a string.
    if (!n.is_string()) {
        type_error(n, path, "an octal string like \"0600\"");
        return std::nullopt;
    }
    auto text = as_string(n, path);
    if (!text) return std::nullopt;
    if (auto m = parse_mode(*text)) return m;
    error(n, path, "invalid mode " + quote(*text) + " (use octal digits, e.g. \"0660\")");
    return std::nullopt;
}

std::optional<int> ValueReader::as_signal(const toml::node& n, const std::string& path) {
    if (const auto* i = n.as_integer()) {
        if (auto s = parse_signal(std::to_string(i->get()))) return s;
        error(n, path, "unknown signal " + std::to_string(i->get()));
        return std::nullopt;
    }
    if (!n.is_string()) {
        type_error(n, path, "a signal name like \"TERM\"");
        return std::nullopt;
    }
    auto text = as_string(n, path);
    if (!text) return std::nullopt;
    if (auto s = parse_signal(*text)) return s;
    error(n, path, "unknown signal " + quote(*text));
    return std::nullopt;
}

// A user or group: a name, or a numeric id (kept as its decimal string; whoever
// resolves it tries the name database first, as chown(1) does).
std::optional<std::string> ValueReader::as_account(const toml::node& n, const std::string& path) {
    if (const auto* i = n.as_integer()) {
        // (uid_t)-1 means "unchanged" to the set*id calls; it can never be an id.
        if (i->get() < 0 || i->get() >= int64_t{UINT32_MAX}) {
            error(n, path, "invalid id " + std::to_string(i->get()));
            return std::nullopt;
        }
        return std::to_string(i->get());
    }
    if (!n.is_string()) {
        type_error(n, path, "a name or a numeric id");
        return std::nullopt;
    }
    return as_nonempty_string(n, path);
}

std::optional<OutputTarget> ValueReader::as_output(const toml::node& n, const std::string& path) {
    auto text = as_string(n, path);
    if (!text) return std::nullopt;
    auto target = output_from_text(*text);
    if (!target) {
        error(n, path,
              "invalid value " + quote(*text) +
                  " (expected log, inherit, null, journal, \"file:/path\" or \"rotate:/path\")");
        return std::nullopt;
    }
    if (target->kind == OutputKind::file || target->kind == OutputKind::rotate) {
        // Relative to what? The supervisor's cwd is an accident of how it was started.
        if (!target->path.starts_with("/")) {
            error(n, path, quote(*text) + ": the file must be an absolute path");
            return std::nullopt;
        }
        // One spelling of a rotate: file's path (/l//a.log and /l/./a.log are /l/a.log), so
        // that the loader's checks and the open files (output/outputs.cpp) see one file once.
        if (target->kind == OutputKind::rotate)
            target->path = std::filesystem::path(target->path).lexically_normal().string();
        if (target->path.ends_with("/")) {
            error(n, path, quote(*text) + ": names a directory, not a file");
            return std::nullopt;
        }
    }
    return target;
}

std::optional<OutputTarget> output_from_text(std::string_view text) {
    if (text == "log") return OutputTarget{OutputKind::log, ""};
    if (text == "inherit") return OutputTarget{OutputKind::inherit, ""};
    if (text == "null") return OutputTarget{OutputKind::null, ""};
    if (text == "journal") return OutputTarget{OutputKind::journal, ""};
    if (text.starts_with("file:")) return OutputTarget{OutputKind::file, std::string(text.substr(5))};
    if (text.starts_with("rotate:")) return OutputTarget{OutputKind::rotate, std::string(text.substr(7))};
    return std::nullopt;
}

// A limit as written: an integer, a string, or "infinity" (none); anything else is
// reported as not `expected`.
std::optional<ValueReader::LimitText> ValueReader::as_limit(const toml::node& n, const std::string& path,
                                                            std::string_view expected) {
    if (const auto* i = n.as_integer()) return LimitText{false, i->get(), ""};
    if (!n.is_string()) {
        type_error(n, path, expected);
        return std::nullopt;
    }
    auto text = as_string(n, path);
    if (!text) return std::nullopt;
    return LimitText{*text == "infinity", std::nullopt, *text};
}

// A size: "64M" and the like (values.h), an integer number of bytes, or "infinity".
// 0 is no use as a limit (and for recycle_memory, would recycle at once), so only a
// key for which it means something (memory_swap_max: no swap) takes it.
std::optional<std::optional<uint64_t>> ValueReader::as_size(const toml::node& n, const std::string& path,
                                                            bool allow_zero) {
    auto limit = as_limit(n, path, "a size like \"64M\", a number of bytes or \"infinity\"");
    if (!limit) return std::nullopt;
    if (limit->infinity) return std::optional<uint64_t>();
    if (limit->integer && *limit->integer < 0) {
        error(n, path, "must not be negative, got " + std::to_string(*limit->integer));
        return std::nullopt;
    }
    std::optional<uint64_t> size = limit->integer ? static_cast<uint64_t>(*limit->integer) : parse_size(limit->text);
    if (!size) {
        error(n, path,
              "invalid size " + quote(limit->text) +
                  " (use e.g. \"512K\", \"64M\", \"2G\", \"1T\" (powers of 1024), a number of bytes or "
                  "\"infinity\"; at most " + size_text(kMaxSize >> 40 << 40) + ")");
        return std::nullopt;
    }
    if (*size == 0 && !allow_zero) {
        error(n, path, "must be more than 0 (for none, write \"infinity\" or leave it out)");
        return std::nullopt;
    }
    return size;
}

// A share of one CPU: "150%" is 1.5 CPUs; an integer is a percentage too.
std::optional<std::optional<int>> ValueReader::as_cpu_percent(const toml::node& n, const std::string& path) {
    auto limit = as_limit(n, path, "a percentage like \"150%\" or \"infinity\"");
    if (!limit) return std::nullopt;
    if (limit->infinity) return std::optional<int>();
    std::optional<uint64_t> percent;
    if (limit->integer) {
        limit->text = std::to_string(*limit->integer) + "%";
        if (*limit->integer >= 0) percent = static_cast<uint64_t>(*limit->integer);
    } else {
        std::string_view digits = limit->text;
        if (digits.ends_with('%')) percent = parse_decimal(digits.substr(0, digits.size() - 1), UINT64_MAX);
        if (!percent) {
            error(n, path,
                  "invalid value " + quote(limit->text) +
                      " (use a percentage of one CPU like \"150%\" for 1.5 CPUs, or \"infinity\")");
            return std::nullopt;
        }
    }
    if (!percent || *percent < 1 || *percent > uint64_t{kMaxCpuPercent}) {
        error(n, path, "must be between 1% and " + std::to_string(kMaxCpuPercent) + "%, got " + limit->text);
        return std::nullopt;
    }
    return static_cast<int>(*percent);
}

// A count (pids_max) or "infinity".
std::optional<std::optional<int64_t>> ValueReader::as_count_or_infinity(const toml::node& n, const std::string& path,
                                                                        int64_t min, int64_t max) {
    auto limit = as_limit(n, path, "an integer or \"infinity\"");
    if (!limit) return std::nullopt;
    if (limit->infinity) return std::optional<int64_t>();
    if (!limit->integer) {
        error(n, path, "invalid value " + quote(limit->text) + " (expected an integer or \"infinity\")");
        return std::nullopt;
    }
    auto count = as_integer(n, path, min, max);
    if (!count) return std::nullopt;
    return std::optional<int64_t>(*count);
}

}  // namespace fdsup::config
