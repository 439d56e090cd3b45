#include "sys/signal_names.h"

#include <csignal>
#include <cstdint>

#include "sys/decimal.h"

namespace fdsup {
namespace {

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

std::optional<int> parse_signal(std::string_view text) {
    if (!text.empty() && is_decimal_digit(text.front())) {
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

}  // namespace fdsup
