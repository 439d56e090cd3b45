// User and group lookups (getpwnam_r/getgrnam_r and friends), by name or numeric id,
// with copies of the strings (never pointers into a lookup buffer).
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "sys/result.h"

namespace fdsup {

struct UserEntry {
    uid_t uid = 0;
    gid_t gid = 0;             // primary group; meaningful only with has_passwd_entry
    bool has_passwd_entry = false;
    std::string name, home, shell;
};

// `name_or_id` is a user name or a decimal uid. A numeric uid is a user even without a
// passwd entry (has_passwd_entry = false), as chown(1) has it. Errors: `unknown user "x"`
// and an out-of-range id (both `permanent`), or a failed lookup (NSS trouble, with its
// errno; not permanent).
Result<UserEntry> find_user(const std::string& name_or_id);

// `name_or_id` is a group name or a decimal gid; errors as find_user's.
Result<gid_t> find_group(const std::string& name_or_id);

// `prefix` + the error's message, keeping its errno: "socket app: chown /run/app.sock: unknown user \"x\"".
inline std::unexpected<Error> fail_with_prefix(const std::string& prefix, const Error& error) {
    return std::unexpected<Error>(Error{prefix + error.message, error.err, error.permanent});
}

}  // namespace fdsup
