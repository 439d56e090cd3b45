// Sockets fdsupd itself was given by a service manager (socket activation): the
// LISTEN_FDS protocol read as sd_listen_fds_with_names() reads it. LISTEN_PID must be
// our pid (the variables may have been meant for a parent); the fds are 3, 4, ...,
// named by LISTEN_FDNAMES ("unknown" when it does not name them all).
#pragma once

#include <string>
#include <vector>

#include "sys/unique_fd.h"

namespace fdsup {

struct ListenFd {
    UniqueFd fd;  // close-on-exec from here on
    std::string name;
};

// Takes the passed fds and unsets the three variables: neither an upgrade's next image
// nor anything fdsupd starts may take them again.
std::vector<ListenFd> take_listen_fds();

}  // namespace fdsup
