#include "upgrade/state_file.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <vector>

namespace fdsup::upgrade {

Result<UniqueFd> write_state_file(std::string_view text) {
    UniqueFd fd(::memfd_create("fdsupd-state", MFD_CLOEXEC));
    if (!fd) return fail_errno("upgrade: memfd_create");
    size_t written = 0;
    while (written < text.size()) {
        ssize_t n = ::pwrite(fd.get(), text.data() + written, text.size() - written, static_cast<off_t>(written));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return fail_errno("upgrade: writing the state");
        written += static_cast<size_t>(n);
    }
    return fd;
}

Result<nlohmann::json> read_state_file(int fd) {
    std::string text;
    char buffer[65536];
    for (off_t offset = 0;;) {
        ssize_t n = ::pread(fd, buffer, sizeof buffer, offset);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fail_errno("reading the upgrade state from fd " + std::to_string(fd));
        if (n == 0) break;
        text.append(buffer, static_cast<size_t>(n));
        offset += n;
    }
    auto state = nlohmann::json::parse(text, nullptr, false);
    if (state.is_discarded() || !state.is_object()) return fail("the upgrade state is not a JSON object");
    return state;
}

}  // namespace fdsup::upgrade
