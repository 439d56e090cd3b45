// The upgrade state round trip: what one Supervisor snapshots, a fresh one built from
// the same config restores, field by field; a damaged document is an error, not a crash.
// No processes are started here (the integration tests upgrade real ones).
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <string>
#include <vector>

#include "config/loader.h"
#include "state/state_format.h"
#include "state/state.h"
#include "temp_dir.h"
#include "upgrade/state_file.h"

using fdsup::Instance;
using fdsup::InstanceState;
using fdsup::Supervisor;

namespace {

constexpr const char* kConfig = R"(
[workers.web]
command = ["/bin/true"]
instances = 2
fd_store_max = 4
[workers.db]
command = ["/bin/true"]
)";

fdsup::config::Config config() {
    auto loaded = fdsup::config::load_config_string(kConfig, "/etc/fdsup/t.toml");
    REQUIRE(loaded.config.has_value());
    return *loaded.config;
}

fdsup::SpawnContext context() {
    fdsup::SpawnContext c;
    c.supervisor_pid = getpid();
    return c;
}

Instance& instance(const Supervisor& s, const std::string& worker, size_t i) {
    return *s.find_worker(worker)->instances.at(i);
}

// The state as the upgrader writes it (an object around the supervisor's members) and
// the next image reads it.
fdsup::StateDocument snapshot_of(const Supervisor& s, std::vector<int>& keep) {
    fdsup::JsonWriter w;
    w.begin_object();
    fdsup::state::write_state(s, w, keep);
    w.key("keep").begin_array();
    for (int fd : keep) w.value(fd);
    w.end_array().end_object();
    return fdsup::StateDocument::parse(w.text());
}

struct Loop {
    uv_loop_t loop{};
    Loop() { uv_loop_init(&loop); }
    ~Loop() {
        uv_run(&loop, UV_RUN_NOWAIT);
        uv_loop_close(&loop);
    }
};

}  // namespace

TEST_CASE("snapshot and restore: counters, states, errors, exits, stores and scale carry over") {
    Loop l;
    std::vector<int> keep;
    fdsup::StateDocument state;
    int stored_fd = -1;
    {
        Supervisor before(&l.loop, config(), {}, context());
        Instance& web1 = instance(before, "web", 1);
        web1.state = InstanceState::failed;
        web1.restarts = 7;
        web1.last_error = "start limit hit";
        web1.last_exit = fdsup::ExitStatus{true, 0, 9, false, {}};
        web1.backoff.restore(std::chrono::milliseconds(800));
        web1.id = 4242;  // ids are carried (rollouts name instances by id), not renumbered
        instance(before, "db", 0).state = InstanceState::exited;
        before.find_worker("db")->stopped_by_operator = true;
        // A stored memfd, as FDSTORE=1 would leave it.
        stored_fd = memfd_create("state", MFD_CLOEXEC);
        std::vector<fdsup::UniqueFd> fds;
        fds.emplace_back(stored_fd);
        before.fd_stores().slot(*before.find_worker("web"), 1).add("state", std::move(fds), false, 4);
        state = snapshot_of(before, keep);
        CHECK(std::find(keep.begin(), keep.end(), stored_fd) != keep.end());
        // An exec would leave the fd open; this Supervisor closes its copy when it goes:
        // the state names a duplicate instead.
        for (auto& worker : state["workers"])
            for (auto& slot : worker["fd_stores"])
                for (auto& entry : slot["fds"])
                    if (entry["fd"] == stored_fd) entry["fd"] = stored_fd = fcntl(stored_fd, F_DUPFD_CLOEXEC, 3);
        state["keep"].push_back(stored_fd);
    }
    CHECK(fcntl(stored_fd, F_GETFD) >= 0);

    Supervisor after(&l.loop, config(), {}, context(), true);
    auto restored = fdsup::state::restore_state(after, state);
    REQUIRE_MESSAGE(restored.has_value(), restored.error().text());
    const Instance& web1 = instance(after, "web", 1);
    CHECK(web1.state == InstanceState::failed);
    CHECK(web1.restarts == 7);
    CHECK(web1.last_error == "start limit hit");
    CHECK(web1.last_exit == fdsup::ExitStatus{true, 0, 9, false, {}});
    CHECK(web1.backoff.last() == std::chrono::milliseconds(800));
    CHECK(web1.id == 4242);
    CHECK(instance(after, "db", 0).state == InstanceState::exited);
    CHECK(after.find_worker("db")->stopped_by_operator);
    CHECK(after.upgrades() == 1);
    const auto& store = after.fd_stores().of(*after.find_worker("web")).at(1);
    REQUIRE(store.size() == 1);
    CHECK(store.entries()[0].name == "state");
    CHECK(store.entries()[0].fd.get() == stored_fd);
}

TEST_CASE("restore: a damaged or foreign state is an error, never a crash") {
    Loop l;
    std::vector<int> keep;
    fdsup::StateDocument state;
    {
        Supervisor before(&l.loop, config(), {}, context());
        state = snapshot_of(before, keep);
    }
    auto error_of = [&](fdsup::StateDocument damaged) {
        Supervisor after(&l.loop, config(), {}, context(), true);
        auto restored = fdsup::state::restore_state(after, damaged);
        REQUIRE_FALSE(restored.has_value());
        return restored.error().text();
    };
    auto missing = state;
    missing.erase("workers");
    CHECK(error_of(missing).starts_with("the state cannot be restored: "));
    using namespace fdsup::state_format;
    auto wrong_type = state;
    wrong_type["workers"][0]["instances"][0][kRestarts] = "many";
    CHECK(error_of(wrong_type).starts_with("the state cannot be restored: "));
    auto not_an_instance = state;
    not_an_instance["workers"][0]["instances"][0] = "garbage";
    CHECK(error_of(not_an_instance).starts_with("the state cannot be restored: "));
    auto short_instance = state;
    short_instance["workers"][0]["instances"][0] = fdsup::StateDocument::array({1, 2});
    CHECK(error_of(short_instance) == "the state cannot be restored: an instance of 2 fields (" +
                                          std::to_string(kInstanceFields) + " expected)");
    auto unknown = state;
    unknown["workers"][0]["name"] = "ghost";
    CHECK(error_of(unknown) == "the state cannot be restored: worker ghost is not in the configuration");
    auto bad_state = state;
    bad_state["workers"][0]["instances"][0][kState] = "dancing";
    CHECK(error_of(bad_state) == "the state cannot be restored: unknown instance state \"dancing\"");
    // Found by fuzz_upgrade_state: a fractional number where an integer belongs was cast
    // by nlohmann, undefined behaviour out of range (UBSan stopped at "started_at").
    auto huge = state;
    huge["started_at"] = 1.58558e+137;
    CHECK(error_of(huge) == "the state cannot be restored: a fractional number (1.58558e+137) in a state of integers");
    auto fraction = state;
    fraction["workers"][0]["instances"][0][kRestarts] = 2.5;
    CHECK(error_of(fraction) == "the state cannot be restored: a fractional number (2.5) in a state of integers");
    CHECK(fdsup::upgrade::field_or(fdsup::StateDocument({{"n", 1e300}}), "n", 7) == 7);
    CHECK(fdsup::upgrade::field_or(fdsup::StateDocument({{"n", 42}}), "n", 7) == 42);
}

// What an exec leaves the next image for two captured pipes: the set of output pipes
// with both read ends registered under capture keys 1 and 2. Owned by the Supervisor that
// adopts them (closed when it goes); otherwise closed here.
struct TwoPipes {
    int epoll = -1;
    int read[2] = {-1, -1};
    int write[2] = {-1, -1};
    TwoPipes() {
        epoll = epoll_create1(EPOLL_CLOEXEC);
        for (int i = 0; i < 2; ++i) {
            int fds[2];
            REQUIRE(pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0);
            read[i] = fds[0];
            write[i] = fds[1];
            epoll_event event{};
            event.events = EPOLLIN;
            event.data.u64 = static_cast<uint64_t>(i + 1);
            REQUIRE(epoll_ctl(epoll, EPOLL_CTL_ADD, read[i], &event) == 0);
        }
    }
    ~TwoPipes() {
        for (int fd : {epoll, read[0], read[1], write[0], write[1]}) close(fd);  // EBADF for those already closed
    }
    bool all_open() const {
        return fcntl(epoll, F_GETFD) >= 0 && fcntl(read[0], F_GETFD) >= 0 && fcntl(read[1], F_GETFD) >= 0;
    }
    fdsup::StateDocument state_with(fdsup::StateDocument state, fdsup::StateDocument captures) const {
        state["output_pipes_fd"] = epoll;
        state["next_capture_key"] = 3;
        state["keep"] = fdsup::StateDocument::array({epoll, read[0], read[1]});
        state["captures"] = std::move(captures);
        return state;
    }
};

fdsup::StateDocument capture_record(uint64_t key, int fd) { return fdsup::StateDocument::array({key, fd, "web", 0, false, "", -1, "log"}); }

TEST_CASE("restore: fds the previous image did not keep, or named twice, are refused and nothing is closed") {
    Loop l;
    std::vector<int> keep;
    fdsup::StateDocument state;
    {
        Supervisor before(&l.loop, config(), {}, context());
        state = snapshot_of(before, keep);
    }
    using fdsup::StateDocument;
    // Each damaged state is refused while every fd it handed over stays open: a failed
    // restore execs the previous image, which adopts them again.
    auto error_of = [&](auto make_captures) {
        TwoPipes p;
        Supervisor after(&l.loop, config(), {}, context(), true);
        auto restored = fdsup::state::restore_state(after, p.state_with(state, make_captures(p)));
        REQUIRE_FALSE(restored.has_value());
        CHECK(p.all_open());
        return restored.error().text();
    };
    int named = -1;
    std::string error = error_of([&](const TwoPipes& p) {
        named = p.write[0];
        return StateDocument::array({capture_record(1, p.read[0]), capture_record(2, p.write[0])});
    });
    CHECK(error == "the state cannot be restored: output pipe of web[0]: fd " + std::to_string(named) +
                       " was not kept across the exec");
    error = error_of([&](const TwoPipes& p) {
        named = p.read[0];
        return StateDocument::array({capture_record(1, p.read[0]), capture_record(2, p.read[0])});
    });
    CHECK(error == "the state cannot be restored: output pipe of web[0]: fd " + std::to_string(named) +
                       " is named twice in the state");
    CHECK(error_of([](const TwoPipes& p) {
              return StateDocument::array({capture_record(1, p.read[0]), capture_record(1, p.read[1])});
          }) == "the state cannot be restored: a capture with a missing, repeated or unknown key (1)");
    CHECK(error_of([](const TwoPipes& p) { return StateDocument::array({capture_record(3, p.read[0])}); }) ==
          "the state cannot be restored: a capture with a missing, repeated or unknown key (3)");
    CHECK(error_of([](const TwoPipes& p) { return StateDocument::array({StateDocument::array({1, p.read[0]})}); }) ==
          "the state cannot be restored: a capture of 2 fields");
    CHECK(error_of([](const TwoPipes& p) {
              return StateDocument::array({StateDocument::array({1, p.read[0], "web", 0, false, "", -1, "file:/x"})});
          }) == "the state cannot be restored: a capture to \"file:/x\", which is not captured");

    // The good one adopts both pipes under their keys: each reads its EOF and closes.
    TwoPipes p;
    Supervisor after(&l.loop, config(), {}, context(), true);
    auto restored = fdsup::state::restore_state(after, p.state_with(state, StateDocument::array({capture_record(1, p.read[0]),
                                                                            capture_record(2, p.read[1])})));
    REQUIRE_MESSAGE(restored.has_value(), restored.error().text());
    close(p.write[0]);
    close(p.write[1]);
    for (int i = 0; i < 20 && (fcntl(p.read[0], F_GETFD) >= 0 || fcntl(p.read[1], F_GETFD) >= 0); ++i)
        uv_run(&l.loop, UV_RUN_NOWAIT);
    CHECK(fcntl(p.read[0], F_GETFD) < 0);
    CHECK(fcntl(p.read[1], F_GETFD) < 0);
}

TEST_CASE("restore: a damaged log file record is refused before its fd is owned") {
    Loop l;
    std::vector<int> keep;
    fdsup::StateDocument state;
    {
        Supervisor before(&l.loop, config(), {}, context());
        state = snapshot_of(before, keep);
    }
    using fdsup::StateDocument;
    TempDir dir("snapshot");
    int file = open((dir / "w.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    int pipe_fds[2];
    REQUIRE(pipe2(pipe_fds, O_CLOEXEC) == 0);
    auto error_of = [&](StateDocument record) {
        auto damaged = state;
        damaged["keep"] = StateDocument::array({file, pipe_fds[0]});
        damaged["log_files"] = StateDocument::array({std::move(record)});
        Supervisor after(&l.loop, config(), {}, context(), true);
        auto restored = fdsup::state::restore_state(after, damaged);
        REQUIRE_FALSE(restored.has_value());
        CHECK(fcntl(file, F_GETFD) >= 0);
        CHECK(fcntl(pipe_fds[0], F_GETFD) >= 0);
        return restored.error().text();
    };
    auto record = [&](const std::string& path, int fd, int log_keep) {
        return StateDocument::array({path, fd, "web", nullptr, log_keep, false, "utc"});
    };
    const std::string path = dir / "w.log";
    CHECK(error_of(record(path, file, fdsup::config::kMaxLogKeep + 1)) ==
          "the state cannot be restored: log file " + path + ": log_keep 1001 is out of range");
    CHECK(error_of(record(path, file, -1)) ==
          "the state cannot be restored: log file " + path + ": log_keep -1 is out of range");
    CHECK(error_of(record(path, pipe_fds[0], 5)) == "the state cannot be restored: log file " + path + ": fd " +
                                                        std::to_string(pipe_fds[0]) + " is not a regular file");
    CHECK(error_of(record("w.log", file, 5)) ==
          "the state cannot be restored: a log file with a relative, repeated or unusable path (w.log)");
    CHECK(error_of(record(dir.path + "/", file, 5)) == "the state cannot be restored: a log file with a relative, "
                                                        "repeated or unusable path (" + dir.path + "/)");
    close(file);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
}

TEST_CASE("snapshot and restore: an on-demand worker stays idle and watched, with its starts and idle clock") {
    auto loaded = fdsup::config::load_config_string(R"(
[sockets.http]
listen = "tcp://127.0.0.1:0"
[workers.web]
command = ["/bin/true"]
sockets = ["http"]
start = "on-demand"
idle_stop = "1m"
[workers.api]
command = ["/bin/true"]
sockets = ["http"]
start = "on-demand"
idle_stop = "1m"
)", "/etc/fdsup/t.toml");
    REQUIRE(loaded.config.has_value());
    Loop l;
    std::vector<int> keep;
    fdsup::StateDocument state;
    auto last_active = fdsup::Clock::now() - std::chrono::seconds(20);
    {
        Supervisor before(&l.loop, *loaded.config, {}, context());
        CHECK(before.find_worker("web")->demand.watched);  // idle from the start
        CHECK(instance(before, "web", 0).state == InstanceState::idle);
        auto& api = *before.find_worker("api");  // as if started on demand, running since
        api.demand.watched = false;
        api.demand.starts = 3;
        api.demand.last_active = last_active;
        api.instances[0]->state = InstanceState::stopped;
        state = snapshot_of(before, keep);
    }
    Supervisor after(&l.loop, *loaded.config, {}, context(), true);
    auto restored = fdsup::state::restore_state(after, state);
    REQUIRE_MESSAGE(restored.has_value(), restored.error().text());
    CHECK(after.find_worker("web")->demand.watched);
    CHECK(instance(after, "web", 0).state == InstanceState::idle);
    const auto& api = after.find_worker("api")->demand;
    CHECK_FALSE(api.watched);
    CHECK(api.starts == 3);
    CHECK(std::chrono::abs(api.last_active - last_active) < std::chrono::microseconds(1));
}

TEST_CASE("snapshot and restore: the event journal carries over, numbered on, every kind of field") {
    Loop l;
    std::vector<int> keep;
    fdsup::StateDocument state;
    {
        Supervisor before(&l.loop, config(), {}, context());
        fdsup::Event exited;
        exited.kind = fdsup::EventKind::exited;
        exited.worker = "web";
        exited.instance = 1;
        exited.pid = 4321;
        exited.fields = {{"status", nullptr}, {"signal", int64_t{9}}, {"reason", std::string("crash")},
                         {"ran", 0.125}, {"oom", false}};
        before.events().add(exited);
        fdsup::Event reload;
        reload.kind = fdsup::EventKind::reload;
        reload.fields = {{"added", std::vector<std::string>{"side", "more"}}, {"ok", true}};
        before.events().add(reload);
        state = snapshot_of(before, keep);
    }
    Supervisor after(&l.loop, config(), {}, context(), true);
    auto restored = fdsup::state::restore_state(after, state);
    REQUIRE_MESSAGE(restored.has_value(), restored.error().text());
    auto events = after.events().after(0);
    REQUIRE(events.size() == 2);
    CHECK(events[0].seq == 1);
    CHECK(events[0].kind == fdsup::EventKind::exited);
    CHECK(events[0].worker == "web");
    CHECK(events[0].instance == 1);
    CHECK(events[0].pid == 4321);
    REQUIRE(events[0].fields.size() == 5);
    CHECK(std::holds_alternative<std::nullptr_t>(events[0].fields[0].second));
    CHECK(std::get<int64_t>(events[0].fields[1].second) == 9);
    CHECK(std::get<std::string>(events[0].fields[2].second) == "crash");
    CHECK(std::get<double>(events[0].fields[3].second) == 0.125);
    CHECK(std::get<bool>(events[0].fields[4].second) == false);
    CHECK(events[1].worker.empty());
    CHECK(events[1].instance == -1);
    CHECK(std::get<std::vector<std::string>>(events[1].fields[0].second) == std::vector<std::string>{"side", "more"});
    // The next one is numbered on.
    fdsup::Event next;
    next.kind = fdsup::EventKind::upgrade_done;
    after.events().add(next);
    CHECK(after.events().last_seq() == 3);

    // Damage: an event name not on the list is refused.
    state["events"]["kept"][0][2] = "exploded";
    Supervisor again(&l.loop, config(), {}, context(), true);
    auto refused = fdsup::state::restore_state(again, state);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().text().find("exploded") != std::string::npos);
}

TEST_CASE("snapshot and restore: the logs ring carries over, each line with its time and number") {
    Loop l;
    std::vector<int> keep;
    fdsup::StateDocument state;
    auto read_at = std::chrono::system_clock::time_point(std::chrono::nanoseconds(1763900000123456789));
    {
        Supervisor before(&l.loop, config(), {}, context());
        before.logs().add(fdsup::LogLine{read_at, "web", 1, true, "oops \"quoted\"", 0});
        before.logs().add(fdsup::LogLine{read_at + std::chrono::seconds(1), "web", 0, false, "fine", 0});
        state = snapshot_of(before, keep);
    }
    Supervisor after(&l.loop, config(), {}, context(), true);
    auto restored = fdsup::state::restore_state(after, state);
    REQUIRE_MESSAGE(restored.has_value(), restored.error().text());
    auto lines = after.logs().recent("web", 10);
    REQUIRE(lines.size() == 2);
    CHECK(lines[0].seq == 1);
    CHECK(lines[0].time == read_at);
    CHECK(lines[0].instance == 1);
    CHECK(lines[0].from_stderr);
    CHECK(lines[0].text == "oops \"quoted\"");
    CHECK(lines[1].seq == 2);
    CHECK(lines[1].time == read_at + std::chrono::seconds(1));
    // The next line is numbered on.
    after.logs().add(fdsup::LogLine{read_at, "web", 0, false, "next", 0});
    CHECK(after.logs().recent("web", 1)[0].seq == 3);

    // A state written before the ring was carried: an empty ring, not an error.
    fdsup::StateDocument old = state;
    old.erase("logs");
    Supervisor older(&l.loop, config(), {}, context(), true);
    auto from_old = fdsup::state::restore_state(older, old);
    REQUIRE_MESSAGE(from_old.has_value(), from_old.error().text());
    CHECK(older.logs().recent("web", 10).empty());

    // Damage: lines out of order are refused.
    state["logs"]["lines"][1][0] = 1;
    Supervisor again(&l.loop, config(), {}, context(), true);
    auto refused = fdsup::state::restore_state(again, state);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().text().find("log lines out of order") != std::string::npos);
}
