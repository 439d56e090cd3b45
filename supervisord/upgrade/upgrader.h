// `fdsupctl upgrade` and SIGUSR2 (SPEC "upgrade"): try the new binary out (pre-flight),
// then write the supervisor's state to a memfd and exec the new binary in place. The
// new image restores the state and answers the waiting `fdsupctl upgrade` itself, on
// the connection it inherits; if it cannot restore, it execs this image again (kept
// as an O_PATH fd), which restores instead and answers with the reason. The other
// control clients that wait for an outcome or follow logs are told just before the
// exec (UpgradeSetup::announce), so that they can pick up with the next image.
#pragma once

#include <uv.h>

#include <sys/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "control/control_server.h"
#include "json/json_writer.h"
#include "control/protocol.h"

namespace fdsup::upgrade {

struct UpgradeSetup {
    uv_loop_t* loop = nullptr;
    std::string self_binary;               // the default new binary: the path fdsupd was started from
    std::string config_path;
    std::vector<std::string> extra_args;   // passed on to the next image (--log-level ...)
    std::function<std::string()> refusal;  // why an upgrade cannot happen now ("" if it can)
    // Writes the state's members into the open object; every fd it names goes into `keep`.
    std::function<void(JsonWriter& w, std::vector<int>& keep)> snapshot;
    std::function<int(uint64_t client)> client_fd;  // a control connection's fd, -1 if gone
    std::function<std::optional<uid_t>(uint64_t client)> client_uid;
    std::function<void(const std::string& message)> notify_manager;  // sd_notify to fdsupd's own manager
    // Just before the exec: the control clients that wait for a request's outcome or
    // follow logs are told that `binary` takes over (the upgrade's own client, if any,
    // is not: the next image answers it), and the children the next image would not
    // know (exec probes) are ended; `announce_failed`: the exec failed after all.
    std::function<void(const std::string& binary, std::optional<uint64_t> upgrade_client)> announce;
    std::function<void(const std::string& why)> announce_failed;
    // For the event journal: the pre-flight passed and the state is about to be written
    // for `binary` (so the next image has this in it too); the upgrade did not happen.
    std::function<void(const std::string& binary)> began;
    std::function<void(const std::string& why)> failed;
};

class Upgrader {
public:
    explicit Upgrader(UpgradeSetup setup) : setup_(std::move(setup)) {}
    // A pre-flight still running finds nobody to report to (shutdown got there first).
    ~Upgrader() { *alive_ = false; }
    Upgrader(const Upgrader&) = delete;
    Upgrader& operator=(const Upgrader&) = delete;

    // `responder` is empty for SIGUSR2. Returns at once; on success this process
    // becomes the new image.
    void begin(std::optional<std::string> binary, std::optional<control::Responder> responder);

private:
    void exec_now(const std::string& binary, std::optional<control::Responder> responder);

    UpgradeSetup setup_;
    bool in_progress_ = false;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// The next image's side: the arguments it was given.
struct RestoreArgs {
    int state_fd = -1;
    int previous_image_fd = -1;           // absent in a rollback: there is nothing to go back to
    std::optional<std::string> rollback_reason;  // set when the new image gave up and execed us back
};

// Writes the final reply of `fdsupctl upgrade` on the inherited connection (if any) and closes it.
void answer_upgrade(int reply_fd, const control::Json& reply);

// Execs the previous image with the same state, after a failed restore. Returns only
// if that failed too.
void roll_back(const RestoreArgs& args, const nlohmann::json& state, const std::string& config_path,
               const std::vector<std::string>& extra_args, const std::string& why);

// roll_back, and if that returns, the waiting client is told why.
void give_up_restore(const RestoreArgs& args, const nlohmann::json& state, const std::string& config_path,
                     const std::vector<std::string>& extra_args, const std::string& why);

// Every fd a state document names (they must stay open across the rollback exec).
std::vector<int> fds_named_in(const nlohmann::json& state);

}  // namespace fdsup::upgrade
