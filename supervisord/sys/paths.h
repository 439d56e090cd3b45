// Small filesystem helpers for the supervisor's own socket files.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "sys/result.h"

namespace fdsup {

// mkdir -p; what it creates gets mode 0755 whatever the umask (workers of other users
// must reach the notify and fd sockets that live in the runtime directory, and the unix
// sockets of [sockets.NAME]). `created`, if given, gets each directory it made, parents
// first (for remove_directories when what they were made for fails).
Result<void> make_directories(const std::string& dir, std::vector<std::string>* created = nullptr);

// rmdir of each of `dirs` in reverse order, as far as each is empty; errors are ignored.
void remove_directories(const std::vector<std::string>& dirs);

// `path` made absolute against the current directory (unchanged if it already is).
std::string absolute_path(const std::string& path);

// "/run/fdsup" for "/run/fdsup/control.sock"; "/" for "/x"; "" for "x".
std::string directory_of(const std::string& path);

// Remembers which file sits at a path now, so that at exit it is removed only if it is
// still the same file (another fdsupd may have replaced it meanwhile).
class OwnedPath {
public:
    OwnedPath() = default;
    explicit OwnedPath(std::string path);
    OwnedPath(OwnedPath&& other) noexcept;
    OwnedPath& operator=(OwnedPath&& other) noexcept;
    OwnedPath(const OwnedPath&) = delete;
    OwnedPath& operator=(const OwnedPath&) = delete;
    ~OwnedPath();  // unlinks the file if it is still ours

    const std::string& path() const { return path_; }

private:
    void remove_if_ours();
    std::string path_;
    dev_t dev_ = 0;
    ino_t ino_ = 0;
    bool known_ = false;
};

}  // namespace fdsup
