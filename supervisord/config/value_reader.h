// The config loader's value readers (loader.cpp reads the tables with them): each
// reads one TOML value for a key, checks it, and on any problem records an error at
// the value's own FILE:LINE:COL and returns nothing, so that reading goes on and one
// run shows every problem. Also the small helpers that name keys and values in
// messages. Internal to config/.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "config/loader.h"
#include "config/model.h"

namespace fdsup::config {

// Made only of letters, digits and `extra_chars` (and not empty).
bool name_is_made_of(std::string_view name, std::string_view extra_chars);
// A key as TOML would need it written: bare when it can be, else quoted, so that a
// path like `workers."web.v2".backoff` stays unambiguous.
std::string key_part(std::string_view key);
std::string quote(std::string_view text);
// "a table", "an integer", ... for "expected X, got Y".
std::string type_phrase(const toml::node& node);
size_t edit_distance(std::string_view a, std::string_view b);

// ` (did you mean "command"?)` for a near miss (a typo), else nothing: a suggestion
// for a word that is merely short and different would only confuse.
template <class Names>
std::string did_you_mean(std::string_view word, const Names& candidates) {
    const size_t allowed = word.size() <= 3 ? 1 : 2;
    std::string_view best;
    size_t best_distance = allowed + 1;
    for (std::string_view candidate : candidates) {
        size_t d = edit_distance(word, candidate);
        if (d < best_distance && d < word.size()) best = candidate, best_distance = d;
    }
    if (best.empty()) return "";
    return " (did you mean " + quote(best) + "?)";
}

template <class E>
struct Choice {
    std::string_view name;
    E value;
};

template <class E>
std::string choice_list(std::span<const Choice<E>> choices) {
    std::string list;
    for (size_t i = 0; i < choices.size(); ++i) {
        if (i > 0) list += i + 1 == choices.size() ? " or " : ", ";
        list += choices[i].name;
    }
    return list;
}

template <class E>
std::vector<std::string_view> choice_names(std::span<const Choice<E>> choices) {
    std::vector<std::string_view> names;
    for (const auto& c : choices) names.push_back(c.name);
    return names;
}

// cpu_max at most: 1000 CPUs, a bound against typos (its quota, 100 s per 100 ms
// period, is well within what cpu.max and cpu.cfs_quota_us take).
constexpr int kMaxCpuPercent = 100000;

// A table being read, with the dotted path that names it in messages.
struct Section {
    const toml::table& table;
    std::string path;  // "workers.web"

    std::string at(std::string_view key) const { return path + "." + key_part(key); }
    const toml::node* get(std::string_view key) const { return table.get(key); }
};

class ValueReader {
public:
    explicit ValueReader(std::string file) : file_(std::move(file)) {}

protected:
    std::string file_;
    std::vector<ConfigError> errors_;
    std::vector<ConfigError> warnings_;

    // --- reporting
    void error(const toml::source_region& where, std::string message) {
        errors_.push_back({file_, static_cast<int>(where.begin.line),
                           static_cast<int>(where.begin.column), std::move(message)});
    }
    void error(const toml::node& node, const std::string& path, std::string_view message) {
        error(node.source(), path + ": " + std::string(message));
    }
    void warning(const toml::node& node, const std::string& path, std::string_view message) {
        warnings_.push_back({file_, static_cast<int>(node.source().begin.line),
                             static_cast<int>(node.source().begin.column),
                             "warning: " + path + ": " + std::string(message)});
    }
    void type_error(const toml::node& node, const std::string& path, std::string_view expected) {
        error(node, path, "expected " + std::string(expected) + ", got " + type_phrase(node));
    }
    void check_keys(const Section& s, std::span<const std::string_view> known);

    // --- values: each reports its own error and returns nothing on failure
    const toml::table* as_table(const toml::node& n, const std::string& path);
    const toml::array* as_array(const toml::node& n, const std::string& path);
    std::optional<std::string> as_string(const toml::node& n, const std::string& path);
    std::optional<std::string> as_nonempty_string(const toml::node& n, const std::string& path);
    std::optional<int64_t> as_integer(const toml::node& n, const std::string& path, int64_t min,
                                      int64_t max);
    std::optional<bool> as_bool(const toml::node& n, const std::string& path);
    std::optional<Duration> as_duration(const toml::node& n, const std::string& path);
    std::optional<mode_t> as_mode(const toml::node& n, const std::string& path);
    std::optional<int> as_signal(const toml::node& n, const std::string& path);
    std::optional<std::string> as_account(const toml::node& n, const std::string& path);
    std::optional<OutputTarget> as_output(const toml::node& n, const std::string& path);
    // Limits: a value, or "infinity" for none (the inner nothing). as_limit reads what
    // the others have in common: an integer, a string, or "infinity".
    struct LimitText {
        bool infinity = false;
        std::optional<int64_t> integer;  // else `text`
        std::string text;
    };
    std::optional<LimitText> as_limit(const toml::node& n, const std::string& path, std::string_view expected);
    std::optional<std::optional<uint64_t>> as_size(const toml::node& n, const std::string& path, bool allow_zero);
    std::optional<std::optional<int>> as_cpu_percent(const toml::node& n, const std::string& path);
    std::optional<std::optional<int64_t>> as_count_or_infinity(const toml::node& n, const std::string& path,
                                                               int64_t min, int64_t max);
    template <class E>
    std::optional<E> as_choice(const toml::node& n, const std::string& path,
                               std::span<const Choice<E>> choices);

    // --- "read key into field if present"
    template <class T, class Convert>
    void read(const Section& s, std::string_view key, T& out, Convert convert) {
        if (const toml::node* n = s.get(key))
            if (auto value = convert(*n, s.at(key))) out = T(std::move(*value));
    }
    void read_string(const Section& s, std::string_view key, auto& out) {
        read(s, key, out, [&](const auto& n, const auto& p) { return as_nonempty_string(n, p); });
    }
    void read_bool(const Section& s, std::string_view key, bool& out) {
        read(s, key, out, [&](const auto& n, const auto& p) { return as_bool(n, p); });
    }
    void read_int(const Section& s, std::string_view key, int& out, int64_t min, int64_t max) {
        read(s, key, out, [&](const auto& n, const auto& p) { return as_integer(n, p, min, max); });
    }
    void read_duration(const Section& s, std::string_view key, Duration& out) {
        read(s, key, out, [&](const auto& n, const auto& p) { return as_duration(n, p); });
    }
    void read_signal(const Section& s, std::string_view key, int& out) {
        read(s, key, out, [&](const auto& n, const auto& p) { return as_signal(n, p); });
    }
    template <class T, class E, size_t N>
    void read_choice(const Section& s, std::string_view key, T& out,
                     const Choice<E> (&choices)[N]) {
        read(s, key, out, [&](const auto& n, const auto& p) {
            return as_choice(n, p, std::span<const Choice<E>>(choices));
        });
    }
};

template <class E>
std::optional<E> ValueReader::as_choice(const toml::node& n, const std::string& path,
                                   std::span<const Choice<E>> choices) {
    auto text = as_string(n, path);
    if (!text) return std::nullopt;
    for (const auto& c : choices)
        if (c.name == *text) return c.value;
    error(n, path, "invalid value " + quote(*text) + " (expected " + choice_list(choices) + ")");
    return std::nullopt;
}

}  // namespace fdsup::config
