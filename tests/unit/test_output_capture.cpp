// OutputCapture on a real pipe and loop, with its log lines collected: line splitting,
// \r\n, a partial line at EOF, and the 16 KiB cap whatever the chunk boundaries.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>
#include <uv.h>

#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "output/log_sink.h"
#include "output/output_capture.h"

using fdsup::OutputCapture;

namespace {

struct Harness {
    uv_loop_t loop{};
    std::ostringstream out;
    std::shared_ptr<spdlog::logger> previous = spdlog::default_logger();
    int write_end = -1;
    bool closed = false;
    std::vector<std::string> sunk;  // what the on_line callback was given
    std::unique_ptr<fdsup::EpollSet> pipes;
    std::unique_ptr<OutputCapture> capture;  // after pipes: leaves the set before it closes

    Harness() {
        uv_loop_init(&loop);
        auto logger = std::make_shared<spdlog::logger>(
            "test", std::make_shared<spdlog::sinks::ostream_sink_st>(out));
        logger->set_pattern("%v");
        spdlog::set_default_logger(logger);
        int fds[2];
        REQUIRE(pipe2(fds, O_CLOEXEC) == 0);
        REQUIRE(fcntl(fds[0], F_SETFL, O_NONBLOCK) == 0);
        write_end = fds[1];
        auto set = fdsup::EpollSet::open(&loop, "test pipes", [this](uint64_t key, uint32_t) {
            if (capture && key == capture->key()) capture->on_ready();
        });
        REQUIRE(set);
        pipes = std::move(*set);
        capture = std::make_unique<OutputCapture>(
            *pipes, 1, fdsup::UniqueFd(fds[0]), std::make_unique<fdsup::LogSink>(fdsup::StreamOrigin{"t", 0, -1, false}),
            [this](OutputCapture::Time, std::string_view line) { sunk.emplace_back(line); },
            [this](OutputCapture*) { closed = true; });
        REQUIRE(capture->ok());
    }
    ~Harness() {
        if (write_end >= 0) close(write_end);
        capture.reset();
        pipes.reset();
        uv_run(&loop, UV_RUN_DEFAULT);  // let the closed handles finish
        uv_loop_close(&loop);
        spdlog::set_default_logger(previous);
    }
    void write_all(const std::string& data) {
        REQUIRE(::write(write_end, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
    }
    // Runs the loop until the pipe is empty (each wakeup reads at most one chunk).
    void drain() {
        for (int i = 0; i < 100; ++i) uv_run(&loop, UV_RUN_NOWAIT);
    }
    void finish() {
        close(write_end);
        write_end = -1;
        while (!closed) uv_run(&loop, UV_RUN_ONCE);
    }
    std::vector<std::string> lines() const {
        std::vector<std::string> result;
        std::istringstream in(out.str());
        for (std::string line; std::getline(in, line);) {
            REQUIRE(line.rfind("t[0]: ", 0) == 0);
            result.push_back(line.substr(6));
        }
        return result;
    }
};

}  // namespace

TEST_CASE("capture: lines, \\r\\n, and a partial line flushed at EOF") {
    Harness h;
    h.write_all("one\ntwo\r\nthr");
    h.drain();
    h.write_all("ee\nlast without newline");
    h.finish();
    CHECK(h.lines() == std::vector<std::string>{"one", "two", "three", "last without newline"});
    CHECK(h.sunk == h.lines());  // the logs ring gets exactly what is logged
}

TEST_CASE("capture: a long line is cut at kMaxLine even when its end arrives in a big chunk") {
    Harness h;
    h.write_all(std::string(10000, 'a'));  // held as a partial line
    h.drain();
    h.write_all(std::string(60000, 'b') + "\nshort\n");  // the rest of it, in one read
    h.finish();
    auto lines = h.lines();
    REQUIRE(lines.size() == 6);
    std::string joined;
    for (size_t i = 0; i < lines.size(); ++i) {
        CHECK(lines[i].size() <= OutputCapture::kMaxLine);
        if (i < 5) joined += lines[i];
    }
    CHECK(lines[0] == std::string(10000, 'a') + std::string(OutputCapture::kMaxLine - 10000, 'b'));
    CHECK(joined == std::string(10000, 'a') + std::string(60000, 'b'));
    CHECK(lines[5] == "short");
}
