// [workers.NAME]'s start = "on-demand" and idle_stop, with the checks between them and
// against the sockets the worker inherits (supervisor/on_demand.cpp is what they drive).
#include "config/table_reader.h"
#include "config/values.h"

namespace fdsup::config {

void Loader::read_on_demand(const Section& s, WorkerConfig& w) {
    read_choice(s, "start", w.start, kStartModes);
    read(s, "idle_stop", w.idle_stop, [&](const auto& n, const auto& p) { return as_duration(n, p); });
    const toml::node* idle = s.get("idle_stop");
    if (idle && w.idle_stop && *w.idle_stop == 0ms)
        error(*idle, s.at("idle_stop"), "must be greater than 0");
    // Nothing would start the worker again once idle_stop had stopped it.
    if (idle && w.start != StartMode::on_demand)
        error(*idle, s.at("idle_stop"),
              "needs start = \"on-demand\" (a worker stopped for being idle is started again only by a "
              "connection on its sockets)");
    // The watch is on the sockets the worker inherits: a socket fetched over SCM_RIGHTS
    // is asked for by a process that already runs.
    if (const toml::node* start = s.get("start"); start && w.start == StartMode::on_demand && w.fds.empty() &&
                                                  !s.get("fds") && !s.get("sockets"))
        error(*start, s.at("start"),
              "\"on-demand\" needs at least one socket the worker inherits (fds or sockets): fdsupd starts it when "
              "a connection waits there" +
                  std::string(w.scm_rights.empty() ? "" : "; sockets fetched over scm_rights are not watched"));
}

// idle_stop counts the connections open or queued on each inherited socket: only
// sockets that have connections (tcp, unix, unixpacket) can be counted.
void Loader::check_on_demand_sockets(const std::vector<ReadSocket>& sockets, const std::vector<ReadWorker>& workers) {
    for (const auto& rw : workers) {
        const WorkerConfig& w = rw.config;
        const toml::node* idle = rw.table->get("idle_stop");
        if (!idle || !w.idle_stop || w.start != StartMode::on_demand) continue;
        for (const auto& [fd, name] : w.fds) {
            for (const auto& socket : sockets) {
                if (socket.config.name != name || !socket.listen || socket.config.address.listens()) continue;
                error(*idle, rw.path + ".idle_stop",
                      "socket " + quote(name) + " (" + socket.config.listen +
                          ") has no connections for fdsupd to count; idle_stop works with tcp, unix and unixpacket "
                          "sockets (a worker on datagram sockets can exit with status 0 when idle instead)");
            }
        }
    }
}

}  // namespace fdsup::config
