#include "notify/notify_handler.h"

#include <unistd.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "config/values.h"
#include "notify/notify_message.h"

namespace fdsup::notify {
namespace {

// A microsecond count from a worker, as a duration that cannot overflow the clock's
// arithmetic (UINT64_MAX would wrap negative): capped at a year.
std::chrono::microseconds worker_usec(uint64_t usec) {
    constexpr uint64_t kYear = 365ULL * 24 * 3600 * 1000 * 1000;
    return std::chrono::microseconds(static_cast<int64_t>(std::min(usec, kYear)));
}

}  // namespace

NotifyHandler::NotifyHandler(uv_loop_t* loop, Supervisor& supervisor) : supervisor_(supervisor), drop_summary_(loop) {}

NotifyHandler::Sender NotifyHandler::find_sender(pid_t pid) const {
    Supervisor::ProcessOwner owner = supervisor_.owner_of(pid);
    if (owner.instance == nullptr) return {nullptr, "not a worker process"};
    if (owner.main || owner.instance->worker->config.notify_access == config::NotifyAccess::all)
        return {owner.instance, {}};
    return {nullptr, "a descendant of " + owner.instance->label() + " (pid " + std::to_string(owner.instance->pid) +
                         "), and notify_access = \"main\""};
}

void NotifyHandler::drop(pid_t pid, const std::string& who, const std::string& why) {
    ++dropped_;
    uint64_t suppressed = 0;
    if (!drop_log_.allow(Clock::now(), suppressed)) {
        // A flood: one summary line when this window ends (a one-shot timer, armed
        // only while lines are being refused).
        if (!drop_summary_.active()) {
            auto left = std::chrono::ceil<std::chrono::milliseconds>(drop_log_.window_end() - Clock::now());
            drop_summary_.start(std::max(left, std::chrono::milliseconds(1)), [this] {
                if (uint64_t refused = drop_log_.take_suppressed(); refused > 0)
                    spdlog::warn("notify: {} more messages dropped without a log line ({} dropped in all)", refused,
                                 dropped_);
            });
        }
        return;
    }
    std::string sender = who.empty() ? "pid " + std::to_string(pid) : who + " (pid " + std::to_string(pid) + ")";
    spdlog::warn("notify: dropped a message from {}: {}{}", sender, why,
                 LogRateLimit::left_out(suppressed, "dropped without a log line"));
}

void NotifyHandler::handle(Datagram datagram) {
    if (!datagram.problem.empty()) return drop(datagram.pid, "", datagram.problem);
    Sender sender = find_sender(datagram.pid);
    if (sender.instance == nullptr) return drop(datagram.pid, "", sender.refusal);
    Instance& instance = *sender.instance;
    const std::string who = instance.label();

    auto parsed = parse_notify_message(datagram.data);
    if (!parsed) return drop(datagram.pid, who, parsed.error().text());
    const NotifyMessage& message = *parsed;
    // BARRIER=1 (sd_notify_barrier) sends the write end of a pipe: closing it, once
    // everything sent before has been handled, is the answer. Any other fds are unasked
    // for, unless the message is about the fd store.
    if (!datagram.fds.empty() && !message.barrier && !message.fd_store && !message.fd_store_remove)
        return drop(datagram.pid, who,
                           std::to_string(datagram.fds.size()) + " fd(s) without FDSTORE=1; fds closed");
    if (message.fd_store || message.fd_store_remove)
        handle_fd_store(instance, message, std::move(datagram.fds));
    if (message.status) instance.status_text = *message.status;
    if (message.main_pid && *message.main_pid != instance.pid)
        spdlog::warn("worker {}: MAINPID={} ignored: fdsupd follows the process it started (pid {})", who,
                     *message.main_pid, instance.pid);
    if (message.reloading) {
        instance.reloading = true;
        spdlog::info("worker {}: reloading", who);
    }
    if (message.stopping) {
        instance.stopping_notified = true;
        spdlog::info("worker {}: announced that it is stopping", who);
    }
    if (message.watchdog_usec) {
        // Rounded up: 500 us must not become 0 ms, which means "off".
        instance.watchdog_timeout = std::chrono::ceil<config::Duration>(worker_usec(*message.watchdog_usec));
        spdlog::info("worker {}: watchdog timeout set to {} by the worker", who,
                     config::format_duration(instance.watchdog_timeout));
        if (instance.state == InstanceState::running) supervisor_.watchdog_ping(instance);
    }
    if (message.ready) {
        instance.reloading = false;
        if (instance.state == InstanceState::starting) supervisor_.mark_ready(instance);
    }
    if (message.watchdog == WatchdogRequest::ping &&
        (instance.state == InstanceState::starting || instance.state == InstanceState::running))
        supervisor_.watchdog_ping(instance);
    if (message.watchdog == WatchdogRequest::trigger)
        supervisor_.kill_for(instance, KillReason::watchdog, "watchdog triggered by the worker (WATCHDOG=trigger)");
    if (message.extend_timeout_usec)
        supervisor_.extend_timeout(instance, Clock::now() + worker_usec(*message.extend_timeout_usec));
    for (const auto& key : message.ignored_keys) spdlog::debug("worker {}: notify key {} ignored", who, key);
    supervisor_.state_changed();
}

// systemd's rules: FDSTOREREMOVE=1 wins over FDSTORE=1 (the fds that came with it are
// closed); a store or removal that cannot be done is logged and its fds closed, and the
// rest of the message is handled all the same.
void NotifyHandler::handle_fd_store(Instance& instance, const NotifyMessage& message, std::vector<UniqueFd> fds) {
    const std::string who = instance.label();
    if (message.fd_store_remove) {
        if (!message.fd_name)
            return supervisor_.fd_stores().warn("worker " + who + ": FDSTOREREMOVE=1 without FDNAME= ignored (which fds?)");
        if (auto removed = supervisor_.remove_stored_fds(instance, *message.fd_name); !removed)
            supervisor_.fd_stores().warn("worker " + who + ": FDSTOREREMOVE=1 ignored: " + removed.error().text());
        return;  // fds sent along are closed
    }
    if (!message.fd_store || fds.empty()) return;
    if (auto stored = supervisor_.store_fds(instance, message.fd_name.value_or("stored"), std::move(fds),
                                          message.fd_poll.value_or(true));
        !stored)
        supervisor_.fd_stores().warn("worker " + who + ": FDSTORE=1 refused, fds closed: " + stored.error().text());
}


}  // namespace fdsup::notify
