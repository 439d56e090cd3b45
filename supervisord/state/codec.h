// Inside state/: the supervisor's friend that writes and reads its state (state.h).
#pragma once

#include <vector>

#include "json/json_writer.h"
#include "state/state.h"

namespace fdsup::state {

class FdClaims;  // restore.cpp: the fds a restore takes over, each checked

class Codec {
public:
    static void write(const Supervisor& sup, JsonWriter& w, std::vector<int>& keep);
    // Throws on anything missing, of the wrong type or inconsistent.
    static void restore(Supervisor& sup, const StateDocument& state, bool rolled_back);

private:
    static void restore_instance(Supervisor& sup, Worker& worker, const StateDocument& j, FdClaims& fds);
    static void restore_rollout(Supervisor& sup, Worker& worker, const StateDocument& r);
    static void restore_events(Supervisor& sup, const StateDocument& events);
    static void restore_logs(Supervisor& sup, const StateDocument& logs);
};

}  // namespace fdsup::state
