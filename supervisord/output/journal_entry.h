// One captured line as a journal entry: the datagram of journald's native protocol
// (systemd.io/JOURNAL_NATIVE_PROTOCOL; what sd_journal_sendv() sends), pure, for the tests.
//
// A datagram is a list of fields, each either
//     KEY=value\n
// or, for a value that the first form cannot carry (it holds a newline),
//     KEY\n<value's length as 64-bit little-endian><value>\n
// KEY is upper-case letters, digits and '_', not starting with '_' (journald sets those).
// Fields of a line (kJournalFormat documents the set; a change of names or meaning is a
// change of the format users filter on: bump it and say so in fdsup.toml(5)):
//     MESSAGE           the line, without its <N> prefix (below)
//     PRIORITY          0..7 (syslog's levels)
//     SYSLOG_IDENTIFIER the worker's name (what journalctl -t selects, and prints)
//     FDSUP_WORKER      the worker's name again (a field only fdsupd sets: `journalctl
//                       FDSUP_WORKER=web` finds exactly a worker's lines)
//     FDSUP_INSTANCE    the instance's index
//     FDSUP_STREAM      stdout | stderr
//     FDSUP_PID         the instance's pid, always (journald's _PID is the pid the
//                       datagram's credentials name: the instance's where the kernel lets
//                       fdsupd say so, else fdsupd's own)
//     OBJECT_PID        the instance's pid, only when the credentials could not name it:
//                       journald, from a root sender, then adds OBJECT_COMM=, OBJECT_EXE=...
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace fdsup {

inline constexpr int kJournalFormat = 1;

// A leading "<N>", N = 0..7, as sd-daemon.h's SD_EMERG ("<0>") .. SD_DEBUG ("<7>"): the
// line's priority, stripped from its message. Anything else ("<9>x", "<3", "<>", "<10>")
// is text: the line keeps it, with the stream's default priority.
struct LinePriority {
    int priority;
    std::string_view message;
};
inline constexpr int kStdoutPriority = 6;  // LOG_INFO
inline constexpr int kStderrPriority = 4;  // LOG_WARNING
LinePriority parse_line_priority(std::string_view line, bool from_stderr);

// Appends one field to a datagram: KEY=value, or the length-prefixed form when `value`
// holds a newline (or a NUL, which a C reader of the first form would cut at).
void append_journal_field(std::string& datagram, std::string_view key, std::string_view value);

}  // namespace fdsup
