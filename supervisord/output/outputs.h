// Where each worker process's stdout and stderr go (`stdout`/`stderr` in the config):
//   log, rotate:, journal
//            a pipe per stream, read by an OutputCapture into its sink (fdsupd's log, a
//            file fdsupd rotates, the journal) and the log book (`fdsupctl logs`);
//   file:    the file, opened safely (sys/output_file.h), written by the worker itself;
//   null     /dev/null;   inherit   fdsupd's own stdout or stderr.
// Opened per spawn, before the launch; the captures outlive their process (a pipe drains
// after the worker exits) and even their worker (a removed worker's last lines are still
// logged), so a capture names its worker instead of pointing at it.
//
// Every pipe is watched in one EpollSet, which an upgrade carries across execve with
// its registrations: the next image adopts the set and each capture under its key.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "config/model.h"
#include "loop/epoll_set.h"
#include "output/journal_connection.h"
#include "output/log_book.h"
#include "output/output_capture.h"
#include "sys/result.h"
#include "sys/unique_fd.h"

namespace fdsup {

class Outputs {
public:
    // `null_fd`: /dev/null, for "null" (the caller keeps it open).
    Outputs(uv_loop_t* loop, int null_fd) : loop_(loop), null_fd_(null_fd) {}

    // One process's streams: the write ends for the process, and the read ends of the
    // "log" pipes, to be captured once the process runs (else they just close).
    struct Streams {
        UniqueFd out_write, err_write;
        UniqueFd out_read, err_read;
    };
    Result<Streams> open(const config::WorkerConfig& worker);
    // The process runs: its captured pipes are read into their sinks.
    void capture(Streams& streams, const config::WorkerConfig& worker, int index, pid_t pid);

    LogBook& book() { return book_; }
    const LogBook& book() const { return book_; }

    // At shutdown: each capture logs what is readable now, then stops.
    void drain_all();

    // ---- for the upgrade (state/) ----
    struct Capture {
        std::unique_ptr<OutputCapture> capture;
        StreamOrigin origin;
        config::OutputTarget target;  // where its lines go
    };
    const std::unordered_map<uint64_t, Capture>& captures() const { return captures_; }
    const EpollSet* pipes() const { return pipes_.get(); }
    uint64_t next_key() const { return next_key_; }
    // The set of pipes the previous image handed over (-1: it had none; owned only on
    // success), and the next key.
    Result<void> adopt(int pipes_fd, uint64_t next_key);
    // A capture whose pipe is registered in the adopted set under `key`.
    void adopt_capture(uint64_t key, UniqueFd read_end, StreamOrigin origin, config::OutputTarget target,
                       std::string partial);

private:
    Result<UniqueFd> open_target(const config::OutputTarget& target, const char* what);
    Result<EpollSet*> pipe_set();
    void on_pipe_ready(uint64_t key);
    // `restored_key`: the pipe is in the set under that key already (an upgrade's).
    OutputCapture* add(UniqueFd read_end, StreamOrigin origin, config::OutputTarget target, uint64_t restored_key = 0);
    // The sink for one stream's lines, per its target.
    std::unique_ptr<LineSink> make_sink(const config::OutputTarget& target, const StreamOrigin& origin);

    uv_loop_t* loop_;
    int null_fd_;
    std::unique_ptr<EpollSet> pipes_;  // opened on first use (level-triggered)
    // The journal, for "journal" streams: made at the first, connected at its first line;
    // declared before the captures, whose sinks use it, so that it outlives them.
    std::unique_ptr<JournalConnection> journal_;
    std::unordered_map<uint64_t, Capture> captures_;  // by key
    uint64_t next_key_ = 1;
    LogBook book_;
};

}  // namespace fdsup
