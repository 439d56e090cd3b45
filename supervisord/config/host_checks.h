// What `fdsupd --check-config` can also tell about the machine it runs on: things that
// would make every start of a worker fail, which the file alone cannot show. Warnings,
// not errors: a configuration may be checked on another machine than the one it runs on.
#pragma once

#include <string>
#include <vector>

#include "config/model.h"

namespace fdsup::config {

// "warning: worker web: unknown user \"nouser\" (every start would fail)", one per problem:
// a `user` or `group` that does not exist, an absolute command[0] that is missing or not
// executable, a `working_dir` that is not a directory. (A bare command name is searched
// in PATH as the worker's user when it starts, so it is not checked here.)
std::vector<std::string> check_host(const Config& config);

}  // namespace fdsup::config
