#include "fdstore/fd_stores.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace fdsup {

FdStores::FdStores(uv_loop_t* loop) {
    auto hangups = HangupWatch::open(loop, [this](int fd) { return on_hangup(fd); });
    if (hangups) hangups_ = std::move(*hangups);
    else spdlog::error("{}; stored fds are kept even when they hang up", hangups.error().text());
}

void FdStores::warn(const std::string& text) {
    uint64_t suppressed = 0;
    if (log_.allow(Clock::now(), suppressed))
        spdlog::warn("{}{}", text,
                     LogRateLimit::left_out(suppressed, "fd store warnings left out"));
}

std::string FdStores::refusal(const Instance& instance, bool shutting_down) const {
    const Worker& worker = *instance.worker;
    if (worker.config.fd_store_max <= 0) return "the fd store is not enabled for this worker (fd_store_max = 0)";
    if (shutting_down) return "fdsupd is shutting down";
    if (worker.stopped_by_operator || worker.removing) return "the worker is being stopped; its fd store is released";
    if (instance.index >= worker.config.instances)
        return "instance " + std::to_string(instance.index) + " is being scaled away; its fd store is released";
    if (instance.retiring)
        return "this process is being replaced; the fd store belongs to the process that took over";
    return "";
}

Result<StoreOutcome> FdStores::store(Instance& instance, const std::string& name, std::vector<UniqueFd> fds, bool poll,
                                     bool shutting_down) {
    if (auto why = refusal(instance, shutting_down); !why.empty()) return fail(why);
    Worker& worker = *instance.worker;
    const std::string who = instance.label();
    size_t offered = fds.size();
    FdStore& slot = this->slot(worker, instance.index);
    StoreOutcome outcome = slot.add(name, std::move(fds), poll, static_cast<size_t>(worker.config.fd_store_max));
    spdlog::debug("worker {}: stored {} fd(s) as \"{}\"{} ({} of {} in its fd store{})", who, outcome.stored, name,
                  poll ? "" : " (not polled)", slot.size(), worker.config.fd_store_max,
                  outcome.duplicates > 0 ? "; " + std::to_string(outcome.duplicates) + " already there, closed" : "");
    if (outcome.over_limit > 0)
        warn(fmt::format("worker {}: the fd store is full (fd_store_max = {}, or {} bytes of names): {} of {} "
                                  "fd(s) for \"{}\" closed",
                                  who, worker.config.fd_store_max, kMaxFdNamesLength, outcome.over_limit, offered,
                                  name));
    if (slot.empty()) erase(worker, instance.index);
    return outcome;
}

Result<size_t> FdStores::remove(Instance& instance, const std::string& name, bool shutting_down) {
    if (auto why = refusal(instance, shutting_down); !why.empty()) return fail(why);
    FdStore* slot = find(*instance.worker, instance.index);
    size_t removed = slot == nullptr ? 0 : slot->remove(name);
    if (slot != nullptr && slot->empty()) erase(*instance.worker, instance.index);
    spdlog::debug("worker {}: removed {} fd(s) named \"{}\" from its fd store", instance.label(), removed, name);
    return removed;
}

bool FdStores::on_hangup(int fd) {
    for (auto& [worker, slots] : stores_) {
        for (auto& [index, store] : slots) {
            std::string name;
            if (!store.drop(fd, &name)) continue;
            spdlog::info("worker {}: stored fd \"{}\" hung up; dropped from the fd store",
                         instance_label(worker->config.name, index), name);
            if (store.empty()) erase(*worker, index);
            return true;
        }
    }
    return false;
}

std::vector<StoredFdRef> FdStores::hand_over(Instance& instance) {
    Worker& worker = *instance.worker;
    FdStore* slot = find(worker, instance.index);
    if (slot == nullptr) return {};
    // fd_store_max lowered by a reload: the newest go.
    if (size_t closed = slot->trim(static_cast<size_t>(std::max(worker.config.fd_store_max, 0))); closed > 0)
        spdlog::warn("worker {}: fd_store_max is now {}: closed the {} newest stored fd(s)", instance.label(),
                     worker.config.fd_store_max, closed);
    // In systemd's order: the most recently stored first.
    std::vector<StoredFdRef> handed;
    const auto& entries = slot->entries();
    for (auto entry = entries.rbegin(); entry != entries.rend(); ++entry) handed.push_back({entry->name, entry->fd.get()});
    if (slot->empty()) erase(worker, instance.index);
    return handed;
}

// A slot's store is released once no process of it will run again: the worker was
// stopped by the operator or removed, the slot was scaled away, or its instance ended
// for good (exited with no restart due, or failed). A stop-start restart or a restart
// after backoff keeps it. Called on every state change (sweep).
void FdStores::release_ended(const Worker& worker) {
    auto slots = stores_.find(&worker);
    if (slots == stores_.end()) return;
    std::erase_if(slots->second, [&](auto& slot) {
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
    if (slots->second.empty()) stores_.erase(slots);
}

const std::map<int, FdStore>& FdStores::of(const Worker& worker) const {
    static const std::map<int, FdStore> none;
    auto it = stores_.find(&worker);
    return it == stores_.end() ? none : it->second;
}

size_t FdStores::count(const Worker& worker, int index) const {
    const auto& slots = of(worker);
    auto it = slots.find(index);
    return it == slots.end() ? 0 : it->second.size();
}

FdStore& FdStores::slot(const Worker& worker, int index) {
    return stores_[&worker].try_emplace(index, hangups_.get()).first->second;
}

FdStore* FdStores::find(const Worker& worker, int index) {
    auto slots = stores_.find(&worker);
    if (slots == stores_.end()) return nullptr;
    auto it = slots->second.find(index);
    return it == slots->second.end() ? nullptr : &it->second;
}

void FdStores::erase(const Worker& worker, int index) {
    auto slots = stores_.find(&worker);
    if (slots == stores_.end()) return;
    slots->second.erase(index);
    if (slots->second.empty()) stores_.erase(slots);
}

void FdStores::forget(const Worker& worker) { stores_.erase(&worker); }

}  // namespace fdsup
