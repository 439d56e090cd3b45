#include <doctest/doctest.h>

#include <algorithm>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>

#include "launcher/plan_builder.h"

using fdsup::PreparedSpawn;
using fdsup::SpawnContext;
using fdsup::config::WorkerConfig;

namespace {

bool has(const std::vector<std::string>& env, const std::string& entry) {
    return std::find(env.begin(), env.end(), entry) != env.end();
}
bool has_key(const std::vector<std::string>& env, const std::string& key) {
    return std::any_of(env.begin(), env.end(), [&](const std::string& e) { return e.rfind(key + "=", 0) == 0; });
}

SpawnContext test_context() {
    SpawnContext c;
    c.set_base_env(fdsup::filter_inherited_env(
        {"PATH=/usr/bin:/bin", "HOME=/root", "LISTEN_FDS=2", "LISTEN_PID=1", "LISTEN_FDNAMES=a:b",
         "NOTIFY_SOCKET=/run/systemd/notify", "WATCHDOG_USEC=1", "FDSTORE=256", "FDSUP_WORKER=outer", "KEEP=1"}));
    c.supervisor_pid = getpid();
    c.nofile_soft_at_start = 1024;
    return c;
}

}  // namespace

TEST_CASE("inherited env: the supervisor's own protocol variables never reach workers") {
    auto env = *test_context().base_env();
    CHECK(env == std::vector<std::string>{"PATH=/usr/bin:/bin", "HOME=/root", "KEEP=1"});
}

TEST_CASE("placeholders: {fd:NAME}, {instance}, {name}; other braces are literal") {
    WorkerConfig w;
    w.name = "web";
    w.fds = {{3, "http"}, {4, "admin"}, {7, "http"}};
    CHECK(fdsup::expand_placeholders("--fd={fd:http}", w, 2) == "--fd=3");
    CHECK(fdsup::expand_placeholders("{fd:admin}", w, 0) == "4");
    CHECK(fdsup::expand_placeholders("{name}-{instance}", w, 5) == "web-5");
    CHECK(fdsup::expand_placeholders("{\"json\": {instance}}", w, 1) == "{\"json\": 1}");
    CHECK(fdsup::expand_placeholders("{", w, 1) == "{");
    CHECK(fdsup::expand_placeholders("}{}", w, 1) == "}{}");
    CHECK(fdsup::socket_env_name("http-admin") == "FDSUP_FD_HTTP_ADMIN");
}

TEST_CASE("placeholders by name only (log paths): as for a worker of that name mapping no socket") {
    WorkerConfig w;
    w.name = "web";
    w.fds = {{3, "http"}};
    WorkerConfig unmapped;
    unmapped.name = "web";
    for (const char* arg : {"/var/log/{name}/{instance}.log", "{\"json\": {instance}}", "}{}", "{fd:http}-{name}"})
        CHECK(fdsup::expand_placeholders(arg, std::string("web"), 4) == fdsup::expand_placeholders(arg, unmapped, 4));
    CHECK(fdsup::expand_placeholders("/var/log/{name}/{instance}.log", std::string("web"), 4) ==
          fdsup::expand_placeholders("/var/log/{name}/{instance}.log", w, 4));
    CHECK(fdsup::expand_placeholders("{fd:http}", std::string("web"), 0) == "-1");
}

TEST_CASE("env: LISTEN_FDS protocol when sockets sit at 3..3+n-1, FDSUP_* always") {
    WorkerConfig w;
    w.name = "web";
    w.command = {"true"};
    w.fds = {{3, "http"}, {4, "admin"}};
    w.env = {{"APP_ENV", "prod"}, {"KEEP", "overridden"}};
    std::map<std::string, int> sockets{{"http", 0}, {"admin", 0}};
    auto spawn = PreparedSpawn::make(test_context(), w, 1, sockets, {}, {0, 1, 2});
    REQUIRE(spawn.has_value());
    const auto& env = (*spawn)->env();
    CHECK(has(env, "LISTEN_FDS=2"));
    CHECK(has(env, "LISTEN_FDNAMES=http:admin"));
    CHECK(has_key(env, "LISTEN_PID"));
    CHECK(has(env, "FDSUP_FD_HTTP=3"));
    CHECK(has(env, "FDSUP_FD_ADMIN=4"));
    CHECK(has(env, "FDSUP_WORKER=web"));
    CHECK(has(env, "FDSUP_INSTANCE=1"));
    CHECK(has(env, "APP_ENV=prod"));
    CHECK(has(env, "KEEP=overridden"));
    CHECK_FALSE(has_key(env, "NOTIFY_SOCKET"));
    // Searched through the worker's PATH by the child, as the worker's user.
    CHECK((*spawn)->search_candidates() == std::vector<std::string>{"/usr/bin/true", "/bin/true"});
    CHECK((*spawn)->plan().pid_slots[0] != nullptr);
    CHECK((*spawn)->plan().pid_slots[1] == nullptr);  // no watchdog
}

TEST_CASE("env: no LISTEN_FDS when the sockets are not contiguous from 3, or only on stdin") {
    WorkerConfig w;
    w.name = "w";
    w.command = {"/bin/true"};
    std::map<std::string, int> sockets{{"a", 0}, {"b", 0}};
    w.fds = {{3, "a"}, {5, "b"}};
    auto gap = PreparedSpawn::make(test_context(), w, 0, sockets, {}, {0, 1, 2});
    REQUIRE(gap.has_value());
    CHECK_FALSE(has_key((*gap)->env(), "LISTEN_FDS"));
    CHECK_FALSE(has_key((*gap)->env(), "LISTEN_PID"));
    CHECK(has((*gap)->env(), "FDSUP_FD_B=5"));
    CHECK((*gap)->plan().pid_slots[0] == nullptr);

    w.fds = {{0, "a"}};
    auto inetd = PreparedSpawn::make(test_context(), w, 0, sockets, {}, {0, 1, 2});
    REQUIRE(inetd.has_value());
    CHECK_FALSE(has_key((*inetd)->env(), "LISTEN_FDS"));
    CHECK(has((*inetd)->env(), "FDSUP_FD_A=0"));
    // The socket replaces stdin in the fd map.
    const auto& map = (*inetd)->plan().fd_map;
    REQUIRE(map.count == 3);
    CHECK(map.entries[0].target == 0);
}

TEST_CASE("stored fds follow the sockets, named in LISTEN_FDNAMES in the order stored") {
    WorkerConfig w;
    w.name = "web";
    w.command = {"/bin/true"};
    w.fds = {{3, "http"}, {4, "admin"}};
    std::map<std::string, int> sockets{{"http", 20}, {"admin", 21}};
    std::vector<fdsup::StoredFdRef> stored{{"session", 30}, {"state", 31}, {"session", 32}};
    auto spawn = PreparedSpawn::make(test_context(), w, 0, sockets, stored, {0, 1, 2});
    REQUIRE(spawn.has_value());
    CHECK(has((*spawn)->env(), "LISTEN_FDS=5"));
    CHECK(has((*spawn)->env(), "LISTEN_FDNAMES=http:admin:session:state:session"));
    CHECK_FALSE(has_key((*spawn)->env(), "FDSUP_FD_SESSION"));  // names may repeat: LISTEN_FDNAMES only
    const auto& map = (*spawn)->plan().fd_map;
    REQUIRE(map.count == 8);
    CHECK(map.entries[5].target == 5);
    CHECK(map.entries[5].source == 30);
    CHECK(map.entries[7].target == 7);
    CHECK(map.entries[7].source == 32);

    // Without sockets (or with one on stdin only) the store starts at 3.
    w.fds = {{0, "http"}};
    auto alone = PreparedSpawn::make(test_context(), w, 0, sockets, {{"state", 31}}, {0, 1, 2});
    REQUIRE(alone.has_value());
    CHECK(has((*alone)->env(), "LISTEN_FDS=1"));
    CHECK(has((*alone)->env(), "LISTEN_FDNAMES=state"));
    REQUIRE((*alone)->plan().fd_map.count == 4);
    CHECK((*alone)->plan().fd_map.entries[3].target == 3);
    CHECK((*alone)->plan().fd_map.entries[3].source == 31);
}

TEST_CASE("env: sorted by key, each once; the last inherited entry of a key, and fdsupd's over it") {
    SpawnContext context = test_context();
    context.set_base_env({"ZED=1", "B=first", "A=1", "FDSUP_WORKER_X=kept", "B=second", "NOEQUALS", "M=inherited",
                          "LISTEN_PIDS=not-a-slot", "WEB=inherited"});
    WorkerConfig w;
    w.name = "web";
    w.command = {"/bin/true"};
    w.env = {{"M", "mine"}, {"C", "3"}};
    auto prepared = PreparedSpawn::make(context, w, 2, {}, {}, {0, 1, 2});
    REQUIRE(prepared.has_value());
    CHECK((*prepared)->env() == std::vector<std::string>{"A=1", "B=second", "C=3", "FDSUP_INSTANCE=2",
                                                        "FDSUP_WORKER=web", "FDSUP_WORKER_X=kept",
                                                        "LISTEN_PIDS=not-a-slot", "M=mine", "NOEQUALS",
                                                        "WEB=inherited", "ZED=1"});
    CHECK((*prepared)->plan().pid_slots[0] == nullptr);
    CHECK((*prepared)->plan().pid_slots[1] == nullptr);
    // The plan's envp is the same list, NULL-terminated.
    const auto& env = (*prepared)->env();
    for (size_t i = 0; i < env.size(); ++i) CHECK(std::string((*prepared)->plan().envp[i]) == env[i]);
    CHECK((*prepared)->plan().envp[env.size()] == nullptr);
}

TEST_CASE("env: a plan outlives its context, and a copy of the context serves as well, the original gone") {
    auto original = std::make_unique<SpawnContext>(test_context());
    original->set_base_env({"B=2", "A=1", "A=last"});
    SpawnContext copy = *original;
    original.reset();
    WorkerConfig w;
    w.name = "web";
    w.command = {"/bin/true"};
    auto prepared = PreparedSpawn::make(copy, w, 0, {}, {}, {0, 1, 2});
    REQUIRE(prepared.has_value());
    CHECK((*prepared)->env() ==
          std::vector<std::string>{"A=last", "B=2", "FDSUP_INSTANCE=0", "FDSUP_WORKER=web"});
    // The inherited entries are pointed at, not copied: the plan keeps them alive.
    auto outlived = PreparedSpawn::make(test_context(), w, 0, {}, {}, {0, 1, 2});
    REQUIRE(outlived.has_value());
    CHECK(has((*outlived)->env(), "PATH=/usr/bin:/bin"));
    CHECK(std::string((*outlived)->plan().envp[0]) == (*outlived)->env()[0]);
}

TEST_CASE("env: clear_env starts from nothing but the worker's own variables") {
    WorkerConfig w;
    w.name = "w";
    w.command = {"/bin/true"};
    w.clear_env = true;
    w.env = {{"ONLY", "this"}};
    auto spawn = PreparedSpawn::make(test_context(), w, 0, {}, {}, {0, 1, 2});
    REQUIRE(spawn.has_value());
    CHECK((*spawn)->env() == std::vector<std::string>{"FDSUP_INSTANCE=0", "FDSUP_WORKER=w", "ONLY=this"});
}

TEST_CASE("plan: an unknown user is an error naming it; nofile defaults to the starting soft limit") {
    WorkerConfig w;
    w.name = "w";
    w.command = {"/bin/true"};
    w.user = "no-such-user-fdsup";
    auto spawn = PreparedSpawn::make(test_context(), w, 0, {}, {}, {0, 1, 2});
    REQUIRE_FALSE(spawn.has_value());
    CHECK(spawn.error().text() == "unknown user \"no-such-user-fdsup\"");  // the caller names the instance
    CHECK(spawn.error().permanent);  // retrying cannot mend it: the worker goes to "failed"

    // A numeric uid without a passwd entry has no primary group to take.
    w.user = "54321";
    auto numeric = PreparedSpawn::make(test_context(), w, 0, {}, {}, {0, 1, 2});
    REQUIRE_FALSE(numeric.has_value());
    CHECK(numeric.error().text() == "user 54321 has no passwd entry: set `group` too");
    CHECK(numeric.error().permanent);

    w.user.reset();
    auto plain = PreparedSpawn::make(test_context(), w, 0, {}, {}, {0, 1, 2});
    REQUIRE(plain.has_value());
    const auto& plan = (*plain)->plan();
    REQUIRE(plan.rlimit_count == 1);
    CHECK(plan.rlimits[0].resource == RLIMIT_NOFILE);
    CHECK(plan.rlimits[0].soft == 1024);
}

TEST_CASE("rlimits: RLIMIT_NOFILE's hard limit is the supervisor's at the spawn, and caps the soft one") {
    struct rlimit own{};
    REQUIRE(getrlimit(RLIMIT_NOFILE, &own) == 0);
    WorkerConfig w;
    w.name = "w";
    w.command = {"/bin/true"};
    auto context = test_context();
    context.nofile_soft_at_start = 8192;  // started with a soft limit above today's hard one
    auto at_start = PreparedSpawn::make(context, w, 0, {}, {}, {0, 1, 2});
    REQUIRE(at_start.has_value());
    REQUIRE((*at_start)->plan().rlimit_count == 1);
    CHECK((*at_start)->plan().rlimits[0].hard == own.rlim_max);
    CHECK((*at_start)->plan().rlimits[0].soft == std::min<rlim_t>(8192, own.rlim_max));

    // Lowered since (as `prlimit --pid` from outside would): the next plan follows. In a
    // child: a hard limit lowered cannot be raised again without CAP_SYS_RESOURCE.
    pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        struct rlimit lower = {std::min<rlim_t>(own.rlim_cur, 2048), std::min<rlim_t>(own.rlim_max, 2048)};
        if (setrlimit(RLIMIT_NOFILE, &lower) != 0) _exit(2);
        auto prepared = PreparedSpawn::make(context, w, 0, {}, {}, {0, 1, 2});
        if (!prepared || (*prepared)->plan().rlimit_count != 1) _exit(3);
        const auto& limit = (*prepared)->plan().rlimits[0];
        _exit(limit.soft == lower.rlim_max && limit.hard == lower.rlim_max ? 0 : 4);
    }
    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);  // 4: the plan kept the hard limit of before
}

TEST_CASE("env: NOTIFY_SOCKET only for workers that speak sd_notify; the watchdog's pid slot") {
    auto context = test_context();
    context.notify_socket = "/run/fdsup/notify.sock";
    WorkerConfig w;
    w.name = "w";
    w.command = {"/bin/true"};
    std::map<std::string, int> sockets;

    auto plain = PreparedSpawn::make(context, w, 0, sockets, {}, {0, 1, 2});
    REQUIRE(plain.has_value());
    CHECK_FALSE(has_key((*plain)->env(), "NOTIFY_SOCKET"));
    CHECK_FALSE((*plain)->notify_socket_given());  // its exit drains nothing (exits.cpp)
    CHECK_FALSE(has_key((*plain)->env(), "WATCHDOG_USEC"));

    w.ready = fdsup::config::ReadyMode::notify;
    auto notify = PreparedSpawn::make(context, w, 0, sockets, {}, {0, 1, 2});
    REQUIRE(notify.has_value());
    CHECK(has((*notify)->env(), "NOTIFY_SOCKET=/run/fdsup/notify.sock"));
    CHECK((*notify)->notify_socket_given());
    CHECK_FALSE(has_key((*notify)->env(), "WATCHDOG_PID"));

    w.ready = fdsup::config::ReadyMode::exec;
    w.watchdog = std::chrono::milliseconds(2500);
    auto watched = PreparedSpawn::make(context, w, 0, sockets, {}, {0, 1, 2});
    REQUIRE(watched.has_value());
    CHECK(has((*watched)->env(), "NOTIFY_SOCKET=/run/fdsup/notify.sock"));
    CHECK((*watched)->notify_socket_given());
    CHECK(has((*watched)->env(), "WATCHDOG_USEC=2500000"));
    CHECK(has_key((*watched)->env(), "WATCHDOG_PID"));
    // The child writes its pid into the WATCHDOG_PID value (no LISTEN_PID here).
    CHECK((*watched)->plan().pid_slots[0] == nullptr);
    REQUIRE((*watched)->plan().pid_slots[1] != nullptr);
    bool slot_in_env = false;
    for (char* const* e = (*watched)->plan().envp; *e != nullptr; ++e)
        slot_in_env |= std::string(*e).rfind("WATCHDOG_PID=", 0) == 0 && *e + 13 == (*watched)->plan().pid_slots[1];
    CHECK(slot_in_env);
}

TEST_CASE("env: an fd store brings NOTIFY_SOCKET and FDSUP_FD_SOCKET (both ways into it)") {
    auto context = test_context();
    context.notify_socket = "/run/fdsup/notify.sock";
    context.fd_socket = "/run/fdsup/fds.sock";
    WorkerConfig w;
    w.name = "w";
    w.command = {"/bin/true"};
    auto plain = PreparedSpawn::make(context, w, 0, {}, {}, {0, 1, 2});
    REQUIRE(plain.has_value());
    CHECK_FALSE(has_key((*plain)->env(), "FDSUP_FD_SOCKET"));
    w.fd_store_max = 8;
    auto stores = PreparedSpawn::make(context, w, 0, {}, {}, {0, 1, 2});
    REQUIRE(stores.has_value());
    CHECK(has((*stores)->env(), "NOTIFY_SOCKET=/run/fdsup/notify.sock"));
    CHECK((*stores)->notify_socket_given());
    // One the worker's own env sets counts too: it may speak to fdsupd through it.
    w.fd_store_max = 0;
    w.env = {{"NOTIFY_SOCKET", "/run/fdsup/notify.sock"}};
    auto own = PreparedSpawn::make(context, w, 0, {}, {}, {0, 1, 2});
    REQUIRE(own.has_value());
    CHECK((*own)->notify_socket_given());
    CHECK(has((*stores)->env(), "FDSUP_FD_SOCKET=/run/fdsup/fds.sock"));
}

TEST_CASE("env: a worker's own LISTEN_PID / WATCHDOG_PID is never a pid slot") {
    // The child writes 20 digits into a slot: a short value from `env` must not be one.
    WorkerConfig w;
    w.name = "w";
    w.command = {"/bin/true"};
    w.env = {{"LISTEN_PID", ""}, {"WATCHDOG_PID", "1"}};
    std::map<std::string, int> sockets{{"a", 0}, {"b", 0}};
    w.fds = {{3, "a"}, {5, "b"}};  // not contiguous: no LISTEN_FDS protocol
    auto spawn = PreparedSpawn::make(test_context(), w, 0, sockets, {}, {0, 1, 2});
    REQUIRE(spawn.has_value());
    CHECK((*spawn)->plan().pid_slots[0] == nullptr);
    CHECK((*spawn)->plan().pid_slots[1] == nullptr);
    CHECK(has((*spawn)->env(), "LISTEN_PID="));  // the worker's value, as given

    // With the protocol and a watchdog, fdsupd's own slots replace the worker's values.
    w.fds = {{3, "a"}, {4, "b"}};
    w.watchdog = std::chrono::milliseconds(1000);
    auto both = PreparedSpawn::make(test_context(), w, 0, sockets, {}, {0, 1, 2});
    REQUIRE(both.has_value());
    CHECK((*both)->plan().pid_slots[0] != nullptr);
    CHECK((*both)->plan().pid_slots[1] != nullptr);
    CHECK(std::string((*both)->plan().pid_slots[1]).size() == 20);
}

TEST_CASE("plan: a bare command name is searched by the child in the worker's PATH, else the default") {
    WorkerConfig w;
    w.name = "w";
    w.command = {"python3", "app.py"};
    // The PATH the worker inherits (the supervisor's): tried in order, as the worker's user.
    auto inherited = PreparedSpawn::make(test_context(), w, 0, {}, {}, {0, 1, 2});
    REQUIRE(inherited.has_value());
    const auto& plan = (*inherited)->plan();
    CHECK(std::string(plan.path) == "python3");  // the command as configured, for messages
    CHECK(std::string(plan.search_path) == "/usr/bin:/bin");
    REQUIRE(plan.search_candidate_count == 2);
    CHECK(std::string(plan.search_candidates[0]) == "/usr/bin/python3");
    CHECK(std::string(plan.search_candidates[1]) == "/bin/python3");
    CHECK(std::string(plan.argv[0]) == "python3");

    // The worker's own PATH wins over the inherited one.
    w.env = {{"PATH", "/opt/app/bin"}};
    auto own = PreparedSpawn::make(test_context(), w, 0, {}, {}, {0, 1, 2});
    REQUIRE(own.has_value());
    CHECK((*own)->search_candidates() == std::vector<std::string>{"/opt/app/bin/python3"});

    // No PATH at all (clear_env): systemd's default search path.
    w.env.clear();
    w.clear_env = true;
    auto cleared = PreparedSpawn::make(test_context(), w, 0, {}, {}, {0, 1, 2});
    REQUIRE(cleared.has_value());
    CHECK((*cleared)->search_path() == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    CHECK((*cleared)->search_candidates().size() == 6);
    CHECK_FALSE(has_key((*cleared)->env(), "PATH"));  // searched in, not given to the worker

    // A name with a '/' is exec'd as is (relative to working_dir): no search.
    w.command = {"bin/app"};
    auto relative = PreparedSpawn::make(test_context(), w, 0, {}, {}, {0, 1, 2});
    REQUIRE(relative.has_value());
    CHECK(std::string((*relative)->plan().path) == "bin/app");
    CHECK((*relative)->plan().search_candidate_count == 0);
}
