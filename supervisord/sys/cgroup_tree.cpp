#include "sys/cgroup_tree.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>

namespace fdsup {
namespace {

Result<std::string> read_file(const std::string& path) {
    std::ifstream in(path);
    if (!in) return fail_errno("read " + path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

// mountinfo writes a space, tab, newline or backslash in a path as \ and three octal digits.
std::string unescape_mountinfo(std::string_view field) {
    std::string out;
    for (size_t i = 0; i < field.size(); ++i) {
        if (field[i] == '\\' && i + 3 < field.size()) {
            int value = 0;
            bool octal = true;
            for (size_t k = 1; k <= 3; ++k) {
                char c = field[i + k];
                if (c < '0' || c > '7') octal = false;
                value = value * 8 + (c - '0');
            }
            if (octal) {
                out += static_cast<char>(value);
                i += 3;
                continue;
            }
        }
        out += field[i];
    }
    return out;
}

std::vector<std::string_view> split_spaces(std::string_view line) {
    std::vector<std::string_view> fields;
    size_t at = 0;
    while (at < line.size()) {
        size_t end = line.find(' ', at);
        if (end == std::string_view::npos) end = line.size();
        if (end > at) fields.push_back(line.substr(at, end - at));
        at = end + 1;
    }
    return fields;
}

}  // namespace

std::string instance_cgroup_name(const std::string& worker, int index, uint64_t serial) {
    return worker + "@" + std::to_string(index) + "." + std::to_string(serial);
}

bool is_instance_cgroup_name(std::string_view name) {
    auto digits = [](std::string_view s) {
        return !s.empty() && s.size() <= 20 && s.find_first_not_of("0123456789") == std::string_view::npos;
    };
    size_t at = name.rfind('@');
    if (at == std::string_view::npos || at == 0) return false;
    std::string_view worker = name.substr(0, at), numbers = name.substr(at + 1);
    size_t dot = numbers.find('.');
    if (dot == std::string_view::npos || !digits(numbers.substr(0, dot)) || !digits(numbers.substr(dot + 1))) return false;
    return worker.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") ==
           std::string_view::npos;
}

namespace {

// The directory of cgroup `path` of the hierarchy whose mounts `matches` picks out.
// A line: "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS".
// ROOT is the part of the hierarchy the mount shows (not "/" for a bind mount of a
// subtree): the cgroup must lie below it.
Result<std::string> dir_in_mounts(const std::string& path, const std::string& mountinfo,
                                  const std::function<bool(std::string_view fstype, std::string_view options)>& matches) {
    std::istringstream mounts(mountinfo);
    for (std::string line; std::getline(mounts, line);) {
        auto fields = split_spaces(line);
        size_t dash = 6;
        while (dash < fields.size() && fields[dash] != "-") ++dash;
        if (dash + 1 >= fields.size()) continue;
        std::string_view options = dash + 3 < fields.size() ? fields[dash + 3] : std::string_view();
        if (!matches(fields[dash + 1], options)) continue;
        std::string root = unescape_mountinfo(fields[3]);
        std::string mountpoint = unescape_mountinfo(fields[4]);
        if (root == "/") return path == "/" ? mountpoint : mountpoint + path;
        if (path == root) return mountpoint;
        if (path.rfind(root + "/", 0) == 0) return mountpoint + path.substr(root.size());
    }
    return fail("no cgroup mount shows " + path);
}

bool has_option(std::string_view options, std::string_view wanted) {
    size_t at = 0;
    while (at <= options.size()) {
        size_t end = options.find(',', at);
        if (end == std::string_view::npos) end = options.size();
        if (options.substr(at, end - at) == wanted) return true;
        at = end + 1;
    }
    return false;
}

}  // namespace

Result<std::string> cgroup_dir_from(const std::string& proc_cgroup, const std::string& mountinfo) {
    // The unified hierarchy's line is "0::/path" (v1 controllers have their own lines).
    std::string path;
    bool found = false;
    std::istringstream cgroups(proc_cgroup);
    for (std::string line; std::getline(cgroups, line);) {
        if (line.rfind("0::", 0) == 0) {
            path = line.substr(3);
            found = true;
            break;
        }
    }
    if (!found || path.empty() || path[0] != '/') return fail("no cgroup v2 hierarchy in /proc/self/cgroup");
    auto dir = dir_in_mounts(path, mountinfo, [](std::string_view fstype, std::string_view) { return fstype == "cgroup2"; });
    if (!dir) return fail("no cgroup2 mount shows this process's cgroup " + path);
    return dir;
}

Result<std::string> cgroup_v1_dir_from(const std::string& proc_cgroup, const std::string& mountinfo,
                                       std::string_view controller) {
    // "4:memory:/path", "2:cpu,cpuacct:/path": a v1 hierarchy, with the controllers it holds.
    std::istringstream cgroups(proc_cgroup);
    for (std::string line; std::getline(cgroups, line);) {
        size_t first = line.find(':'), second = first == std::string::npos ? first : line.find(':', first + 1);
        if (second == std::string::npos) continue;
        std::string_view controllers = std::string_view(line).substr(first + 1, second - first - 1);
        if (!has_option(controllers, controller)) continue;
        std::string path = line.substr(second + 1);
        if (path.empty() || path[0] != '/') break;
        return dir_in_mounts(path, mountinfo, [controller](std::string_view fstype, std::string_view options) {
            return fstype == "cgroup" && has_option(options, controller);
        });
    }
    return fail("no cgroup v1 " + std::string(controller) + " hierarchy");
}

Result<std::unique_ptr<CgroupTree>> CgroupTree::open() {
    auto proc_cgroup = read_file("/proc/self/cgroup");
    if (!proc_cgroup) return std::unexpected(proc_cgroup.error());
    auto mountinfo = read_file("/proc/self/mountinfo");
    if (!mountinfo) return std::unexpected(mountinfo.error());
    auto own = cgroup_dir_from(*proc_cgroup, *mountinfo);
    if (!own) return std::unexpected(own.error());
    // After an in-place upgrade with limits on cgroup v2, this process is already in its
    // leaf below its own tree (enable_subtree_controllers): the tree's parent is "own".
    std::string leaf = "/fdsupd-" + std::to_string(::getpid()) + "/" + kSupervisorLeaf;
    if (own->size() > leaf.size() && own->ends_with(leaf)) own->resize(own->size() - leaf.size());

    // A process that exists is alive, whoever it is (EPERM: it is someone else's).
    auto alive = [](pid_t pid) { return ::kill(pid, 0) == 0 || errno == EPERM; };
    auto stale = remove_stale_trees(*own, ::getpid(), alive);

    std::string path = *own + "/fdsupd-" + std::to_string(::getpid());
    if (::mkdir(path.c_str(), 0755) < 0 && errno != EEXIST) return fail_errno("mkdir " + path);
    UniqueFd dir(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir) {
        int err = errno;
        ::rmdir(path.c_str());
        return fail("open " + path, err);
    }
    // cgroup.kill is what makes this mode worth having: without it a fork bomb could
    // outrun a loop of kill(2)s over cgroup.procs.
    if (::faccessat(dir.get(), "cgroup.kill", W_OK, 0) < 0) {
        int err = errno;
        ::rmdir(path.c_str());
        if (err == ENOENT) return fail(path + " has no cgroup.kill (it needs Linux 5.14 or later)");
        return fail(path + "/cgroup.kill", err);
    }
    auto tree = std::unique_ptr<CgroupTree>(new CgroupTree(*own, std::move(path), std::move(dir)));
    tree->stale_removed_ = std::move(stale);
    return tree;
}

namespace {

// Killed processes leave their cgroup a moment later: waits (until `deadline`) for
// cgroup.events to say "populated 0", which the kernel signals with POLLPRI.
void wait_until_empty(int events_fd, std::chrono::steady_clock::time_point deadline) {
    for (;;) {
        auto populated = cgroup_populated(events_fd);
        if (!populated || !*populated) return;
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return;
        pollfd watch{events_fd, POLLPRI, 0};
        if (::poll(&watch, 1, static_cast<int>(left.count())) < 0 && errno != EINTR) return;
    }
}

}  // namespace

std::vector<std::string> remove_stale_trees(const std::string& parent, pid_t own_pid,
                                            const std::function<bool(pid_t)>& alive) {
    std::vector<std::string> report;
    DIR* listing = ::opendir(parent.c_str());
    if (listing == nullptr) return report;
    std::vector<std::pair<std::string, pid_t>> candidates;
    while (const dirent* entry = ::readdir(listing)) {
        std::string_view name = entry->d_name;
        if (!name.starts_with("fdsupd-")) continue;
        std::string_view digits = name.substr(7);
        if (digits.empty() || digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string_view::npos)
            continue;
        pid_t pid = static_cast<pid_t>(std::stol(std::string(digits)));
        if (pid <= 0 || pid == own_pid || alive(pid)) continue;
        candidates.emplace_back(std::string(name), pid);
    }
    ::closedir(listing);

    for (const auto& [name, pid] : candidates) {
        std::string top = parent + "/" + name;
        size_t cgroups = 0, killed = 0, left = 0;
        if (DIR* instances = ::opendir(top.c_str())) {
            std::vector<std::string> children;
            while (const dirent* entry = ::readdir(instances))
                if (is_instance_cgroup_name(entry->d_name)) children.emplace_back(entry->d_name);
            ::closedir(instances);
            // Every populated one is killed first, then all are waited for together
            // (at most 500 ms in all, however many there are), then removed.
            std::vector<UniqueFd> killed_events;
            for (const auto& child : children) {
                std::string dir = top + "/" + child;
                ++cgroups;
                UniqueFd events(::open((dir + "/cgroup.events").c_str(), O_RDONLY | O_CLOEXEC));
                if (!events) continue;
                if (auto populated = cgroup_populated(events.get()); !populated || !*populated) continue;
                UniqueFd kill_file(::open((dir + "/cgroup.kill").c_str(), O_WRONLY | O_CLOEXEC));
                if (kill_file && ::write(kill_file.get(), "1", 1) == 1) {
                    ++killed;
                    killed_events.push_back(std::move(events));
                }
            }
            auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
            for (const auto& events : killed_events) wait_until_empty(events.get(), deadline);
            for (const auto& child : children)
                if (::rmdir((top + "/" + child).c_str()) < 0) ++left;  // EBUSY: something survived cgroup.kill
            ::rmdir((top + "/" + kSupervisorLeaf).c_str());  // where that fdsupd ran, if it moved itself
        }
        std::string what = std::to_string(cgroups) + (cgroups == 1 ? " cgroup" : " cgroups") +
                           (killed > 0 ? ", " + std::to_string(killed) + " with processes killed" : "");
        std::string whose = top + " (pid " + std::to_string(pid) + " is gone): " + what;
        if (left > 0)
            report.push_back("cannot remove " + whose + "; " + std::to_string(left) +
                             " still hold processes that survived cgroup.kill (tried again at the next start)");
        else if (::rmdir(top.c_str()) < 0)
            report.push_back("cannot remove " + whose + ": " + std::strerror(errno));
        else
            report.push_back("removed " + whose);
    }
    return report;
}

CgroupTree::~CgroupTree() { ::rmdir(path_.c_str()); }

Result<UniqueFd> CgroupTree::open_file(const std::string& name, const char* file, int flags) const {
    std::string relative = name + "/" + file;
    UniqueFd fd(::openat(dir_.get(), relative.c_str(), flags | O_CLOEXEC));
    if (!fd) return fail_errno("open " + path_ + "/" + relative);
    return fd;
}

Result<UniqueFd> CgroupTree::create(const std::string& name) const {
    if (::mkdirat(dir_.get(), name.c_str(), 0755) < 0) return fail_errno("mkdir " + path_ + "/" + name);
    UniqueFd fd(::openat(dir_.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) return fail_errno("open " + path_ + "/" + name);
    return fd;
}

Result<UniqueFd> CgroupTree::open_events(const std::string& name) const {
    return open_file(name, "cgroup.events", O_RDONLY);
}

Result<void> CgroupTree::kill(const std::string& name) const {
    auto fd = open_file(name, "cgroup.kill", O_WRONLY);
    if (!fd) return std::unexpected(fd.error());
    if (::write(fd->get(), "1", 1) != 1) return fail_errno("write " + path_ + "/" + name + "/cgroup.kill");
    return {};
}

Result<std::vector<pid_t>> CgroupTree::processes(const std::string& name) const {
    auto fd = open_file(name, "cgroup.procs", O_RDONLY);
    if (!fd) return std::unexpected(fd.error());
    std::string text;
    char buffer[4096];
    for (;;) {
        ssize_t n = ::read(fd->get(), buffer, sizeof buffer);
        if (n < 0) {
            if (errno == EINTR) continue;
            return fail_errno("read " + path_ + "/" + name + "/cgroup.procs");
        }
        if (n == 0) break;
        text.append(buffer, static_cast<size_t>(n));
    }
    std::vector<pid_t> pids;
    std::istringstream lines(text);
    for (pid_t pid; lines >> pid;) pids.push_back(pid);
    return pids;
}

Result<void> CgroupTree::remove(const std::string& name) const {
    if (::unlinkat(dir_.get(), name.c_str(), AT_REMOVEDIR) < 0) return fail_errno("rmdir " + path_ + "/" + name);
    return {};
}

Result<std::string> read_cgroup_file(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return fail_errno("open " + path);
    std::string text;
    char buffer[4096];
    for (;;) {
        ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fail_errno("read " + path);
        if (n == 0) return text;
        text.append(buffer, static_cast<size_t>(n));
    }
}

Result<void> write_cgroup_file(const std::string& path, const std::string& text) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd) return fail_errno("open " + path);
    if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
        return fail_errno("write \"" + text + "\" to " + path);
    return {};
}

bool lists_word(const std::string& text, const std::string& word) {
    std::istringstream words(text);
    for (std::string w; words >> w;)
        if (w == word) return true;
    return false;
}


Result<void> enable_subtree_controllers(const std::string& own, const std::string& tree,
                                        const std::vector<std::string>& names) {
    auto available = read_cgroup_file(own + "/cgroup.controllers");
    if (!available) return std::unexpected(available.error());
    for (const auto& name : names)
        if (!lists_word(*available, name))
            return fail(own + "/cgroup.controllers has no " + name +
                        " controller (under systemd: Delegate=yes in fdsupd's unit gives it every one)");
    auto enabled = read_cgroup_file(tree + "/cgroup.subtree_control");
    if (!enabled) return std::unexpected(enabled.error());
    if (std::all_of(names.begin(), names.end(), [&](const auto& n) { return lists_word(*enabled, n); })) return {};

    // cgroup v2 gives controllers to a cgroup's children only while it holds no process
    // itself (the root excepted): fdsupd moves into a leaf of its own first.
    std::string leaf = tree + "/" + kSupervisorLeaf;
    if (::mkdir(leaf.c_str(), 0755) < 0 && errno != EEXIST) return fail_errno("mkdir " + leaf);
    if (auto moved = write_cgroup_file(leaf + "/cgroup.procs", "0"); !moved) return moved;
    std::string wanted;  // "+memory +pids": one write per directory, all or nothing
    for (const auto& name : names) wanted += (wanted.empty() ? "+" : " +") + name;
    for (const std::string& dir : {own, tree})
        if (auto written = write_cgroup_file(dir + "/cgroup.subtree_control", wanted); !written) {
            bool busy = written.error().err == EBUSY;
            return fail(written.error().text() +
                        (busy ? " (processes other than fdsupd are in " + dir +
                                    ": fdsupd needs a cgroup of its own, such as systemd's Delegate=yes gives)"
                              : ""));
        }
    return {};
}

std::optional<uint64_t> cgroup_keyed_value(const std::string& text, std::string_view key) {
    size_t at = 0;
    while (at < text.size()) {
        size_t end = text.find('\n', at);
        if (end == std::string::npos) end = text.size();
        std::string_view line = std::string_view(text).substr(at, end - at);
        if (line.size() > key.size() && line.starts_with(key) && line[key.size()] == ' ') {
            uint64_t value = 0;
            auto digits = line.substr(key.size() + 1);
            auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
            if (ec == std::errc()) return value;
            return std::nullopt;
        }
        at = end + 1;
    }
    return std::nullopt;
}

Result<bool> cgroup_populated(int events_fd) {
    char buffer[256];
    ssize_t n;
    do n = ::pread(events_fd, buffer, sizeof buffer - 1, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0) return fail_errno("read cgroup.events");
    std::string_view text(buffer, static_cast<size_t>(n));
    size_t at = text.find("populated ");
    if (at == std::string_view::npos || at + 10 >= text.size()) return fail("cgroup.events has no \"populated\" line");
    return text[at + 10] == '1';
}

}  // namespace fdsup
