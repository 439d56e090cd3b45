#include "launcher/path_search.h"

#include <string_view>
#include <utility>

namespace fdsup {

bool is_bare_command(const std::string& name) { return name.find('/') == std::string::npos; }

std::string search_path_in_envp(const std::vector<char*>& envp) {
    std::string_view search = kDefaultSearchPath;
    for (std::string_view entry : envp)
        if (entry.starts_with("PATH=")) search = entry.substr(5);
    return std::string(search);
}

std::vector<std::string> exec_candidates(const std::string& name, const std::string& search_path) {
    std::vector<std::string> candidates;
    size_t start = 0;
    while (true) {
        size_t end = search_path.find(':', start);
        if (end == std::string::npos) end = search_path.size();
        // Appended piece by piece (GCC 12's -Wrestrict misreads `dir + "/" + name`).
        std::string candidate = end > start ? search_path.substr(start, end - start) : std::string(".");
        if (candidate.back() != '/') candidate.push_back('/');
        candidate.append(name);
        candidates.push_back(std::move(candidate));
        if (end == search_path.size()) break;
        start = end + 1;
    }
    return candidates;
}

}  // namespace fdsup
