// The name a stored fd is kept under (FDNAME=, the fd socket's "name"), which goes into
// the next process's LISTEN_FDNAMES.
#pragma once

#include <algorithm>
#include <string_view>

namespace fdsup {

// systemd's rule for fd names (fdname_is_valid, stricter: no spaces): 1-255 printable
// ASCII characters without ':', which separates the names in LISTEN_FDNAMES.
inline bool valid_fd_name(std::string_view name) {
    if (name.empty() || name.size() > 255) return false;
    return std::all_of(name.begin(), name.end(), [](char c) { return c > 0x20 && c < 0x7f && c != ':'; });
}

}  // namespace fdsup
