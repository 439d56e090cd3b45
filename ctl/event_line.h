// `fdsupctl events` without --json: one readable line per EVENT (control/protocol.h).
#pragma once

#include <string>

#include "control/protocol.h"

namespace fdsup::ctl {

using control::Json;

// "2026-11-23 10:00:00.123 web[0] pid 1250 exited: status=- signal=9 reason=crash ran=1.25\n";
// fdsupd's own events say "fdsupd" where the worker goes. Fields: as they came, null
// ones left out, lists joined with ",".
std::string render_event(const Json& event);
// The events of an `events` reply, one line each.
std::string render_events(const Json& reply);

}  // namespace fdsup::ctl
