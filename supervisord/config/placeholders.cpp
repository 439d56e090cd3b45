// {instance}, {name} and {fd:NAME} in a worker's command and probes.
#include "config/placeholders.h"

namespace fdsup::config {

namespace {

// The first (lowest) fd `fds` maps `socket` to, or -1.
int fd_of_socket(const std::map<int, std::string>* fds, const std::string& socket) {
    if (fds == nullptr) return -1;
    for (const auto& [fd, name] : *fds)
        if (name == socket) return fd;
    return -1;
}

// `fds`: the worker's fd -> socket map, or null where only its name is known.
std::string expand(const std::string& arg, const std::string& name, const std::map<int, std::string>* fds,
                   int instance) {
    std::string out;
    size_t i = 0;
    while (i < arg.size()) {
        size_t open = arg.find('{', i);
        if (open == std::string::npos) break;
        size_t close = arg.find('}', open);
        if (close == std::string::npos) break;
        std::string key = arg.substr(open + 1, close - open - 1);
        std::string value;
        bool known = true;
        if (key == "instance") value = std::to_string(instance);
        else if (key == "name") value = name;
        else if (key.rfind("fd:", 0) == 0) value = std::to_string(fd_of_socket(fds, key.substr(3)));
        else known = false;
        out.append(arg, i, open - i);
        if (known) {
            out += value;
            i = close + 1;
        } else {
            out += '{';  // not a placeholder: keep the brace literally and go on after it
            i = open + 1;
        }
    }
    out.append(arg, i, std::string::npos);
    return out;
}

}  // namespace

std::string expand_placeholders(const std::string& arg, const WorkerConfig& worker, int instance) {
    return expand(arg, worker.name, &worker.fds, instance);
}

std::string expand_placeholders(const std::string& arg, const std::string& name, int instance) {
    return expand(arg, name, nullptr, instance);
}

}  // namespace fdsup::config
