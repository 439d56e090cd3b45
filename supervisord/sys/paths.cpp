#include "sys/paths.h"

#include <sys/stat.h>
#include <unistd.h>

#include <utility>

namespace fdsup {

Result<void> make_directories(const std::string& dir, std::vector<std::string>* created) {
    if (dir.empty()) return {};
    std::string path;
    size_t pos = 0;
    while (pos != std::string::npos) {
        pos = dir.find('/', pos + 1);
        path = dir.substr(0, pos);
        if (path.empty()) continue;
        if (::mkdir(path.c_str(), 0755) < 0) {
            if (errno == EEXIST) continue;
            return fail_errno("mkdir " + path);
        }
        if (created != nullptr) created->push_back(path);
        if (::chmod(path.c_str(), 0755) < 0) return fail_errno("chmod 0755 " + path);  // past the umask
    }
    return {};
}

void remove_directories(const std::vector<std::string>& dirs) {
    for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) ::rmdir(it->c_str());
}

std::string absolute_path(const std::string& path) {
    if (path.empty() || path[0] == '/') return path;
    char cwd[4096];
    if (::getcwd(cwd, sizeof cwd) == nullptr) return path;
    return std::string(cwd) + "/" + path;
}

std::string directory_of(const std::string& path) {
    auto slash = path.find_last_of('/');
    if (slash == std::string::npos) return "";
    return slash == 0 ? "/" : path.substr(0, slash);
}

OwnedPath::OwnedPath(std::string path) : path_(std::move(path)) {
    struct stat st{};
    if (::lstat(path_.c_str(), &st) == 0) {
        dev_ = st.st_dev;
        ino_ = st.st_ino;
        known_ = true;
    }
}

OwnedPath::OwnedPath(OwnedPath&& other) noexcept
    : path_(std::move(other.path_)), dev_(other.dev_), ino_(other.ino_), known_(std::exchange(other.known_, false)) {}

OwnedPath& OwnedPath::operator=(OwnedPath&& other) noexcept {
    if (this != &other) {
        remove_if_ours();
        path_ = std::move(other.path_);
        dev_ = other.dev_;
        ino_ = other.ino_;
        known_ = std::exchange(other.known_, false);
    }
    return *this;
}

OwnedPath::~OwnedPath() { remove_if_ours(); }

void OwnedPath::remove_if_ours() {
    if (!known_) return;
    known_ = false;
    struct stat st{};
    if (::lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_) ::unlink(path_.c_str());
}

}  // namespace fdsup
