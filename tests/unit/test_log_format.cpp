// log_format = "json" (logging/json_log_format.h): one valid JSON object per line with
// the subject's fields, whatever bytes the message holds; log_format = "text" as before.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <regex>
#include <sstream>

#include "logging/json_log_format.h"
#include "logging/log_subject.h"
#include "logging/rfc3339.h"
#include "logging/logging.h"

using fdsup::JsonLogFormatter;
using fdsup::LogAbout;
using Json = nlohmann::json;

namespace {

// A logger that writes into a string, with the JSON formatter.
struct Captured {
    std::ostringstream out;
    std::shared_ptr<spdlog::logger> logger;
    Captured() {
        logger = std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::ostream_sink_st>(out));
        logger->set_formatter(std::make_unique<JsonLogFormatter>());
        logger->set_level(spdlog::level::trace);
    }
    // The one line logged, parsed (it must be exactly one line).
    Json only_line() {
        std::string text = out.str();
        REQUIRE(!text.empty());
        CHECK(text.back() == '\n');
        CHECK(text.find('\n') == text.size() - 1);
        return Json::parse(text);
    }
};

// The default logger swapped for one writing into `out`, for set_log_format (which acts
// on the default logger); the real one is put back.
struct DefaultLoggerSwap {
    std::shared_ptr<spdlog::logger> saved = spdlog::default_logger();
    std::ostringstream out;
    DefaultLoggerSwap() {
        spdlog::set_default_logger(
            std::make_shared<spdlog::logger>("swap", std::make_shared<spdlog::sinks::ostream_sink_st>(out)));
        spdlog::default_logger()->set_level(spdlog::level::info);
    }
    ~DefaultLoggerSwap() { spdlog::set_default_logger(saved); }
};

}  // namespace

TEST_CASE("log format: fdsupd's own line has null worker, instance and pid") {
    Captured c;
    c.logger->warn("reload: {}", "refused");
    Json line = c.only_line();
    CHECK(line["level"] == "warning");
    CHECK(line["message"] == "reload: refused");
    CHECK(line["worker"].is_null());
    CHECK(line["instance"].is_null());
    CHECK(line["pid"].is_null());
    CHECK_FALSE(line.contains("stream"));
    std::string time = line["time"];
    CHECK(std::regex_match(time, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)")));
}

TEST_CASE("log format: a line about an instance carries its worker, index and pid") {
    Captured c;
    {
        LogAbout about("web", 2, 1250);
        c.logger->info("worker web[2]: started pid 1250");
    }
    Json line = c.only_line();
    CHECK(line["worker"] == "web");
    CHECK(line["instance"] == 2);
    CHECK(line["pid"] == 1250);
    CHECK(line["message"] == "worker web[2]: started pid 1250");
    CHECK(LogAbout::current() == nullptr);  // the guard is gone with its scope
}

TEST_CASE("log format: a worker-level line has a worker only; subjects nest") {
    Captured c;
    {
        LogAbout outer("web");
        {
            LogAbout inner("db", 0, 7);
            c.logger->info("inner");
        }
        c.logger->info("outer");
    }
    std::istringstream lines(c.out.str());
    std::string first, second;
    std::getline(lines, first);
    std::getline(lines, second);
    Json inner = Json::parse(first), outer = Json::parse(second);
    CHECK(inner["worker"] == "db");
    CHECK(inner["pid"] == 7);
    CHECK(outer["worker"] == "web");
    CHECK(outer["instance"].is_null());
    CHECK(outer["pid"].is_null());
}

TEST_CASE("log format: a captured line is its stream and the bare line") {
    Captured c;
    {
        LogAbout about("web", 1, 99, "stderr", "boom");
        c.logger->info("web[1] stderr: boom");
    }
    Json line = c.only_line();
    CHECK(line["stream"] == "stderr");
    CHECK(line["message"] == "boom");
    CHECK(line["instance"] == 1);
}

TEST_CASE("log format: any bytes make one valid JSON line") {
    Captured c;
    std::string nasty = std::string("q\"b\\n\nr\rt\tz") + '\0' + "\x01\x1f\x7f" + "bad\xff\xfe utf8 \xc3" + "é€😀";
    {
        LogAbout about("we\"b", 0, 5, "stdout", nasty);
        c.logger->info("{}", nasty);
    }
    std::string text = c.out.str();
    for (char ch : text.substr(0, text.size() - 1)) CHECK(static_cast<unsigned char>(ch) >= 0x20);
    Json line = c.only_line();
    CHECK(line["worker"] == "we\"b");
    CHECK(line["message"] == std::string("q\"b\\n\nr\rt\tz") + '\0' + "\x01\x1f\x7f" +
                                 "bad\xEF\xBF\xBD\xEF\xBF\xBD utf8 \xEF\xBF\xBD" + "é€😀");
    CHECK(text.find("\\u0000") != std::string::npos);
    CHECK(text.find("\\u001f") != std::string::npos);
}

TEST_CASE("log format: time is RFC 3339 in UTC with microseconds") {
    using namespace std::chrono;
    CHECK(fdsup::rfc3339_utc(system_clock::time_point(microseconds(1763900000123456))) ==
          "2025-11-23T12:13:20.123456Z");
    CHECK(fdsup::rfc3339_utc(system_clock::time_point(seconds(0))) == "1970-01-01T00:00:00.000000Z");
}

TEST_CASE("log format: set_log_format switches the default logger; text is as it always was") {
    DefaultLoggerSwap swap;
    CHECK(fdsup::set_log_format("text"));
    spdlog::info("plain {}", 1);
    CHECK_FALSE(fdsup::set_log_format("xml"));  // unknown: refused, nothing changes
    spdlog::warn("still text");
    CHECK(fdsup::set_log_format("json"));
    spdlog::info("now json");
    std::istringstream lines(swap.out.str());
    std::string first, second, third;
    std::getline(lines, first);
    std::getline(lines, second);
    std::getline(lines, third);
    CHECK(std::regex_match(first, std::regex(R"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} info  plain 1)")));
    CHECK(std::regex_match(second, std::regex(R"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} warning still text)")));
    CHECK(Json::parse(third)["message"] == "now json");
}
