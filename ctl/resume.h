// fdsupctl across an in-place upgrade of fdsupd (control/protocol.h, "Upgrading").
//
// A request still waiting for its outcome (a rolling `restart`) or a `logs -f` is told
// just before fdsupd execs its next image; then the connection closes. The next image
// (or, after a rollback, the previous one restored) answers on the same socket path,
// as the same pid, once it has restored the state: fdsupctl connects again and sends
// `version`, to learn who answers, and the request the notice named ("resume"), whose
// answer is then taken as the original request's.
//
// Bounded: kUpgradeWait for the socket to answer again (a connect refused, a missing
// socket file, a full backlog and no answer yet are all waited out). fdsupd's process
// is watched meanwhile (a pidfd): if it exits, there is nothing to wait for.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "ctl/client.h"
#include "sys/result.h"

namespace fdsup::ctl {

inline constexpr std::chrono::seconds kUpgradeWait{30};

struct Resumed {
    Client client;     // connected to the image that answers now, the "resume" request sent
    std::string note;  // "fdsupd was upgraded in place (0.1.0 -> 0.2.0)", or rolled back
};

// After the "upgrading" `notice` came on `client`: waits for the exec, connects again and
// sends the notice's "resume" request (its reply is the caller's to read). nullopt: the exec failed after all, and the
// request goes on on `client` as before. An error (fdsupctl exits 3) says what happened:
// the request cannot be resumed (no "resume"), fdsupd's process exited, another fdsupd
// answers (it was restarted, not upgraded), or nothing answered within kUpgradeWait.
// `consequence` ends those messages ("the outcome of the restart is not known").
Result<std::optional<Resumed>> resume_after_upgrade(Client& client, const Json& notice,
                                                    const std::string& consequence);

}  // namespace fdsup::ctl
