// The state an in-place upgrade hands from one fdsupd image to the next travels in a
// memfd: the old image writes it, passes its fd number on the new image's command
// line, and the new image reads it (with pread, so that a rollback can read it again).
#pragma once

#include <string>

#include "sys/result.h"
#include "sys/unique_fd.h"

namespace fdsup::upgrade {

Result<UniqueFd> write_state_file(const std::string& text);
Result<std::string> read_state_file(int fd);

}  // namespace fdsup::upgrade
