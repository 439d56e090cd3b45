#include "output/outputs.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <filesystem>

#include "config/placeholders.h"
#include "output/journal_sink.h"
#include "output/log_sink.h"
#include "output/rotate_sink.h"
#include "sys/high_fd.h"
#include "sys/output_file.h"

namespace fdsup {

Result<Outputs::Streams> Outputs::open(const config::WorkerConfig& worker, int index) {
    Streams streams;
    auto open_stream = [&](const config::OutputTarget& target, int& fd_for_process, UniqueFd& read_end,
                           UniqueFd& write_end, std::shared_ptr<LogFile>& file, const char* what) -> Result<void> {
        if (target.kind == config::OutputKind::null) {
            fd_for_process = null_fd_;
            return {};
        }
        if (target.kind == config::OutputKind::rotate) {
            auto opened = log_file(log_path(target, worker.name, index), worker.name, LogFileOptions::of(worker));
            if (!opened) return fail(std::string(what) + ": " + opened.error().text());
            file = std::move(*opened);
        }
        if (!config::is_captured(target.kind)) {
            auto fd = open_target(target, what);
            if (!fd) return std::unexpected(fd.error());
            write_end = std::move(*fd);
            fd_for_process = write_end.get();
            return {};
        }
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) < 0) return fail_errno(std::string("pipe for ") + what);
        read_end.reset(fds[0]);
        write_end.reset(fds[1]);
        fd_for_process = write_end.get();
        move_fd_high(read_end);  // kept as long as the capture: out of the spawns' way
        if (::fcntl(read_end.get(), F_SETFL, O_NONBLOCK) < 0) return fail_errno(std::string("pipe for ") + what);
        return {};
    };
    if (auto r = open_stream(worker.stdout_target, streams.out, streams.out_read, streams.out_write, streams.out_file,
                             "stdout");
        !r)
        return std::unexpected(r.error());
    if (auto r = open_stream(worker.stderr_target, streams.err, streams.err_read, streams.err_write, streams.err_file,
                             "stderr");
        !r)
        return std::unexpected(r.error());
    return streams;
}

void Outputs::capture(Streams& streams, const config::WorkerConfig& worker, int index, pid_t pid) {
    if (streams.out_read)
        add(std::move(streams.out_read), StreamOrigin{worker.name, index, pid, false}, worker.stdout_target,
            std::move(streams.out_file));
    if (streams.err_read)
        add(std::move(streams.err_read), StreamOrigin{worker.name, index, pid, true}, worker.stderr_target,
            std::move(streams.err_file));
}

std::unique_ptr<LineSink> Outputs::make_sink(const config::OutputTarget& target, const StreamOrigin& origin,
                                             std::shared_ptr<LogFile> file) {
    if (target.kind == config::OutputKind::rotate && file) return std::make_unique<RotateSink>(std::move(file));
    if (target.kind == config::OutputKind::journal) {
        // An instance starting (or restored by an upgrade) is the moment to look for a
        // journal that was missing.
        if (journal_) journal_->retry_soon();
        else journal_ = std::make_unique<JournalConnection>();
        return std::make_unique<JournalSink>(*journal_, origin);
    }
    return std::make_unique<LogSink>(origin);
}

std::string Outputs::log_path(const config::OutputTarget& target, const std::string& worker, int index) {
    // Only the worker's name matters to {instance} and {name} (a capture outlives its
    // worker's config, and the next image makes the same path from the same two).
    return std::filesystem::path(config::expand_placeholders(target.path, worker, index)).lexically_normal().string();
}

namespace {

std::string options_text(const LogFileOptions& o) {
    return "log_max_size " + (o.max_size ? std::to_string(*o.max_size) : std::string("infinity")) + ", log_keep " +
           std::to_string(o.keep) + ", log_compress " + (o.compress ? "true" : "false") + ", log_timestamps " +
           config::log_timestamps_text(o.timestamps);
}

}  // namespace

Result<std::shared_ptr<LogFile>> Outputs::log_file(const std::string& path, const std::string& worker,
                                                   const LogFileOptions& options) {
    // A file's options are the current config's for its path (retune_logs()), never
    // the spawning worker's: those may differ when a worker scaled beyond its configured
    // instances comes to share another's file (the loader compares configured counts
    // only), or when an instance starts from the spec a reload's canary holds. Taking
    // them would flip the file's options at each spawn, and a smaller log_keep would
    // delete the other writer's rotated files.
    if (auto it = log_files_.find(path); it != log_files_.end()) {
        if (auto open = it->second.file.lock()) {
            if (open->options() != options && !it->second.warned) {
                it->second.warned = true;
                spdlog::warn("log file {}: worker {}'s options ({}) are not the file's ({}, worker {}'s); it "
                             "keeps its own: one file is rotated one way",
                             path, worker, options_text(options), options_text(open->options()), it->second.worker);
            }
            return open;
        }
        log_files_.erase(it);
    }
    // A path no configured instance writes (a worker scaled up, or removed by a reload):
    // the spawning worker's options.
    auto configured = configured_logs_.find(path);
    const LogFileOptions& chosen = configured != configured_logs_.end() ? configured->second.options : options;
    auto opened = LogFile::open(loop_, path, chosen);
    if (!opened) return std::unexpected(opened.error());
    // Files no capture writes any more are pruned as the map doubles in size, not at each
    // open: starting 10,000 instances with "rotate:" output would otherwise look over
    // every file opened so far, 20,000 times.
    if (std::has_single_bit(log_files_.size()))
        std::erase_if(log_files_, [](const auto& entry) { return entry.second.file.expired(); });
    log_files_[path] = LogEntry{*opened, configured != configured_logs_.end() ? configured->second.worker : worker};
    return opened;
}

std::vector<Outputs::OpenLog> Outputs::log_files() const {
    std::vector<OpenLog> open;
    for (const auto& [path, entry] : log_files_)
        if (auto file = entry.file.lock()) open.push_back(OpenLog{std::move(file), entry.worker});
    return open;
}

Outputs::Reopened Outputs::reopen_logs() {
    Reopened result;
    for (const auto& log : log_files()) {
        if (auto reopened = log.file->reopen(); reopened) {
            result.reopened.push_back(log.file->path());
        } else {
            result.failed.push_back(reopened.error().text());
            spdlog::error("reopen-logs: {}; writing on into the file open before", reopened.error().text());
        }
    }
    spdlog::info("reopen-logs: {} file(s) reopened, {} failed", result.reopened.size(), result.failed.size());
    return result;
}

void Outputs::retune_logs(const config::Config& config) {
    configured_logs_.clear();
    for (const auto& worker : config.workers)
        for (const auto* target : {&worker.stdout_target, &worker.stderr_target}) {
            if (target->kind != config::OutputKind::rotate) continue;
            // All configured writers of one path agree (the loader's check): the first is as good as any.
            for (int index = 0; index < std::max(worker.instances, 1); ++index)
                configured_logs_.emplace(log_path(*target, worker.name, index),
                                         ConfiguredLog{LogFileOptions::of(worker), worker.name});
        }
    for (auto& [path, entry] : log_files_) {
        auto file = entry.file.lock();
        if (!file) continue;
        if (auto it = configured_logs_.find(path); it != configured_logs_.end()) {
            file->set_options(it->second.options);
            entry.worker = it->second.worker;
        } else if (const config::WorkerConfig* worker = config.find_worker(entry.worker)) {
            file->set_options(LogFileOptions::of(*worker));  // written by instances scaled beyond the config's
        }
        entry.warned = false;
    }
}

void Outputs::adopt_log_file(std::string path, std::string worker, UniqueFd fd, LogFileOptions options) {
    // An older image may have spelled the path otherwise (the captures' paths are normalised).
    path = std::filesystem::path(path).lexically_normal().string();
    // The options the current config gives the path, as for a file opened now.
    if (auto it = configured_logs_.find(path); it != configured_logs_.end()) {
        options = it->second.options;
        worker = it->second.worker;
    }
    auto file = LogFile::adopt(loop_, path, std::move(fd), options);
    spdlog::debug("log file {}: carried across the upgrade ({} bytes, fd {})", path, file->size(), file->fd());
    // Held by the captures adopted next; kept until resume() even if none does.
    adopted_logs_.push_back(file);
    log_files_[std::move(path)] = LogEntry{std::move(file), std::move(worker), false};
}

void Outputs::resume() {
    for (auto& file : adopted_logs_) file->tidy();
    adopted_logs_.clear();
}

Result<UniqueFd> Outputs::open_target(const config::OutputTarget& target, const char* what) {
    switch (target.kind) {
        case config::OutputKind::inherit: {
            int source = std::strcmp(what, "stdout") == 0 ? 1 : 2;
            UniqueFd copy(::fcntl(source, F_DUPFD_CLOEXEC, 3));
            if (!copy) return fail_errno(std::string("dup ") + what);
            return copy;
        }
        case config::OutputKind::null:  // the caller's null_fd itself (open())
            break;
        case config::OutputKind::file: {
            auto fd = open_output_file(target.path);
            if (!fd)
                return fail(fd.error().message + " " + what + " file " + target.path + ": " +
                            open_failure_reason(fd.error().err));
            return fd;
        }
        case config::OutputKind::log:
        case config::OutputKind::rotate:
        case config::OutputKind::journal:
            break;
    }
    return fail("open_target: not a file target");
}

Result<EpollSet*> Outputs::pipe_set() {
    return EpollSet::open_once(pipes_, loop_, "output pipes", [this](uint64_t key, uint32_t) { on_pipe_ready(key); });
}

void Outputs::on_pipe_ready(uint64_t key) {
    // A capture closes (and leaves the set) before its entry goes: a key is always found.
    if (auto it = captures_.find(key); it != captures_.end()) it->second.capture->on_ready();
}

OutputCapture* Outputs::add(UniqueFd read_end, StreamOrigin origin, config::OutputTarget target,
                            std::shared_ptr<LogFile> file, uint64_t restored_key) {
    std::string label = origin.label();
    auto pipes = pipe_set();
    if (!pipes) {
        spdlog::error("{}: {}; this output is lost", label, pipes.error().text());
        return nullptr;
    }
    auto keep_line = [this, worker = origin.worker, index = origin.index, from_stderr = origin.from_stderr](
                         OutputCapture::Time time, std::string_view line) {
        book_.add(LogLine{time, worker, index, from_stderr, std::string(line), 0});
    };
    uint64_t key = restored_key != 0 ? restored_key : next_key_++;
    auto capture = std::make_unique<OutputCapture>(**pipes, key, std::move(read_end), make_sink(target, origin, std::move(file)),
                                                   std::move(keep_line),
                                                   [this](OutputCapture* done) { captures_.erase(done->key()); },
                                                   restored_key != 0);
    if (!capture->ok()) {
        spdlog::error("{}: cannot watch the output pipe; this output is lost", label);
        return nullptr;
    }
    OutputCapture* added = capture.get();
    captures_.emplace(key, Capture{std::move(capture), std::move(origin), std::move(target)});
    return added;
}

void Outputs::process_gone(pid_t pid) {
    for (auto& [key, entry] : captures_)
        if (entry.origin.pid == pid) entry.capture->sink().process_gone();
}

void Outputs::processes_gone_unless(const std::function<bool(pid_t)>& running) {
    for (auto& [key, entry] : captures_)
        if (!running(entry.origin.pid)) entry.capture->sink().process_gone();
}

void Outputs::drain_all() {
    for (auto& [key, entry] : captures_) entry.capture->drain_now();
    captures_.clear();
}

Result<void> Outputs::adopt(int pipes_fd, uint64_t next_key, size_t capture_count) {
    next_key_ = next_key;
    captures_.reserve(capture_count);
    if (pipes_fd < 0) return {};
    auto adopted = EpollSet::adopt(loop_, pipes_fd, "output pipes", [this](uint64_t key, uint32_t) { on_pipe_ready(key); });
    if (!adopted) return std::unexpected(adopted.error());
    pipes_ = std::move(*adopted);
    return {};
}

void Outputs::adopt_capture(uint64_t key, UniqueFd read_end, StreamOrigin origin, config::OutputTarget target,
                            std::string partial) {
    std::shared_ptr<LogFile> file;
    if (target.kind == config::OutputKind::rotate) {
        std::string path = log_path(target, origin.worker, origin.index);
        auto it = log_files_.find(path);
        if (it != log_files_.end()) file = it->second.file.lock();
        if (!file) {
            // Not in the state (the previous image had no file open for it): opened again,
            // and tidied (with its worker's options: Supervisor::resume retunes them first)
            // only once the upgrade cannot roll back, as a carried file is.
            auto opened = LogFile::open(loop_, path, LogFileOptions{}, false);
            if (opened) {
                file = std::move(*opened);
                adopted_logs_.push_back(file);
                log_files_[path] = LogEntry{file, origin.worker};
            } else {
                spdlog::error("{}: {}; its lines go to fdsupd's log", origin.label(), opened.error().text());
            }
        }
    }
    OutputCapture* added = add(std::move(read_end), std::move(origin), std::move(target), std::move(file), key);
    if (added != nullptr) added->set_partial(std::move(partial));
}

}  // namespace fdsup
