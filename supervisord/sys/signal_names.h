// Signal names as fdsupd and fdsupctl read and write them ("TERM", "SIGTERM", "15",
// "RTMIN+3"). Shared by both programs (the fdsup_protocol library): what fdsupctl
// accepts is exactly what fdsupd reads.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace fdsup {

// "TERM", "SIGTERM", "15" -> SIGTERM; "RTMIN", "RTMIN+3", "RTMAX-1" within
// SIGRTMIN..SIGRTMAX; numbers 1-64. Upper case only (callers upper-case what users type).
std::optional<int> parse_signal(std::string_view text);

// SIGTERM -> "TERM", SIGRTMIN+3 -> "RTMIN+3" (for messages and requests).
std::string signal_name(int signal);

}  // namespace fdsup
