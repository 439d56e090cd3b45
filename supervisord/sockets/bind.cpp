#include "sockets/bind.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <optional>
#include <vector>

#include "sockets/socket_address.h"
#include "sockets/socket_match.h"
#include "sockets/unix_probe.h"
#include "sys/paths.h"
#include "sys/users.h"

#ifndef IPV6_FREEBIND
#define IPV6_FREEBIND 78
#endif

namespace fdsup {

// The listen string as written, or rebuilt from the parsed address.
std::string listen_text(const config::SocketConfig& cfg) {
    if (!cfg.listen.empty()) return cfg.listen;
    const ListenAddress& a = cfg.address;
    std::string kind = socket_kind_name(a.kind);
    if (a.is_inet()) {
        bool v6 = a.host.find(':') != std::string::npos;
        return kind + "://" + (v6 ? "[" + a.host + "]" : a.host) + ":" + std::to_string(a.port);
    }
    return kind + ":" + (a.abstract ? "@" : "") + a.path;
}

namespace {

Result<void> set_option(int fd, int level, int option, int value, const std::string& what) {
    if (setsockopt(fd, level, option, &value, sizeof value) < 0) return fail_errno(what);
    return {};
}

// Replaces a stale socket file at `path` (nobody answers a connect of `type` there);
// refuses one that a process still serves, unless it is in `replaceable` (the caller's
// own, which it is replacing), and anything that is not a socket.
Result<void> clear_path(const std::string& path, int type, const std::vector<std::string>& replaceable,
                        const std::string& prefix, const std::string& listen) {
    struct stat st{};
    if (lstat(path.c_str(), &st) < 0) return {};  // absent (or unreachable: bind will say why)
    if (!S_ISSOCK(st.st_mode)) return fail(prefix + path + " exists and is not a socket");
    bool ours = std::find(replaceable.begin(), replaceable.end(), path) != replaceable.end();
    if (!ours) {
        SocketFileProbe probe = probe_socket_file(path, type);
        if (probe.use == SocketFileUse::in_use)
            return fail(prefix + listen + " is in use by another process (" + describe_socket_file_probe(probe) +
                        "); not replacing it");
        if (probe.use == SocketFileUse::unknown)
            return fail(prefix + listen + ": cannot tell whether another process serves it (" +
                        describe_socket_file_probe(probe) + "); not replacing it");
        if (probe.use == SocketFileUse::absent) return {};  // gone meanwhile
    }
    if (unlink(path.c_str()) < 0 && errno != ENOENT)
        return fail_errno(prefix + "remove stale socket " + path);
    return {};
}

// Unless the bind as a whole succeeded: unlinks the socket file this call created, then
// removes the directories it made for it.
class PathCleanup {
public:
    PathCleanup() = default;
    PathCleanup(const PathCleanup&) = delete;
    PathCleanup& operator=(const PathCleanup&) = delete;
    ~PathCleanup() {
        if (!path_.empty()) unlink(path_.c_str());
        remove_directories(directories_);
    }
    void arm(std::string path) { path_ = std::move(path); }
    std::vector<std::string>* directories() { return &directories_; }
    void disarm() {
        path_.clear();
        directories_.clear();
    }

private:
    std::string path_;
    std::vector<std::string> directories_;  // made by this call, parents first
};

Result<void> configure_inet(int fd, const config::SocketConfig& cfg, int family,
                            const std::string& prefix, const std::string& listen) {
    auto what = [&](const char* step) { return prefix + "setsockopt " + step + " " + listen; };
    bool tcp = cfg.address.kind == SocketKind::tcp;
    Result<void> ok;
    if (tcp) ok = set_option(fd, SOL_SOCKET, SO_REUSEADDR, 1, what("SO_REUSEADDR"));
    if (ok && cfg.reuse_port) ok = set_option(fd, SOL_SOCKET, SO_REUSEPORT, 1, what("SO_REUSEPORT"));
    if (ok && cfg.free_bind) {
        ok = family == AF_INET6
                 ? set_option(fd, IPPROTO_IPV6, IPV6_FREEBIND, 1, what("IPV6_FREEBIND"))
                 : set_option(fd, IPPROTO_IP, IP_FREEBIND, 1, what("IP_FREEBIND"));
    }
    if (ok && family == AF_INET6)
        ok = set_option(fd, IPPROTO_IPV6, IPV6_V6ONLY, cfg.ipv6_only ? 1 : 0, what("IPV6_V6ONLY"));
    if (ok && tcp && cfg.nodelay)
        ok = set_option(fd, IPPROTO_TCP, TCP_NODELAY, 1, what("TCP_NODELAY"));
    if (ok && tcp && cfg.keepalive)
        ok = set_option(fd, SOL_SOCKET, SO_KEEPALIVE, 1, what("SO_KEEPALIVE"));
    return ok;
}

Result<void> configure_buffers(int fd, const config::SocketConfig& cfg, const std::string& prefix,
                               const std::string& listen) {
    if (cfg.receive_buffer > 0) {
        auto ok = set_option(fd, SOL_SOCKET, SO_RCVBUF, cfg.receive_buffer,
                             prefix + "setsockopt SO_RCVBUF " + listen);
        if (!ok) return ok;
    }
    if (cfg.send_buffer > 0) {
        auto ok = set_option(fd, SOL_SOCKET, SO_SNDBUF, cfg.send_buffer,
                             prefix + "setsockopt SO_SNDBUF " + listen);
        if (!ok) return ok;
    }
    return {};
}

}  // namespace

Result<BoundSocket> bind_socket(const config::SocketConfig& cfg, const std::vector<std::string>& replaceable) {
    const ListenAddress& a = cfg.address;
    const std::string prefix = "socket " + cfg.name + ": ";
    const std::string listen = listen_text(cfg);
    const int type = socket_type(a.kind);
    const bool path_socket = a.is_unix() && !a.abstract;

    auto addr = a.is_inet() ? resolve_inet(a, type, prefix + "resolve " + listen)
                            : unix_address(a, prefix + listen);
    if (!addr) return std::unexpected(addr.error());

    // Owner and group are resolved before anything is created, so a typo leaves no file.
    std::optional<uid_t> uid;
    std::optional<gid_t> gid;
    const std::string chown_prefix = prefix + "chown " + a.path + ": ";
    if (path_socket && cfg.owner) {
        auto user = find_user(*cfg.owner);
        if (!user) return fail_with_prefix(chown_prefix, user.error());
        uid = user->uid;
    }
    if (path_socket && cfg.group) {
        auto group = find_group(*cfg.group);
        if (!group) return fail_with_prefix(chown_prefix, group.error());
        gid = *group;
    }

    UniqueFd fd(socket(addr->family(), type | SOCK_CLOEXEC, 0));
    if (!fd) return fail_errno(prefix + "socket " + listen);

    if (a.is_inet()) {
        auto ok = configure_inet(fd.get(), cfg, addr->family(), prefix, listen);
        if (!ok) return std::unexpected(ok.error());
    }
    if (auto ok = configure_buffers(fd.get(), cfg, prefix, listen); !ok)
        return std::unexpected(ok.error());

    PathCleanup cleanup;
    if (path_socket) {
        // The directories it lives in (0755, as the runtime directory): a socket beside
        // the control socket is bound before fdsupd makes that directory.
        if (auto made = make_directories(directory_of(a.path), cleanup.directories()); !made)
            return fail(prefix + listen + ": " + made.error().text());
        auto ok = clear_path(a.path, type, replaceable, prefix, listen);
        if (!ok) return std::unexpected(ok.error());
    }

    // With a mode configured the file starts with no permissions, so nobody can connect
    // before chown and chmod below have run. (One thread: the umask is ours alone.)
    const bool restrict_mode = path_socket && cfg.mode.has_value();
    mode_t old_umask = restrict_mode ? umask(0777) : 0;
    int rc = ::bind(fd.get(), addr->get(), addr->len);
    int bind_errno = errno;
    if (restrict_mode) umask(old_umask);
    if (rc < 0) return fail(prefix + "bind " + listen, bind_errno);
    if (path_socket) cleanup.arm(a.path);

    if (uid || gid) {
        if (chown(a.path.c_str(), uid.value_or(static_cast<uid_t>(-1)),
                  gid.value_or(static_cast<gid_t>(-1))) < 0)
            return fail_errno(prefix + "chown " + a.path);
    }
    if (restrict_mode) {
        if (chmod(a.path.c_str(), *cfg.mode) < 0) return fail_errno(prefix + "chmod " + a.path);
    }

    if (a.listens() && ::listen(fd.get(), cfg.backlog) < 0)
        return fail_errno(prefix + "listen " + listen);

    auto bound = describe_local_address(fd.get());
    if (!bound) return fail(prefix + bound.error().message + " " + listen, bound.error().err);

    cleanup.disarm();
    return BoundSocket{std::move(fd), std::move(*bound)};
}

Result<BoundSocket> adopt_bound_socket(UniqueFd fd, const config::SocketConfig& cfg) {
    const ListenAddress& a = cfg.address;
    const std::string listen = listen_text(cfg);
    const std::string prefix = "socket " + cfg.name + ": the inherited fd " + std::to_string(fd.get());

    auto facts = socket_facts(fd.get());
    if (!facts) return fail(prefix + (facts.error().err == 0 ? " is " : ": ") + facts.error().message, facts.error().err);
    auto expected = a.is_inet() ? resolve_inet(a, socket_type(a.kind), prefix + ": resolve " + listen)
                                : unix_address(a, prefix + ": " + listen);
    if (!expected) return std::unexpected(expected.error());
    auto differs = [&](const std::string& what) {
        return fail(prefix + " " + what + ", not " + listen);
    };
    const std::string bound = facts->bound.empty() ? std::string("nothing") : facts->bound;
    switch (compare_socket(*facts, a, *expected)) {
        case SocketMismatch::kind: return differs("is a " + kind_of(*facts) + " socket bound to " + bound);
        case SocketMismatch::address: return differs("is bound to " + bound);
        case SocketMismatch::not_listening: return differs("is bound to " + bound + " but not listening");
        case SocketMismatch::none: break;
    }
    if (auto ok = update_socket_options(fd.get(), cfg); !ok) return std::unexpected(ok.error());
    return BoundSocket{std::move(fd), std::move(facts->bound)};
}

Result<void> update_socket_options(int fd, const config::SocketConfig& cfg) {
    const ListenAddress& a = cfg.address;
    const std::string prefix = "socket " + cfg.name + ": ";
    const std::string listen = listen_text(cfg);
    auto what = [&](const char* step) { return prefix + "setsockopt " + step + " " + listen; };
    if (a.kind == SocketKind::tcp) {
        if (auto ok = set_option(fd, IPPROTO_TCP, TCP_NODELAY, cfg.nodelay ? 1 : 0, what("TCP_NODELAY")); !ok)
            return ok;
        if (auto ok = set_option(fd, SOL_SOCKET, SO_KEEPALIVE, cfg.keepalive ? 1 : 0, what("SO_KEEPALIVE")); !ok)
            return ok;
    }
    if (auto ok = configure_buffers(fd, cfg, prefix, listen); !ok) return ok;
    if (a.is_unix() && !a.abstract) {
        std::optional<uid_t> uid;
        std::optional<gid_t> gid;
        const std::string chown_prefix = prefix + "chown " + a.path + ": ";
        if (cfg.owner) {
            auto user = find_user(*cfg.owner);
            if (!user) return fail_with_prefix(chown_prefix, user.error());
            uid = user->uid;
        }
        if (cfg.group) {
            auto group = find_group(*cfg.group);
            if (!group) return fail_with_prefix(chown_prefix, group.error());
            gid = *group;
        }
        if ((uid || gid) && chown(a.path.c_str(), uid.value_or(static_cast<uid_t>(-1)),
                                  gid.value_or(static_cast<gid_t>(-1))) < 0)
            return fail_errno(prefix + "chown " + a.path);
        if (cfg.mode && chmod(a.path.c_str(), *cfg.mode) < 0) return fail_errno(prefix + "chmod " + a.path);
    }
    if (a.listens() && ::listen(fd, cfg.backlog) < 0) return fail_errno(prefix + "listen " + listen);
    return {};
}

Result<std::string> describe_local_address(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0) return fail_errno("getsockname");
    char text[INET6_ADDRSTRLEN] = {};
    switch (ss.ss_family) {
        case AF_INET: {
            const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
            if (!inet_ntop(AF_INET, &in->sin_addr, text, sizeof text)) return fail_errno("inet_ntop");
            return std::string(text) + ":" + std::to_string(ntohs(in->sin_port));
        }
        case AF_INET6: {
            const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
            if (!inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text)) return fail_errno("inet_ntop");
            std::string host = text;
            if (in6->sin6_scope_id != 0) {
                char ifname[IF_NAMESIZE] = {};
                if (if_indextoname(in6->sin6_scope_id, ifname))
                    host += std::string("%") + ifname;
                else
                    host += "%" + std::to_string(in6->sin6_scope_id);
            }
            return "[" + host + "]:" + std::to_string(ntohs(in6->sin6_port));
        }
        case AF_UNIX: {
            const auto* un = reinterpret_cast<const sockaddr_un*>(&ss);
            constexpr size_t base = offsetof(sockaddr_un, sun_path);
            size_t n = len > base ? len - base : 0;
            if (n > sizeof(un->sun_path)) n = sizeof(un->sun_path);
            if (n == 0) return std::string();  // unnamed
            if (un->sun_path[0] == '\0') return "@" + std::string(un->sun_path + 1, n - 1);
            return std::string(un->sun_path, strnlen(un->sun_path, n));
        }
        default:
            return fail("getsockname: address family " + std::to_string(ss.ss_family) +
                        " not supported");
    }
}

void remove_socket_file(const config::SocketConfig& cfg) {
    const ListenAddress& a = cfg.address;
    if (!a.is_unix() || a.abstract || a.path.empty()) return;
    struct stat st{};
    if (lstat(a.path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) unlink(a.path.c_str());
}

}  // namespace fdsup
