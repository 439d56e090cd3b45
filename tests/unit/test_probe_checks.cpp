// The probe checks of health/ on a real libuv loop: http and connect checks against
// loopback and unix-socket servers of the test's own (threads, joined), exec checks that
// run real processes through the launcher. Each run has a deadline, so a hang fails the
// test instead of hanging it; every process started is reaped before a test ends.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "config/probe_target.h"
#include "health/connect_check.h"
#include "health/exec_check.h"
#include "health/http_check.h"
#include "launcher/launcher.h"
#include "launcher/plan_builder.h"
#include "loop/uv_handles.h"
#include "sys/unique_fd.h"
#include "unix_listener_support.h"

using namespace std::chrono_literals;
using fdsup::ListenAddress;
using fdsup::UniqueFd;
using fdsup::health::ExecChecks;
using fdsup::health::ProbeCheck;
using fdsup::health::ProbeDone;
using fdsup::health::ProbeResult;

namespace {

// A local loop. run_until wakes every 10 ms to look at its condition (a file a probe
// writes, a thread's progress), and gives up at the deadline.
struct Loop {
    uv_loop_t loop{};
    Loop() { REQUIRE(uv_loop_init(&loop) == 0); }
    ~Loop() {
        uv_run(&loop, UV_RUN_DEFAULT);  // closes what the test destroyed; nothing is left active
        CHECK(uv_loop_close(&loop) == 0);
    }
    bool run_until(const std::function<bool()>& done, std::chrono::milliseconds deadline = 10s) {
        auto give_up = std::chrono::steady_clock::now() + deadline;
        fdsup::Timer tick(&loop);
        while (!done() && std::chrono::steady_clock::now() < give_up) {
            tick.start(10ms, [] {});
            uv_run(&loop, UV_RUN_ONCE);
        }
        return done();
    }
    // A few turns, for what would happen (and must not) after a check is gone.
    void turns() {
        for (int i = 0; i < 5; ++i) uv_run(&loop, UV_RUN_NOWAIT);
    }
};

// What a check reported, and how often (more than once is a bug).
struct Outcome {
    std::optional<ProbeResult> result;
    int calls = 0;
    ProbeDone done() {
        return [this](const ProbeResult& r) {
            result = r;
            ++calls;
        };
    }
    bool arrived() const { return calls > 0; }
};

size_t open_fds() {
    size_t n = 0;
    for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
    return n;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// A loopback listener on an ephemeral port (backlog `backlog`).
struct TcpListener {
    UniqueFd fd;
    uint16_t port = 0;
    explicit TcpListener(int backlog = 16) {
        fd.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        REQUIRE(fd);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
        REQUIRE(::listen(fd.get(), backlog) == 0);
        socklen_t length = sizeof address;
        REQUIRE(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&address), &length) == 0);
        port = ntohs(address.sin_port);
    }
    ListenAddress address() const { return ListenAddress{fdsup::SocketKind::tcp, "127.0.0.1", port, "", false}; }
    fdsup::config::HttpUrl url(const std::string& path = "/healthz") const {
        auto url = fdsup::config::parse_http_url("http://127.0.0.1:" + std::to_string(port) + path);
        REQUIRE(url);
        return *url;
    }
};

// A unix stream listener in a temp dir of its own.
struct UnixListener : TempUnixListener {
    explicit UnixListener(int backlog = 16) : TempUnixListener("fdsup-probe-test", "app.sock", backlog) {}
    ListenAddress address() const { return ListenAddress{fdsup::SocketKind::unix_stream, "", 0, path, false}; }
};

// Serves `connections` connections on `listener` from a thread: reads each request head,
// writes `response`, then waits for the client to close (noting whether it did), or
// closes first (`hang_up`).
class HttpServer {
public:
    HttpServer(int listener, std::string response, int connections = 1, bool hang_up = false)
        : hang_up_(hang_up), thread_([this, listener, response = std::move(response), connections] {
              for (int i = 0; i < connections; ++i) serve_one(listener, response);
          }) {}
    ~HttpServer() { join(); }
    void join() {
        if (thread_.joinable()) thread_.join();
    }
    // After join().
    std::vector<std::string> requests;
    int closed_by_client = 0;

private:
    void serve_one(int listener, const std::string& response) {
        pollfd p{listener, POLLIN, 0};
        if (::poll(&p, 1, 10000) != 1) return;  // the test failed before it connected
        UniqueFd connection(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
        if (!connection) return;
        timeval ten_seconds{10, 0};
        ::setsockopt(connection.get(), SOL_SOCKET, SO_RCVTIMEO, &ten_seconds, sizeof ten_seconds);
        std::string request;
        char buffer[4096];
        while (!contains(request, "\r\n\r\n")) {
            ssize_t n = ::recv(connection.get(), buffer, sizeof buffer, 0);
            if (n <= 0) break;
            request.append(buffer, static_cast<size_t>(n));
        }
        requests.push_back(request);
        ::send(connection.get(), response.data(), response.size(), MSG_NOSIGNAL);
        if (hang_up_) return;
        for (;;) {
            ssize_t n = ::recv(connection.get(), buffer, sizeof buffer, 0);
            if (n == 0 || (n < 0 && errno == ECONNRESET)) {
                ++closed_by_client;
                break;
            }
            if (n < 0) break;
        }
    }

    bool hang_up_;
    std::thread thread_;  // last: starts once the rest is made
};

ProbeResult run_http(Loop& loop, const fdsup::config::HttpUrl& url, std::chrono::milliseconds timeout = 5s) {
    Outcome outcome;
    auto check = fdsup::health::start_http_check(&loop.loop, url, timeout, outcome.done());
    CHECK(outcome.calls == 0);  // never from inside start_*
    REQUIRE(loop.run_until([&] { return outcome.arrived(); }));
    loop.turns();
    CHECK(outcome.calls == 1);
    return *outcome.result;
}

ProbeResult run_connect(Loop& loop, const ListenAddress& address, std::chrono::milliseconds timeout = 5s) {
    Outcome outcome;
    auto check = fdsup::health::start_connect_check(&loop.loop, address, timeout, outcome.done());
    CHECK(outcome.calls == 0);
    REQUIRE(loop.run_until([&] { return outcome.arrived(); }));
    loop.turns();
    CHECK(outcome.calls == 1);
    return *outcome.result;
}

// Destroys a check in flight: it must never call back, and must leave no fd behind.
void cancel_quietly(Loop& loop, std::unique_ptr<ProbeCheck> check, const Outcome& outcome, size_t fds_before) {
    check.reset();
    loop.turns();
    CHECK(outcome.calls == 0);
    CHECK(open_fds() == fds_before);
}

// A port nobody listens on (bound, then closed again).
uint16_t closed_port() {
    TcpListener listener;
    return listener.port;
}

}  // namespace

// ---------------------------------------------------------------- http

TEST_CASE("http check: 200 passes; the request is a plain GET with Host, User-Agent and Connection: close") {
    Loop loop;
    TcpListener listener;
    // No end of the head and no body: the check must not wait for them.
    HttpServer server(listener.fd.get(), "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n");
    Outcome outcome;
    auto check = fdsup::health::start_http_check(&loop.loop, listener.url("/healthz?full=1"), 5s, outcome.done());
    REQUIRE(loop.run_until([&] { return outcome.arrived(); }));
    // The check still exists: the connection was closed when the status was known.
    server.join();
    CHECK(server.closed_by_client == 1);
    REQUIRE(outcome.result);
    CHECK(outcome.result->passed);
    CHECK(outcome.result->detail == "GET http://127.0.0.1:" + std::to_string(listener.port) + "/healthz?full=1: 200");
    CHECK(outcome.result->latency > 0us);
    REQUIRE(server.requests.size() == 1);
    CHECK(server.requests[0] == "GET /healthz?full=1 HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(listener.port) +
                                    "\r\nUser-Agent: fdsup-probe\r\nConnection: close\r\n\r\n");
}

TEST_CASE("http check: 301 passes, 503 and 404 fail with the code") {
    Loop loop;
    TcpListener listener;
    {
        HttpServer server(listener.fd.get(), "HTTP/1.1 301 Moved Permanently\r\nLocation: /elsewhere\r\n\r\n");
        auto result = run_http(loop, listener.url());
        CHECK(result.passed);
        CHECK(result.detail.ends_with(": 301"));
    }
    {
        HttpServer server(listener.fd.get(), "HTTP/1.0 503 Service Unavailable\r\n\r\nnot yet");
        auto result = run_http(loop, listener.url());
        CHECK(!result.passed);
        CHECK(result.detail == "GET http://127.0.0.1:" + std::to_string(listener.port) + "/healthz: 503");
    }
    {
        HttpServer server(listener.fd.get(), "HTTP/1.1 404\r\n\r\n");  // no reason phrase
        auto result = run_http(loop, listener.url());
        CHECK(!result.passed);
        CHECK(result.detail.ends_with(": 404"));
    }
}

TEST_CASE("http check: a malformed status line fails, saying so") {
    Loop loop;
    TcpListener listener;
    {
        HttpServer server(listener.fd.get(), "HTTP/1.1 OK\r\n\r\n");
        auto result = run_http(loop, listener.url());
        CHECK(!result.passed);
        CHECK(contains(result.detail, "malformed status line \"HTTP/1.1 OK\""));
    }
    {
        // Not HTTP at all: known from the first bytes, without waiting for a line end.
        HttpServer server(listener.fd.get(), "SSH-2.0-OpenSSH_9.2");
        auto result = run_http(loop, listener.url());
        CHECK(!result.passed);
        CHECK(contains(result.detail, "malformed status line \"SSH-2.0-OpenSSH_9.2\""));
    }
    {
        HttpServer server(listener.fd.get(), "", 1, true);  // closes without a byte
        auto result = run_http(loop, listener.url());
        CHECK(!result.passed);
        CHECK(contains(result.detail, "connection closed before a response"));
    }
}

TEST_CASE("http check: a status line longer than 8 KiB fails at the cap") {
    Loop loop;
    TcpListener listener;
    HttpServer server(listener.fd.get(), "HTTP/1.1 200 " + std::string(9 * 1024, 'x'));
    auto result = run_http(loop, listener.url());
    CHECK(!result.passed);
    CHECK(contains(result.detail, "no status line in the first 8 KiB"));
}

TEST_CASE("http check: a server that never answers times out within the timeout and a margin") {
    Loop loop;
    TcpListener listener;  // the kernel completes the connect; nobody reads or answers
    auto began = std::chrono::steady_clock::now();
    auto result = run_http(loop, listener.url(), 200ms);
    auto took = std::chrono::steady_clock::now() - began;
    CHECK(!result.passed);
    CHECK(result.detail == "GET http://127.0.0.1:" + std::to_string(listener.port) + "/healthz: timed out after 200ms");
    // libuv's timers count whole milliseconds of a loop time taken at the last turn:
    // they may fire a little early by the clock.
    CHECK(took >= 150ms);
    CHECK(took < 200ms + 3s);
    CHECK(result.latency >= 150ms);
}

TEST_CASE("http check: a closed port fails with connection refused") {
    Loop loop;
    uint16_t port = closed_port();
    auto url = fdsup::config::parse_http_url("http://127.0.0.1:" + std::to_string(port) + "/");
    REQUIRE(url);
    auto result = run_http(loop, *url);
    CHECK(!result.passed);
    CHECK(result.detail == "GET http://127.0.0.1:" + std::to_string(port) + "/: connect: Connection refused");
}

TEST_CASE("http check: over a unix socket, with Host: localhost") {
    Loop loop;
    UnixListener listener;
    HttpServer server(listener.fd.get(), "HTTP/1.1 204 No Content\r\n\r\n");
    auto url = fdsup::config::parse_http_url("http://unix:" + listener.path + ":/ready");
    REQUIRE(url);
    auto result = run_http(loop, *url);
    server.join();
    CHECK(result.passed);
    CHECK(result.detail == "GET http://unix:" + listener.path + ":/ready: 204");
    REQUIRE(server.requests.size() == 1);
    CHECK(server.requests[0].starts_with("GET /ready HTTP/1.1\r\nHost: localhost\r\n"));
}

TEST_CASE("http check: destroyed before its result, it never calls back and leaves no fd") {
    Loop loop;
    TcpListener listener;
    size_t before = open_fds();
    Outcome outcome;
    auto check = fdsup::health::start_http_check(&loop.loop, listener.url(), 5s, outcome.done());
    // Connected and waiting for an answer that will not come.
    REQUIRE(loop.run_until([&] {
        pollfd p{listener.fd.get(), POLLIN, 0};
        return ::poll(&p, 1, 0) == 1;
    }));
    loop.turns();
    CHECK(open_fds() == before + 1);
    cancel_quietly(loop, std::move(check), outcome, before);

    // And before its first loop turn, with its failure already known (refused).
    auto refused = fdsup::config::parse_http_url("http://127.0.0.1:" + std::to_string(closed_port()) + "/");
    cancel_quietly(loop, fdsup::health::start_http_check(&loop.loop, *refused, 5s, outcome.done()), outcome, before);
}

// ---------------------------------------------------------------- connect

TEST_CASE("connect check: passes on a listener, fails on a closed port") {
    Loop loop;
    TcpListener listener;
    Outcome outcome;
    auto check = fdsup::health::start_connect_check(&loop.loop, listener.address(), 5s, outcome.done());
    REQUIRE(loop.run_until([&] { return outcome.arrived(); }));
    CHECK(outcome.result->passed);
    CHECK(outcome.result->detail == "connect 127.0.0.1:" + std::to_string(listener.port) + ": connected");
    // The check still exists, its socket is closed already: the server reads EOF.
    UniqueFd accepted(::accept4(listener.fd.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    REQUIRE(accepted);
    char byte;
    CHECK(::recv(accepted.get(), &byte, 1, 0) == 0);
    check.reset();

    uint16_t port = closed_port();
    auto refused = run_connect(loop, ListenAddress{fdsup::SocketKind::tcp, "127.0.0.1", port, "", false});
    CHECK(!refused.passed);
    CHECK(refused.detail == "connect 127.0.0.1:" + std::to_string(port) + ": Connection refused");
}

TEST_CASE("connect check: a listener whose backlog is full times out") {
    Loop loop;
    TcpListener listener(0);
    // One connection fills a backlog of 0; the kernel then drops the next SYNs.
    UniqueFd filler(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(listener.port);
    REQUIRE(::connect(filler.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    auto result = run_connect(loop, listener.address(), 200ms);
    CHECK(!result.passed);
    CHECK(result.detail == "connect 127.0.0.1:" + std::to_string(listener.port) + ": timed out after 200ms");
}

TEST_CASE("connect check: unix sockets, and a full backlog says so") {
    Loop loop;
    UnixListener listener(0);
    auto passed = run_connect(loop, listener.address());
    CHECK(passed.passed);
    CHECK(passed.detail == "connect unix:" + listener.path + ": connected");

    // Fill the backlog (the check above took one place already).
    std::vector<UniqueFd> fillers;
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, listener.path.c_str(), sizeof address.sun_path - 1);
    for (int i = 0; i < 16; ++i) {
        UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) < 0) {
            REQUIRE(errno == EAGAIN);
            break;
        }
        fillers.push_back(std::move(fd));
    }
    auto full = run_connect(loop, listener.address());
    CHECK(!full.passed);
    CHECK(full.detail == "connect unix:" + listener.path + ": listen backlog full: Resource temporarily unavailable");

    auto missing = run_connect(loop, ListenAddress{fdsup::SocketKind::unix_stream, "", 0, listener.dir + "/none.sock", false});
    CHECK(!missing.passed);
    CHECK(contains(missing.detail, "No such file or directory"));
}

TEST_CASE("connect check: destroyed before its deferred result, it never calls back") {
    Loop loop;
    UnixListener listener;
    size_t before = open_fds();
    Outcome outcome;
    cancel_quietly(loop, fdsup::health::start_connect_check(&loop.loop, listener.address(), 1s, outcome.done()),
                   outcome, before);
}

TEST_CASE("http and connect checks: thousands leave no fd behind") {
    Loop loop;
    TcpListener listener;
    size_t before = open_fds();
    uint16_t refused_port = closed_port();
    ListenAddress refused{fdsup::SocketKind::tcp, "127.0.0.1", refused_port, "", false};
    for (int i = 0; i < 1000; ++i) {
        CHECK(run_connect(loop, listener.address()).passed);
        CHECK(!run_connect(loop, refused).passed);
        // Taken off the backlog, so it never fills (net.core.somaxconn may be 128).
        pollfd p{listener.fd.get(), POLLIN, 0};
        while (::poll(&p, 1, 0) == 1) ::close(::accept4(listener.fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
    }
    {
        HttpServer server(listener.fd.get(), "HTTP/1.1 200 OK\r\n\r\n", 300);
        for (int i = 0; i < 300; ++i) REQUIRE(run_http(loop, listener.url()).passed);
        server.join();
        CHECK(server.closed_by_client == 300);
    }
    CHECK(open_fds() == before);
}

// ---------------------------------------------------------------- exec

namespace {

bool no_child_left() {
    siginfo_t info{};
    int rc = ::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT);
    return (rc < 0 && errno == ECHILD) || (rc == 0 && info.si_pid == 0);
}

// Gone, or a zombie of somebody else's (killed, not yet reaped by init).
bool process_gone(pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text;
    if (!std::getline(stat, text)) return true;
    size_t close = text.rfind(')');
    return close != std::string::npos && close + 2 < text.size() && (text[close + 2] == 'Z' || text[close + 2] == 'X');
}

pid_t read_pid(const std::string& path) {
    std::ifstream in(path);
    pid_t pid = 0;
    in >> pid;
    return pid;
}

struct ExecHarness {
    Loop loop;
    fdsup::Launcher launcher;
    fdsup::SpawnContext context = fdsup::SpawnContext::capture(1024);
    UniqueFd null_fd{::open("/dev/null", O_RDWR | O_CLOEXEC)};
    std::unique_ptr<ExecChecks> checks;  // before the loop closes
    fdsup::config::WorkerConfig worker;
    std::string dir;

    ExecHarness() {
        REQUIRE(null_fd);
        checks = std::make_unique<ExecChecks>(&loop.loop, launcher, context, null_fd.get());
        worker.name = "web";
        worker.command = {"/bin/false"};  // the worker's own: never run by a probe
        char dir_template[] = "/tmp/fdsup-exec-probe-XXXXXX";
        REQUIRE(mkdtemp(dir_template) != nullptr);
        dir = dir_template;
    }
    ~ExecHarness() {
        checks.reset();
        std::filesystem::remove_all(dir);
    }
    ProbeResult run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout = 5s, int instance = 0) {
        Outcome outcome;
        auto check = checks->start(worker, instance, argv, timeout, outcome.done());
        CHECK(outcome.calls == 0);
        REQUIRE(loop.run_until([&] { return outcome.arrived(); }));
        loop.turns();
        CHECK(outcome.calls == 1);
        return *outcome.result;
    }
    // A process a probe started (not our child): gone once its group was killed.
    void expect_killed(pid_t pid) {
        REQUIRE(pid > 0);
        CHECK(loop.run_until([&] { return process_gone(pid); }));
        if (!process_gone(pid)) ::kill(pid, SIGKILL);  // the test failed: leave nothing behind
    }
    bool reaped_all() {
        return loop.run_until([&] { return checks->running() == 0; }) && no_child_left();
    }
};

}  // namespace

TEST_CASE("exec check: exit 0 passes; another status or a signal fails, saying which") {
    ExecHarness h;
    auto ok = h.run({"/bin/true"});
    CHECK(ok.passed);
    CHECK(ok.detail == "exit status 0");
    CHECK(ok.latency > 0us);

    auto failed = h.run({"/bin/false"});
    CHECK(!failed.passed);
    CHECK(failed.detail == "exit status 1");

    auto killed = h.run({"/bin/sh", "-c", "kill -TERM $$"});
    CHECK(!killed.passed);
    CHECK(killed.detail == "killed by SIGTERM");
    CHECK(h.checks->running() == 0);
    CHECK(no_child_left());
}

TEST_CASE("exec check: at the timeout the probe is killed and reaped") {
    ExecHarness h;
    auto began = std::chrono::steady_clock::now();
    auto result = h.run({"/bin/sleep", "30"}, 100ms);
    CHECK(std::chrono::steady_clock::now() - began < 100ms + 3s);
    CHECK(!result.passed);
    CHECK(result.detail == "timed out after 100ms");
    CHECK(h.reaped_all());
}

TEST_CASE("exec check: a timeout kills the probe's whole process group") {
    ExecHarness h;
    std::string pid_file = h.dir + "/child.pid";
    auto result = h.run({"/bin/sh", "-c", "sleep 30 & echo $! > " + pid_file + "; wait"}, 1s);
    CHECK(result.detail == "timed out after 1.0s");
    h.expect_killed(read_pid(pid_file));
    CHECK(h.reaped_all());
}

TEST_CASE("exec check: what a probe leaves in its group when it exits is killed with it") {
    ExecHarness h;
    std::string pid_file = h.dir + "/child.pid";
    auto result = h.run({"/bin/sh", "-c", "sleep 30 & echo $! > " + pid_file});
    CHECK(result.passed);
    h.expect_killed(read_pid(pid_file));
    CHECK(h.reaped_all());
}

TEST_CASE("exec check: destroyed while its process runs, the process is killed and reaped") {
    ExecHarness h;
    std::string pid_file = h.dir + "/probe.pid";
    Outcome outcome;
    auto check = h.checks->start(h.worker, 0, {"/bin/sh", "-c", "echo $$ > " + pid_file + "; exec sleep 30"}, 10s,
                                 outcome.done());
    REQUIRE(h.loop.run_until([&] { return read_pid(pid_file) > 0; }));
    pid_t pid = read_pid(pid_file);
    CHECK(h.checks->owns(pid));
    CHECK(h.checks->running() == 1);
    check.reset();
    CHECK(h.reaped_all());
    CHECK(!h.checks->owns(pid));
    CHECK(process_gone(pid));
    h.loop.turns();
    CHECK(outcome.calls == 0);
}

TEST_CASE("exec check: the worker's env, instance and placeholders reach the probe") {
    ExecHarness h;
    h.worker.env = {{"FOO", "bar"}};
    CHECK(h.run({"/bin/sh", "-c", "test \"$FOO\" = bar"}).passed);
    CHECK(h.run({"/bin/sh", "-c", "test \"$1\" = 3 && test \"$2\" = web && test \"$FDSUP_INSTANCE\" = 3 && "
                                  "test \"$FDSUP_WORKER\" = web",
                 "sh", "{instance}", "{name}"},
                5s, 3)
              .passed);
    h.worker.env = {{"FOO", "baz"}};
    CHECK(h.run({"/bin/sh", "-c", "test \"$FOO\" = bar"}).detail == "exit status 1");
}

TEST_CASE("exec check: no socket, no sd_notify, stdio on /dev/null") {
    ExecHarness h;
    h.context.notify_socket = "/tmp/fdsup-test-notify.sock";
    h.context.fd_socket = "/tmp/fdsup-test-fd.sock";
    h.worker.fds = {{3, "web"}};  // no fd for it is passed: the plan would fail if it asked
    h.worker.scm_rights = {"web"};
    h.worker.ready = fdsup::config::ReadyMode::notify;
    h.worker.watchdog = 1s;
    h.worker.fd_store_max = 4;
    auto result = h.run({"/bin/sh", "-c",
                         "test -z \"$LISTEN_FDS$LISTEN_PID$NOTIFY_SOCKET$FDSUP_FD_SOCKET$FDSUP_FD_WEB$WATCHDOG_USEC\" && "
                         "test ! -e /proc/$$/fd/3 && "
                         "test \"$(readlink /proc/$$/fd/0)\" = /dev/null && "
                         "test \"$(readlink /proc/$$/fd/1)\" = /dev/null && "
                         "test \"$(readlink /proc/$$/fd/2)\" = /dev/null"});
    CHECK(result.detail == "exit status 0");
}

TEST_CASE("exec check: a program that cannot run fails with the launcher's message") {
    ExecHarness h;
    auto result = h.run({"/nonexistent/probe", "--check"});
    CHECK(!result.passed);
    CHECK(contains(result.detail, "exec /nonexistent/probe: No such file or directory"));
    CHECK(h.checks->running() == 0);
    CHECK(no_child_left());
}

TEST_CASE("exec check: runs as the worker's user") {
    ExecHarness h;
    h.worker.user = "nobody";
    if (geteuid() == 0) {
        CHECK(h.run({"/bin/sh", "-c", "test \"$(id -un)\" = nobody && test \"$USER\" = nobody"}).passed);
    } else {
        auto result = h.run({"/bin/true"});
        CHECK(!result.passed);
        CHECK(contains(result.detail, "not running as root"));
    }
}

TEST_CASE("exec checks: kill_all kills and reaps every probe and its group at once; their checks fail later") {
    ExecHarness h;
    std::string pid_file = h.dir + "/child.pid";
    Outcome outcomes[3];
    std::vector<std::unique_ptr<ProbeCheck>> running;
    running.push_back(h.checks->start(h.worker, 0, {"/bin/sh", "-c", "sleep 30 & echo $! > " + pid_file + "; wait"},
                                      10s, outcomes[0].done()));
    for (int i = 1; i < 3; ++i) running.push_back(h.checks->start(h.worker, 0, {"/bin/sleep", "30"}, 10s, outcomes[i].done()));
    REQUIRE(h.loop.run_until([&] { return read_pid(pid_file) > 0; }));
    pid_t child = read_pid(pid_file);
    CHECK(h.checks->running() == 3);
    h.checks->kill_all();
    CHECK(h.checks->running() == 0);
    CHECK(no_child_left());
    h.expect_killed(child);
    REQUIRE(h.loop.run_until([&] { return outcomes[0].arrived() && outcomes[1].arrived() && outcomes[2].arrived(); }));
    for (auto& outcome : outcomes) {
        CHECK(outcome.calls == 1);
        CHECK(!outcome.result->passed);
        CHECK(outcome.result->detail == "killed: fdsupd stopped every probe");
    }
}

TEST_CASE("exec checks: destroyed before their checks, they reap everything and the checks stay quiet") {
    ExecHarness h;
    Outcome outcome;
    auto check = h.checks->start(h.worker, 0, {"/bin/sleep", "30"}, 200ms, outcome.done());
    CHECK(h.checks->running() == 1);
    h.checks.reset();
    CHECK(no_child_left());
    h.loop.run_until([] { return false; }, 400ms);  // past the timeout
    check.reset();
    CHECK(outcome.calls == 0);
}

TEST_CASE("exec checks: hundreds leave no fd and no child behind") {
    ExecHarness h;
    size_t before = open_fds();
    for (int i = 0; i < 200; ++i) REQUIRE(h.run({"/bin/true"}).passed);
    for (int i = 0; i < 20; ++i) CHECK(!h.run({"/bin/sleep", "30"}, 1ms).passed);
    CHECK(h.reaped_all());
    CHECK(open_fds() == before);
}
