// The "rotate:" paths of all workers together: one file fdsupd writes and rotates is
// one set of log_* options (whoever writes it), and never a file a worker writes itself,
// nor one of the names its rotation renames, deletes or compresses through.
#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>
#include <set>

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

// The rotate: file whose rotation owns `path`, if it is one of its names (LogFile::tidy()
// removes what it takes for them): BASE.N, BASE.N.gz (N > 0, no leading zero) and the
// compressions' temporaries .BASE.gz-tmp-* beside it.
std::optional<std::string> rotated_from(const std::string& path) {
    size_t slash = path.rfind('/');
    std::string dir = path.substr(0, slash + 1);
    std::string_view name = std::string_view(path).substr(slash + 1);
    if (size_t temp = name.find(".gz-tmp-"); name.starts_with('.') && temp != std::string_view::npos && temp > 1)
        return dir + std::string(name.substr(1, temp - 1));
    std::string_view rest = name;
    if (rest.ends_with(".gz")) rest.remove_suffix(3);
    size_t dot = rest.rfind('.');
    if (dot == std::string_view::npos || dot == 0) return std::nullopt;
    std::string_view index = rest.substr(dot + 1);
    if (index.empty() || index.front() == '0' || !std::all_of(index.begin(), index.end(), [](char c) {
            return c >= '0' && c <= '9';
        }))
        return std::nullopt;
    return dir + std::string(rest.substr(0, dot));
}

// How an error names another stream: "stdout" (the same worker's) or "worker "a"'s stdout".
std::string writer_text(const ReadWorker* worker, const char* key, const ReadWorker* here) {
    return worker == here ? std::string(key) : "worker " + quote(worker->config.name) + "'s " + key;
}

}  // namespace

// Paths are compared lexically normalised (/l//a.log and /l/./a.log are /l/a.log), with
// {instance} replaced for each configured instance (a worker scaled up later may come to
// share a file: it then writes with the options the config gives the file,
// Outputs::log_file()).
void Loader::check_log_paths(const std::vector<ReadWorker>& workers) {
    struct Writer {
        const ReadWorker* worker;
        const char* key;  // "stdout" | "stderr"
        OutputKind kind;
    };
    std::map<std::string, Writer> first_at;  // path -> its first writer, in file order
    struct Written {
        std::string path;
        const ReadWorker* worker;
        const char* key;
    };
    std::vector<Written> written;  // every stream's paths, for the rotated names' check
    std::set<std::pair<const ReadWorker*, const char*>> failed;  // streams with an error already
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
            std::string path = std::filesystem::path(target.kind == OutputKind::rotate
                                                         ? expand_placeholders(target.path, w, index)
                                                         : target.path)
                                   .lexically_normal()
                                   .string();
            written.push_back(Written{path, rw, key});
            auto [it, added] = first_at.emplace(path, Writer{rw, key, target.kind});
            if (added) continue;
            const Writer& first = it->second;
            std::string other = writer_text(first.worker, first.key, rw);
            if (first.kind != target.kind) {
                error(*node, rw->path + "." + key,
                      quote(path) + " is also " + other + " as \"" + (first.kind == OutputKind::file ? "file:" : "rotate:") +
                          "\": fdsupd would rotate a file a worker writes itself; use one form for both");
                failed.emplace(rw, key);
                break;
            }
            if (target.kind == OutputKind::rotate && !same_log_options(first.worker->config, w)) {
                error(*node, rw->path + "." + key,
                      "rotate file " + quote(path) + " is also " + other + ", with other options (" +
                          options_text(first.worker->config) + "; here " + options_text(w) +
                          "): one file is rotated one way; give both the same log_* options or different paths");
                failed.emplace(rw, key);
                break;
            }
        }
    }
    // Once all rotate: paths are known (the rotating one may come later in the file).
    for (const auto& [path, rw, key] : written) {
        if (failed.contains({rw, key})) continue;  // one error per stream
        auto base = rotated_from(path);
        auto it = base ? first_at.find(*base) : first_at.end();
        if (it == first_at.end() || it->second.kind != OutputKind::rotate) continue;
        error(*rw->table->get(key), rw->path + "." + key,
              quote(path) + " is one of the names " + writer_text(it->second.worker, it->second.key, rw) +
                  "'s rotate file " + quote(*base) +
                  " is rotated through (.N, .N.gz, .NAME.gz-tmp-*): its rotation would rename or delete it; use "
                  "another path");
        failed.emplace(rw, key);
    }
}

}  // namespace fdsup::config
