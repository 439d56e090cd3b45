// libFuzzer target: the upgrade state decoder, read_json then state::restore_state, on
// the document an old image hands the new one. Any document gives a restored supervisor
// or an error, never a crash; and read_json reads every input as nlohmann would.
//
// restore adopts the fds a state names (only those in its "keep" list), so this target
// owns a pool of real fds of every kind a state names (epoll sets, pipes, sockets,
// pidfds, /dev/null) at fixed numbers, keeps only those in each input's "keep" list
// (an input must not take the fuzzer's own fds), and makes the pool again after every
// input: what a restore took, its supervisor closed. The seeds in corpus/upgrade_state
// are real states, taken from fdsupd upgrades, with their fd numbers moved into the pool.
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <uv.h>

#include <spdlog/spdlog.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "config/loader.h"
#include "json/json_reader.h"
#include "state/state.h"

namespace {

constexpr int kPoolFirst = 500;
constexpr int kPoolSize = 64;

// A fresh fd of the kind pool slot `n` holds.
int make_pool_fd(int n) {
    switch (n % 6) {
        case 0: return epoll_create1(EPOLL_CLOEXEC);
        case 1: {
            int p[2];
            if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) return -1;
            close(p[1]);  // a hung-up pipe, as a dead worker's output
            return p[0];
        }
        case 2: {
            int s[2];
            if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s) != 0) return -1;
            close(s[1]);
            return s[0];
        }
        case 3: return static_cast<int>(syscall(SYS_pidfd_open, getpid(), 0));
        case 4: return eventfd(0, EFD_CLOEXEC);
        default: return open("/dev/null", O_RDWR | O_CLOEXEC);
    }
}

void make_pool() {
    for (int n = 0; n < kPoolSize; ++n) {
        int fd = make_pool_fd(n);
        if (fd < 0 || dup3(fd, kPoolFirst + n, O_CLOEXEC) < 0) std::abort();
        close(fd);
    }
}

uv_loop_t* the_loop() {
    static uv_loop_t loop;
    static bool ready = [] {
        spdlog::set_level(spdlog::level::off);
        make_pool();
        return uv_loop_init(&loop) == 0;
    }();
    if (!ready) std::abort();
    return &loop;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    uv_loop_t* loop = the_loop();
    // The reader fdsupd uses (json/json_reader.h) must read every input as nlohmann does.
    auto read = fdsup::read_json(std::string_view(reinterpret_cast<const char*>(data), size));
    auto expected = fdsup::StateDocument::parse(data, data + size, nullptr, false);
    if (read.has_value() == expected.is_discarded() || (read && read->document != expected)) std::abort();
    if (!read || !read->document.is_object()) return 0;
    fdsup::StateDocument& state = read->document;
    if (auto keep = state.find("keep"); keep != state.end() && keep->is_array()) {
        fdsup::StateDocument pool_only = fdsup::StateDocument::array();
        for (const auto& fd : *keep)
            if (fd.is_number_integer() && fd.get<int64_t>() >= kPoolFirst && fd.get<int64_t>() < kPoolFirst + kPoolSize)
                pool_only.push_back(fd);
        *keep = std::move(pool_only);
    }
    // As main() does: the supervisor is built from the configuration the state carries.
    auto source = state.find("config_source");
    if (source == state.end() || !source->is_string()) return 0;
    auto loaded = fdsup::config::load_config_string(source->get<std::string>(), "/etc/fdsup/fuzz.toml");
    if (!loaded.config) return 0;
    {
        fdsup::SpawnContext context;
        context.supervisor_pid = getpid();
        fdsup::Supervisor supervisor(loop, std::move(*loaded.config), {}, std::move(context), true);
        auto restored = fdsup::state::restore_state(supervisor, state, false, read->integers_only);
        if (!restored && restored.error().text().empty()) std::abort();
        // To check that the seeds restore (and so reach past the first check).
        if (std::getenv("FDSUP_FUZZ_VERBOSE") != nullptr)
            std::fprintf(stderr, "restore: %s\n", restored ? "ok" : restored.error().text().c_str());
    }
    uv_run(loop, UV_RUN_NOWAIT);  // the closed handles' callbacks
    make_pool();
    return 0;
}
