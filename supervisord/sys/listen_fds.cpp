#include "sys/listen_fds.h"

#include <fcntl.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>

#include "sys/env_number.h"

namespace fdsup {
namespace {

constexpr int kFirstListenFd = 3;  // SD_LISTEN_FDS_START

std::vector<std::string> split_names(const char* text) {
    std::vector<std::string> names;
    if (text == nullptr) return names;
    std::string all = text;
    size_t start = 0;
    for (;;) {
        size_t colon = all.find(':', start);
        names.push_back(all.substr(start, colon - start));
        if (colon == std::string::npos) break;
        start = colon + 1;
    }
    return names;
}

}  // namespace

std::vector<ListenFd> take_listen_fds() {
    auto pid = env_number("LISTEN_PID");
    auto count = env_number("LISTEN_FDS");
    std::vector<std::string> names = split_names(std::getenv("LISTEN_FDNAMES"));
    ::unsetenv("LISTEN_PID");
    ::unsetenv("LISTEN_FDS");
    ::unsetenv("LISTEN_FDNAMES");
    std::vector<ListenFd> fds;
    // sd_listen_fds' bound: fd numbers must stay ints.
    if (!pid || *pid != static_cast<unsigned long long>(::getpid()) || !count || *count > INT_MAX - kFirstListenFd)
        return fds;
    if (names.size() != *count) names.assign(*count, "unknown");
    for (unsigned long long i = 0; i < *count; ++i) {
        int fd = kFirstListenFd + static_cast<int>(i);
        if (::fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) continue;  // not open after all
        fds.push_back({UniqueFd(fd), names[i]});
    }
    return fds;
}

}  // namespace fdsup
