// Where each worker process's stdout and stderr go (`stdout`/`stderr` in the config):
//   log, rotate:, journal
//            a pipe per stream, read by an OutputCapture into its sink (fdsupd's log, a
//            file fdsupd rotates, the journal) and the log book (`fdsupctl logs`);
//            a "rotate:" file (output/log_file.h) is opened with the process's pipes,
//            so that a bad path fails the start, and shared by every stream whose path
//            (with {instance} and {name} replaced) is the same, for as long as any
//            capture writes it;
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
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/model.h"
#include "loop/epoll_set.h"
#include "output/journal_connection.h"
#include "output/log_book.h"
#include "output/log_file.h"
#include "output/output_capture.h"
#include "sys/result.h"
#include "sys/unique_fd.h"

namespace fdsup {

class Outputs {
public:
    // `null_fd`: /dev/null, for "null" (the caller keeps it open).
    Outputs(uv_loop_t* loop, int null_fd) : loop_(loop), null_fd_(null_fd) {}

    // One process's streams: the fds the process gets as stdout and stderr, and the
    // read ends of the "log" pipes, to be captured once the process runs (else they
    // just close). "null" is the caller's /dev/null itself, not a copy (nothing to open
    // or close per spawn); every other target's fd is opened for the spawn and owned here.
    struct Streams {
        int out = -1, err = -1;  // for the spawn's fd map: a write end below, or null_fd
        UniqueFd out_write, err_write;
        UniqueFd out_read, err_read;
        std::shared_ptr<LogFile> out_file, err_file;  // for "rotate:"
    };
    Result<Streams> open(const config::WorkerConfig& worker, int index);
    // The process runs: its captured pipes are read into their sinks.
    void capture(Streams& streams, const config::WorkerConfig& worker, int index, pid_t pid);

    // ---- the "rotate:" files ----
    // A rotate: target's path for one instance: {instance} and {name} replaced.
    static std::string log_path(const config::OutputTarget& target, const std::string& worker, int index);
    // `fdsupctl reopen-logs` and SIGUSR1: every open log file opened again at its path.
    struct Reopened {
        std::vector<std::string> reopened;
        std::vector<std::string> failed;  // "open /var/log/web.log: Permission denied"
    };
    Reopened reopen_logs();
    // The config in effect (at start, after each reload): each rotate: path's log_*
    // options are those of the configured workers writing it (the loader makes them
    // agree), for the files opened from now on and at once for those open (a worker whose
    // only change they are is not restarted). A file no configured instance writes keeps
    // the options of the worker that opened it, retuned with that worker's.
    void retune_logs(const config::Config& config);
    struct OpenLog {
        std::shared_ptr<LogFile> file;
        std::string worker;  // the worker whose options it has
    };
    std::vector<OpenLog> log_files() const;

    // `pid` was reaped (or, after an upgrade, `running` says it is not an instance's any
    // more): its captures stop naming it as the sender of their lines.
    void process_gone(pid_t pid);
    void processes_gone_unless(const std::function<bool(pid_t)>& running);

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
    // success), the next key, and how many captures are to be adopted (room for them
    // is made at once: 20,000 would rehash the map a dozen times).
    Result<void> adopt(int pipes_fd, uint64_t next_key, size_t capture_count);
    // A capture whose pipe is registered in the adopted set under `key`.
    void adopt_capture(uint64_t key, UniqueFd read_end, StreamOrigin origin, config::OutputTarget target,
                       std::string partial);
    // A log file the previous image had open (before the captures that write it).
    void adopt_log_file(std::string path, std::string worker, UniqueFd fd, LogFileOptions options);
    // The upgrade can no longer roll back: the adopted files' leftovers are tidied
    // (compressions the exec cut short are done again).
    void resume();

private:
    Result<UniqueFd> open_target(const config::OutputTarget& target, const char* what);
    Result<EpollSet*> pipe_set();
    void on_pipe_ready(uint64_t key);
    // `restored_key`: the pipe is in the set under that key already (an upgrade's).
    OutputCapture* add(UniqueFd read_end, StreamOrigin origin, config::OutputTarget target,
                       std::shared_ptr<LogFile> file, uint64_t restored_key = 0);
    // The sink for one stream's lines, per its target (`file`: a rotate: target's).
    std::unique_ptr<LineSink> make_sink(const config::OutputTarget& target, const StreamOrigin& origin,
                                        std::shared_ptr<LogFile> file);
    // The open file at `path` (its options kept: a warning if they are not `options`),
    // else opened now with the config's options for the path (else `options`).
    Result<std::shared_ptr<LogFile>> log_file(const std::string& path, const std::string& worker,
                                              const LogFileOptions& options);

    uv_loop_t* loop_;
    int null_fd_;
    std::unique_ptr<EpollSet> pipes_;  // opened on first use (level-triggered)
    // The journal, for "journal" streams: made at the first, connected at its first line;
    // declared before the captures, whose sinks use it, so that it outlives them.
    std::unique_ptr<JournalConnection> journal_;
    std::unordered_map<uint64_t, Capture> captures_;  // by key
    uint64_t next_key_ = 1;
    LogBook book_;
    struct LogEntry {
        std::weak_ptr<LogFile> file;  // held by the captures (and compressions) writing it
        std::string worker;  // whose options it has
        bool warned = false;  // that a spawning worker's options are not the file's
    };
    std::map<std::string, LogEntry> log_files_;  // by path; expired entries pruned as met
    struct ConfiguredLog {
        LogFileOptions options;
        std::string worker;
    };
    std::map<std::string, ConfiguredLog> configured_logs_;  // by path (retune_logs())
    std::vector<std::shared_ptr<LogFile>> adopted_logs_;  // until resume()
};

}  // namespace fdsup
