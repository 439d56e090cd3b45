// Taking over another process's socket (sockets/take_over.h): the adopt table in the
// config, the pid file's text, comparing a socket with what [sockets.NAME] says
// (sockets/socket_match.h), and taking real sockets from this very process.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "config/diff.h"
#include "config_test_support.h"
#include "sockets/socket_match.h"
#include "sockets/take_over.h"

namespace {

fdsup::SocketFacts inet_facts(int type, const char* host, uint16_t port, bool listening) {
    fdsup::SocketFacts facts;
    facts.type = type;
    auto* in = reinterpret_cast<sockaddr_in*>(&facts.address);
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    REQUIRE(inet_pton(AF_INET, host, &in->sin_addr) == 1);
    facts.length = sizeof(sockaddr_in);
    facts.listening = listening;
    return facts;
}

fdsup::SocketFacts unix_facts(int type, const std::string& path, bool listening) {
    fdsup::SocketFacts facts;
    facts.type = type;
    auto* un = reinterpret_cast<sockaddr_un*>(&facts.address);
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, path.c_str(), path.size() + 1);
    facts.length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
    facts.listening = listening;
    return facts;
}

fdsup::SocketMismatch compare(const fdsup::SocketFacts& facts, const std::string& listen) {
    auto wanted = fdsup::parse_listen_address(listen);
    REQUIRE(wanted);
    auto expected = wanted->is_inet() ? fdsup::numeric_inet_address(*wanted, "t") : fdsup::unix_address(*wanted, "t");
    REQUIRE(expected);
    return compare_socket(facts, *wanted, *expected);
}

fdsup::config::SocketConfig socket_config(const std::string& listen) {
    fdsup::config::SocketConfig cfg;
    cfg.name = "web";
    cfg.listen = listen;
    cfg.address = *fdsup::parse_listen_address(listen);
    return cfg;
}

// A tcp listener of this process on 127.0.0.1, its fd and port.
std::pair<fdsup::UniqueFd, int> tcp_listener(bool reuse_port = false, int port = 0, bool listen = true) {
    fdsup::UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(fd);
    int one = 1;
    if (reuse_port) REQUIRE(setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) == 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(port));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    if (listen) REQUIRE(::listen(fd.get(), 16) == 0);
    socklen_t len = sizeof sa;
    REQUIRE(getsockname(fd.get(), reinterpret_cast<sockaddr*>(&sa), &len) == 0);
    return {std::move(fd), ntohs(sa.sin_port)};
}

}  // namespace

TEST_CASE("adopt config: adopt = { pid_file } is read, and its mistakes are errors at their place") {
    auto config = valid(R"(
[sockets.web]
listen = "tcp://127.0.0.1:8080"
adopt = { pid_file = "/run/nginx.pid" }
)");
    REQUIRE(config.sockets[0].adopt);
    CHECK(config.sockets[0].adopt->pid_file == "/run/nginx.pid");
    CHECK(!valid("[sockets.web]\nlisten = \"tcp://127.0.0.1:8080\"\n").sockets[0].adopt);

    CHECK(one_error(R"(
[sockets.web]
listen = "tcp://127.0.0.1:8080"
adopt = "/run/nginx.pid"
)") == "t.toml:3:9: sockets.web.adopt: expected a table, got a string");
    CHECK(one_error(R"(
[sockets.web]
listen = "tcp://127.0.0.1:8080"
adopt = { pid_file = "/run/x.pid", pidfile = "/run/y.pid" }
)") == "t.toml:3:36: unknown key \"pidfile\" in [sockets.web.adopt] (did you mean \"pid_file\"?)");
    CHECK(one_error(R"(
[sockets.web]
listen = "tcp://127.0.0.1:8080"
adopt = {}
)") == "t.toml:3:9: sockets.web.adopt: missing required key \"pid_file\" (the file with the pid of the process "
       "to take the socket from)");
    CHECK(one_error(R"(
[sockets.web]
listen = "tcp://127.0.0.1:8080"
adopt = { pid_file = "run/x.pid" }
)") == "t.toml:3:22: sockets.web.adopt.pid_file: \"run/x.pid\": the pid file must be an absolute path");
    CHECK(one_error(R"(
[sockets.web]
listen = "tcp://127.0.0.1:8080"
adopt = { pid_file = 12 }
)") == "t.toml:3:22: sockets.web.adopt.pid_file: expected a string, got an integer");
}

TEST_CASE("adopt config: a reload that changes only adopt changes nothing; with listen, the socket is replaced") {
    auto a = valid("[sockets.web]\nlisten = \"tcp://127.0.0.1:8080\"\nadopt = { pid_file = \"/run/a.pid\" }\n");
    auto b = valid("[sockets.web]\nlisten = \"tcp://127.0.0.1:8080\"\n");
    auto c = valid("[sockets.web]\nlisten = \"tcp://127.0.0.1:8081\"\nadopt = { pid_file = \"/run/a.pid\" }\n");
    auto d = fdsup::config::diff_configs(a, b);
    CHECK(d.sockets_updated.empty());
    CHECK(d.sockets_replaced.empty());
    CHECK(fdsup::config::diff_configs(b, a).sockets_updated.empty());
    CHECK(fdsup::config::diff_configs(a, c).sockets_replaced == std::vector<std::string>{"web"});
}

TEST_CASE("adopt: a pid file holds one positive decimal pid, whitespace around it") {
    CHECK(fdsup::parse_pid_text("1234\n") == 1234);
    CHECK(fdsup::parse_pid_text("  42  ") == 42);
    CHECK(fdsup::parse_pid_text("").error().message == "it is empty");
    CHECK(fdsup::parse_pid_text(" \n").error().message == "it is empty");
    CHECK(fdsup::parse_pid_text("0").error().message == "\"0\" is not a pid");
    CHECK(fdsup::parse_pid_text("-5").error().message == "\"-5\" is not a pid");
    CHECK(fdsup::parse_pid_text("12 34").error().message == "\"12 34\" is not a pid");
    CHECK(fdsup::parse_pid_text("nginx").error().message == "\"nginx\" is not a pid");
    CHECK(fdsup::parse_pid_text("99999999999").error().message == "\"99999999999\" is not a pid");
}

TEST_CASE("adopt: a socket matches only the same kind, the same address and listening") {
    using fdsup::SocketMismatch;
    auto tcp = inet_facts(SOCK_STREAM, "127.0.0.1", 8080, true);
    CHECK(compare(tcp, "tcp://127.0.0.1:8080") == SocketMismatch::none);
    CHECK(compare(tcp, "tcp://127.0.0.1:8081") == SocketMismatch::address);
    CHECK(compare(tcp, "tcp://127.0.0.2:8080") == SocketMismatch::address);
    CHECK(compare(tcp, "tcp://127.0.0.1:0") == SocketMismatch::none);  // port 0: the port it has
    // A wildcard is only the same wildcard.
    CHECK(compare(tcp, "tcp://0.0.0.0:8080") == SocketMismatch::address);
    CHECK(compare(inet_facts(SOCK_STREAM, "0.0.0.0", 8080, true), "tcp://0.0.0.0:8080") == SocketMismatch::none);
    CHECK(compare(inet_facts(SOCK_STREAM, "0.0.0.0", 8080, true), "tcp://127.0.0.1:8080") == SocketMismatch::address);
    CHECK(compare(tcp, "tcp://[::1]:8080") == SocketMismatch::address);
    // Kind before address; listening last.
    CHECK(compare(tcp, "udp://127.0.0.1:8080") == SocketMismatch::kind);
    CHECK(compare(inet_facts(SOCK_DGRAM, "127.0.0.1", 8080, false), "tcp://127.0.0.1:8080") == SocketMismatch::kind);
    CHECK(compare(inet_facts(SOCK_DGRAM, "127.0.0.1", 8080, false), "udp://127.0.0.1:8080") == SocketMismatch::none);
    CHECK(compare(inet_facts(SOCK_STREAM, "127.0.0.1", 8080, false), "tcp://127.0.0.1:8080") ==
          SocketMismatch::not_listening);
    CHECK(compare(tcp, "unix:/run/app.sock") == SocketMismatch::kind);

    auto un = unix_facts(SOCK_STREAM, "/run/app.sock", true);
    CHECK(compare(un, "unix:/run/app.sock") == SocketMismatch::none);
    CHECK(compare(un, "unix:/run/other.sock") == SocketMismatch::address);
    CHECK(compare(un, "unixpacket:/run/app.sock") == SocketMismatch::kind);
    CHECK(compare(un, "tcp://127.0.0.1:8080") == SocketMismatch::kind);
    CHECK(compare(unix_facts(SOCK_DGRAM, "/run/app.sock", false), "unixgram:/run/app.sock") == SocketMismatch::none);

    CHECK(fdsup::kind_of(tcp) == "tcp");
    CHECK(fdsup::kind_of(inet_facts(SOCK_DGRAM, "127.0.0.1", 1, false)) == "udp");
    CHECK(fdsup::kind_of(un) == "unix");
    CHECK(fdsup::kind_of(unix_facts(SOCK_DGRAM, "/x", false)) == "unixgram");
    CHECK(fdsup::kind_of(unix_facts(SOCK_SEQPACKET, "/x", true)) == "unixpacket");
}

TEST_CASE("adopt: a listener of a process is taken by its fd, or found by its address") {
    auto [listener, port] = tcp_listener();
    auto cfg = socket_config("tcp://127.0.0.1:" + std::to_string(port));
    cfg.backlog = 7;

    auto by_fd = fdsup::take_over_socket(cfg, {getpid(), listener.get(), ucred{getpid(), 0, 0}});
    REQUIRE_MESSAGE(by_fd, by_fd.error().text());
    CHECK(by_fd->pid == getpid());
    CHECK(by_fd->fd == listener.get());
    CHECK(by_fd->socket.bound == "127.0.0.1:" + std::to_string(port));
    CHECK(by_fd->socket.fd.get() != listener.get());
    CHECK((fcntl(by_fd->socket.fd.get(), F_GETFD) & FD_CLOEXEC) != 0);

    auto found = fdsup::take_over_socket(cfg, {getpid(), std::nullopt, std::nullopt});
    REQUIRE_MESSAGE(found, found.error().text());
    // The lowest fd of the socket: the listener, or a copy taken above (still open).
    CHECK(found->fd == std::min(listener.get(), by_fd->socket.fd.get()));
}

TEST_CASE("adopt: what is not the configured socket is refused, saying what differs") {
    auto [listener, port] = tcp_listener();
    const std::string pid = std::to_string(getpid()), fd = std::to_string(listener.get());
    const std::string at = "127.0.0.1:" + std::to_string(port);
    auto error = [](const fdsup::config::SocketConfig& cfg, fdsup::TakeOverRequest request) {
        auto r = fdsup::take_over_socket(cfg, request);
        REQUIRE(!r);
        return r.error().text();
    };
    auto other = socket_config("tcp://127.0.0.1:" + std::to_string(port == 65535 ? 1 : port + 1));
    CHECK(error(other, {getpid(), listener.get(), ucred{getpid(), 0, 0}}) ==
          "socket web: pid " + pid + " fd " + fd + " listens on " + at + ", [sockets.web] says " + other.listen);
    CHECK(error(other, {getpid(), std::nullopt, ucred{getpid(), 0, 0}}) ==
          "socket web: no socket of pid " + pid + " listens on " + other.listen);
    auto udp = socket_config("udp://" + at);
    CHECK(error(udp, {getpid(), listener.get(), ucred{getpid(), 0, 0}}) ==
          "socket web: pid " + pid + " fd " + fd + " is a tcp socket bound to " + at + ", [sockets.web] says udp://" + at);
    auto same = socket_config("tcp://" + at);
    CHECK(error(same, {getpid(), 0, ucred{getpid(), 0, 0}}) == "socket web: pid " + pid + " fd 0 is not a socket");
    CHECK(error(same, {getpid(), 100000, ucred{getpid(), 0, 0}}) == "socket web: pid " + pid + " has no fd 100000");
    CHECK(error(same, {0, std::nullopt, ucred{getpid(), 0, 0}}) == "socket web: no process 0");

    auto [unlistened, unlistened_port] = tcp_listener(false, 0, false);
    auto quiet = socket_config("tcp://127.0.0.1:" + std::to_string(unlistened_port));
    CHECK(error(quiet, {getpid(), unlistened.get(), ucred{getpid(), 0, 0}}) ==
          "socket web: pid " + pid + " fd " + std::to_string(unlistened.get()) + " is not listening (bound to 127.0.0.1:" +
              std::to_string(unlistened_port) + ")");

    // Two sockets on one address (SO_REUSEPORT): which one is for the operator to say.
    auto [first, shared_port] = tcp_listener(true);
    auto [second, second_port] = tcp_listener(true, shared_port);
    auto shared = socket_config("tcp://127.0.0.1:" + std::to_string(shared_port));
    CHECK(error(shared, {getpid(), std::nullopt, ucred{getpid(), 0, 0}}) ==
          "socket web: pid " + pid + " has 2 sockets listening on " + shared.listen + " (fds " +
              std::to_string(std::min(first.get(), second.get())) + ", " + std::to_string(std::max(first.get(), second.get())) +
              ", SO_REUSEPORT); say which with --fd");
    CHECK(fdsup::take_over_socket(shared, {getpid(), second.get(), ucred{getpid(), 0, 0}}));
}
