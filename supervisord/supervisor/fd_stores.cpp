// The workers' fd stores (fd_store.h): what goes in (FDSTORE=1 over the notify socket,
// {"cmd":"store"} over the fd socket), what comes out (the next process of the slot),
// and when a store is released.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "notify/notify_message.h"
#include "supervisor/supervisor.h"

namespace fdsup {

// A worker that stores in a loop beyond its limit must not flood the log.
void Supervisor::warn_fd_store(const std::string& text) {
    uint64_t suppressed = 0;
    if (fd_store_log_.allow(Clock::now(), suppressed))
        spdlog::warn("{}{}", text,
                     LogRateLimit::left_out(suppressed, "fd store warnings left out"));
}

// Why `instance` may not change its fd store now, or "" if it may. Nothing may re-create
// a store that was released (or is about to be): it would outlive its slot.
std::string Supervisor::fd_store_refusal(const Instance& instance) const {
    const Worker& worker = *instance.worker;
    if (worker.config.fd_store_max <= 0) return "the fd store is not enabled for this worker (fd_store_max = 0)";
    if (shutting_down_) return "fdsupd is shutting down";
    if (worker.stopped_by_operator || worker.removing) return "the worker is being stopped; its fd store is released";
    if (instance.index >= worker.config.instances)
        return "instance " + std::to_string(instance.index) + " is being scaled away; its fd store is released";
    if (instance.retiring)
        return "this process is being replaced; the fd store belongs to the process that took over";
    return "";
}

Result<StoreOutcome> Supervisor::store_fds(Instance& instance, const std::string& name, std::vector<UniqueFd> fds,
                                           bool poll) {
    if (auto refusal = fd_store_refusal(instance); !refusal.empty()) return fail(refusal);
    Worker& worker = *instance.worker;
    const std::string who = instance.label();
    size_t offered = fds.size();
    FdStore& store = worker.fd_stores.try_emplace(instance.index, hangups_.get()).first->second;
    StoreOutcome outcome = store.add(name, std::move(fds), poll, static_cast<size_t>(worker.config.fd_store_max));
    spdlog::debug("worker {}: stored {} fd(s) as \"{}\"{} ({} of {} in its fd store{})", who, outcome.stored, name,
                  poll ? "" : " (not polled)", store.size(), worker.config.fd_store_max,
                  outcome.duplicates > 0 ? "; " + std::to_string(outcome.duplicates) + " already there, closed" : "");
    if (outcome.over_limit > 0)
        warn_fd_store(fmt::format("worker {}: the fd store is full (fd_store_max = {}, or {} bytes of names): {} of {} "
                                  "fd(s) for \"{}\" closed",
                                  who, worker.config.fd_store_max, kMaxFdNamesLength, outcome.over_limit, offered,
                                  name));
    if (store.empty()) worker.fd_stores.erase(instance.index);
    return outcome;
}

Result<size_t> Supervisor::remove_stored_fds(Instance& instance, const std::string& name) {
    if (auto refusal = fd_store_refusal(instance); !refusal.empty()) return fail(refusal);
    Worker& worker = *instance.worker;
    auto it = worker.fd_stores.find(instance.index);
    size_t removed = it == worker.fd_stores.end() ? 0 : it->second.remove(name);
    if (it != worker.fd_stores.end() && it->second.empty()) worker.fd_stores.erase(it);
    spdlog::debug("worker {}: removed {} fd(s) named \"{}\" from its fd store", instance.label(), removed, name);
    return removed;
}

// systemd's rules: FDSTOREREMOVE=1 wins over FDSTORE=1 (the fds that came with it are
// closed); a store or removal that cannot be done is logged and its fds closed, and the
// rest of the message is handled all the same.
void Supervisor::handle_fd_store_message(Instance& instance, const notify::NotifyMessage& message,
                                         std::vector<UniqueFd> fds) {
    const std::string who = instance.label();
    if (message.fd_store_remove) {
        if (!message.fd_name)
            return warn_fd_store("worker " + who + ": FDSTOREREMOVE=1 without FDNAME= ignored (which fds?)");
        if (auto removed = remove_stored_fds(instance, *message.fd_name); !removed)
            warn_fd_store("worker " + who + ": FDSTOREREMOVE=1 ignored: " + removed.error().text());
        return;  // fds sent along are closed
    }
    if (!message.fd_store || fds.empty()) return;
    if (auto stored = store_fds(instance, message.fd_name.value_or("stored"), std::move(fds),
                                message.fd_poll.value_or(true));
        !stored)
        warn_fd_store("worker " + who + ": FDSTORE=1 refused, fds closed: " + stored.error().text());
}

bool Supervisor::on_stored_fd_hangup(int fd) {
    for (auto& worker : workers_) {
        for (auto it = worker->fd_stores.begin(); it != worker->fd_stores.end(); ++it) {
            std::string name;
            if (!it->second.drop(fd, &name)) continue;
            spdlog::info("worker {}: stored fd \"{}\" hung up; dropped from the fd store",
                         instance_label(worker->config.name, it->first), name);
            if (it->second.empty()) worker->fd_stores.erase(it);
            return true;
        }
    }
    return false;
}

std::vector<StoredFdRef> Supervisor::fds_to_hand_over(Instance& instance) {
    Worker& worker = *instance.worker;
    auto it = worker.fd_stores.find(instance.index);
    if (it == worker.fd_stores.end()) return {};
    // fd_store_max lowered by a reload: the newest go.
    if (size_t closed = it->second.trim(static_cast<size_t>(std::max(worker.config.fd_store_max, 0))); closed > 0)
        spdlog::warn("worker {}: fd_store_max is now {}: closed the {} newest stored fd(s)", instance.label(),
                     worker.config.fd_store_max, closed);
    // In systemd's order: the most recently stored first.
    std::vector<StoredFdRef> handed;
    const auto& entries = it->second.entries();
    for (auto entry = entries.rbegin(); entry != entries.rend(); ++entry) handed.push_back({entry->name, entry->fd.get()});
    if (it->second.empty()) worker.fd_stores.erase(it);
    return handed;
}

// A slot's store is released once no process of it will run again: the worker was
// stopped by the operator or removed, the slot was scaled away, or its instance ended
// for good (exited with no restart due, or failed). A stop-start restart or a restart
// after backoff keeps it. Called on every state change (sweep).
void Supervisor::release_fd_stores(Worker& worker) {
    std::erase_if(worker.fd_stores, [&](auto& slot) {
        auto& [index, store] = slot;
        std::string why;
        if (worker.removing) why = "the worker was removed";
        else if (worker.stopped_by_operator) why = "the worker was stopped";
        else if (index >= worker.config.instances) why = "the instance was scaled away";
        else if (worker.config.fd_store_max <= 0) why = "fd_store_max is now 0";
        else {
            bool ended = std::none_of(worker.instances.begin(), worker.instances.end(), [&](const auto& instance) {
                return instance->index == index && instance->state != InstanceState::exited &&
                       instance->state != InstanceState::failed;
            });
            if (ended) why = "the instance ended";
        }
        if (why.empty()) return false;
        spdlog::info("worker {}: fd store released ({}): {} fd(s) closed", instance_label(worker.config.name, index),
                     why, store.size());
        return true;
    });
}

}  // namespace fdsup
