// The "rotate:" paths of all workers together: one file fdsupd writes and rotates is
// one set of log_* options (whoever writes it), and never a file a worker writes itself.
#include <algorithm>
#include <map>

#include "config/placeholders.h"
#include "config/table_reader.h"
#include "config/values.h"

namespace fdsup::config {

namespace {

std::string options_text(const WorkerConfig& w) {
    return "log_max_size " + (w.log_max_size ? std::to_string(*w.log_max_size) : std::string("infinity")) +
           ", log_keep " + std::to_string(w.log_keep) + ", log_compress " + (w.log_compress ? "true" : "false") +
           ", log_timestamps " + log_timestamps_text(w.log_timestamps);
}

bool same_log_options(const WorkerConfig& a, const WorkerConfig& b) {
    return a.log_max_size == b.log_max_size && a.log_keep == b.log_keep && a.log_compress == b.log_compress &&
           a.log_timestamps == b.log_timestamps;
}

}  // namespace

// Paths are compared with {instance} replaced for each configured instance (a worker
// scaled up later may come to share a file: it then writes with the options the file
// was opened with).
void Loader::check_log_paths(const std::vector<ReadWorker>& workers) {
    struct Writer {
        const ReadWorker* worker;
        const char* key;  // "stdout" | "stderr"
        OutputKind kind;
    };
    std::map<std::string, Writer> first_at;  // path -> its first writer, in file order
    std::vector<std::pair<const ReadWorker*, const char*>> streams;
    for (const auto& rw : workers)
        for (const char* key : {"stdout", "stderr"}) streams.emplace_back(&rw, key);
    auto node_of = [](const ReadWorker& rw, const char* key) { return rw.table->get(key); };
    std::stable_sort(streams.begin(), streams.end(), [&](const auto& a, const auto& b) {
        const toml::node* na = node_of(*a.first, a.second);
        const toml::node* nb = node_of(*b.first, b.second);
        if (!na || !nb) return na != nullptr && nb == nullptr;
        return na->source().begin < nb->source().begin;
    });
    for (const auto& [rw, key] : streams) {
        const toml::node* node = node_of(*rw, key);
        if (node == nullptr) continue;
        const WorkerConfig& w = rw->config;
        const OutputTarget& target = std::string_view(key) == "stdout" ? w.stdout_target : w.stderr_target;
        if (target.kind != OutputKind::rotate && target.kind != OutputKind::file) continue;
        int instances = target.kind == OutputKind::rotate ? std::max(w.instances, 1) : 1;
        for (int index = 0; index < instances; ++index) {
            std::string path = target.kind == OutputKind::rotate ? expand_placeholders(target.path, w, index) : target.path;
            auto [it, added] = first_at.emplace(path, Writer{rw, key, target.kind});
            if (added) continue;
            const Writer& first = it->second;
            std::string other = first.worker == rw ? std::string(first.key)
                                                   : "worker " + quote(first.worker->config.name) + "'s " + first.key;
            if (first.kind != target.kind) {
                error(*node, rw->path + "." + key,
                      quote(path) + " is also " + other + " as \"" + (first.kind == OutputKind::file ? "file:" : "rotate:") +
                          "\": fdsupd would rotate a file a worker writes itself; use one form for both");
                break;
            }
            if (target.kind == OutputKind::rotate && !same_log_options(first.worker->config, w)) {
                error(*node, rw->path + "." + key,
                      "rotate file " + quote(path) + " is also " + other + ", with other options (" +
                          options_text(first.worker->config) + "; here " + options_text(w) +
                          "): one file is rotated one way; give both the same log_* options or different paths");
                break;
            }
        }
    }
}

}  // namespace fdsup::config
