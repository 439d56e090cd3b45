#include "upgrade/state_file.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <vector>

#include "json/json_reader.h"
#include "state/restore_timings.h"

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

Result<ReadJson> read_state_file(int fd) {
    // Read in one piece into a string of the file's size (megabytes at 10,000 instances:
    // no growing and copying in steps); a file that is longer than it said is read on.
    struct stat st{};
    size_t size = ::fstat(fd, &st) == 0 && st.st_size > 0 ? static_cast<size_t>(st.st_size) : 0;
    std::string text;
    text.reserve(size + 65536);  // room for the read that finds the end
    text.resize(size);
    size_t length = 0;
    for (;;) {
        if (length == text.size()) text.resize(text.size() + 65536);
        ssize_t n = ::pread(fd, text.data() + length, text.size() - length, static_cast<off_t>(length));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fail_errno("reading the upgrade state from fd " + std::to_string(fd));
        if (n == 0) break;
        length += static_cast<size_t>(n);
    }
    text.resize(length);
    state::restore_timings().lap("read");
    auto state = read_json(text);
    state::restore_timings().lap("parse");
    if (!state || !state->document.is_object()) return fail("the upgrade state is not a JSON object");
    return std::move(*state);
}

}  // namespace fdsup::upgrade
