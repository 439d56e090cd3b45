// logging/log_hold.h: fdsupd's stderr sink writes each line as it is logged, except
// while a LogHold lives; then the lines wait, in order, and go out when the last hold
// ends. stderr is pointed at a temp file here (not a terminal: holding applies).
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <uv.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <future>
#include <string>
#include <thread>

#include "control/control_server.h"
#include "logging/log_hold.h"
#include "sys/unique_fd.h"
#include "temp_dir.h"

using fdsup::LogHold;
using fdsup::UniqueFd;

namespace {

// fd 2 on a temp file for the life of this object; what has reached it so far.
class StderrToFile {
public:
    StderrToFile() {
        char path[] = "/tmp/fdsup-log-hold-XXXXXX";
        file_.reset(::mkstemp(path));
        REQUIRE(file_);
        ::unlink(path);
        saved_.reset(::dup(STDERR_FILENO));
        REQUIRE(::dup2(file_.get(), STDERR_FILENO) == STDERR_FILENO);
    }
    ~StderrToFile() { ::dup2(saved_.get(), STDERR_FILENO); }
    std::string written() const {
        std::string text;
        char buffer[4096];
        ssize_t n;
        for (off_t at = 0; (n = ::pread(file_.get(), buffer, sizeof buffer, at)) > 0; at += n) text.append(buffer, n);
        return text;
    }

private:
    UniqueFd file_;
    UniqueFd saved_;
};

std::shared_ptr<spdlog::logger> stderr_logger() {
    auto logger = std::make_shared<spdlog::logger>("hold-test", fdsup::make_stderr_sink());
    logger->set_pattern("%v");
    return logger;
}

}  // namespace

TEST_CASE("log hold: lines are written at once without a hold, and after the last hold with one, in order") {
    StderrToFile err;
    auto log = stderr_logger();
    log->warn("one");
    CHECK(err.written() == "one\n");
    {
        LogHold outer;
        log->warn("two");
        {
            LogHold inner;
            log->warn("three");
        }
        CHECK(err.written() == "one\n");  // the outer hold still holds both
        log->warn("four");
        CHECK(err.written() == "one\n");
    }
    CHECK(err.written() == "one\ntwo\nthree\nfour\n");
    log->warn("five");
    CHECK(err.written() == "one\ntwo\nthree\nfour\nfive\n");
}

TEST_CASE("log hold: write_held_log writes what is held now, and the holds go on holding") {
    StderrToFile err;
    auto log = stderr_logger();
    fdsup::write_held_log();  // nothing held: nothing written
    CHECK(err.written().empty());
    {
        LogHold hold;
        log->warn("exited");
        CHECK(err.written().empty());
        fdsup::write_held_log();  // as before a control reply
        CHECK(err.written() == "exited\n");
        log->warn("restart #1 now");
        CHECK(err.written() == "exited\n");
    }
    CHECK(err.written() == "exited\nrestart #1 now\n");
}

TEST_CASE("log hold: a hold that ends by an exception still writes what it held") {
    StderrToFile err;
    auto log = stderr_logger();
    try {
        LogHold hold;
        log->warn("before the throw");
        throw std::runtime_error("thrown");
    } catch (const std::runtime_error&) {
    }
    CHECK(err.written() == "before the throw\n");
}

TEST_CASE("log hold: std::terminate (nothing unwinds) still writes what a hold held, then aborts") {
    StderrToFile err;
    pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        auto log = stderr_logger();
        LogHold hold;
        log->warn("held when it all ended");
        std::terminate();  // as an exception nothing catches would
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGABRT);
    CHECK(err.written().starts_with("held when it all ended\n"));
}

TEST_CASE("log hold: a control reply sent inside a hold goes out after the held lines are written") {
    // As a `restart` is answered while the last old instance's exit is handled: the
    // exit's lines are held, and the reply is sent before the hold ends. The client
    // looks at the log the moment the reply arrives, while the handler still holds.
    StderrToFile err;
    auto log = stderr_logger();
    TempDir dir("control-log");
    fdsup::config::SupervisorConfig config;
    config.control_socket = dir / "control.sock";
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    std::promise<std::string> seen_at_reply;
    auto seen = seen_at_reply.get_future();
    bool handled = false;
    {
        fdsup::control::ControlSettings settings{[] { return fdsup::config::Duration(std::chrono::seconds(10)); },
                                                 [] { return 8; }};
        auto server = fdsup::control::ControlServer::open(
            &loop, config, settings, [&](const fdsup::control::Json&, fdsup::control::Responder responder) {
                LogHold hold;
                log->warn("worker web[1]: pid 42 exited with code 0 after 1.0s; stopped");
                responder.finish(fdsup::control::Json{{"ok", true}});
                // The hold ends only once the client has looked.
                CHECK(seen.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
                handled = true;
            });
        REQUIRE(server);
        std::thread client([&] {
            UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
            sockaddr_un address{};
            address.sun_family = AF_UNIX;
            std::strncpy(address.sun_path, config.control_socket.c_str(), sizeof address.sun_path - 1);
            if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
                seen_at_reply.set_value("connect failed");
                return;
            }
            std::string request = "{\"cmd\":\"status\"}\n";
            (void)!::write(fd.get(), request.data(), request.size());
            char reply[256];
            ssize_t n = ::read(fd.get(), reply, sizeof reply);  // the whole reply is one short line
            seen_at_reply.set_value(n > 0 ? err.written() : "no reply");
        });
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (!handled && std::chrono::steady_clock::now() < deadline) uv_run(&loop, UV_RUN_NOWAIT);
        client.join();
    }
    CHECK(handled);
    CHECK(seen.get() == "worker web[1]: pid 42 exited with code 0 after 1.0s; stopped\n");
    uv_run(&loop, UV_RUN_NOWAIT);  // the handles' close callbacks
    CHECK(uv_loop_close(&loop) == 0);
}
