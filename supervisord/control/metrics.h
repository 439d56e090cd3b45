// The Prometheus text exposition (format 0.0.4) of the supervisor: served over HTTP at
// [supervisor] metrics_listen (control/metrics_server.h) and printed by
// `fdsupctl metrics`. Per instance: state, readiness, restarts, last exit, uptime, fd
// store size; per supervisor: spawn latency histogram, upgrades, reloads, control
// requests, dropped notify datagrams.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "supervisor/supervisor.h"

namespace fdsup::control {

// Control requests served, by command ("unknown" for the rest).
using RequestCounts = std::map<std::string, uint64_t>;

// `notify_dropped`: sd_notify datagrams the notify handler dropped.
std::string metrics_text(const Supervisor& supervisor, const RequestCounts& requests, uint64_t notify_dropped);

// For GET /readyz: what keeps fdsupd from being ready, one line each ("web[1]: starting",
// "db: waiting for cache"); empty once every instance of every worker meant to run is
// ready. Workers an operator stopped are not meant to run.
std::vector<std::string> not_ready(const Supervisor& supervisor);

}  // namespace fdsup::control
