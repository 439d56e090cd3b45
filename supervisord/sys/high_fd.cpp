#include "sys/high_fd.h"

#include <fcntl.h>
#include <sys/resource.h>

#include <algorithm>

namespace fdsup {

int high_fd_base() {
    static const int base = [] {
        struct rlimit nofile{};
        if (::getrlimit(RLIMIT_NOFILE, &nofile) != 0) return 0;
        rlim_t half = nofile.rlim_cur == RLIM_INFINITY ? rlim_t{1} << 20 : nofile.rlim_cur / 2;
        return half < 256 ? 0 : static_cast<int>(std::min<rlim_t>(half, 65536));
    }();
    return base;
}

void move_fd_high(UniqueFd& fd, int base) {
    if (!fd || base <= 0 || fd.get() >= base) return;
    int high = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, base);
    if (high >= 0) fd.reset(high);
}

}  // namespace fdsup
