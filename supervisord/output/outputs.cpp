#include "output/outputs.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstring>

#include "output/journal_sink.h"
#include "output/log_sink.h"
#include "sys/output_file.h"

namespace fdsup {

Result<Outputs::Streams> Outputs::open(const config::WorkerConfig& worker) {
    Streams streams;
    auto open_stream = [&](const config::OutputTarget& target, UniqueFd& read_end, UniqueFd& write_end,
                           const char* what) -> Result<void> {
        if (!config::is_captured(target.kind)) {
            auto fd = open_target(target, what);
            if (!fd) return std::unexpected(fd.error());
            write_end = std::move(*fd);
            return {};
        }
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) < 0) return fail_errno(std::string("pipe for ") + what);
        read_end.reset(fds[0]);
        write_end.reset(fds[1]);
        if (::fcntl(read_end.get(), F_SETFL, O_NONBLOCK) < 0) return fail_errno(std::string("pipe for ") + what);
        return {};
    };
    if (auto r = open_stream(worker.stdout_target, streams.out_read, streams.out_write, "stdout"); !r)
        return std::unexpected(r.error());
    if (auto r = open_stream(worker.stderr_target, streams.err_read, streams.err_write, "stderr"); !r)
        return std::unexpected(r.error());
    return streams;
}

void Outputs::capture(Streams& streams, const config::WorkerConfig& worker, int index, pid_t pid) {
    if (streams.out_read)
        add(std::move(streams.out_read), StreamOrigin{worker.name, index, pid, false}, worker.stdout_target);
    if (streams.err_read)
        add(std::move(streams.err_read), StreamOrigin{worker.name, index, pid, true}, worker.stderr_target);
}

std::unique_ptr<LineSink> Outputs::make_sink(const config::OutputTarget& target, const StreamOrigin& origin) {
    if (target.kind == config::OutputKind::journal) {
        // An instance starting (or restored by an upgrade) is the moment to look for a
        // journal that was missing.
        if (journal_) journal_->retry_soon();
        else journal_ = std::make_unique<JournalConnection>();
        return std::make_unique<JournalSink>(*journal_, origin);
    }
    return std::make_unique<LogSink>(origin);
}

Result<UniqueFd> Outputs::open_target(const config::OutputTarget& target, const char* what) {
    switch (target.kind) {
        case config::OutputKind::inherit:
        case config::OutputKind::null: {
            int source = target.kind == config::OutputKind::null ? null_fd_ : std::strcmp(what, "stdout") == 0 ? 1 : 2;
            UniqueFd copy(::fcntl(source, F_DUPFD_CLOEXEC, 3));
            if (!copy) return fail_errno(std::string("dup ") + what);
            return copy;
        }
        case config::OutputKind::file: {
            auto fd = open_output_file(target.path);
            if (!fd) {
                std::string named = fd.error().message + " " + what + " file " + target.path;
                if (fd.error().err == ELOOP)  // strerror's "too many levels" misleads here
                    return fail(named + ": " + std::strerror(ELOOP) + " (a symlink on the path)");
                return fail(named, fd.error().err);
            }
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

OutputCapture* Outputs::add(UniqueFd read_end, StreamOrigin origin, config::OutputTarget target, uint64_t restored_key) {
    std::string label = origin.label();
    auto pipes = pipe_set();
    if (!pipes) {
        spdlog::error("{}: {}; this output is lost", label, pipes.error().text());
        return nullptr;
    }
    auto keep_line = [this, worker = origin.worker, index = origin.index, from_stderr = origin.from_stderr](
                         OutputCapture::Time time, std::string_view line) {
        book_.add(LogLine{time, worker, index, from_stderr, std::string(line)});
    };
    uint64_t key = restored_key != 0 ? restored_key : next_key_++;
    auto capture = std::make_unique<OutputCapture>(**pipes, key, std::move(read_end), make_sink(target, origin),
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

void Outputs::drain_all() {
    for (auto& [key, entry] : captures_) entry.capture->drain_now();
    captures_.clear();
}

Result<void> Outputs::adopt(int pipes_fd, uint64_t next_key) {
    next_key_ = next_key;
    if (pipes_fd < 0) return {};
    auto adopted = EpollSet::adopt(loop_, pipes_fd, "output pipes", [this](uint64_t key, uint32_t) { on_pipe_ready(key); });
    if (!adopted) return std::unexpected(adopted.error());
    pipes_ = std::move(*adopted);
    return {};
}

void Outputs::adopt_capture(uint64_t key, UniqueFd read_end, StreamOrigin origin, config::OutputTarget target,
                            std::string partial) {
    OutputCapture* added = add(std::move(read_end), std::move(origin), std::move(target), key);
    if (added != nullptr) added->set_partial(std::move(partial));
}

}  // namespace fdsup
