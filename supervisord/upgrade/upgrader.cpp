#include "upgrade/upgrader.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>

#include "sys/manager_notify.h"
#include "upgrade/preflight.h"
#include "upgrade/reexec.h"
#include "upgrade/state_file.h"
#include "version.h"

namespace fdsup::upgrade {
namespace {

void reply(const std::optional<control::Responder>& responder, const control::Json& message) {
    if (responder) responder->finish(message);
}

std::vector<std::string> next_argv(const std::string& binary, const std::string& config_path,
                                   const std::vector<std::string>& extra_args, int state_fd, int previous_fd,
                                   const std::optional<std::string>& rollback_reason) {
    std::vector<std::string> argv{binary, "-c", config_path};
    argv.insert(argv.end(), extra_args.begin(), extra_args.end());
    argv.insert(argv.end(), {"--restore-state", std::to_string(state_fd)});
    if (previous_fd >= 0) argv.insert(argv.end(), {"--previous-image", std::to_string(previous_fd)});
    if (rollback_reason) argv.insert(argv.end(), {"--rollback-reason", *rollback_reason});
    return argv;
}

bool trusted_owner(const struct stat& st) { return st.st_uid == 0 || st.st_uid == ::geteuid(); }

// Who may choose the binary fdsupd becomes: root and fdsupd's own uid (a control_group
// member may upgrade to the binary fdsupd was started from, not to one of its own). The
// file must be as trusted as that: owned by root or fdsupd's uid, writable by no one
// else, and so must every directory above it (or be sticky, like /tmp, where only the
// file's owner may replace it) — nobody else can swap it between the pre-flight and
// the exec. `path` is the resolved one (realpath: no symlink left to re-point).
std::string binary_refusal(const std::string& path, std::optional<uid_t> requester, bool chosen) {
    if (chosen && (!requester || (*requester != 0 && *requester != ::geteuid())))
        return "only root or fdsupd's own uid may name the binary (--binary)";
    struct stat st{};
    if (::stat(path.c_str(), &st) < 0) return "";  // the pre-flight says what is wrong with it
    if (!trusted_owner(st)) return path + " is owned by uid " + std::to_string(st.st_uid);
    if (st.st_mode & (S_IWGRP | S_IWOTH)) return path + " is writable by its group or by others";
    for (std::string dir = path.substr(0, path.rfind('/')); !dir.empty(); dir = dir.substr(0, dir.rfind('/'))) {
        if (::stat(dir.c_str(), &st) < 0) break;
        if (!trusted_owner(st)) return "directory " + dir + " is owned by uid " + std::to_string(st.st_uid);
        if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))
            return "directory " + dir + " is writable by its group or by others";
    }
    return "";
}

// The binary's real path (symlinks resolved once, here), or `path` if it does not exist.
std::string resolved(const std::string& path) {
    char* real = ::realpath(path.c_str(), nullptr);
    if (real == nullptr) return path;
    std::string result = real;
    std::free(real);
    return result;
}


}  // namespace

void Upgrader::begin(std::optional<std::string> binary, std::optional<control::Responder> responder) {
    auto refuse = [&](const std::string& why) {
        spdlog::error("upgrade refused: {}", why);
        if (setup_.failed) setup_.failed("upgrade refused: " + why);
        reply(responder, control::error_reply("upgrade refused: " + why));
    };
    if (in_progress_) return refuse("an upgrade is already in progress");
    if (auto refusal = setup_.refusal(); !refusal.empty()) return refuse(refusal);
    std::string path = resolved(binary.value_or(setup_.self_binary));
    // SIGUSR2 comes from root or our own uid (the kernel checks); a command's peer is
    // known by its connection, and unknown means refused.
    std::optional<uid_t> requester = std::optional<uid_t>(::geteuid());
    if (responder) requester = setup_.client_uid ? setup_.client_uid(responder->client_id()) : std::nullopt;
    if (auto refusal = binary_refusal(path, requester, binary.has_value()); !refusal.empty()) return refuse(refusal);
    in_progress_ = true;
    spdlog::info("upgrade: trying out {}", path);
    if (responder) responder->progress("pre-flight: " + path + " --check-config --state-formats");
    run_preflight(setup_.loop, path, setup_.config_path, kStateVersion,
                  [this, alive = alive_, path, responder](Result<void> checked) {
        if (!*alive) return;
        if (!checked) {
            in_progress_ = false;
            spdlog::error("upgrade refused: {}", checked.error().text());
            if (setup_.failed) setup_.failed("upgrade refused: " + checked.error().text());
            return reply(responder, control::error_reply("upgrade refused: " + checked.error().text()));
        }
        exec_now(path, responder);
    });
}

void Upgrader::exec_now(const std::string& binary, std::optional<control::Responder> responder) {
    auto refuse = [&](const std::string& why) {
        in_progress_ = false;
        spdlog::error("upgrade refused: {}", why);
        if (setup_.failed) setup_.failed("upgrade refused: " + why);
        reply(responder, control::error_reply("upgrade refused: " + why));
    };
    // Checked again: the state may have changed while the pre-flight ran.
    if (auto refusal = setup_.refusal(); !refusal.empty()) return refuse(refusal);
    // From here signals wait for the next image (which unblocks them once its handlers
    // are in place): one arriving now would otherwise die in libuv's signal pipe.
    sigset_t all, mask_before;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &mask_before);
    struct Unblock {
        sigset_t mask;
        ~Unblock() { sigprocmask(SIG_SETMASK, &mask, nullptr); }  // only if we are still here
    } unblock{mask_before};
    // Written straight as text (at 1,000 instances with their output captured, an
    // nlohmann document took 20 ms to build and dump, while nothing is served).
    if (setup_.began) setup_.began(binary);
    auto writing_began = std::chrono::steady_clock::now();
    std::vector<int> keep;
    JsonWriter state;
    state.begin_object();
    try {
        setup_.snapshot(state, keep);
    } catch (const std::exception& e) {  // a bug in the state's layout: no upgrade, no crash
        return refuse(std::string("cannot write the state: ") + e.what());
    }
    // No progress line now: bytes still queued for the client would be lost in the
    // exec, and the next image's reply must start a line of its own.
    int reply_fd = responder ? setup_.client_fd(responder->client_id()) : -1;
    UniqueFd answer;
    if (reply_fd >= 0) {
        answer.reset(::fcntl(reply_fd, F_DUPFD_CLOEXEC, 3));
        if (answer) keep.push_back(answer.get());
    }
    state.member("version", kStateVersion).member("old_version", kVersion).member("reply_fd", answer ? answer.get() : -1);
    // The path fdsupd was first started from: the next image's default binary, and
    // argv[0] of a rollback (which execs the O_PATH fd below, not this path).
    state.member("binary", setup_.self_binary);
    // The previous image, for a rollback: this very executable, even if its file has
    // been replaced or deleted since.
    UniqueFd previous(::open("/proc/self/exe", O_PATH | O_CLOEXEC));
    if (!previous) return refuse("cannot keep the current image for a rollback: " + std::string(std::strerror(errno)));
    keep.push_back(previous.get());
    state.key("keep").begin_array();
    for (int fd : keep) state.value(fd);
    state.end_array().end_object();
    auto file = write_state_file(state.text());
    if (!file) return refuse(file.error().text());
    keep.push_back(file->get());

    spdlog::info("upgrade: exec {} ({} fds kept, state of {} KiB written in {:.2f} ms)", binary, keep.size(),
                 state.text().size() / 1024,
                 std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - writing_began).count());
    spdlog::default_logger()->flush();
    // A Type=notify manager is told, as for a reload; the next image says READY=1.
    if (setup_.notify_manager) setup_.notify_manager(ManagerNotify::reloading_message());
    if (setup_.announce)
        setup_.announce(binary, responder ? std::optional<uint64_t>(responder->client_id()) : std::nullopt);
    ExecRequest request{binary, -1,
                        next_argv(binary, setup_.config_path, setup_.extra_args, file->get(), previous.get(), std::nullopt),
                        keep};
    auto failed = exec_in_place(request);
    // Still here: the exec failed (the pre-flight ran the same file a moment ago).
    if (setup_.notify_manager) setup_.notify_manager("READY=1");
    if (setup_.announce_failed) setup_.announce_failed("upgrade refused: " + failed.error().text());
    refuse(failed.error().text());
}

void answer_upgrade(int reply_fd, const control::Json& message) {
    if (reply_fd < 0) return;
    std::string line = control::encode_line(message);
    // Blocking, but bounded: one short line to a client that is waiting for it (one
    // that stopped reading cannot hold the new image up for more than a second).
    int flags = ::fcntl(reply_fd, F_GETFL);
    if (flags >= 0) ::fcntl(reply_fd, F_SETFL, flags & ~O_NONBLOCK);
    timeval timeout{1, 0};
    ::setsockopt(reply_fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    (void)!::send(reply_fd, line.data(), line.size(), MSG_NOSIGNAL);
    ::close(reply_fd);
}

std::vector<int> fds_named_in(const nlohmann::json& state) {
    std::vector<int> fds;
    if (auto it = state.find("keep"); it != state.end() && it->is_array())
        for (const auto& fd : *it)
            if (fd.is_number_integer()) fds.push_back(fd.get<int>());
    return fds;
}

void roll_back(const RestoreArgs& args, const nlohmann::json& state, const std::string& config_path,
               const std::vector<std::string>& extra_args, const std::string& why) {
    if (args.previous_image_fd < 0) return;
    spdlog::error("upgrade: this image cannot take over ({}); rolling back to the previous image", why);
    spdlog::default_logger()->flush();
    // The previous image's fd is what we exec, not something it adopts: it must not
    // leak into it.
    std::vector<int> keep = fds_named_in(state);
    std::erase(keep, args.previous_image_fd);
    ::fcntl(args.previous_image_fd, F_SETFD, FD_CLOEXEC);
    keep.push_back(args.state_fd);
    ExecRequest request{"", args.previous_image_fd,
                        next_argv(field_or(state, "binary", std::string("fdsupd")), config_path, extra_args, args.state_fd,
                                  -1, why),
                        keep};
    auto failed = exec_in_place(request);
    spdlog::critical("upgrade: the rollback failed too: {}", failed.error().text());
}

void give_up_restore(const RestoreArgs& args, const nlohmann::json& state, const std::string& config_path,
                     const std::vector<std::string>& extra_args, const std::string& why) {
    roll_back(args, state, config_path, extra_args, why);
    // Still here: nothing to go back to (this is the rollback), or that exec failed.
    // The waiting client at least learns why.
    answer_upgrade(field_or(state, "reply_fd", -1), control::error_reply("fdsupd could not restore its state: " + why));
}

}  // namespace fdsup::upgrade
