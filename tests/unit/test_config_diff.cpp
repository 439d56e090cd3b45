// reload's difference between two configs: which sockets and workers are added,
// removed, replaced, updated, changed, scaled or left alone.
#include <doctest/doctest.h>

#include "config/loader.h"
#include "config/diff.h"

using fdsup::config::ConfigDiff;
using fdsup::config::diff_configs;

namespace {

fdsup::config::Config load(const std::string& text) {
    auto loaded = fdsup::config::load_config_string(text, "t.toml");
    for (const auto& e : loaded.errors) MESSAGE(e.text());
    REQUIRE(loaded.config);
    return *loaded.config;
}

using Names = std::vector<std::string>;

// `text` with its one occurrence of `from` replaced by `to`.
std::string edit(std::string text, const std::string& from, const std::string& to) {
    auto at = text.find(from);
    REQUIRE(at != std::string::npos);
    return text.replace(at, from.size(), to);
}

const char* kBase = R"(
[sockets.http]
listen = "tcp://127.0.0.1:8080"
[sockets.admin]
listen = "tcp://127.0.0.1:8081"
[workers.web]
command = ["/bin/web"]
instances = 2
sockets = ["http"]
[workers.db]
command = ["/bin/db"]
[workers.admin]
command = ["/bin/admin"]
fds = { 3 = "admin" }
)";

}  // namespace

TEST_CASE("diff: identical configs change nothing, whatever the layout") {
    auto a = load(kBase);
    auto b = load(std::string("# a comment\n") + kBase);
    ConfigDiff d = diff_configs(a, b);
    CHECK(d.workers_unchanged == Names{"admin", "db", "web"});
    CHECK(d.workers_changed.empty());
    CHECK(d.sockets_added.empty());
    CHECK(d.sockets_replaced.empty());
    CHECK(d.supervisor_keys_changed.empty());
    CHECK(d.errors.empty());
}

TEST_CASE("diff: added, removed, changed env, and instances only is a scale") {
    auto a = load(kBase);
    std::string text = kBase;
    text = edit(text, "[workers.db]\ncommand = [\"/bin/db\"]", "[workers.db]\ncommand = [\"/bin/db\"]\nenv = { X = \"1\" }");
    text = edit(text, "instances = 2", "instances = 5");
    text = edit(text, "[workers.admin]", "[workers.api]");
    ConfigDiff d = diff_configs(a, load(text));
    CHECK(d.workers_added == Names{"api"});
    CHECK(d.workers_removed == Names{"admin"});
    CHECK(d.workers_changed == Names{"db"});
    CHECK(d.workers_scaled == Names{"web"});
    CHECK(d.workers_unchanged.empty());
}

TEST_CASE("diff: a new listen replaces the socket and changes every worker that maps it") {
    auto a = load(kBase);
    std::string text = kBase;
    text = edit(text, "127.0.0.1:8080", "127.0.0.1:9090");
    ConfigDiff d = diff_configs(a, load(text));
    CHECK(d.sockets_replaced == Names{"http"});
    CHECK(d.workers_changed == Names{"web"});
    CHECK(d.workers_unchanged == Names{"admin", "db"});
}

TEST_CASE("diff: options that can change in place update the socket; bind-time ones are refused") {
    auto a = load(kBase);
    std::string text = kBase;
    text = edit(text, "listen = \"tcp://127.0.0.1:8081\"", "listen = \"tcp://127.0.0.1:8081\"\nbacklog = 16\nnodelay = true");
    ConfigDiff d = diff_configs(a, load(text));
    CHECK(d.sockets_updated == Names{"admin"});
    CHECK(d.workers_unchanged == Names{"admin", "db", "web"});  // same fd: nobody restarts
    CHECK(d.errors.empty());

    text = kBase;
    text = edit(text, "listen = \"tcp://127.0.0.1:8080\"", "listen = \"tcp://127.0.0.1:8080\"\nreuse_port = true");
    d = diff_configs(a, load(text));
    REQUIRE(d.errors.size() == 1);
    CHECK(d.errors[0] ==
          "socket http: reuse_port cannot change while listen stays tcp://127.0.0.1:8080 (fixed when the socket "
          "was bound); change listen too, or restart fdsupd");
}

TEST_CASE("diff: sockets added and removed; supervisor keys") {
    auto a = load(kBase);
    std::string text = std::string("[supervisor]\nlog_level = \"debug\"\nlog_format = \"json\"\ncontrol_socket = \"/x/c.sock\"\n") + kBase;
    text = edit(text, "[sockets.admin]", "[sockets.metrics]");
    text = edit(text, "fds = { 3 = \"admin\" }", "fds = { 3 = \"metrics\" }");
    ConfigDiff d = diff_configs(a, load(text));
    CHECK(d.sockets_added == Names{"metrics"});
    CHECK(d.sockets_removed == Names{"admin"});
    CHECK(d.workers_changed == Names{"admin"});
    CHECK(d.supervisor_keys_changed == Names{"control_socket", "runtime_dir", "log_level", "log_format"});
}
