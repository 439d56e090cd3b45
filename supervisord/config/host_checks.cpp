#include "config/host_checks.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "sys/users.h"

namespace fdsup::config {

std::vector<std::string> check_host(const Config& config) {
    std::vector<std::string> warnings;
    auto warn = [&](const WorkerConfig& worker, const std::string& what) {
        warnings.push_back("warning: worker " + worker.name + ": " + what + " (every start would fail)");
    };
    for (const auto& worker : config.workers) {
        // Lookup trouble (NSS down) is not the configuration's fault: only "unknown" counts.
        if (worker.user)
            if (auto user = find_user(*worker.user); !user && user.error().permanent) warn(worker, user.error().text());
        if (worker.group)
            if (auto group = find_group(*worker.group); !group && group.error().permanent) warn(worker, group.error().text());
        if (!worker.command.empty() && worker.command.front().starts_with("/")) {
            const std::string& program = worker.command.front();
            struct stat st{};
            if (::stat(program.c_str(), &st) != 0)
                warn(worker, program + ": " + std::strerror(errno));
            else if (!S_ISREG(st.st_mode) || (st.st_mode & 0111) == 0)
                warn(worker, program + ": not an executable file");
        }
        if (!worker.working_dir.empty()) {
            struct stat st{};
            if (::stat(worker.working_dir.c_str(), &st) != 0)
                warn(worker, "working_dir " + worker.working_dir + ": " + std::strerror(errno));
            else if (!S_ISDIR(st.st_mode))
                warn(worker, "working_dir " + worker.working_dir + ": not a directory");
        }
    }
    return warnings;
}

}  // namespace fdsup::config
