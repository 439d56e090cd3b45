// stdout/stderr = "journal": each line is one journal entry (journal_entry.h for its
// fields), sent on the shared JournalConnection; when that cannot take it (no journal,
// journald behind) the line goes to fdsupd's log as "log" would write it.
//
// _PID: each datagram's credentials name the instance (and its effective uid and gid,
// read from /proc when the sink is made: a worker's `user`/`group`, or a setuid
// program's), which the kernel allows a root fdsupd (CAP_SYS_ADMIN, CAP_SETUID,
// CAP_SETGID). Without that (EPERM, remembered by the connection for every stream), or
// once the instance is gone and its last lines drain (ESRCH), or when its uid or gid has
// no mapping in fdsupd's user namespace (EINVAL; both remembered by this sink only),
// the datagram carries fdsupd's own credentials and the pid as OBJECT_PID= (which
// journald honours from root) besides FDSUP_PID=, which every entry has.
#pragma once

#include <optional>
#include <string>

#include "output/journal_connection.h"
#include "output/line_sink.h"
#include "output/log_sink.h"

namespace fdsup {

class JournalSink : public LineSink {
public:
    JournalSink(JournalConnection& journal, StreamOrigin origin);
    void write_line(std::chrono::system_clock::time_point time, std::string_view line) override;
    // Reaped: the credentials would name whoever gets the pid next; OBJECT_PID from now.
    void process_gone() override { credentials_.reset(); }

private:
    JournalConnection& journal_;
    StreamOrigin origin_;
    std::string label_;   // "web[2] stdout", for messages
    LogSink fallback_;
    std::string fields_;  // the fields every line of this stream carries
    std::string object_pid_;  // "OBJECT_PID=123\n"
    std::string datagram_;    // reused: one allocation per stream, not per line
    // None once the pid is gone, or if its ids have no mapping in fdsupd's user namespace.
    std::optional<JournalConnection::Credentials> credentials_;
};

}  // namespace fdsup
