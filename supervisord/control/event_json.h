// An event (events/event_log.h) as it goes on the wire: EVENT in control/protocol.h.
#pragma once

#include "control/protocol.h"
#include "events/event_log.h"

namespace fdsup::control {

// {"seq": 42, "time": 1763900000.123, "worker": "web" | null, "instance": 0 | null,
//  "pid": 1250 | null, "event": "exited", ...its own fields}
Json event_json(const Event& event);

}  // namespace fdsup::control
