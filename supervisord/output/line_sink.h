// Where the lines of one captured stream go, per the worker's `stdout`/`stderr`:
// fdsupd's own log ("log"), a file fdsupd rotates ("rotate:"), the journal ("journal").
// A capture hands over every line it splits from one read, then calls flush(), so a
// sink may batch a read's lines into one write.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <string_view>

namespace fdsup {

// Whose stream it is. The pid is the process that was given the pipe (it may have
// exited by the time its last lines are read).
struct StreamOrigin {
    std::string worker;
    int index = 0;
    pid_t pid = -1;
    bool from_stderr = false;

    // "web[2]" or "web[2] stderr", as lines are labelled in fdsupd's log.
    std::string label() const;
};

class LineSink {
public:
    virtual ~LineSink() = default;
    // One line, without its newline. `time`: when the read that brought it returned.
    virtual void write_line(std::chrono::system_clock::time_point time, std::string_view line) = 0;
    // The end of one read (or of a drain): nothing may stay batched after it.
    virtual void flush() {}
    // The process was reaped: from now on its pid may name another process (its last
    // lines, still in the pipe, must not be said to come from that one).
    virtual void process_gone() {}
};

}  // namespace fdsup
