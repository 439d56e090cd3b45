// fdsupctl exec: fetch sockets from fdsupd's fd socket and exec a command with them
// at the fd numbers asked for.
#pragma once

#include "ctl/arguments.h"

namespace fdsup::ctl {

// Does not return when the exec succeeds; otherwise prints why and returns the exit
// status (1: refused or failed). `sigpipe` is the SIGPIPE disposition fdsupctl was
// started with, restored for the command.
int exec_with_sockets(const ExecPlan& plan, void (*sigpipe)(int));

}  // namespace fdsup::ctl
