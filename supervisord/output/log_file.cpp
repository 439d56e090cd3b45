#include "output/log_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>

#include "sys/high_fd.h"
#include "sys/output_file.h"

namespace fdsup {

namespace {

using namespace std::chrono;

// "2026-12-07T01:23:45" for the second of `t` in UTC or local time, with the zone's
// suffix ("Z", "+01:00") apart.
void second_text(int64_t second, bool local, std::string& prefix, std::string& suffix) {
    time_t t = static_cast<time_t>(second);
    tm parts{};
    if (local) localtime_r(&t, &parts);
    else gmtime_r(&t, &parts);
    char text[40];
    size_t n = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &parts);
    prefix.assign(text, n);
    if (!local) {
        suffix = "Z";
        return;
    }
    long offset = parts.tm_gmtoff / 60;  // minutes east of UTC
    char sign = offset < 0 ? '-' : '+';
    offset = offset < 0 ? -offset : offset;
    std::snprintf(text, sizeof text, "%c%02ld:%02ld", sign, offset / 60, offset % 60);
    suffix = text;
}

// ".123456" of `t`.
void append_micros(std::string& out, system_clock::time_point t) {
    auto us = duration_cast<microseconds>(t.time_since_epoch()).count() % 1'000'000;
    if (us < 0) us += 1'000'000;
    char digits[8] = {'.', '0', '0', '0', '0', '0', '0', 0};
    for (int i = 6; i >= 1; --i, us /= 10) digits[i] = static_cast<char>('0' + us % 10);
    out.append(digits, 7);
}

int64_t second_of(system_clock::time_point t) { return floor<seconds>(t.time_since_epoch()).count(); }

// Writes all of `data` (short writes and EINTR gone on with); false with errno set.
bool write_all(int fd, std::string_view data, uint64_t& written) {
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        written += static_cast<uint64_t>(n);
        data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
}

Result<UniqueFd> open_regular(const std::string& path) {
    auto fd = open_output_file(path, LogFile::kMode);
    if (!fd) return fail(fd.error().message + " " + path + ": " + open_failure_reason(fd.error().err));
    struct stat st {};
    if (::fstat(fd->get(), &st) < 0) return fail_errno("fstat " + path);
    if (!S_ISREG(st.st_mode)) return fail("open " + path + ": not a regular file (fdsupd rotates it)");
    move_fd_high(*fd);  // kept until the next rotation: out of the spawns' way (sys/high_fd.h)
    return fd;
}

uint64_t size_of(int fd) {
    struct stat st {};
    return ::fstat(fd, &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

}  // namespace

std::string log_stamp(system_clock::time_point time, config::LogTimestamps mode) {
    if (mode == config::LogTimestamps::none) return "";
    std::string prefix, suffix;
    second_text(second_of(time), mode == config::LogTimestamps::local, prefix, suffix);
    append_micros(prefix, time);
    return prefix + suffix;
}

// One compression: PATH.index (opened before the job was queued, so later renames do
// not matter) into a temp file, on a pool thread. Only `source`, `temp` and the result
// fields are touched there.
struct LogFile::Job {
    uv_work_t req{};
    std::shared_ptr<LogFile> owner;  // kept alive (and its loop-side state) until done
    int index = 0;                   // the file's index now: later rotations move it on
    UniqueFd source, temp;
    std::string temp_name;
    std::atomic<bool> cancelled{false};
    int error = 0;          // errno of the failure, or -1 for zlib's own
    std::string failed_at;  // "read", "write", ...
};

LogFile::LogFile(uv_loop_t* loop, std::string path, UniqueFd fd, LogFileOptions options)
    : loop_(loop), path_(std::move(path)), fd_(std::move(fd)), options_(options) {
    auto slash = path_.find_last_of('/');
    dir_ = slash == 0 ? "/" : path_.substr(0, slash);
    base_ = path_.substr(slash + 1);
    size_ = size_of(fd_.get());
}

Result<std::shared_ptr<LogFile>> LogFile::open(uv_loop_t* loop, std::string path, LogFileOptions options, bool tidy_now) {
    auto fd = open_regular(path);
    if (!fd) return std::unexpected(fd.error());
    std::shared_ptr<LogFile> file(new LogFile(loop, std::move(path), std::move(*fd), options));
    if (tidy_now) file->tidy();
    return file;
}

std::shared_ptr<LogFile> LogFile::adopt(uv_loop_t* loop, std::string path, UniqueFd fd, LogFileOptions options) {
    return std::shared_ptr<LogFile>(new LogFile(loop, std::move(path), std::move(fd), options));
}

LogFile::~LogFile() { flush(); }

void LogFile::update_stamp(Time time) {
    int64_t second = second_of(time);
    if (second != stamp_second_) {
        second_text(second, options_.timestamps == config::LogTimestamps::local, stamp_prefix_, stamp_suffix_);
        stamp_second_ = second;
    }
}

void LogFile::append(Time time, std::string_view line) {
    size_t stamp_size = 0;
    if (options_.timestamps != config::LogTimestamps::none) {
        update_stamp(time);
        stamp_size = stamp_prefix_.size() + 7 + stamp_suffix_.size() + 1;
    }
    uint64_t line_size = stamp_size + line.size() + 1;
    uint64_t in_file = size_ + pending_.size();
    if (options_.max_size && in_file > 0 && in_file + line_size > *options_.max_size &&
        std::chrono::steady_clock::now() >= retry_rotation_at_) {
        flush();
        rotate();
    }
    if (options_.timestamps != config::LogTimestamps::none) {
        pending_ += stamp_prefix_;
        append_micros(pending_, time);
        pending_ += stamp_suffix_;
        pending_ += ' ';
    }
    pending_ += line;
    pending_ += '\n';
    ++pending_lines_;
    if (pending_.size() >= kFlushAt) flush();
}

void LogFile::flush() {
    if (pending_.empty()) return;
    uint64_t written = 0;
    if (!write_all(fd_.get(), pending_, written)) {
        int err = errno;
        // A line cut short would be continued by the next batch's first line: the file
        // is cut back to the last whole line that reached it (fdsupd is its one writer),
        // and the rest of the batch is dropped.
        std::string_view reached(pending_.data(), written);
        size_t whole = reached.rfind('\n') == std::string_view::npos ? 0 : reached.rfind('\n') + 1;
        if (whole < written) {
            struct stat st {};
            if (::fstat(fd_.get(), &st) == 0 && static_cast<uint64_t>(st.st_size) >= written - whole &&
                ::ftruncate(fd_.get(), st.st_size - static_cast<off_t>(written - whole)) == 0)
                written = whole;
        }
        uint64_t kept = static_cast<uint64_t>(std::count(pending_.begin(), pending_.begin() + static_cast<long>(written), '\n'));
        dropped_lines_ += pending_lines_ - kept;
        warn("write " + path_ + ": " + std::strerror(err) + "; " + std::to_string(pending_lines_ - kept) +
             " line(s) dropped");
    }
    size_ += written;
    pending_.clear();
    pending_lines_ = 0;
}

void LogFile::warn(const std::string& what) {
    uint64_t suppressed = 0;
    if (warnings_.allow(Clock::now(), suppressed))
        spdlog::warn("{}{}", what, LogRateLimit::left_out(suppressed, "such warnings"));
}

std::string LogFile::rotated(int index, bool gz) const {
    return path_ + "." + std::to_string(index) + (gz ? ".gz" : "");
}

void LogFile::rotate() {
    const int keep = options_.keep;
    // Make room at the end, then move each file one up. Both forms of a name move (an
    // index whose compression is in flight is still the plain file).
    if (keep >= 1)
        for (bool gz : {false, true}) ::unlink(rotated(keep, gz).c_str());
    for (int k = keep - 1; k >= 1; --k)
        for (bool gz : {false, true}) ::rename(rotated(k, gz).c_str(), rotated(k + 1, gz).c_str());
    for (Job* job : jobs_) ++job->index;
    cancel_jobs_past_keep();
    if (keep >= 1) ::rename(path_.c_str(), rotated(1, false).c_str());
    else ::unlink(path_.c_str());
    auto fresh = open_regular(path_);
    if (!fresh) {
        // The lines go on into the file open now (renamed, or unlinked with keep = 0);
        // the next attempt is in a while, not at every line.
        retry_rotation_at_ = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        warn("rotate " + path_ + ": " + fresh.error().text() + "; writing on into the rotated file");
        return;
    }
    fd_ = std::move(*fresh);
    size_ = size_of(fd_.get());
    ++rotations_;
    if (options_.compress && keep >= 1) compress(1);
}

void LogFile::cancel_jobs_past_keep() {
    for (Job* job : jobs_)
        if (job->index > options_.keep) {  // its file is gone: out of the pool's queue, or stopped
            job->cancelled = true;
            uv_cancel(reinterpret_cast<uv_req_t*>(&job->req));
        }
}

void LogFile::compress(int index) {
    auto* job = new Job;
    job->index = index;
    std::string source = rotated(index, false);
    job->source.reset(::open(source.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!job->source) {
        warn("compress " + source + ": open: " + std::strerror(errno));
        delete job;
        return;
    }
    job->temp_name = dir_ + "/." + base_ + ".gz-tmp-" + std::to_string(next_job_++);
    // O_EXCL: never into a file someone else put at the name (a hard link, as root);
    // a name left over from a crash is fdsupd's own and goes first.
    constexpr int kCreate = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW;
    job->temp.reset(::open(job->temp_name.c_str(), kCreate, kMode));
    if (!job->temp && errno == EEXIST && ::unlink(job->temp_name.c_str()) == 0)
        job->temp.reset(::open(job->temp_name.c_str(), kCreate, kMode));
    if (!job->temp) {
        warn("compress " + source + ": create " + job->temp_name + ": " + std::strerror(errno));
        delete job;
        return;
    }
    job->owner = shared_from_this();
    job->req.data = job;
    jobs_.push_back(job);
    auto work = [](uv_work_t* req) {
        auto* job = static_cast<Job*>(req->data);
        // gzclose closes the fd it is given: a duplicate, so that temp can be synced.
        int out = ::fcntl(job->temp.get(), F_DUPFD_CLOEXEC, 0);  // an upgrade's exec must not carry it
        gzFile gz = out >= 0 ? gzdopen(out, "wb") : nullptr;
        if (gz == nullptr) {
            job->error = out < 0 ? errno : ENOMEM;
            job->failed_at = "gzdopen";
            if (out >= 0) ::close(out);
            return;
        }
        gzbuffer(gz, 128 * 1024);
        std::array<char, 128 * 1024> buffer;
        while (!job->cancelled) {
            ssize_t n = ::read(job->source.get(), buffer.data(), buffer.size());
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
                job->error = errno;
                job->failed_at = "read";
                break;
            }
            if (n == 0) break;
            if (gzwrite(gz, buffer.data(), static_cast<unsigned>(n)) != n) {
                int zerr = 0;
                gzerror(gz, &zerr);
                job->error = zerr == Z_ERRNO ? errno : -1;
                job->failed_at = "write";
                break;
            }
        }
        if (gzclose(gz) != Z_OK && job->error == 0) {
            job->error = errno != 0 ? errno : -1;
            job->failed_at = "close";
        }
        // On disk before the rename makes it the rotated file and the source goes.
        if (job->error == 0 && !job->cancelled && ::fdatasync(job->temp.get()) < 0) {
            job->error = errno;
            job->failed_at = "fdatasync";
        }
    };
    int queued = uv_queue_work(loop_, &job->req, work, &LogFile::after_compress);
    if (queued != 0) {
        jobs_.pop_back();
        ::unlink(job->temp_name.c_str());
        warn("compress " + source + ": " + uv_strerror(queued));
        delete job;
    }
}

void LogFile::after_compress(uv_work_t* req, int status) {
    std::unique_ptr<Job> job(static_cast<Job*>(req->data));
    std::shared_ptr<LogFile> self = std::move(job->owner);  // alive to the end of this
    std::erase(self->jobs_, job.get());
    if (status != 0 || job->cancelled || job->error != 0) {
        ::unlink(job->temp_name.c_str());
        if (status == 0 && !job->cancelled)
            self->warn("compress " + self->rotated(job->index, false) + ": " + job->failed_at + ": " +
                       (job->error > 0 ? std::strerror(job->error) : "zlib error") + "; left uncompressed");
        return;
    }
    // The file at the name must still be the one compressed: something else rotating the
    // same files (a logrotate whose glob takes them in) may have moved it meanwhile.
    std::string source = self->rotated(job->index, false);
    struct stat compressed {}, named {};
    if (::fstat(job->source.get(), &compressed) < 0 || ::lstat(source.c_str(), &named) < 0 ||
        compressed.st_dev != named.st_dev || compressed.st_ino != named.st_ino) {
        ::unlink(job->temp_name.c_str());
        self->warn("compress " + source + ": the file was moved by something else meanwhile; left as it is");
        return;
    }
    std::string target = self->rotated(job->index, true);
    if (::rename(job->temp_name.c_str(), target.c_str()) < 0) {
        self->warn("compress: rename " + job->temp_name + " to " + target + ": " + std::strerror(errno));
        ::unlink(job->temp_name.c_str());
        return;
    }
    ::unlink(source.c_str());
}

Result<void> LogFile::reopen() {
    flush();
    auto fresh = open_regular(path_);
    if (!fresh) return std::unexpected(fresh.error());
    fd_ = std::move(*fresh);
    size_ = size_of(fd_.get());
    retry_rotation_at_ = {};
    return {};
}

void LogFile::set_options(LogFileOptions options) {
    if (options == options_) return;
    flush();
    bool tidy_now = options.keep < options_.keep || (options.compress && !options_.compress);
    options_ = options;
    stamp_second_ = INT64_MIN;  // utc and local stamp the same second differently
    if (tidy_now) tidy();
}

void LogFile::tidy() {
    cancel_jobs_past_keep();  // a smaller log_keep: their results would land past it
    DIR* dir = ::opendir(dir_.c_str());
    if (dir == nullptr) return;
    std::vector<std::string> temps;
    std::vector<std::pair<int, bool>> files;  // index, gz
    const std::string temp_prefix = "." + base_ + ".gz-tmp-";
    while (const dirent* entry = ::readdir(dir)) {
        std::string_view name = entry->d_name;
        if (name.starts_with(temp_prefix)) {
            temps.emplace_back(name);
            continue;
        }
        if (!name.starts_with(base_) || name.size() < base_.size() + 2 || name[base_.size()] != '.') continue;
        std::string_view rest = name.substr(base_.size() + 1);
        bool gz = rest.ends_with(".gz");
        if (gz) rest.remove_suffix(3);
        int index = 0;
        auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), index);
        if (ec != std::errc() || end != rest.data() + rest.size() || index < 1 || rest.front() == '0') continue;
        files.emplace_back(index, gz);
    }
    ::closedir(dir);
    // Never rotated by size, fdsupd rotates nothing: numbered files are an outside
    // rotation's (logrotate's own rotate count, its delaycompress), not to be touched.
    if (!options_.max_size) files.clear();
    for (const auto& temp : temps) {
        bool ours = std::any_of(jobs_.begin(), jobs_.end(), [&](const Job* job) {
            return job->temp_name == dir_ + "/" + temp;
        });
        if (!ours) ::unlinkat(AT_FDCWD, (dir_ + "/" + temp).c_str(), 0);
    }
    std::sort(files.begin(), files.end());
    for (auto [index, gz] : files) {
        if (index > options_.keep) {
            ::unlink(rotated(index, gz).c_str());
            continue;
        }
        if (gz || !options_.compress) continue;
        if (std::any_of(jobs_.begin(), jobs_.end(), [index](const Job* job) { return job->index == index; })) continue;
        // Both forms: the compressed one was renamed into place, the source not yet removed.
        if (std::find(files.begin(), files.end(), std::pair{index, true}) != files.end())
            ::unlink(rotated(index, false).c_str());
        else
            compress(index);
    }
}

}  // namespace fdsup
