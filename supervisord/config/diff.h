// What a reload changes: the running config against the newly read one. Pure.
//
// Sockets are matched by name. A socket whose `listen` changed is a new socket
// (replaced: bound anew, the old one closed once no process holds it). A socket whose
// other options changed keeps its fd and is updated in place (backlog, TCP_NODELAY,
// SO_KEEPALIVE, buffers, file mode and owner); the options fixed at bind time
// (reuse_port, free_bind, ipv6_only) can only change together with `listen`. `adopt`
// only says how a socket is first had: a change of it alone changes nothing.
//
// Workers are matched by name. A worker is changed when anything in its spec other than
// `instances` differs, or when it maps a replaced socket; a worker whose only change
// is `instances` is scaled, not restarted. Limits and recycling (ResourceLimits,
// RecyclePolicy) are changed live: a worker whose only other change they are is
// "retuned" (and also scaled or unchanged), its running instances keep running. So are
// `start` and `idle_stop` (workers_demand_changed): a worker made on-demand is watched
// if it has no process, else idle_stop applies from now; one made "with-supervisor"
// starts if it is idle. And so are log_max_size, log_keep, log_compress and
// log_timestamps: the open "rotate:" files take them (output/outputs.h).
#pragma once

#include <string>
#include <vector>

#include "config/model.h"

namespace fdsup::config {

struct ConfigDiff {
    std::vector<std::string> sockets_added, sockets_removed, sockets_replaced, sockets_updated;
    std::vector<std::string> workers_added, workers_removed, workers_changed, workers_scaled,
        workers_unchanged;
    std::vector<std::string> workers_retuned;  // limits or recycling changed (and nothing that restarts it)
    // start or idle_stop changed (and nothing that restarts it): applied live.
    std::vector<std::string> workers_demand_changed;
    // [supervisor] keys whose value changed ("log_level", "control_socket", ...).
    std::vector<std::string> supervisor_keys_changed;
    // Changes a running supervisor cannot make; a reload with any is refused.
    std::vector<std::string> errors;
};

ConfigDiff diff_configs(const Config& running, const Config& next);

}  // namespace fdsup::config
