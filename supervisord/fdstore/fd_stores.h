// The workers' fd stores, one FdStore (fd_store.h) per instance slot (worker, index) that
// has anything stored, and their rules: what goes in (FDSTORE=1 over the notify socket,
// {"cmd":"store"} over the fd socket), what comes out (the next process of the slot),
// when a stored fd hangs up, and when a slot's store is released.
#pragma once

#include <uv.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "fdstore/fd_store.h"
#include "launcher/plan_builder.h"
#include "logging/log_rate_limit.h"
#include "table/instance.h"
#include "sys/result.h"

namespace fdsup {

class FdStores {
public:
    explicit FdStores(uv_loop_t* loop);
    FdStores(const FdStores&) = delete;
    FdStores& operator=(const FdStores&) = delete;

    // What stores watch their fds with (null if it could not be opened: stored fds are
    // then kept even when they hang up).
    HangupWatch* hangups() const { return hangups_.get(); }

    // Why `instance` may not change its store now, or "" if it may. Nothing may re-create
    // a store that was released (or is about to be): it would outlive its slot.
    std::string refusal(const Instance& instance, bool shutting_down) const;
    Result<StoreOutcome> store(Instance& instance, const std::string& name, std::vector<UniqueFd> fds, bool poll,
                               bool shutting_down);
    Result<size_t> remove(Instance& instance, const std::string& name, bool shutting_down);
    // What the next process of the slot is given, most recently stored first, as systemd
    // does (trimmed to fd_store_max first: a reload may have lowered it).
    std::vector<StoredFdRef> hand_over(Instance& instance);
    // Releases the stores of `worker`'s slots that have no future (see fd_stores.cpp).
    void release_ended(const Worker& worker);
    // The worker is gone from the table: its stores (released already) are forgotten.
    void forget(const Worker& worker);

    // What is stored, by instance index (empty: nothing), and how many fds in one slot.
    const std::map<int, FdStore>& of(const Worker& worker) const;
    size_t count(const Worker& worker, int index) const;
    // A slot's store, made if need be (an upgrade's restore fills it).
    FdStore& slot(const Worker& worker, int index);
    // A warning about a store, at most 20 per 10 s: a worker that stores in a loop
    // beyond its limit must not flood the log.
    void warn(const std::string& text);

private:
    bool on_hangup(int fd);
    FdStore* find(const Worker& worker, int index);
    void erase(const Worker& worker, int index);

    // Declared first: destroyed after the stores, which unwatch their fds.
    std::unique_ptr<HangupWatch> hangups_;
    // Per worker, per instance index; a slot with nothing stored has no entry.
    std::map<const Worker*, std::map<int, FdStore>> stores_;
    LogRateLimit log_{20, std::chrono::seconds(10)};
};

}  // namespace fdsup
