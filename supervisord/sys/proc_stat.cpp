#include "sys/proc_stat.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <string>

#include "sys/clock.h"
#include "sys/two_threads.h"
#include "sys/unique_fd.h"

namespace fdsup {
namespace {

std::optional<uint64_t> number_at(std::string_view text) {
    uint64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end == text.data()) return std::nullopt;
    return value;
}

std::optional<pid_t> pid_of_name(std::string_view name) {
    if (name.empty() || name.find_first_not_of("0123456789") != std::string_view::npos) return std::nullopt;
    auto value = number_at(name);
    if (!value || *value == 0 || *value > 4194304) return std::nullopt;
    return static_cast<pid_t>(*value);
}

}  // namespace

std::optional<ProcStat> parse_proc_stat(std::string_view line) {
    size_t open = line.find('(');
    size_t close = line.rfind(')');
    if (open == std::string_view::npos || close == std::string_view::npos || close < open) return std::nullopt;
    auto pid = pid_of_name(line.substr(0, open > 0 ? open - 1 : 0));
    if (!pid) return std::nullopt;
    // After ")": field 3 (state) onwards, space-separated. pgrp is field 5, utime 14,
    // stime 15, cutime 16, cstime 17, rss 24 (proc(5)).
    std::string_view rest = line.substr(close + 1);
    std::array<std::string_view, 22> fields;  // no allocation: this runs for every process on the machine
    size_t found = 0, at = 0;
    while (at < rest.size() && found < fields.size()) {
        while (at < rest.size() && rest[at] == ' ') ++at;
        size_t end = rest.find(' ', at);
        if (end == std::string_view::npos) end = rest.size();
        if (end > at) fields[found++] = rest.substr(at, end - at);
        at = end;
    }
    if (found < fields.size()) return std::nullopt;
    auto field = [&](int number) { return fields[static_cast<size_t>(number - 3)]; };
    auto pgrp = number_at(field(5)), utime = number_at(field(14)), stime = number_at(field(15)),
         cutime = number_at(field(16)), cstime = number_at(field(17)), rss = number_at(field(24));
    if (!pgrp || !utime || !stime || !cutime || !cstime || !rss) return std::nullopt;
    return ProcStat{*pid, static_cast<pid_t>(*pgrp), *utime + *stime + *cutime + *cstime, *rss};
}

namespace {

// "PID/NAME", relative to an open /proc (the walk starts there, not at "/"), or with
// kFromRoot "/proc/PID/NAME", for AT_FDCWD.
constexpr int kFromRoot = AT_FDCWD;
struct PidPath {
    char text[40];
    PidPath(int proc, pid_t pid, std::string_view name) {
        std::string_view root = proc == kFromRoot ? "/proc/" : "";
        char* end = std::copy(root.begin(), root.end(), text);
        end = std::to_chars(end, end + 12, static_cast<int>(pid)).ptr;
        *end++ = '/';
        end = std::copy(name.begin(), name.end(), end);
        *end = '\0';
    }
};

std::optional<ProcStat> read_stat_at(int proc, pid_t pid) {
    UniqueFd fd(::openat(proc, PidPath(proc, pid, "stat").text, O_RDONLY | O_CLOEXEC));
    if (!fd) return std::nullopt;
    char buffer[1024];
    ssize_t n;
    do n = ::read(fd.get(), buffer, sizeof buffer);
    while (n < 0 && errno == EINTR);
    if (n <= 0) return std::nullopt;
    return parse_proc_stat(std::string_view(buffer, static_cast<size_t>(n)));
}

std::optional<int> count_open_fds_at(int proc, pid_t pid) {
    PidPath path(proc, pid, "fd");
    // Since Linux 6.2 the directory's size is the number of open fds: one stat instead
    // of listing them (which makes a dentry per fd). 0 means an older kernel, or none.
    struct stat st {};
    if (::fstatat(proc, path.text, &st, 0) == 0 && st.st_size > 0) return static_cast<int>(st.st_size);
    UniqueFd dir(::openat(proc, path.text, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir) return std::nullopt;
    DIR* fds = ::fdopendir(dir.get());
    if (fds == nullptr) return std::nullopt;
    dir.release();  // closedir closes it
    int count = 0;
    while (const dirent* entry = ::readdir(fds))
        if (entry->d_name[0] != '.') ++count;
    ::closedir(fds);
    return count;
}

UniqueFd open_proc() { return UniqueFd(::open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC)); }

std::vector<pid_t> pids_in_proc() {
    std::vector<pid_t> pids;
    DIR* proc = ::opendir("/proc");
    if (proc == nullptr) return pids;
    while (const dirent* entry = ::readdir(proc))
        if (auto pid = pid_of_name(entry->d_name)) pids.push_back(*pid);
    ::closedir(proc);
    return pids;
}

// With fewer instances than this to look at, a second thread costs more than it saves
// (and a small fdsupd stays a single thread).
constexpr size_t kWorthASecondThread = 256;
// The reads a part takes at once from the common counter.
constexpr size_t kChunk = 32;

}  // namespace

std::optional<ProcStat> read_proc_stat(pid_t pid) { return read_stat_at(kFromRoot, pid); }

std::vector<ProcStat> scan_proc_stats() { return read_proc(true, {}).stats; }

std::optional<int> count_open_fds(pid_t pid) { return count_open_fds_at(kFromRoot, pid); }

ProcSnapshot read_proc(bool all_stats, const std::vector<pid_t>& fds_of) {
    ProcSnapshot snapshot;
    snapshot.open_fds.resize(fds_of.size());
    UniqueFd proc = open_proc();
    if (!proc) return snapshot;
    std::vector<pid_t> pids;
    std::vector<std::optional<ProcStat>> stats;
    // The fds are counted meanwhile /proc is listed (by part 0, the listing is not to be
    // shared); then both parts take the stat reads, a chunk at a time from a common
    // counter (how long a read takes varies), each writing its own slots only.
    std::atomic<size_t> next_fds{0}, next_stat{0};
    std::atomic<bool> listed{!all_stats};
    bool listing_failed = false;  // written before `listed` is released, read after it is seen
    auto run = [&](std::atomic<size_t>& next, size_t count, auto&& read_one) {
        for (size_t begin; (begin = next.fetch_add(kChunk)) < count;)
            for (size_t i = begin; i < std::min(begin + kChunk, count); ++i) read_one(i);
    };
    auto count_fds = [&](size_t i) { snapshot.open_fds[i] = count_open_fds_at(proc.get(), fds_of[i]); };
    auto read_stat = [&](size_t i) { stats[i] = read_stat_at(proc.get(), pids[i]); };
    on_two_threads(fds_of.size() >= kWorthASecondThread, [&](int part, int) {
        auto began = part == 1 ? thread_cpu_time() : std::chrono::nanoseconds{0};
        if (part == 0 && all_stats) {
            // However the listing ends (a bad_alloc included), the other part must stop
            // waiting for it, and must not read stats that were never sized.
            struct Announce {
                std::atomic<bool>& listed;
                ~Announce() {
                    listed.store(true, std::memory_order_release);
                    listed.notify_all();
                }
            } announce{listed};
            listing_failed = true;
            pids = pids_in_proc();
            stats.resize(pids.size());
            listing_failed = false;
        }
        run(next_fds, fds_of.size(), count_fds);
        listed.wait(false, std::memory_order_acquire);
        if (listing_failed) return;
        run(next_stat, pids.size(), read_stat);
        if (part == 1) snapshot.helper_cpu = thread_cpu_time() - began;
    });
    snapshot.stats.reserve(stats.size());
    for (const auto& stat : stats)
        if (stat) snapshot.stats.push_back(*stat);
    return snapshot;
}

double seconds_of_ticks(uint64_t ticks) {
    static const long per_second = ::sysconf(_SC_CLK_TCK);
    return static_cast<double>(ticks) / static_cast<double>(per_second > 0 ? per_second : 100);
}

uint64_t bytes_of_pages(uint64_t pages) {
    static const long page = ::sysconf(_SC_PAGESIZE);
    return pages * static_cast<uint64_t>(page > 0 ? page : 4096);
}

std::optional<Pressure> parse_pressure(std::string_view text) {
    Pressure pressure;
    bool some = false;
    size_t at = 0;
    while (at < text.size()) {
        size_t end = text.find('\n', at);
        if (end == std::string_view::npos) end = text.size();
        std::string_view line = text.substr(at, end - at);
        at = end + 1;
        bool is_some = line.starts_with("some ");
        if (!is_some && !line.starts_with("full ")) continue;
        size_t field_at = 5;
        while (field_at < line.size()) {
            size_t field_end = line.find(' ', field_at);
            if (field_end == std::string_view::npos) field_end = line.size();
            std::string_view field = line.substr(field_at, field_end - field_at);
            field_at = field_end + 1;
            size_t eq = field.find('=');
            if (eq == std::string_view::npos) return std::nullopt;
            std::string_view key = field.substr(0, eq), value = field.substr(eq + 1);
            if (key == "total") {
                auto total = number_at(value);
                if (!total) return std::nullopt;
                (is_some ? pressure.some_total_us : pressure.full_total_us) = *total;
            } else if (key == "avg10" && is_some) {
                std::string copy(value);
                char* parsed_end = nullptr;
                pressure.some_avg10 = std::strtod(copy.c_str(), &parsed_end);
                if (parsed_end == copy.c_str()) return std::nullopt;
            }
        }
        some |= is_some;
    }
    if (!some) return std::nullopt;
    return pressure;
}

}  // namespace fdsup
