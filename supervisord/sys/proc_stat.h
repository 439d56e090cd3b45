// What the kernel says of the resources a process uses (/proc/PID/stat, /proc/PID/fd)
// and of pressure (PSI): the readers behind an instance's usage (supervisor/usage.cpp).
// The parsers are pure, for the tests.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fdsup {

struct ProcStat {
    pid_t pid = 0;
    pid_t process_group = 0;
    // utime + stime + cutime + cstime, in clock ticks (sysconf(_SC_CLK_TCK)): its own CPU
    // time and that of the children it has reaped (so a group's sum does not drop when
    // a child is gone).
    uint64_t cpu_ticks = 0;
    uint64_t rss_pages = 0;  // resident set, in pages
};

// One /proc/PID/stat line. The command name (field 2) is in parentheses and may hold
// spaces and ')' itself: the fields after it are found from the last ')'.
std::optional<ProcStat> parse_proc_stat(std::string_view line);
// /proc/PID/stat read and parsed; nullopt if the process is gone (or unreadable).
std::optional<ProcStat> read_proc_stat(pid_t pid);
// Every process in /proc now (one read of each stat file; those gone meanwhile skipped).
std::vector<ProcStat> scan_proc_stats();
// Entries in /proc/PID/fd; nullopt if it cannot be read.
std::optional<int> count_open_fds(pid_t pid);

// What one usage gathering reads of /proc, at once: the stat of every process (for the
// process groups' sums), and the open fds of some (the instances' main processes).
struct ProcSnapshot {
    std::vector<ProcStat> stats;               // every process in /proc, if asked (those gone meanwhile skipped)
    std::vector<std::optional<int>> open_fds;  // count_open_fds of each of `fds_of`, in order
    // The CPU time of the second thread, if there was one (the caller's own is its to count).
    std::chrono::nanoseconds helper_cpu{0};
};
// With hundreds of instances or more, on two threads (sys/two_threads.h), each path
// looked up from an open /proc ("PID/stat"): the kernel's path walk and its /proc
// files are nearly all of a gathering's cost.
ProcSnapshot read_proc(bool all_stats, const std::vector<pid_t>& fds_of);

double seconds_of_ticks(uint64_t ticks);
uint64_t bytes_of_pages(uint64_t pages);

// Pressure stall information (/proc/pressure/RESOURCE, a cgroup's RESOURCE.pressure):
// the share of the last 10 s in which some task waited (percent), and the totals in µs
// that some, and all (full), waited.
struct Pressure {
    double some_avg10 = 0;
    uint64_t some_total_us = 0;
    uint64_t full_total_us = 0;
    bool operator==(const Pressure&) const = default;
};
// "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=... total=0\n"; the
// "full" line is absent from cpu.pressure before Linux 5.13.
std::optional<Pressure> parse_pressure(std::string_view text);

}  // namespace fdsup
