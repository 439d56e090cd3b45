// fdsupctl's exit statuses (SPEC "fdsupctl").
#pragma once

namespace fdsup::ctl {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;       // fdsupd refused, or the operation failed
inline constexpr int kExitUsage = 2;
inline constexpr int kExitUnreachable = 3;  // cannot reach fdsupd, or it went away before it answered

}  // namespace fdsup::ctl
