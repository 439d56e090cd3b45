// Binding real sockets (the parsing of their addresses: test_listen_address.cpp):
// loopback addresses, ephemeral ports, unix sockets in a temp dir and abstract names
// unique to this process.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "sockets/bind.h"
#include "config/listen_address.h"
#include "sockets/unix_probe.h"
#include "sys/paths.h"
#include "temp_dir.h"

using fdsup::ListenAddress;
using fdsup::parse_listen_address;
using fdsup::SocketKind;

namespace {

fdsup::config::SocketConfig make_socket(const std::string& name, const std::string& listen) {
    fdsup::config::SocketConfig cfg;
    cfg.name = name;
    cfg.listen = listen;
    auto parsed = parse_listen_address(listen);
    REQUIRE_MESSAGE(parsed, parsed.error().message);
    cfg.address = *parsed;
    return cfg;
}

fdsup::BoundSocket bind_ok(const fdsup::config::SocketConfig& cfg) {
    auto r = fdsup::bind_socket(cfg);
    REQUIRE_MESSAGE(r, (r ? std::string() : r.error().text()));
    return std::move(*r);
}

std::string bind_error(const fdsup::config::SocketConfig& cfg) {
    auto r = fdsup::bind_socket(cfg);
    REQUIRE_MESSAGE(!r, "expected bind to fail for " << cfg.listen);
    return r.error().text();
}

int get_int_option(int fd, int level, int option) {
    int value = -1;
    socklen_t len = sizeof value;
    REQUIRE(getsockopt(fd, level, option, &value, &len) == 0);
    return value;
}

int port_of(const std::string& bound) {
    auto colon = bound.rfind(':');
    REQUIRE(colon != std::string::npos);
    return std::stoi(bound.substr(colon + 1));
}

std::string unique_abstract(const std::string& tag) {
    static int counter = 0;
    return "fdsup-test-" + std::to_string(getpid()) + "-" + tag + "-" + std::to_string(counter++);
}

bool ipv6_loopback_available() {
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    sa.sin6_addr = in6addr_loopback;
    bool ok = bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
    close(fd);
    return ok;
}

// Connects a fresh client to 127.0.0.1:port (or [::1]:port); true on success.
bool tcp_connects(int family, int port) {
    fdsup::UniqueFd client(socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(client);
    if (family == AF_INET) {
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = htons(static_cast<uint16_t>(port));
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        return connect(client.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
    }
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons(static_cast<uint16_t>(port));
    sa.sin6_addr = in6addr_loopback;
    return connect(client.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
}

}  // namespace

// ---------------------------------------------------------------- bind_socket: inet

TEST_CASE("bind: tcp 127.0.0.1 port 0 gets a real port that accepts connections") {
    auto s = bind_ok(make_socket("http", "tcp://127.0.0.1:0"));
    CHECK(s.bound.starts_with("127.0.0.1:"));
    int port = port_of(s.bound);
    CHECK(port > 0);

    auto described = fdsup::describe_local_address(s.fd.get());
    REQUIRE(described);
    CHECK(*described == s.bound);

    CHECK(get_int_option(s.fd.get(), SOL_SOCKET, SO_TYPE) == SOCK_STREAM);
    CHECK(get_int_option(s.fd.get(), SOL_SOCKET, SO_ACCEPTCONN) == 1);
    CHECK(get_int_option(s.fd.get(), SOL_SOCKET, SO_REUSEADDR) != 0);
    CHECK(tcp_connects(AF_INET, port));
}

TEST_CASE("bind: the fd is CLOEXEC and blocking") {
    auto s = bind_ok(make_socket("http", "tcp://127.0.0.1:0"));
    CHECK((fcntl(s.fd.get(), F_GETFD) & FD_CLOEXEC) != 0);
    CHECK((fcntl(s.fd.get(), F_GETFL) & O_NONBLOCK) == 0);

    TempDir dir("sockets");
    auto u = bind_ok(make_socket("u", "unix:" + (dir / "a.sock")));
    CHECK((fcntl(u.fd.get(), F_GETFD) & FD_CLOEXEC) != 0);
    CHECK((fcntl(u.fd.get(), F_GETFL) & O_NONBLOCK) == 0);
}

TEST_CASE("bind: tcp host given as a name") {
    auto s = bind_ok(make_socket("named", "tcp://localhost:0"));
    CHECK((s.bound.starts_with("127.0.0.1:") || s.bound.starts_with("[::1]:")));
    CHECK(port_of(s.bound) > 0);
}

TEST_CASE("bind: tcp [::1] and IPV6_V6ONLY set explicitly both ways") {
    if (!ipv6_loopback_available()) {
        MESSAGE("IPv6 loopback unavailable: skipped");
        return;
    }
    auto cfg = make_socket("v6", "tcp://[::1]:0");
    cfg.ipv6_only = true;
    auto s = bind_ok(cfg);
    CHECK(s.bound.starts_with("[::1]:"));
    CHECK(port_of(s.bound) > 0);
    CHECK(get_int_option(s.fd.get(), IPPROTO_IPV6, IPV6_V6ONLY) == 1);
    CHECK(tcp_connects(AF_INET6, port_of(s.bound)));

    // The kernel reports V6ONLY=1 for any socket bound to a specific IPv6 address, so
    // "off" is checked where it matters: a v4-mapped loopback address can only be bound
    // with IPV6_V6ONLY=0, and then IPv4 clients reach it.
    auto mapped = make_socket("mapped", "tcp://[::ffff:127.0.0.1]:0");
    mapped.ipv6_only = false;
    auto m = bind_ok(mapped);
    CHECK(m.bound.starts_with("[::ffff:127.0.0.1]:"));
    CHECK(get_int_option(m.fd.get(), IPPROTO_IPV6, IPV6_V6ONLY) == 0);
    CHECK(tcp_connects(AF_INET, port_of(m.bound)));

    mapped.ipv6_only = true;
    std::string err = bind_error(mapped);
    CHECK(err.find("socket mapped: bind tcp://[::ffff:127.0.0.1]:0") == 0);

    auto u = make_socket("v6udp", "udp://[::1]:0");
    u.ipv6_only = true;
    auto us = bind_ok(u);
    CHECK(get_int_option(us.fd.get(), IPPROTO_IPV6, IPV6_V6ONLY) == 1);
}

TEST_CASE("bind: udp gets a port and receives datagrams") {
    auto s = bind_ok(make_socket("dns", "udp://127.0.0.1:0"));
    CHECK(s.bound.starts_with("127.0.0.1:"));
    int port = port_of(s.bound);
    CHECK(port > 0);
    CHECK(get_int_option(s.fd.get(), SOL_SOCKET, SO_TYPE) == SOCK_DGRAM);
    CHECK(get_int_option(s.fd.get(), SOL_SOCKET, SO_REUSEADDR) == 0);

    fdsup::UniqueFd client(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    REQUIRE(client);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(port));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(sendto(client.get(), "ping", 4, 0, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 4);
    char buf[8] = {};
    CHECK(recv(s.fd.get(), buf, sizeof buf, 0) == 4);
    CHECK(std::string(buf, 4) == "ping");
}

TEST_CASE("bind: tcp options are set on the listener") {
    auto cfg = make_socket("opts", "tcp://127.0.0.1:0");
    cfg.reuse_port = true;
    cfg.nodelay = true;
    cfg.keepalive = true;
    cfg.receive_buffer = 65536;
    cfg.send_buffer = 65536;
    cfg.backlog = 16;  // cannot be read back; only accepted
    auto s = bind_ok(cfg);
    CHECK(get_int_option(s.fd.get(), SOL_SOCKET, SO_REUSEPORT) == 1);
    CHECK(get_int_option(s.fd.get(), IPPROTO_TCP, TCP_NODELAY) == 1);
    CHECK(get_int_option(s.fd.get(), SOL_SOCKET, SO_KEEPALIVE) == 1);
    CHECK(get_int_option(s.fd.get(), SOL_SOCKET, SO_RCVBUF) >= 65536);
    CHECK(get_int_option(s.fd.get(), SOL_SOCKET, SO_SNDBUF) >= 65536);

    // reuse_port lets a second socket share the port.
    auto again = make_socket("opts2", "tcp://127.0.0.1:" + std::to_string(port_of(s.bound)));
    again.reuse_port = true;
    auto t = bind_ok(again);
    CHECK(t.bound == s.bound);
}

TEST_CASE("bind: options are off unless asked for") {
    auto s = bind_ok(make_socket("plain", "tcp://127.0.0.1:0"));
    CHECK(get_int_option(s.fd.get(), SOL_SOCKET, SO_REUSEPORT) == 0);
    CHECK(get_int_option(s.fd.get(), IPPROTO_TCP, TCP_NODELAY) == 0);
    CHECK(get_int_option(s.fd.get(), SOL_SOCKET, SO_KEEPALIVE) == 0);
    CHECK(get_int_option(s.fd.get(), IPPROTO_IP, IP_FREEBIND) == 0);
}

TEST_CASE("bind: free_bind allows a non-local address") {
    auto cfg = make_socket("free", "tcp://192.0.2.1:0");  // TEST-NET-1, never local
    cfg.free_bind = true;
    auto s = bind_ok(cfg);
    CHECK(get_int_option(s.fd.get(), IPPROTO_IP, IP_FREEBIND) == 1);
    CHECK(s.bound.starts_with("192.0.2.1:"));
}

TEST_CASE("bind: an address already in use is an error naming socket and address") {
    auto first = bind_ok(make_socket("http", "tcp://127.0.0.1:0"));
    std::string listen = "tcp://127.0.0.1:" + std::to_string(port_of(first.bound));
    std::string err = bind_error(make_socket("dup", listen));
    CHECK(err == "socket dup: bind " + listen + ": Address already in use");

    std::string name = unique_abstract("dup");
    auto abs = bind_ok(make_socket("a", "unix:@" + name));
    std::string err2 = bind_error(make_socket("b", "unix:@" + name));
    CHECK(err2.find("socket b") != std::string::npos);
    CHECK(err2.find("unix:@" + name) != std::string::npos);
    CHECK(err2.find("Address already in use") != std::string::npos);
}

TEST_CASE("bind: error text is built from the parsed address when listen is empty") {
    auto first = bind_ok(make_socket("http", "tcp://127.0.0.1:0"));
    auto cfg = make_socket("dup", "tcp://127.0.0.1:" + std::to_string(port_of(first.bound)));
    cfg.listen.clear();
    std::string err = bind_error(cfg);
    CHECK(err.find("socket dup: bind tcp://127.0.0.1:" + std::to_string(port_of(first.bound))) == 0);
}

// ---------------------------------------------------------------- bind_socket: unix

TEST_CASE("bind: unix path socket with mode, listening") {
    TempDir dir("sockets");
    std::string path = dir / "app.sock";
    auto cfg = make_socket("app", "unix:" + path);
    cfg.mode = 0640;
    mode_t saved_umask = umask(022);
    auto s = bind_ok(cfg);
    CHECK(umask(saved_umask) == 022);  // bind_socket restored the umask it narrowed
    CHECK(s.bound == path);
    struct stat st{};
    REQUIRE(lstat(path.c_str(), &st) == 0);
    CHECK(S_ISSOCK(st.st_mode));
    CHECK((st.st_mode & 07777) == 0640);
    CHECK(get_int_option(s.fd.get(), SOL_SOCKET, SO_TYPE) == SOCK_STREAM);
    CHECK(get_int_option(s.fd.get(), SOL_SOCKET, SO_ACCEPTCONN) == 1);

    fdsup::UniqueFd client(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
    CHECK(connect(client.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);

    fdsup::remove_socket_file(cfg);
    CHECK(lstat(path.c_str(), &st) < 0);
}

TEST_CASE("bind: unix owner and group, by name and by number") {
    TempDir dir("sockets");
    std::string path = dir / "owned.sock";
    auto cfg = make_socket("owned", "unix:" + path);
    cfg.owner = std::to_string(getuid());
    cfg.group = std::to_string(getgid());
    cfg.mode = 0660;
    auto s = bind_ok(cfg);
    struct stat st{};
    REQUIRE(lstat(path.c_str(), &st) == 0);
    CHECK(st.st_uid == getuid());
    CHECK(st.st_gid == getgid());
    CHECK((st.st_mode & 07777) == 0660);

    passwd* pw = getpwuid(getuid());
    if (pw) {
        auto by_name = make_socket("named", "unix:" + (dir / "named.sock"));
        by_name.owner = pw->pw_name;
        auto t = bind_ok(by_name);
        REQUIRE(lstat((dir / "named.sock").c_str(), &st) == 0);
        CHECK(st.st_uid == getuid());
    }
}

TEST_CASE("bind: unknown owner or group is an error and leaves no file") {
    TempDir dir("sockets");
    std::string path = dir / "x.sock";
    auto cfg = make_socket("x", "unix:" + path);
    cfg.owner = "fdsup-no-such-user-zz";
    std::string err = bind_error(cfg);
    CHECK(err.find("socket x") != std::string::npos);
    CHECK(err.find("unknown user \"fdsup-no-such-user-zz\"") != std::string::npos);
    struct stat st{};
    CHECK(lstat(path.c_str(), &st) < 0);

    cfg.owner.reset();
    cfg.group = "fdsup-no-such-group-zz";
    err = bind_error(cfg);
    CHECK(err.find("unknown group \"fdsup-no-such-group-zz\"") != std::string::npos);
    CHECK(lstat(path.c_str(), &st) < 0);
}

TEST_CASE("bind: a stale socket file is replaced") {
    TempDir dir("sockets");
    std::string path = dir / "stale.sock";
    {
        fdsup::UniqueFd old(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
        REQUIRE(bind(old.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    }  // closed; the file stays behind
    struct stat st{};
    REQUIRE(lstat(path.c_str(), &st) == 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
    {
        fdsup::UniqueFd client(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        REQUIRE(connect(client.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0);
        CHECK(errno == ECONNREFUSED);  // nobody behind the stale file
    }

    auto s = bind_ok(make_socket("stale", "unix:" + path));
    CHECK(s.bound == path);
    REQUIRE(lstat(path.c_str(), &st) == 0);
    CHECK(S_ISSOCK(st.st_mode));
    fdsup::UniqueFd client(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    CHECK(connect(client.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
}

TEST_CASE("bind: a regular file at the path is an error and is left alone") {
    TempDir dir("sockets");
    std::string path = dir / "data";
    { std::ofstream(path) << "keep me"; }
    std::string err = bind_error(make_socket("app", "unix:" + path));
    CHECK(err == "socket app: " + path + " exists and is not a socket");

    auto cfg = make_socket("app", "unix:" + path);
    fdsup::remove_socket_file(cfg);  // not a socket: untouched
    struct stat st{};
    REQUIRE(lstat(path.c_str(), &st) == 0);
    CHECK(S_ISREG(st.st_mode));
}

TEST_CASE("bind: missing directories above a unix socket are made, 0755 whatever the umask") {
    TempDir dir("sockets");
    REQUIRE(chmod(dir.path.c_str(), 0700) == 0);
    std::string path = dir / "run/app/admin.sock";
    mode_t saved_umask = umask(077);
    auto s = fdsup::bind_socket(make_socket("admin", "unix:" + path));
    umask(saved_umask);
    REQUIRE_MESSAGE(s, (s ? std::string() : s.error().text()));
    struct stat st{};
    for (const char* made : {"run", "run/app"}) {
        REQUIRE(lstat((dir / made).c_str(), &st) == 0);
        CHECK(S_ISDIR(st.st_mode));
        CHECK((st.st_mode & 07777) == 0755);
    }
    REQUIRE(lstat(dir.path.c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0700);  // what existed is not touched
    REQUIRE(lstat(path.c_str(), &st) == 0);
    CHECK(S_ISSOCK(st.st_mode));
}

TEST_CASE("bind: a directory that cannot be made is an error naming the socket and the step") {
    TempDir dir("sockets");
    { std::ofstream((dir / "data")) << "a file, not a directory"; }
    std::string path = dir / "data/sub/app.sock";
    std::string err = bind_error(make_socket("app", "unix:" + path));
    CHECK(err == "socket app: unix:" + path + ": mkdir " + (dir / "data/sub") + ": Not a directory");
}

TEST_CASE("paths: make_directories reports what it made, remove_directories takes only that away") {
    TempDir dir("sockets");
    REQUIRE(mkdir((dir / "kept").c_str(), 0700) == 0);
    std::vector<std::string> made;
    REQUIRE(fdsup::make_directories((dir / "kept/a/b"), &made));
    CHECK(made == std::vector<std::string>{(dir / "kept/a"), (dir / "kept/a/b")});
    std::vector<std::string> again;
    REQUIRE(fdsup::make_directories((dir / "kept/a/b"), &again));
    CHECK(again.empty());  // all there: nothing made
    fdsup::remove_directories(made);
    struct stat st{};
    CHECK(lstat((dir / "kept/a").c_str(), &st) < 0);
    CHECK(lstat((dir / "kept").c_str(), &st) == 0);
}

namespace {

// A socket of `type` bound at `path` by "another process" (this test), listening for
// stream kinds with `backlog`.
fdsup::UniqueFd serve_unix(const std::string& path, int type, int backlog = 16) {
    fdsup::UniqueFd fd(socket(AF_UNIX, type | SOCK_CLOEXEC, 0));
    REQUIRE(fd);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
    REQUIRE(bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    if (type != SOCK_DGRAM) REQUIRE(listen(fd.get(), backlog) == 0);
    return fd;
}

// connect() to `path` with a non-blocking socket of `type`: 0 or the errno.
int unix_connect(const std::string& path, int type, fdsup::UniqueFd* keep = nullptr) {
    fdsup::UniqueFd client(socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    REQUIRE(client);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
    int rc = connect(client.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0 ? 0 : errno;
    if (keep) *keep = std::move(client);
    return rc;
}

ino_t inode_of(const std::string& path) {
    struct stat st{};
    REQUIRE(lstat(path.c_str(), &st) == 0);
    return st.st_ino;
}

}  // namespace

TEST_CASE("bind: a unix socket file another process serves is refused and left alone") {
    TempDir dir("sockets");
    int n = 0;
    struct Case {
        const char* scheme;
        int theirs;
        const char* why;
    };
    for (const Case& c : {Case{"unix:", SOCK_STREAM, "a connect succeeded"},
                          Case{"unixgram:", SOCK_DGRAM, "a connect succeeded"},
                          Case{"unixpacket:", SOCK_SEQPACKET, "a connect succeeded"},
                          Case{"unix:", SOCK_DGRAM, "a socket of another type is bound there"}}) {
        CAPTURE(c.scheme);
        CAPTURE(c.theirs);
        std::string path = dir / ("live-" + std::to_string(++n) + ".sock");
        auto other = serve_unix(path, c.theirs);
        ino_t before = inode_of(path);
        std::string listen = std::string(c.scheme) + path;
        CHECK(bind_error(make_socket("admin", listen)) ==
              "socket admin: " + listen + " is in use by another process (" + c.why + "); not replacing it");
        CHECK(inode_of(path) == before);  // the other process's file, still there
        CHECK(unix_connect(path, c.theirs) == 0);  // and still answering
    }
}

TEST_CASE("bind: a listener with a full backlog is in use too") {
    TempDir dir("sockets");
    std::string path = dir / "busy.sock";
    auto other = serve_unix(path, SOCK_STREAM, 0);
    std::vector<fdsup::UniqueFd> queued;
    for (int i = 0; i < 64; ++i) {
        fdsup::UniqueFd client;
        int rc = unix_connect(path, SOCK_STREAM, &client);
        if (rc == EAGAIN) break;
        REQUIRE(rc == 0);
        queued.push_back(std::move(client));
    }
    REQUIRE(unix_connect(path, SOCK_STREAM) == EAGAIN);
    CHECK(bind_error(make_socket("admin", "unix:" + path)) ==
          "socket admin: unix:" + path + " is in use by another process (its backlog is full); not replacing it");
    struct stat st{};
    CHECK(lstat(path.c_str(), &st) == 0);
}

TEST_CASE("bind: a live socket file of this process that the caller replaces is replaced") {
    TempDir dir("sockets");
    std::string path = dir / "ours.sock";
    auto cfg = make_socket("old", "unix:" + path);
    auto old = bind_ok(cfg);
    ino_t before = inode_of(path);
    cfg.name = "new";
    auto fresh = fdsup::bind_socket(cfg, {(dir / "other.sock"), path});
    REQUIRE_MESSAGE(fresh, (fresh ? std::string() : fresh.error().text()));
    CHECK(inode_of(path) != before);
    CHECK(unix_connect(path, SOCK_STREAM) == 0);
    // The new socket got the connection, not the old one.
    int flags = fcntl(fresh->fd.get(), F_GETFL);
    REQUIRE(fcntl(fresh->fd.get(), F_SETFL, flags | O_NONBLOCK) == 0);
    REQUIRE(fcntl(old.fd.get(), F_SETFL, flags | O_NONBLOCK) == 0);
    fdsup::UniqueFd accepted(accept4(fresh->fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
    CHECK(accepted);
    CHECK(accept4(old.fd.get(), nullptr, nullptr, SOCK_CLOEXEC) < 0);
}

TEST_CASE("unix probe: absent, stale, in use") {
    TempDir dir("sockets");
    CHECK(fdsup::probe_socket_file((dir / "none.sock"), SOCK_STREAM).use == fdsup::SocketFileUse::absent);
    std::string path = dir / "p.sock";
    { auto gone = serve_unix(path, SOCK_STREAM); }  // closed: the file stays, nobody listens
    auto stale = fdsup::probe_socket_file(path, SOCK_STREAM);
    CHECK(stale.use == fdsup::SocketFileUse::stale);
    CHECK(stale.err == ECONNREFUSED);
    REQUIRE(unlink(path.c_str()) == 0);
    auto live = serve_unix(path, SOCK_SEQPACKET);
    CHECK(fdsup::probe_socket_file(path, SOCK_SEQPACKET).use == fdsup::SocketFileUse::in_use);
    auto other_type = fdsup::probe_socket_file(path, SOCK_STREAM);
    CHECK(other_type.use == fdsup::SocketFileUse::in_use);
    CHECK(fdsup::describe_socket_file_probe(other_type) == "a socket of another type is bound there");
    CHECK(fdsup::describe_socket_file_probe({fdsup::SocketFileUse::unknown, EACCES}) == "connect: Permission denied");
}

TEST_CASE("bind: abstract name") {
    std::string name = unique_abstract("abs");
    auto s = bind_ok(make_socket("abs", "unix:@" + name));
    CHECK(s.bound == "@" + name);

    // The exact length: no trailing NULs in the kernel's copy of the name.
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    REQUIRE(getsockname(s.fd.get(), reinterpret_cast<sockaddr*>(&ss), &len) == 0);
    CHECK(len == offsetof(sockaddr_un, sun_path) + 1 + name.size());

    fdsup::UniqueFd client(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path + 1, name.data(), name.size());
    CHECK(connect(client.get(), reinterpret_cast<sockaddr*>(&sa),
                  static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size())) == 0);

    fdsup::remove_socket_file(make_socket("abs", "unix:@" + name));  // no-op
}

TEST_CASE("bind: unixgram and unixpacket socket types") {
    TempDir dir("sockets");
    auto g = bind_ok(make_socket("g", "unixgram:" + (dir / "g.sock")));
    CHECK(get_int_option(g.fd.get(), SOL_SOCKET, SO_TYPE) == SOCK_DGRAM);
    CHECK(g.bound == (dir / "g.sock"));

    auto p = bind_ok(make_socket("p", "unixpacket:" + (dir / "p.sock")));
    CHECK(get_int_option(p.fd.get(), SOL_SOCKET, SO_TYPE) == SOCK_SEQPACKET);
    CHECK(get_int_option(p.fd.get(), SOL_SOCKET, SO_ACCEPTCONN) == 1);

    auto ga = bind_ok(make_socket("ga", "unixgram:@" + unique_abstract("g")));
    CHECK(get_int_option(ga.fd.get(), SOL_SOCKET, SO_TYPE) == SOCK_DGRAM);
    CHECK(ga.bound.starts_with("@fdsup-test-"));

    auto pa = bind_ok(make_socket("pa", "unixpacket:@" + unique_abstract("p")));
    CHECK(get_int_option(pa.fd.get(), SOL_SOCKET, SO_TYPE) == SOCK_SEQPACKET);

    auto cfg = make_socket("gbuf", "unixgram:" + (dir / "gbuf.sock"));
    cfg.receive_buffer = 100000;
    auto gb = bind_ok(cfg);
    CHECK(get_int_option(gb.fd.get(), SOL_SOCKET, SO_RCVBUF) >= 100000);
}

TEST_CASE("describe_local_address: unnamed unix socket and a bad fd") {
    fdsup::UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    auto d = fdsup::describe_local_address(fd.get());
    REQUIRE(d);
    CHECK(d->empty());

    auto bad = fdsup::describe_local_address(-1);
    REQUIRE(!bad);
    CHECK(bad.error().err == EBADF);
}
