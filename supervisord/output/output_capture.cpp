#include "output/output_capture.h"

#include <sys/epoll.h>
#include <unistd.h>

#include <array>
#include <cerrno>

namespace fdsup {

OutputCapture::OutputCapture(EpollSet& pipes, uint64_t key, UniqueFd read_end, std::unique_ptr<LineSink> sink,
                             std::function<void(Time, std::string_view)> on_line,
                             std::function<void(OutputCapture*)> on_closed, bool registered)
    : pipes_(pipes), key_(key), fd_(std::move(read_end)), sink_(std::move(sink)), on_line_(std::move(on_line)),
      on_closed_(std::move(on_closed)) {
    // Level-triggered: what one wakeup leaves in the pipe is reported again.
    watching_ = registered || pipes_.add(fd_.get(), EPOLLIN | EPOLLRDHUP, key_) == 0;
}

OutputCapture::~OutputCapture() { unwatch(); }

void OutputCapture::unwatch() {
    // Before the fd closes (a registration outlives its fd number otherwise).
    if (watching_) pipes_.remove(fd_.get());
    watching_ = false;
}

void OutputCapture::on_ready() {
    if (watching_ && read_once() == ReadResult::closed) close();
}

OutputCapture::ReadResult OutputCapture::read_once() {
    static std::array<char, kReadChunk> buffer;  // one loop thread: one shared buffer
    ssize_t n = ::read(fd_.get(), buffer.data(), buffer.size());
    if (n < 0) return errno == EAGAIN || errno == EINTR ? ReadResult::empty : ReadResult::closed;
    if (n == 0) return ReadResult::closed;
    Time now = std::chrono::system_clock::now();
    std::string_view data(buffer.data(), static_cast<size_t>(n));
    while (!data.empty()) {
        size_t newline = data.find('\n');
        std::string_view segment = data.substr(0, newline);  // up to the newline, or all
        // Whatever the line's length so far, no more than kMaxLine is ever held: full
        // chunks go out as they fill.
        while (partial_.size() + segment.size() > kMaxLine) {
            size_t room = kMaxLine - partial_.size();
            partial_.append(segment.substr(0, room));
            emit(now, partial_);
            partial_.clear();
            segment.remove_prefix(room);
        }
        if (newline == std::string_view::npos) {
            partial_.append(segment);
            break;
        }
        if (partial_.empty()) {
            emit(now, segment);
        } else {
            partial_.append(segment);
            emit(now, partial_);
            partial_.clear();
        }
        data.remove_prefix(newline + 1);
    }
    sink_->flush();
    return ReadResult::data;
}

void OutputCapture::emit(Time time, std::string_view line) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    sink_->write_line(time, line);
    if (on_line_) on_line_(time, line);
}

void OutputCapture::emit_partial() {
    if (partial_.empty()) return;
    emit(std::chrono::system_clock::now(), partial_);
    partial_.clear();
    sink_->flush();
}

void OutputCapture::drain_now() {
    // Bounded: a writer still going strong cannot hold up shutdown.
    for (int i = 0; i < 64 && read_once() == ReadResult::data; ++i) {
    }
    emit_partial();
}

void OutputCapture::close() {
    emit_partial();
    unwatch();
    auto on_closed = std::move(on_closed_);
    if (on_closed) on_closed(this);  // may destroy *this: nothing after it
}

}  // namespace fdsup
