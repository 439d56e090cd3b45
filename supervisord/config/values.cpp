#include "config/values.h"

#include <cstdio>

#include <csignal>
#include <cstdint>
#include <limits>
#include <string>

namespace fdsup::config {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Parses a whole string of decimal digits (no sign, no spaces) without overflow.
std::optional<uint64_t> parse_decimal(std::string_view text, uint64_t max) {
    if (text.empty()) return std::nullopt;
    uint64_t value = 0;
    for (char c : text) {
        if (!is_digit(c)) return std::nullopt;
        uint64_t digit = static_cast<uint64_t>(c - '0');
        if (value > (max - digit) / 10) return std::nullopt;
        value = value * 10 + digit;
    }
    return value;
}

struct SignalEntry {
    std::string_view name;  // without "SIG"
    int number;
};

// Canonical names first: signal_name() returns the first match, so the aliases
// (IOT, POLL) are only ever parsed, never printed.
constexpr SignalEntry kSignals[] = {
    {"HUP", SIGHUP},       {"INT", SIGINT},       {"QUIT", SIGQUIT},   {"ILL", SIGILL},
    {"TRAP", SIGTRAP},     {"ABRT", SIGABRT},     {"BUS", SIGBUS},     {"FPE", SIGFPE},
    {"KILL", SIGKILL},     {"USR1", SIGUSR1},     {"SEGV", SIGSEGV},   {"USR2", SIGUSR2},
    {"PIPE", SIGPIPE},     {"ALRM", SIGALRM},     {"TERM", SIGTERM},   {"STKFLT", SIGSTKFLT},
    {"CHLD", SIGCHLD},     {"CONT", SIGCONT},     {"STOP", SIGSTOP},   {"TSTP", SIGTSTP},
    {"TTIN", SIGTTIN},     {"TTOU", SIGTTOU},     {"URG", SIGURG},     {"XCPU", SIGXCPU},
    {"XFSZ", SIGXFSZ},     {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF},   {"WINCH", SIGWINCH},
    {"IO", SIGIO},         {"PWR", SIGPWR},       {"SYS", SIGSYS},     {"IOT", SIGIOT},
    {"POLL", SIGPOLL},
};

// "RTMIN", "RTMIN+N", "RTMAX", "RTMAX-N". SIGRTMIN is a glibc run-time value (it
// reserves the first real-time signals for itself), so this cannot be a table.
std::optional<int> parse_realtime(std::string_view text) {
    const int lo = SIGRTMIN, hi = SIGRTMAX;
    bool from_min = text.starts_with("RTMIN");
    if (!from_min && !text.starts_with("RTMAX")) return std::nullopt;
    std::string_view rest = text.substr(5);
    if (rest.empty()) return from_min ? lo : hi;
    if (rest.front() != (from_min ? '+' : '-')) return std::nullopt;
    auto offset = parse_decimal(rest.substr(1), static_cast<uint64_t>(hi - lo));
    if (!offset) return std::nullopt;
    int n = static_cast<int>(*offset);
    return from_min ? lo + n : hi - n;
}

}  // namespace

std::optional<Duration> parse_duration(std::string_view text) {
    size_t digits = 0;
    while (digits < text.size() && is_digit(text[digits])) ++digits;
    std::string_view number = text.substr(0, digits), unit = text.substr(digits);

    int64_t ms_per_unit = 0;
    if (unit == "ms") ms_per_unit = 1;
    else if (unit == "s") ms_per_unit = 1000;
    else if (unit == "m") ms_per_unit = 60 * 1000;
    else if (unit == "h") ms_per_unit = 60 * 60 * 1000;
    else return std::nullopt;

    // Bounded (100 years) so that nothing done with it overflows: doubling a backoff,
    // or adding it to the steady clock's nanoseconds for a deadline (which
    // overflow past ~292 years).
    const uint64_t max_ms = kMaxDurationHours * 3600 * 1000;
    auto value = parse_decimal(number, max_ms / static_cast<uint64_t>(ms_per_unit));
    if (!value) return std::nullopt;
    return Duration(static_cast<int64_t>(*value) * ms_per_unit);
}

std::optional<mode_t> parse_mode(std::string_view text) {
    if (text.starts_with("0o")) text.remove_prefix(2);
    if (text.empty() || text.size() > 4) return std::nullopt;
    mode_t mode = 0;
    for (char c : text) {
        if (c < '0' || c > '7') return std::nullopt;
        mode = mode * 8 + static_cast<mode_t>(c - '0');
    }
    return mode;  // four octal digits cannot exceed 07777
}

std::optional<int> parse_signal(std::string_view text) {
    if (!text.empty() && is_digit(text.front())) {
        auto n = parse_decimal(text, 64);
        if (!n || *n == 0) return std::nullopt;
        return static_cast<int>(*n);
    }
    if (text.starts_with("SIG")) text.remove_prefix(3);
    for (const auto& s : kSignals)
        if (s.name == text) return s.number;
    return parse_realtime(text);
}

std::string signal_name(int signal) {
    for (const auto& s : kSignals)
        if (s.number == signal) return std::string(s.name);
    if (signal == SIGRTMIN) return "RTMIN";
    if (signal > SIGRTMIN && signal <= SIGRTMAX)
        return "RTMIN+" + std::to_string(signal - SIGRTMIN);
    return std::to_string(signal);
}

std::string format_duration(std::chrono::steady_clock::duration d) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
    if (ms < 1000) return std::to_string(ms) + "ms";
    char text[32];
    std::snprintf(text, sizeof text, "%.1fs", static_cast<double>(ms) / 1000.0);
    return text;
}

}  // namespace fdsup::config
