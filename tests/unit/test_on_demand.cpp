// start = "on-demand" and idle_stop: the keys, their checks and their reload diff; and
// what idle_stop measures (sockets/connection_count.h), on real loopback sockets.
#include <doctest/doctest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "config/diff.h"
#include "config_test_support.h"
#include "sockets/connection_count.h"
#include "sys/unique_fd.h"

using namespace std::chrono_literals;
using namespace config_test;
using fdsup::UniqueFd;

namespace {

const char* kSockets = R"(
[sockets.http]
listen = "tcp://127.0.0.1:8080"
[sockets.dgram]
listen = "udp://127.0.0.1:8081"
)";

std::string web_with(const std::string& keys) {
    return std::string(kSockets) + "[workers.web]\ncommand = [\"/bin/app\"]\n" + keys + "\n";
}

bool any_contains(const std::vector<std::string>& errors, const std::string& text) {
    for (const auto& e : errors)
        if (e.find(text) != std::string::npos) return true;
    return false;
}

UniqueFd tcp_listener(sockaddr_in& address) {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(fd);
    address = {};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    REQUIRE(::listen(fd.get(), 16) == 0);
    socklen_t size = sizeof address;
    REQUIRE(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&address), &size) == 0);
    return fd;
}

UniqueFd connect_to(int family, const sockaddr* address, socklen_t size, int type = SOCK_STREAM) {
    UniqueFd fd(::socket(family, type | SOCK_CLOEXEC, 0));
    REQUIRE(fd);
    REQUIRE(::connect(fd.get(), address, size) == 0);
    return fd;
}

size_t open_count(int fd) {
    auto sample = fdsup::sample_connections(fd);
    REQUIRE_MESSAGE(sample.has_value(), (sample ? "" : sample.error().text()));
    return sample->open;
}

}  // namespace

TEST_CASE("on-demand: start and idle_stop are read, with-supervisor and no idle_stop by default") {
    auto plain = valid(web_with("sockets = [\"http\"]"));
    CHECK(plain.workers[0].start == StartMode::with_supervisor);
    CHECK_FALSE(plain.workers[0].idle_stop.has_value());
    auto demand = valid(web_with("sockets = [\"http\"]\nstart = \"on-demand\"\nidle_stop = \"10m\""));
    CHECK(demand.workers[0].start == StartMode::on_demand);
    CHECK(demand.workers[0].idle_stop == std::optional<Duration>(600s));
    // A datagram socket starts it too; only idle_stop cannot count its connections.
    CHECK(valid(web_with("sockets = [\"dgram\"]\nstart = \"on-demand\"")).workers[0].start == StartMode::on_demand);
}

TEST_CASE("on-demand: each misuse is an error that says why") {
    CHECK(any_contains(errors_of(web_with("start = \"lazy\"")), "start"));
    CHECK(any_contains(errors_of(web_with("sockets = [\"http\"]\nidle_stop = \"1m\"")),
                       "idle_stop: needs start = \"on-demand\""));
    CHECK(any_contains(errors_of(web_with("start = \"on-demand\"")),
                       "\"on-demand\" needs at least one socket the worker inherits"));
    CHECK(any_contains(errors_of(web_with("start = \"on-demand\"\nscm_rights = [\"http\"]")),
                       "sockets fetched over scm_rights are not watched"));
    CHECK(any_contains(errors_of(web_with("sockets = [\"http\"]\nstart = \"on-demand\"\nidle_stop = \"0s\"")),
                       "must be greater than 0"));
    CHECK(any_contains(errors_of(web_with("sockets = [\"http\", \"dgram\"]\nstart = \"on-demand\"\nidle_stop = \"1m\"")),
                       "socket \"dgram\" (udp://127.0.0.1:8081) has no connections for fdsupd to count"));
}

TEST_CASE("on-demand: a reload that changes only start or idle_stop applies them live") {
    auto a = valid(web_with("sockets = [\"http\"]"));
    auto b = valid(web_with("sockets = [\"http\"]\nstart = \"on-demand\"\nidle_stop = \"1m\""));
    auto c = valid(web_with("sockets = [\"http\"]\nstart = \"on-demand\"\nidle_stop = \"2m\"\nenv = { X = \"1\" }"));
    auto ab = diff_configs(a, b);
    CHECK(ab.workers_changed.empty());
    CHECK(ab.workers_demand_changed == std::vector<std::string>{"web"});
    CHECK(ab.workers_unchanged == std::vector<std::string>{"web"});
    auto bc = diff_configs(b, c);  // with another change: restarted as any changed spec
    CHECK(bc.workers_changed == std::vector<std::string>{"web"});
    CHECK(bc.workers_demand_changed.empty());
    CHECK(diff_configs(b, b).workers_demand_changed.empty());
}

TEST_CASE("connection count: tcp connections queued and accepted count; closed by the server, remembered") {
    sockaddr_in address{};
    UniqueFd listener = tcp_listener(address);
    CHECK(open_count(listener.get()) == 0);
    {
        UniqueFd client = connect_to(AF_INET, reinterpret_cast<sockaddr*>(&address), sizeof address);
        CHECK(open_count(listener.get()) == 1);  // in the accept queue
        UniqueFd accepted(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
        REQUIRE(accepted);
        CHECK(open_count(listener.get()) == 1);  // accepted, open
        // Another listener's connections (another port) are not counted.
        sockaddr_in other_address{};
        UniqueFd other = tcp_listener(other_address);
        UniqueFd other_client = connect_to(AF_INET, reinterpret_cast<sockaddr*>(&other_address), sizeof other_address);
        CHECK(open_count(listener.get()) == 1);
        CHECK(open_count(other.get()) == 1);
        accepted.reset();  // the server closes first: TIME_WAIT once the client closes too
    }
    auto sample = fdsup::sample_connections(listener.get());
    REQUIRE(sample.has_value());
    CHECK(sample->open == 0);
    REQUIRE(sample->last_closed_ago.has_value());
    CHECK(*sample->last_closed_ago < 10s);
}

TEST_CASE("connection count: unix stream connections carry the listener's name") {
    char dir[] = "/tmp/fdsup-conn-XXXXXX";
    REQUIRE(::mkdtemp(dir) != nullptr);
    std::string path = std::string(dir) + "/s.sock";
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
    UniqueFd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(::bind(listener.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    REQUIRE(::listen(listener.get(), 16) == 0);
    CHECK(open_count(listener.get()) == 0);
    {
        UniqueFd client = connect_to(AF_UNIX, reinterpret_cast<sockaddr*>(&address), sizeof address);
        CHECK(open_count(listener.get()) == 1);
        UniqueFd accepted(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
        REQUIRE(accepted);
        CHECK(open_count(listener.get()) == 1);
    }
    CHECK(open_count(listener.get()) == 0);
    ::unlink(path.c_str());
    ::rmdir(dir);
}

TEST_CASE("connection count: a datagram socket has none to count") {
    UniqueFd udp(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    CHECK_FALSE(fdsup::sample_connections(udp.get()).has_value());
}
