// A file fdsupd writes a worker's lines into and rotates (stdout/stderr = "rotate:PATH").
//
// Each line goes in as "<stamp> <line>\n" (log_timestamps: RFC 3339 with microseconds,
// "2026-12-07T01:23:45.123456Z" in UTC or "2026-12-07T02:23:45.123456+01:00" in local
// time; "none": the line alone). The lines of one read are batched and written with one
// write() at flush() (short writes and EINTR are gone on with).
//
// Rotation keeps every file at most log_max_size: before a line that would take a
// non-empty file past it, the file is flushed and rotated (PATH.(k-1) -> PATH.k, ...,
// PATH -> PATH.1, what falls past log_keep removed, a fresh PATH opened), so a line is
// never split across files and only a single line longer than the limit makes a file
// bigger. log_keep = 0 keeps no rotated file. No log_max_size: never by size (an outside
// rotation, logrotate's, with `fdsupctl reopen-logs` after it).
//
// log_compress: each rotated file is gzipped (zlib) off the loop, on libuv's thread
// pool, into a hidden temp file in the same directory (".NAME.gz-tmp-N"), which the
// loop then renames to PATH.k.gz before it removes PATH.k. A job follows its file's
// index as later rotations shift the names, and one whose file falls past log_keep is
// cancelled (taken out of the pool's queue, or stopped at its next chunk): at most
// log_keep compressions are ever pending per file. A result is renamed into place only
// if the name still holds the file compressed (another rotator moved nothing).
// tidy() (at open, after an upgrade, when the options change) removes leftover temp
// files and rotated files past log_keep, and compresses again what a crash or an
// upgrade left uncompressed: nothing is lost mid-compression. With no log_max_size
// fdsupd rotates nothing, and tidy() leaves numbered files alone (logrotate's).
//
// Back pressure: writes are synchronous, on the loop, and a capture reads at most one
// chunk (OutputCapture::kReadChunk) per wakeup, so nothing is buffered beyond that: a
// worker faster than the disk fills its pipe and blocks in write(). A stalled disk
// stalls the loop in write() too (as it would any program writing the file).
//
// A write that fails (ENOSPC, EIO) drops the rest of its batch, and a line it cut short
// is cut off the file: counted, warned about at most every few seconds, never retried
// without bound.
//
// Opened as `file:` is (sys/output_file.h: no symlink on the path, no FIFO hang), and
// it must be a regular file; created 0640.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/model.h"
#include "logging/log_rate_limit.h"
#include "sys/result.h"
#include "sys/unique_fd.h"

namespace fdsup {

struct LogFileOptions {
    std::optional<uint64_t> max_size = 10 * 1024 * 1024;  // nullopt: never by size
    int keep = 5;
    bool compress = false;
    config::LogTimestamps timestamps = config::LogTimestamps::utc;
    bool operator==(const LogFileOptions&) const = default;

    static LogFileOptions of(const config::WorkerConfig& worker) {
        return {worker.log_max_size, worker.log_keep, worker.log_compress, worker.log_timestamps};
    }
};

// "2026-12-07T01:23:45.123456Z" (utc), "2026-12-07T02:23:45.123456+01:00" (local, the
// offset of fdsupd's time zone then), "" (none).
std::string log_stamp(std::chrono::system_clock::time_point time, config::LogTimestamps mode);

class LogFile : public std::enable_shared_from_this<LogFile> {
public:
    using Time = std::chrono::system_clock::time_point;
    static constexpr mode_t kMode = 0640;
    // A batch is written once it is this big, even before flush().
    static constexpr size_t kFlushAt = 256 * 1024;

    // Opens (creating) `path`; tidies its rotated files unless `tidy_now` is false
    // (an adopted file is tidied once the upgrade cannot roll back: tidy()).
    static Result<std::shared_ptr<LogFile>> open(uv_loop_t* loop, std::string path, LogFileOptions options,
                                                 bool tidy_now = true);
    // The file an upgrade's previous image had open (its size is read again).
    static std::shared_ptr<LogFile> adopt(uv_loop_t* loop, std::string path, UniqueFd fd, LogFileOptions options);
    ~LogFile();
    LogFile(const LogFile&) = delete;
    LogFile& operator=(const LogFile&) = delete;

    void append(Time time, std::string_view line);
    void flush();
    // Flushes, then opens the file at its path again (an outside rotation renamed it):
    // on failure the old fd stays and the error is returned.
    Result<void> reopen();
    // New options apply from the next line (a smaller log_keep or compression turned
    // on take effect on the rotated files at once: tidy()).
    void set_options(LogFileOptions options);
    // Removes leftover temp files and rotated files past log_keep; compresses rotated
    // files left uncompressed (with log_compress).
    void tidy();

    const std::string& path() const { return path_; }
    int fd() const { return fd_.get(); }
    uint64_t size() const { return size_; }
    const LogFileOptions& options() const { return options_; }
    uint64_t rotations() const { return rotations_; }
    uint64_t dropped_lines() const { return dropped_lines_; }
    // Compressions running or queued.
    size_t compressing() const { return jobs_.size(); }

private:
    struct Job;
    LogFile(uv_loop_t* loop, std::string path, UniqueFd fd, LogFileOptions options);

    // "PATH.3" or "PATH.3.gz".
    std::string rotated(int index, bool gz) const;
    void rotate();
    void compress(int index);
    // Jobs whose file is now past log_keep: taken out of the pool's queue, or stopped.
    void cancel_jobs_past_keep();
    static void after_compress(uv_work_t* req, int status);
    void warn(const std::string& what);

    uv_loop_t* loop_;
    std::string path_;
    std::string dir_, base_;  // path_ = dir_ + "/" + base_
    UniqueFd fd_;
    LogFileOptions options_;
    uint64_t size_ = 0;
    std::string pending_;  // the lines not written yet
    uint64_t pending_lines_ = 0;
    uint64_t rotations_ = 0;
    uint64_t dropped_lines_ = 0;
    uint64_t next_job_ = 1;
    std::vector<Job*> jobs_;  // in flight (each owned by its uv_work_t until after_compress)
    // A rotation that failed (a fresh file could not be created) is tried again only
    // after this: lines meanwhile go on into the file already open.
    std::chrono::steady_clock::time_point retry_rotation_at_{};
    LogRateLimit warnings_{3, std::chrono::seconds(10)};
    // The stamp's text up to the second, for the second it was made for.
    int64_t stamp_second_ = INT64_MIN;
    std::string stamp_prefix_, stamp_suffix_;

    void update_stamp(Time time);
};

}  // namespace fdsup
