#include "sys/users.h"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <limits>
#include <vector>

namespace fdsup {
namespace {

constexpr unsigned long kMaxId = std::numeric_limits<uid_t>::max() - 1;  // -1 means "unchanged"

std::optional<unsigned long> parse_id(const std::string& text) {
    if (text.empty()) return std::nullopt;
    for (char c : text)
        if (c < '0' || c > '9') return std::nullopt;
    unsigned long value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
    return value;
}

// Runs a get*_r lookup with a buffer that grows on ERANGE, and hands the found entry
// (still pointing into the buffer) to `copy` before the buffer goes away.
template <class Entry, class Lookup, class Copy>
Result<bool> lookup(Lookup call, int size_hint, const std::string& what, Copy copy) {
    long hint = sysconf(size_hint);
    std::vector<char> buffer(hint > 0 ? static_cast<size_t>(hint) : 16384);
    for (;;) {
        Entry entry{};
        Entry* found = nullptr;
        int rc = call(&entry, buffer.data(), buffer.size(), &found);
        if (rc == ERANGE && buffer.size() < (1u << 20)) {
            buffer.resize(buffer.size() * 2);
            continue;
        }
        if (rc != 0 && rc != ENOENT && rc != ESRCH) return fail(what, rc);
        if (found == nullptr) return false;
        copy(*found);
        return true;
    }
}

// A name no database knows, or an id out of range: asking again gives the same answer.
std::unexpected<Error> no_such(std::string message) {
    return std::unexpected<Error>(Error{std::move(message), 0, true});
}

}  // namespace

Result<UserEntry> find_user(const std::string& name_or_id) {
    UserEntry user;
    auto copy = [&](const passwd& pw) {
        user = UserEntry{pw.pw_uid, pw.pw_gid, true, pw.pw_name, pw.pw_dir, pw.pw_shell};
    };
    auto id = parse_id(name_or_id);
    if (id && *id > kMaxId) return no_such("user id " + name_or_id + " out of range");
    auto found = id ? lookup<passwd>([&](passwd* pw, char* buf, size_t len, passwd** out) {
                          return getpwuid_r(static_cast<uid_t>(*id), pw, buf, len, out);
                      }, _SC_GETPW_R_SIZE_MAX, "look up user " + name_or_id, copy)
                    : lookup<passwd>([&](passwd* pw, char* buf, size_t len, passwd** out) {
                          return getpwnam_r(name_or_id.c_str(), pw, buf, len, out);
                      }, _SC_GETPW_R_SIZE_MAX, "look up user \"" + name_or_id + "\"", copy);
    if (!found) return std::unexpected(found.error());
    if (*found) return user;
    if (id) return UserEntry{static_cast<uid_t>(*id), 0, false, {}, {}, {}};
    return no_such("unknown user \"" + name_or_id + "\"");
}

Result<gid_t> find_group(const std::string& name_or_id) {
    if (auto id = parse_id(name_or_id)) {
        if (*id > kMaxId) return no_such("group id " + name_or_id + " out of range");
        return static_cast<gid_t>(*id);
    }
    gid_t gid = 0;
    auto found = lookup<group>([&](group* gr, char* buf, size_t len, group** out) {
        return getgrnam_r(name_or_id.c_str(), gr, buf, len, out);
    }, _SC_GETGR_R_SIZE_MAX, "look up group \"" + name_or_id + "\"", [&](const group& gr) { gid = gr.gr_gid; });
    if (!found) return std::unexpected(found.error());
    if (!*found) return no_such("unknown group \"" + name_or_id + "\"");
    return gid;
}

}  // namespace fdsup
