// The probe tables of a worker ([workers.NAME.ready_probe], [workers.NAME.liveness_probe])
// and ready = "accepting" | "probe": values, defaults, and every error at its place.
#include <doctest/doctest.h>

#include <string>

#include "config/loader.h"
#include "config/placeholders.h"
#include "config_test_support.h"

using namespace std::chrono_literals;
using namespace config_test;

TEST_CASE("probes: each kind with its defaults, and the ready modes that use them") {
    auto c = valid(R"(
[sockets.s]
listen = "tcp://127.0.0.1:8080"
[workers.web]
command = ["/bin/app"]
instances = 2
ready = "probe"
[workers.web.ready_probe]
http = "http://127.0.0.1:900{instance}/healthz"
[workers.web.liveness_probe]
tcp = "unix:/run/web-{instance}.sock"
interval = "2s"
timeout = "300ms"
failures = 5
[workers.api]
command = ["/bin/api"]
sockets = ["s"]
ready = "accepting"
[workers.api.liveness_probe]
exec = ["/bin/check", "{name}", "{instance}"]
)");
    const auto& api = c.workers[0];
    const auto& web = c.workers[1];
    CHECK(api.ready == ReadyMode::accepting);
    CHECK(!api.ready_probe);
    REQUIRE(api.liveness_probe);
    CHECK(api.liveness_probe->kind == ProbeKind::exec);
    CHECK(api.liveness_probe->command == std::vector<std::string>{"/bin/check", "{name}", "{instance}"});
    CHECK(api.liveness_probe->interval == 10s);  // liveness default
    CHECK(api.liveness_probe->timeout == 1s);
    CHECK(api.liveness_probe->failures == 3);
    CHECK(web.ready == ReadyMode::probe);
    REQUIRE(web.ready_probe);
    CHECK(web.ready_probe->kind == ProbeKind::http);
    CHECK(web.ready_probe->target == "http://127.0.0.1:900{instance}/healthz");
    CHECK(web.ready_probe->interval == 100ms);  // ready default: the start is what waits
    REQUIRE(web.liveness_probe);
    CHECK(web.liveness_probe->kind == ProbeKind::tcp);
    CHECK(web.liveness_probe->interval == 2s);
    CHECK(web.liveness_probe->timeout == 300ms);
    CHECK(web.liveness_probe->failures == 5);
    CHECK(expand_placeholders(web.ready_probe->target, web, 1) == "http://127.0.0.1:9001/healthz");
}

TEST_CASE("probes: a changed probe is a changed worker") {
    auto a = valid("[workers.w]\ncommand = [\"/x\"]\n[workers.w.liveness_probe]\ntcp = \"127.0.0.1:1\"\n");
    auto b = valid("[workers.w]\ncommand = [\"/x\"]\n[workers.w.liveness_probe]\ntcp = \"127.0.0.1:2\"\n");
    CHECK(!(a.workers[0] == b.workers[0]));
}

TEST_CASE("probes: errors, each at its place") {
    CHECK(one_error(R"(
[workers.web]
command = ["/bin/app"]
ready = "probe"
)") == "t.toml:3:9: workers.web.ready: \"probe\" needs a [workers.web.ready_probe] table");
    CHECK(one_error(R"(
[workers.web]
command = ["/bin/app"]
[workers.web.ready_probe]
tcp = "127.0.0.1:9000"
)") == "t.toml:3:1: workers.web.ready_probe: is used only with ready = \"probe\"");
    CHECK(one_error(R"(
[workers.web]
command = ["/bin/app"]
[workers.web.liveness_probe]
interval = "1s"
)") == "t.toml:3:1: workers.web.liveness_probe: needs one of http = \"http://HOST:PORT/PATH\", tcp = "
           "\"HOST:PORT\" or exec = [\"program\", ...]");
    CHECK(one_error(R"(
[workers.web]
command = ["/bin/app"]
[workers.web.liveness_probe]
tcp = "127.0.0.1:9000"
exec = ["/bin/true"]
)") == "t.toml:5:8: workers.web.liveness_probe.exec: a probe has exactly one of http, tcp and exec");
    CHECK(one_error(R"(
[workers.web]
command = ["/bin/app"]
ready = "probe"
[workers.web.ready_probe]
tcp = "127.0.0.1:9000"
failures = 2
)") == "t.toml:6:12: workers.web.ready_probe.failures: is for liveness_probe only (a ready probe makes the "
           "instance ready at its first pass; ready_timeout bounds how long it may fail)");
    CHECK(one_error(R"(
[workers.web]
command = ["/bin/app"]
[workers.web.liveness_probe]
exec = []
)") == "t.toml:4:8: workers.web.liveness_probe.exec: must not be empty (it names the program to run)");
    CHECK(one_error(R"(
[workers.web]
command = ["/bin/app"]
[workers.web.liveness_probe]
tcp = "127.0.0.1:9000"
interval = "0s"
)") == "t.toml:5:12: workers.web.liveness_probe.interval: must be greater than 0");
    CHECK(one_error(R"(
[workers.web]
command = ["/bin/app"]
[workers.web.liveness_probe]
tcp = "127.0.0.1:9000"
failures = 0
)").starts_with("t.toml:5:12: workers.web.liveness_probe.failures: "));
    CHECK(one_error(R"(
[workers.web]
command = ["/bin/app"]
[workers.web.liveness_probe]
tcp = "127.0.0.1:9000"
intervall = "1s"
)") == "t.toml:5:1: unknown key \"intervall\" in [workers.web.liveness_probe] (did you mean \"interval\"?)");
    CHECK(one_error(R"(
[workers.web]
command = ["/bin/app"]
liveness_probe = "http://x"
)") == "t.toml:3:18: workers.web.liveness_probe: expected a table, got a string");
}

TEST_CASE("probes: a target is checked for every instance, with {instance} filled in") {
    auto wide = one_error(R"(
[workers.web]
command = ["/bin/app"]
instances = 11
[workers.web.liveness_probe]
tcp = "127.0.0.1:655{instance}0"
)");
    CHECK(wide.starts_with("t.toml:5:7: workers.web.liveness_probe.tcp: "));
    CHECK(wide.find("(for instance 4: \"127.0.0.1:65540\")") != std::string::npos);
    auto https = one_error(R"(
[workers.web]
command = ["/bin/app"]
[workers.web.liveness_probe]
http = "https://127.0.0.1/healthz"
)");
    CHECK(https.starts_with("t.toml:4:8: workers.web.liveness_probe.http: "));
    auto named = one_error(R"(
[workers.web]
command = ["/bin/app"]
[workers.web.liveness_probe]
tcp = "db.example.com:5432"
)");
    CHECK(named.starts_with("t.toml:4:7: workers.web.liveness_probe.tcp: "));
}

TEST_CASE("probes: one aimed at a socket fdsupd owns and shares is refused, saying why") {
    auto e = one_error(R"(
[sockets.http]
listen = "tcp://0.0.0.0:8080"
[workers.web]
command = ["/bin/app"]
sockets = ["http"]
instances = 2
[workers.web.liveness_probe]
http = "http://127.0.0.1:8080/healthz"
)");
    CHECK(e == "t.toml:8:8: workers.web.liveness_probe.http: aims at socket \"http\" (tcp://0.0.0.0:8080), which "
               "fdsupd owns and shares among instances: any instance may answer, so it would not check web[0]; "
               "give each instance an address of its own (e.g. a port with {instance}) or use exec");
    auto unix_path = one_error(R"(
[sockets.app]
listen = "unix:/run/app.sock"
[workers.web]
command = ["/bin/app"]
ready = "probe"
[workers.web.ready_probe]
tcp = "/run/app.sock"
)");
    CHECK(unix_path.find("aims at socket \"app\" (unix:/run/app.sock)") != std::string::npos);
    // Per-instance ports beside the shared one are what it is for.
    valid(R"(
[sockets.http]
listen = "tcp://127.0.0.1:8080"
[workers.web]
command = ["/bin/app"]
sockets = ["http"]
instances = 2
[workers.web.liveness_probe]
http = "http://127.0.0.1:900{instance}/healthz"
)");
}

TEST_CASE("probes: ready = \"accepting\" needs a socket to see the worker accept on") {
    CHECK(one_error(R"(
[workers.web]
command = ["/bin/app"]
ready = "accepting"
)") == "t.toml:3:9: workers.web.ready: \"accepting\" needs a listening socket to see the worker accept on (fds, "
           "sockets or scm_rights)");
    valid(R"(
[sockets.s]
listen = "unix:/run/s.sock"
[workers.web]
command = ["/bin/app"]
scm_rights = ["s"]
ready = "accepting"
)");
}
