// `status`: the supervisor, its sockets and its workers as the JSON reply described in
// SPEC (fdsupctl status --json) and control/protocol.h.
#pragma once

#include <string>
#include <vector>

#include "control/protocol.h"
#include "supervisor/supervisor.h"

namespace fdsup::control {

// Only the named workers when `names` is non-empty; an unknown name is an error. The
// reply is the encoded protocol line (written directly: it grows with the process
// table, and is asked for often).
// `notify_dropped`: sd_notify datagrams the notify handler dropped.
Result<std::string> status_reply(const Supervisor& supervisor, uint64_t notify_dropped,
                                 const std::vector<std::string>& names);

// One instance's outcome in a lifecycle command's reply (INSTANCE in protocol.h).
Json instance_report_json(const InstanceReport& report);

// A captured line (LOGLINE in protocol.h).
Json log_line_json(const LogLine& line);

}  // namespace fdsup::control
