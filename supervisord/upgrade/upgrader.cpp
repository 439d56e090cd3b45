#include "upgrade/upgrader.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "sys/manager_notify.h"
#include "upgrade/preflight.h"
#include "upgrade/reexec.h"
#include "upgrade/state_file.h"
#include "version.h"

namespace fdsup::upgrade {
namespace {

size_t instance_count(const nlohmann::json& state) {
    size_t count = 0;
    if (auto workers = state.find("workers"); workers != state.end())
        for (const auto& worker : *workers)
            if (auto instances = worker.find("instances"); instances != worker.end()) count += instances->size();
    return count;
}

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

}  // namespace

void Upgrader::begin(std::optional<std::string> binary, std::optional<control::Responder> responder) {
    if (in_progress_) return reply(responder, control::error_reply("an upgrade is already in progress"));
    if (auto refusal = setup_.refusal(); !refusal.empty())
        return reply(responder, control::error_reply("upgrade refused: " + refusal));
    std::string path = binary.value_or(setup_.self_binary);
    in_progress_ = true;
    spdlog::info("upgrade: trying out {}", path);
    if (responder) responder->progress("pre-flight: " + path + " --check-config, --state-formats");
    run_preflight(setup_.loop, path, setup_.config_path, kStateVersion, [this, path, responder](Result<void> checked) {
        if (!checked) {
            in_progress_ = false;
            spdlog::error("upgrade refused: {}", checked.error().text());
            return reply(responder, control::error_reply("upgrade refused: " + checked.error().text()));
        }
        exec_now(path, responder);
    });
}

void Upgrader::exec_now(const std::string& binary, std::optional<control::Responder> responder) {
    auto refuse = [&](const std::string& why) {
        in_progress_ = false;
        spdlog::error("upgrade refused: {}", why);
        reply(responder, control::error_reply("upgrade refused: " + why));
    };
    // Checked again: the state may have changed while the pre-flight ran.
    if (auto refusal = setup_.refusal(); !refusal.empty()) return refuse(refusal);
    std::vector<int> keep;
    nlohmann::json state = setup_.snapshot(keep);
    int reply_fd = -1;
    if (responder) {
        responder->progress("pre-flight passed; fdsupd " + std::string(kVersion) + " execs " + binary);
        reply_fd = setup_.client_fd(responder->client_id());
    }
    UniqueFd answer;
    if (reply_fd >= 0) {
        answer.reset(::fcntl(reply_fd, F_DUPFD_CLOEXEC, 3));
        if (answer) keep.push_back(answer.get());
    }
    state["version"] = kStateVersion;
    state["old_version"] = kVersion;
    state["reply_fd"] = answer ? answer.get() : -1;
    state["binary"] = setup_.self_binary;  // what a rollback execs (argv[0] of this image)
    // The previous image, for a rollback: this very executable, even if its file has
    // been replaced or deleted since.
    UniqueFd previous(::open("/proc/self/exe", O_PATH | O_CLOEXEC));
    if (!previous) return refuse("cannot keep the current image for a rollback: " + std::string(std::strerror(errno)));
    keep.push_back(previous.get());
    state["keep"] = keep;
    auto file = write_state_file(state);
    if (!file) return refuse(file.error().text());
    keep.push_back(file->get());

    spdlog::info("upgrade: exec {} ({} instances, {} fds kept)", binary, instance_count(state), keep.size());
    spdlog::default_logger()->flush();
    // A Type=notify manager is told, as for a reload; the next image says READY=1.
    if (setup_.notify_manager) setup_.notify_manager(ManagerNotify::reloading_message());
    ExecRequest request{binary, -1,
                        next_argv(binary, setup_.config_path, setup_.extra_args, file->get(), previous.get(), std::nullopt),
                        keep};
    auto failed = exec_in_place(request);
    // Still here: the exec failed (the pre-flight ran the same file a moment ago).
    if (setup_.notify_manager) setup_.notify_manager("READY=1");
    refuse(failed.error().text());
}

void answer_upgrade(int reply_fd, const control::Json& message) {
    if (reply_fd < 0) return;
    std::string line = control::encode_line(message);
    // Blocking is fine here: one short line to a client that is waiting for it.
    int flags = ::fcntl(reply_fd, F_GETFL);
    if (flags >= 0) ::fcntl(reply_fd, F_SETFL, flags & ~O_NONBLOCK);
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
                        next_argv(state.value("binary", std::string("fdsupd")), config_path, extra_args, args.state_fd,
                                  -1, why),
                        keep};
    auto failed = exec_in_place(request);
    spdlog::critical("upgrade: the rollback failed too: {}", failed.error().text());
}

}  // namespace fdsup::upgrade
