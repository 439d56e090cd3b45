#include "output/journal_sink.h"


#include "config/model.h"
#include "output/journal_entry.h"
#include "sys/foreign_fds.h"

namespace fdsup {

namespace {

// The instance's effective uid and gid, as the kernel would fill in credentials it
// sent itself; none if it is gone already (its pid could not be named anyway).
std::optional<JournalConnection::Credentials> credentials_of(pid_t pid) {
    if (pid <= 0) return std::nullopt;
    auto uids = process_uids(pid);
    auto facts = ptrace_facts(pid);
    if (!uids || !facts) return std::nullopt;
    return JournalConnection::Credentials{pid, (*uids)[1], facts->gids[1]};
}

}  // namespace

JournalSink::JournalSink(JournalConnection& journal, StreamOrigin origin)
    : journal_(journal),
      origin_(std::move(origin)),
      label_(instance_label(origin_.worker, origin_.index) + (origin_.from_stderr ? " stderr" : " stdout")),
      fallback_(origin_) {
    std::string pid = std::to_string(origin_.pid);
    append_journal_field(fields_, "SYSLOG_IDENTIFIER", origin_.worker);
    append_journal_field(fields_, "FDSUP_WORKER", origin_.worker);
    append_journal_field(fields_, "FDSUP_INSTANCE", std::to_string(origin_.index));
    append_journal_field(fields_, "FDSUP_STREAM", origin_.from_stderr ? "stderr" : "stdout");
    append_journal_field(fields_, "FDSUP_PID", pid);
    append_journal_field(object_pid_, "OBJECT_PID", pid);
    // Not worth reading /proc when the kernel has refused credentials already.
    if (!journal_.credentials_refused()) credentials_ = credentials_of(origin_.pid);
}

void JournalSink::write_line(std::chrono::system_clock::time_point time, std::string_view line) {
    auto [priority, message] = parse_line_priority(line, origin_.from_stderr);
    datagram_.clear();
    append_journal_field(datagram_, "MESSAGE", message);
    datagram_.append("PRIORITY=");
    datagram_.push_back(static_cast<char>('0' + priority));
    datagram_.push_back('\n');
    datagram_.append(fields_);
    bool named = credentials_ && !journal_.credentials_refused();
    if (!named) datagram_.append(object_pid_);
    for (;;) {
        switch (journal_.send(datagram_, named ? &*credentials_ : nullptr, label_)) {
            case JournalConnection::Sent::ok:
                return;
            case JournalConnection::Sent::no_such_pid:
            case JournalConnection::Sent::unmapped_credentials:
                credentials_.reset();
                [[fallthrough]];
            case JournalConnection::Sent::refused_credentials:
                // Once, from named to not: the same line again, with the pid as a field.
                named = false;
                datagram_.append(object_pid_);
                continue;
            case JournalConnection::Sent::not_sent:
                fallback_.write_line(time, line);
                return;
        }
    }
}

}  // namespace fdsup
