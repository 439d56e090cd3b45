// log_format = "json": each line of fdsupd's log as one JSON object, for log shippers.
//
//   {"time": "2026-12-07T01:03:44.123456Z", "level": "info", "worker": "web",
//    "instance": 2, "pid": 1250, "message": "worker web[2]: started pid 1250"}
//   {"time": ..., "level": "info", "worker": "web", "instance": 2, "pid": 1250,
//    "stream": "stderr", "message": "the line the worker wrote"}
//
// time: RFC 3339, UTC, microseconds. level: trace|debug|info|warning|error|critical.
// worker, instance, pid: always there, null where the line is not about one
// (log_subject.h: fdsupd's own lines have all three null, a worker's lines a null
// instance and pid). stream: only on a worker's captured output ("stdout"|"stderr"),
// whose message is the bare line (the text format prefixes "web[2] stderr: ").
// Strings are escaped as the control protocol's are (json/json_writer.h): control
// characters as \uXXXX, invalid UTF-8 as U+FFFD, so any bytes a worker writes make
// valid JSON, one line each.
#pragma once

#include <spdlog/formatter.h>

#include <memory>
#include <string>

namespace fdsup {

class JsonLogFormatter final : public spdlog::formatter {
public:
    void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override;
    std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonLogFormatter>(); }
};

}  // namespace fdsup
