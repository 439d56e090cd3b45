// The check of `tcp = "HOST:PORT"` (or a unix socket): passes once a connect()
// completes; the socket is closed at once, without a byte sent.
#pragma once

#include <uv.h>

#include <chrono>
#include <memory>

#include "config/listen_address.h"
#include "health/probe_check.h"

namespace fdsup::health {

// Details: "connect 127.0.0.1:9000: connected", "connect 127.0.0.1:9000: Connection
// refused", "connect unix:/run/app.sock: listen backlog full: Resource temporarily
// unavailable", "connect 127.0.0.1:9000: timed out after 1.0s".
std::unique_ptr<ProbeCheck> start_connect_check(uv_loop_t* loop, const ListenAddress& address,
                                                std::chrono::milliseconds timeout, ProbeDone done);

}  // namespace fdsup::health
