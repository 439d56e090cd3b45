// What fdsupd does before its loop exists, in order: a sane process (stdio open, no
// inherited signal dispositions or mask), then what it will run: the state an in-place
// upgrade handed over (and the configuration the previous image ran), or the
// configuration file; logging; the fd limit; and, on a fresh start, the listening
// sockets, adopted from the service manager or bound here, and parked in its fd store.
#pragma once

#include <sys/resource.h>

#include <expected>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/loader.h"
#include "config/model.h"
#include "launcher/plan_builder.h"
#include "daemon/options.h"
#include "sockets/socket_table.h"
#include "state/state.h"
#include "sys/heap_warmup.h"
#include "sys/manager_notify.h"

namespace fdsup::daemon {

// Why fdsupd cannot start: `message` ("" if it has been reported already, as the
// configuration's errors are, one per line) and the exit status (1, or 2 for usage).
// A restoring image that read its state hands it back with the error: a rollback
// keeps every fd the state names open across the exec of the previous image.
struct StartError {
    explicit StartError(std::string message = {}, int exit_code = 1, std::optional<StateDocument> state = {})
        : message(std::move(message)), exit_code(exit_code), state(std::move(state)) {}
    std::string message;
    int exit_code;
    std::optional<StateDocument> state;
};

struct Startup {
    std::optional<StateDocument> state;    // restoring: the state the previous image wrote
    bool state_integers_only = false;      // its text held no fractional number (json_reader.h)
    std::unique_ptr<HeapWarmup> warm_heap;  // restoring: a heap ready for the restore's burst
    config::Config config;
    std::vector<config::ConfigError> config_warnings;  // logged once logging is up
    // The binary an upgrade execs by default: the path fdsupd was first started from.
    std::string self_binary;
    // Absolute: workers run in their own working_dir, and sd_notify() accepts only
    // absolute (or abstract) socket paths.
    std::string notify_path, fd_socket_path;
    SpawnContext spawn_context;            // what every spawn starts from
    ManagerNotify manager;                 // our own service manager, if NOTIFY_SOCKET was given
    // The manager keeps an fd store for us (FileDescriptorStoreMax=): the sockets fdsupd
    // binds itself are parked there, so that if fdsupd crashes, systemd holds them,
    // clients queue, and the restarted fdsupd gets them back by name (LISTEN_FDNAMES).
    bool park_sockets = false;
    std::vector<OwnedSocket> sockets;      // a fresh start's; a restore's come with the state
};

// Opens fd 0-2 if they are closed and drops inherited signal state; a restoring image
// keeps every signal blocked (as the previous image left them) until its handlers are
// in place.
void prepare_process(bool restoring);

// Everything above, up to the sockets.
std::expected<Startup, StartError> load(const Options& options);

// The sockets of a fresh start (Startup::sockets).
std::expected<void, StartError> bind_sockets(Startup& startup);

// Every signal unblocked (a restoring image does this once its handlers are in place).
void unblock_all_signals();

// Parks socket `name` in the service manager's fd store (see Startup::park_sockets).
bool park(ManagerNotify& manager, const std::string& name, int fd);

}  // namespace fdsup::daemon
