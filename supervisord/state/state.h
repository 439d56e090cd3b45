// The supervisor's state for an in-place upgrade (SPEC "upgrade"): written by the old
// image just before execve, read back by the new one. The document is JSON (its version
// is kStateVersion, checked by the caller); every fd it names is kept open across the
// exec, and the new image adopts it: listening sockets, pidfds, output pipes, cgroup
// events, stored fds, the "rotate:" log files open (appended to on by the next image). It travels as JSON text in a memfd (upgrade/state_file.h); the
// bulk of it, instances and captures, as positional records (state_format.h).
//
// Times are CLOCK_MONOTONIC nanoseconds (steady_clock), which go on across execve, so a
// deadline stays a deadline: a backoff due in 300 ms is still due then.
//
// The event journal of `fdsupctl events` is carried too, numbering on.
// What is not carried: control and fd-socket connections (their clients see the
// connection close; those waiting for an outcome or following logs are told first, and
// pick up again with the next image: control/protocol.h, "Upgrading"), the output ring
// of `fdsupctl logs`, commands waiting for a result, a worker's last finished rollout.
// That is why an upgrade is refused while a command other than a rolling restart is in
// flight (Supervisor::upgrade_refusal): the rollout itself is carried and goes on.
// What the servers around the supervisor carry (their sockets, the notify counter) the
// daemon writes beside this (daemon/daemon.cpp).
#pragma once

#include <nlohmann/json.hpp>

#include <vector>

#include "json/json_writer.h"
#include "supervisor/supervisor.h"
#include "sys/result.h"

namespace fdsup {

// Plain (unordered) JSON: the state is never shown to anyone, and parses about twice
// as fast as the ordered kind.
using StateDocument = nlohmann::json;

namespace state {

// The supervisor's state, written as members of the object `w` is in (the upgrader
// adds its own); every fd it names is added to `keep`.
void write_state(const Supervisor& supervisor, JsonWriter& w, std::vector<int>& keep);

// On a Supervisor built for a restore (no sockets, no instances) from the state's
// config: adopts the sockets, processes, pipes, cgroups, stores and rollouts the state
// names, and re-arms every timer to its deadline. Call before the loop runs; then
// Supervisor::resume() (never start_all(), which would start stopped and exited
// instances). `rolled_back`: the image that wrote the state restores it again (the
// upgrade count stays). Any damage is an error, never a crash; fds the state names
// are owned only once the whole state has been read. `integers_only`: the reader
// found no fractional number in the text (json/json_reader.h), so the document is not
// walked again to look for one (a state holds integers only: any other is damage).
Result<void> restore_state(Supervisor& supervisor, const StateDocument& state, bool rolled_back = false,
                           bool integers_only = false);

}  // namespace state
}  // namespace fdsup
