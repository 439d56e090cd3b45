// The control commands: one request (control/protocol.h) -> the supervisor -> replies.
#pragma once

#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>

#include "control/control_server.h"
#include "control/metrics.h"
#include "supervisor/supervisor.h"

namespace fdsup::control {

struct CommandContext {
    Supervisor& supervisor;
    // Starts the supervisor's shutdown; `on_stopped` runs once every worker has stopped,
    // just before fdsupd exits.
    std::function<void(std::function<void()> on_stopped)> shutdown;
    // Starts an in-place upgrade from `binary` (default: fdsupd's own path); the final
    // reply may come from the next image.
    std::function<void(std::optional<std::string> binary, Responder responder)> upgrade;
    // sd_notify datagrams dropped so far (the notify handler's count).
    std::function<uint64_t()> notify_dropped;
    // A control client's credentials (SO_PEERCRED); nullopt once it is gone. `adopt`
    // holds the caller to ptrace's rule with them (sockets/take_over.h).
    std::function<std::optional<ucred>(uint64_t client)> client_credentials;
    // Requests served, by command (for the metrics).
    RequestCounts requests;
};

void handle_request(CommandContext& context, const Json& request, const Responder& responder);

}  // namespace fdsup::control
