// Holding fdsupd's log lines back for a moment. A worker that dies is replaced at once,
// and the lines about it (its exit, "restart #N now") are logged on the way: written to a
// file they would cost the replacement tens of microseconds (the write updates the
// file's times, a journal transaction on ext4). While a LogHold lives, lines are still
// formatted when logged (their time and subject are theirs), but their bytes wait, and
// go out in one write when the last hold ends, in the order logged: once the exit has
// been handled, the replacement cloned. (Work moved past the clone is not free either:
// it runs while the replacement execs, and slows that; a write is cheap enough there.)
//
// Where stderr is a terminal nothing is held (the coloured sink writes as before). An
// exception nothing catches (std::terminate) writes what is held before it aborts; a
// crash by a signal inside a hold (a few hundred microseconds each) loses it.
#pragma once

#include <memory>

#include <spdlog/sinks/sink.h>

namespace fdsup {

// The sink fdsupd logs through: stderr, able to hold lines when it is not a terminal.
std::shared_ptr<spdlog::sinks::sink> make_stderr_sink();

class LogHold {
public:
    LogHold();
    ~LogHold();
    LogHold(const LogHold&) = delete;
    LogHold& operator=(const LogHold&) = delete;
};

// What the holds hold, written now; they go on holding what is logged after. Called
// before fdsupd sends anything to a control client (control/control_server.cpp): a
// reply must not tell of something the log does not have yet. A `restart` is answered
// while the exit of the last old instance is handled, inside that exit's hold.
void write_held_log();

}  // namespace fdsup
