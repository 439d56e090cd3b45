// The supervisor's own unix sockets (control, notify, fd socket): created in a
// directory made if needed, never over a socket another process still serves (a
// stale file from a dead one is replaced), non-blocking and close-on-exec.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "sys/result.h"
#include "sys/unique_fd.h"

namespace fdsup {

struct ServiceSocketSpec {
    std::string what;                 // "control socket /run/fdsup/control.sock", for messages
    std::string path;                 // absolute or relative filesystem path
    bool datagram = false;            // SOCK_DGRAM instead of SOCK_STREAM (listening, backlog 128)
    mode_t mode = 0600;
    std::optional<std::string> group; // chgrp to this group
    // An in-place upgrade hands the socket over: adopted (checked to be a unix socket
    // bound to `path`), not bound again.
    int inherited_fd = -1;
};

Result<UniqueFd> open_service_socket(const ServiceSocketSpec& spec);

}  // namespace fdsup
