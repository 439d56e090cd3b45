// logging/log_hold.h: fdsupd's stderr sink writes each line as it is logged, except
// while a LogHold lives; then the lines wait, in order, and go out when the last hold
// ends. stderr is pointed at a temp file here (not a terminal: holding applies).
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "logging/log_hold.h"
#include "sys/unique_fd.h"

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
