#include "sockets/take_over.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>

#include "sockets/socket_match.h"
#include "sys/foreign_fds.h"
#include "sys/process.h"

namespace fdsup {
namespace {

// A pid file larger than this is not a pid file.
constexpr std::streamsize kMaxPidFile = 4096;

struct Candidate {
    UniqueFd fd;
    SocketFacts facts;
};

// Yama's ptrace_scope (0 without Yama): 1 lets a process trace only its descendants.
int yama_scope() {
    std::ifstream in("/proc/sys/kernel/yama/ptrace_scope");
    int scope = 0;
    if (!(in >> scope)) return 0;
    return scope;
}

bool descends_from(pid_t pid, pid_t ancestor) {
    for (int depth = 0; pid > 1 && depth < 256; ++depth) {
        auto parent = parent_pid_of(pid);
        if (!parent) return false;
        if (*parent == ancestor) return true;
        pid = *parent;
    }
    return false;
}

// The caller may take what it could ptrace (ptrace(2), "Ptrace access mode checking",
// with PTRACE_MODE_REALCREDS): root may; anyone else must be the process's real,
// effective and saved uid and gid, the process must be dumpable and hold no permitted
// capability (a caller without privileges has none to cover them), and Yama must allow
// it (ptrace_scope 1: only the caller's descendants; 2 and 3: root only).
Result<void> check_caller(const ucred& caller, pid_t pid, const std::string& prefix) {
    if (caller.uid == 0) return {};
    const std::string who = "uid " + std::to_string(caller.uid) + " may not take the sockets of pid " + std::to_string(pid);
    auto uids = process_uids(pid);
    if (!uids) return fail(prefix + "cannot tell who owns pid " + std::to_string(pid) + " (" + uids.error().text() + ")");
    if (!std::all_of(uids->begin(), uids->end(), [&](uid_t uid) { return uid == caller.uid; })) {
        std::string owner = std::to_string((*uids)[0]);
        if ((*uids)[1] != (*uids)[0] || (*uids)[2] != (*uids)[0])
            owner += "/" + std::to_string((*uids)[1]) + "/" + std::to_string((*uids)[2]);
        return fail(prefix + who + " (its uid is " + owner + "): only root or the process's own user may, as for ptrace");
    }
    auto facts = ptrace_facts(pid);
    if (!facts) return fail(prefix + "cannot tell who owns pid " + std::to_string(pid) + " (" + facts.error().text() + ")");
    if (!std::all_of(facts->gids.begin(), facts->gids.end(), [&](gid_t gid) { return gid == caller.gid; }))
        return fail(prefix + who + " (its gid is " + std::to_string(facts->gids[0]) + ", the caller's " +
                    std::to_string(caller.gid) + "): as for ptrace, the gids must match too");
    if (facts->proc_owner != caller.uid)
        return fail(prefix + who + ": it is not dumpable (it changed credentials, or said so with PR_SET_DUMPABLE), "
                                   "so only root may, as for ptrace");
    if (facts->permitted_caps != 0)
        return fail(prefix + who + ": it holds capabilities the caller does not, so only root may, as for ptrace");
    int scope = yama_scope();
    if (scope >= 2) return fail(prefix + who + ": Yama's ptrace_scope is " + std::to_string(scope) + ", only root may");
    if (scope == 1 && !descends_from(pid, caller.pid))
        return fail(prefix + who + ": Yama's ptrace_scope is 1 and it does not descend from the caller (pid " +
                    std::to_string(caller.pid) + "); only root may");
    return {};
}

// fdsupd itself is not allowed (`step` failed with EPERM or EACCES). `permanent`: no
// other fd of the process will do better.
Error not_permitted(pid_t pid, const std::string& step, int err, const std::string& prefix) {
    return Error{prefix + "fdsupd may not ptrace pid " + std::to_string(pid) + " (" + step + ": " + std::strerror(err) +
                     "; it needs the process's uid or CAP_SYS_PTRACE, and Yama's ptrace_scope must allow it)",
                 0, true};
}

// pidfd_getfd's errors, said for the operator.
Error copy_error(const Error& error, pid_t pid, int fd, const std::string& prefix) {
    if (error.err == EPERM) return not_permitted(pid, "pidfd_getfd", EPERM, prefix);
    if (error.err == EBADF) return Error{prefix + "pid " + std::to_string(pid) + " has no fd " + std::to_string(fd)};
    if (error.err == ESRCH) return Error{prefix + "pid " + std::to_string(pid) + " has exited"};
    return Error{prefix + "pid " + std::to_string(pid) + " fd " + std::to_string(fd) + ": " + error.text()};
}

// Why the socket at `fd` is not the one `cfg` describes, or nothing if it is.
std::optional<std::string> mismatch(const SocketFacts& facts, const config::SocketConfig& cfg, const SockAddr& expected,
                                    const std::string& listen) {
    const std::string bound = facts.bound.empty() ? std::string("nothing") : facts.bound;
    const std::string says = ", [sockets." + cfg.name + "] says " + listen;
    switch (compare_socket(facts, cfg.address, expected)) {
        case SocketMismatch::none: return std::nullopt;
        case SocketMismatch::kind: return "is a " + kind_of(facts) + " socket bound to " + bound + says;
        case SocketMismatch::address: return (facts.listening ? "listens on " : "is bound to ") + bound + says;
        case SocketMismatch::not_listening: return "is not listening (bound to " + bound + ")";
    }
    return std::nullopt;
}

}  // namespace

Result<pid_t> parse_pid_text(std::string_view text) {
    auto space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
    while (!text.empty() && space(text.front())) text.remove_prefix(1);
    while (!text.empty() && space(text.back())) text.remove_suffix(1);
    if (text.empty()) return fail("it is empty");
    long long pid = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), pid);
    if (ec != std::errc() || end != text.data() + text.size() || pid <= 0 || pid > 4194304)
        return fail("\"" + std::string(text.substr(0, 40)) + "\" is not a pid");
    return static_cast<pid_t>(pid);
}

Result<pid_t> read_pid_file(const std::string& path) {
    std::ifstream in(path);
    if (!in) return fail_errno("pid file " + path);
    std::string text(static_cast<size_t>(kMaxPidFile), '\0');
    in.read(text.data(), kMaxPidFile);
    text.resize(static_cast<size_t>(in.gcount()));
    auto pid = parse_pid_text(text);
    if (!pid) return fail("pid file " + path + ": " + pid.error().message);
    return pid;
}

Result<TakenSocket> take_over_socket(const config::SocketConfig& cfg, const TakeOverRequest& request) {
    const std::string prefix = "socket " + cfg.name + ": ";
    const std::string listen = listen_text(cfg);
    const pid_t pid = request.pid;
    if (pid <= 0) return fail(prefix + "no process " + std::to_string(pid));

    auto pidfd = open_pidfd(pid);
    if (!pidfd) {
        if (pidfd.error().err == ESRCH) return fail(prefix + "no process " + std::to_string(pid));
        return fail(prefix + pidfd.error().text());
    }
    if (request.caller) {
        auto allowed = check_caller(*request.caller, pid, prefix);
        if (!allowed) return std::unexpected(allowed.error());
        // The pid was read through /proc: still the same process only if it has not exited.
        if (pidfd_exited(pidfd->get())) return fail(prefix + "pid " + std::to_string(pid) + " has exited");
    }
    auto expected = cfg.address.is_inet() ? resolve_inet(cfg.address, socket_type(cfg.address.kind), prefix + "resolve " + listen)
                                          : unix_address(cfg.address, prefix + listen);
    if (!expected) return std::unexpected(expected.error());
    const std::string of = prefix + "pid " + std::to_string(pid) + " fd ";

    auto take = [&](int fd) -> Result<Candidate> {
        auto copy = copy_fd_of(pidfd->get(), fd);
        if (!copy) return std::unexpected(copy_error(copy.error(), pid, fd, prefix));
        auto facts = socket_facts(copy->get());
        if (!facts)
            return fail(of + std::to_string(fd) + (facts.error().err == 0 ? " is " : ": ") + facts.error().message,
                        facts.error().err);
        return Candidate{std::move(*copy), std::move(*facts)};
    };

    int chosen_fd = -1;
    std::optional<Candidate> chosen;
    if (request.fd) {
        auto candidate = take(*request.fd);
        if (!candidate) return std::unexpected(candidate.error());
        if (auto why = mismatch(candidate->facts, cfg, *expected, listen)) return fail(of + std::to_string(*request.fd) + " " + *why);
        chosen_fd = *request.fd;
        chosen = std::move(*candidate);
    } else {
        auto fds = socket_fds_of(pid);
        if (!fds && (fds.error().err == EACCES || fds.error().err == EPERM))
            return std::unexpected(not_permitted(pid, fds.error().message, fds.error().err, prefix));
        if (!fds) return fail(prefix + fds.error().text());
        std::map<ino_t, std::vector<int>> matching;  // one socket, every fd of it
        std::optional<std::string> near_miss;
        for (int fd : *fds) {
            auto candidate = take(fd);
            if (!candidate) {
                if (candidate.error().permanent) return std::unexpected(candidate.error());
                continue;  // closed meanwhile, or not a socket any more
            }
            struct stat st{};
            if (::fstat(candidate->fd.get(), &st) < 0) continue;
            auto why = mismatch(candidate->facts, cfg, *expected, listen);
            if (why) {
                if (compare_socket(candidate->facts, cfg.address, *expected) == SocketMismatch::not_listening && !near_miss)
                    near_miss = "fd " + std::to_string(fd) + " " + *why;
                continue;
            }
            matching[st.st_ino].push_back(fd);
            if (!chosen) {
                chosen_fd = fd;
                chosen = std::move(*candidate);
            }
        }
        if (matching.empty())
            return fail(prefix + "no socket of pid " + std::to_string(pid) + " listens on " + listen +
                        (near_miss ? " (" + *near_miss + ")" : ""));
        if (matching.size() > 1) {
            std::string list;
            for (const auto& [inode, numbers] : matching) list += (list.empty() ? "" : ", ") + std::to_string(numbers.front());
            return fail(prefix + "pid " + std::to_string(pid) + " has " + std::to_string(matching.size()) +
                        " sockets listening on " + listen + " (fds " + list + ", SO_REUSEPORT); say which with --fd");
        }
    }
    if (auto ok = update_socket_options(chosen->fd.get(), cfg); !ok) return std::unexpected(ok.error());
    return TakenSocket{BoundSocket{std::move(chosen->fd), std::move(chosen->facts.bound)}, pid, chosen_fd};
}

Result<TakenSocket> take_over_from_pid_file(const config::SocketConfig& cfg) {
    const std::string prefix = "socket " + cfg.name + ": ";
    if (!cfg.adopt) return fail(prefix + "no adopt table");
    auto pid = read_pid_file(cfg.adopt->pid_file);
    if (!pid) return fail(prefix + pid.error().text());
    return take_over_socket(cfg, TakeOverRequest{*pid, std::nullopt, std::nullopt});
}

}  // namespace fdsup
