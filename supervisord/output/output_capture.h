// Reads a worker's stdout or stderr pipe and hands it line by line to its sink (fdsupd's
// log, a rotated file, the journal: output/line_sink.h).
//
// Bounded by construction: one read of at most kReadChunk bytes per wakeup (a flooding
// worker cannot starve the loop), and a partial line is held up to kMaxLine bytes, then
// logged as is (a worker that never writes a newline cannot grow memory). When the
// supervisor falls behind, the pipe fills and the worker blocks in write(): back
// pressure, not buffering.
//
// Pipes are watched in a set shared by all captures (an EpollSet, level-triggered): the
// owner calls on_ready() for the capture's key. A worker with stdout and stderr logged
// costs two epoll_ctl per start, and an upgrade carries the set with its registrations.
#pragma once

#include <cstdint>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "loop/epoll_set.h"
#include "output/line_sink.h"
#include "sys/unique_fd.h"

namespace fdsup {

class OutputCapture {
public:
    static constexpr size_t kReadChunk = 64 * 1024;
    static constexpr size_t kMaxLine = 16 * 1024;

    using Time = std::chrono::system_clock::time_point;
    // `read_end` must be non-blocking; it is added to `pipes` under `key` (unless
    // `registered`: an upgrade's set already holds it under that key). Each line goes
    // to `sink` and to `on_line` (if set; for the logs ring), stamped with the time of
    // the read that brought it. `on_closed` runs once, at EOF or error, as the
    // capture's last action (the owner may destroy the capture in it).
    OutputCapture(EpollSet& pipes, uint64_t key, UniqueFd read_end, std::unique_ptr<LineSink> sink,
                  std::function<void(Time, std::string_view line)> on_line,
                  std::function<void(OutputCapture*)> on_closed, bool registered = false);
    ~OutputCapture();
    OutputCapture(const OutputCapture&) = delete;
    OutputCapture& operator=(const OutputCapture&) = delete;

    // False if the pipe could not be watched (the capture is then inert).
    bool ok() const { return watching_; }
    uint64_t key() const { return key_; }
    LineSink& sink() { return *sink_; }

    // The set reported the pipe readable, hung up or failed: one read.
    void on_ready();

    // Logs whatever is readable now, then the pending partial line; used at shutdown.
    void drain_now();

    // For an upgrade: the pipe and the partial line go to the next image, which
    // continues with them (`partial` given to its constructor).
    int fd() const { return fd_.get(); }
    const std::string& partial() const { return partial_; }
    void set_partial(std::string partial) { partial_ = std::move(partial); }

private:
    enum class ReadResult { data, empty, closed };
    // One read(); `closed` at EOF or on a read error.
    ReadResult read_once();
    void emit(Time time, std::string_view line);
    // The held partial line, if any, as a line of its own (at EOF, shutdown).
    void emit_partial();
    void close();

    void unwatch();

    EpollSet& pipes_;
    uint64_t key_;
    UniqueFd fd_;
    std::unique_ptr<LineSink> sink_;
    std::string partial_;
    std::function<void(Time, std::string_view)> on_line_;
    std::function<void(OutputCapture*)> on_closed_;
    bool watching_ = false;
};

}  // namespace fdsup
