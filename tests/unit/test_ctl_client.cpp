// fdsupctl's client against a scripted server on a real unix socket (a thread, no
// processes): progress before the reply, replies split across writes and far over the
// request limit, log lines after a follow reply, and errors that name the socket.
#include <doctest/doctest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "ctl/client.h"
#include "sys/unique_fd.h"
#include "unix_listener_support.h"

using fdsup::UniqueFd;
using fdsup::ctl::Client;
using fdsup::ctl::Json;

namespace {

// A control socket in a fresh temp dir whose one connection reads the request line, then
// writes `script` piece by piece and closes.
class ScriptedServer {
public:
    explicit ScriptedServer(std::vector<std::string> script) {
        thread_ = std::thread([this, script = std::move(script)] { serve(script); });
    }
    ~ScriptedServer() {
        if (thread_.joinable()) thread_.join();
    }
    const std::string& path() const { return listener_.path; }
    // What the client sent, once the connection is done.
    std::string request() {
        if (thread_.joinable()) thread_.join();
        return request_;
    }

private:
    void serve(const std::vector<std::string>& script) {
        UniqueFd connection(::accept4(listener_.fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (!connection) return;
        char byte;
        while (::read(connection.get(), &byte, 1) == 1 && byte != '\n') request_ += byte;
        for (const auto& piece : script) {
            size_t sent = 0;
            while (sent < piece.size()) {
                ssize_t n = ::send(connection.get(), piece.data() + sent, piece.size() - sent, MSG_NOSIGNAL);
                if (n <= 0) return;
                sent += static_cast<size_t>(n);
            }
        }
    }

    TempUnixListener listener_{"fdsup-ctl-test", "control.sock", 1};
    std::string request_;
    std::thread thread_;
};

}  // namespace

TEST_CASE("ctl client: an absent socket is an error naming its path") {
    auto client = Client::connect("/nonexistent-fdsup-dir/control.sock");
    REQUIRE_FALSE(client);
    CHECK(client.error().text() == "cannot reach fdsupd at /nonexistent-fdsup-dir/control.sock: No such file or directory");
}

TEST_CASE("ctl client: progress lines, then the reply, even split mid-line") {
    ScriptedServer server({
        R"({"progress":"web[0]: pid 1234 exited with status 0 after 120ms"})" "\n",
        R"({"something":"newer"})" "\n" R"({"progress":"web[0]: started)",
        R"( pid 1250"})" "\n" R"({"ok":true,"inst)",
        R"(ances":[]})" "\n",
    });
    auto client = Client::connect(server.path());
    REQUIRE(client);
    REQUIRE(client->send(Json::parse(R"({"cmd":"restart","names":["web"]})")));
    std::vector<std::string> progress;
    auto reply = client->read_reply([&](const Json& line) { progress.push_back(line["progress"].get<std::string>()); });
    REQUIRE(reply);
    CHECK(reply->line == R"({"ok":true,"instances":[]})");
    CHECK(reply->value == Json::parse(R"({"ok":true,"instances":[]})"));
    CHECK(progress == std::vector<std::string>{"web[0]: pid 1234 exited with status 0 after 120ms",
                                               "web[0]: started pid 1250"});
    CHECK(server.request() == R"({"cmd":"restart","names":["web"]})");
}

TEST_CASE("ctl client: a reply of several megabytes in many pieces") {
    std::string big_name(3 * 1024 * 1024, 'w');
    std::string line = R"({"ok":true,"workers":[{"name":")" + big_name + R"("}]})";
    std::vector<std::string> pieces;
    for (size_t at = 0; at < line.size(); at += 10000) pieces.push_back(line.substr(at, 10000));
    pieces.push_back("\n");
    ScriptedServer server(pieces);
    auto client = Client::connect(server.path());
    REQUIRE(client);
    REQUIRE(client->send(Json::parse(R"({"cmd":"status"})")));
    auto reply = client->read_reply(nullptr);
    REQUIRE(reply);
    CHECK(reply->line == line);
    CHECK(reply->value["workers"][0]["name"] == big_name);
}

TEST_CASE("ctl client: the connection closing before the reply is an error naming the socket") {
    ScriptedServer server({R"({"progress":"stopping"})" "\n"});
    auto client = Client::connect(server.path());
    REQUIRE(client);
    REQUIRE(client->send(Json::parse(R"({"cmd":"shutdown"})")));
    auto reply = client->read_reply(nullptr);
    REQUIRE_FALSE(reply);
    CHECK(reply.error().text() == "connection to fdsupd at " + server.path() + " closed before the reply");
}

TEST_CASE("ctl client: a line that is not JSON is an error, not a crash") {
    ScriptedServer server({"<html>\n"});
    auto client = Client::connect(server.path());
    REQUIRE(client);
    REQUIRE(client->send(Json::parse(R"({"cmd":"status"})")));
    auto reply = client->read_reply(nullptr);
    REQUIRE_FALSE(reply);
    CHECK(reply.error().text() == "fdsupd at " + server.path() + " sent a line that is not a JSON object: <html>");
}

TEST_CASE("ctl client: logs -f: log lines after the reply until the server closes") {
    ScriptedServer server({
        R"({"ok":true,"follow":true,"lines":[]})" "\n",
        R"({"log":{"time":1.5,"worker":"web","instance":0,"stream":"stdout","text":"a"}})" "\n",
        R"({"progress":"not a log line"})" "\n",
        R"({"log":{"time":2.5,"worker":"web","instance":1,"stream":"stderr","text":"b"}})",  // no "\n" before close
    });
    auto client = Client::connect(server.path());
    REQUIRE(client);
    REQUIRE(client->send(Json::parse(R"({"cmd":"logs","name":"web","lines":0,"follow":true})")));
    auto reply = client->read_reply(nullptr);
    REQUIRE(reply);
    std::vector<std::string> texts;
    std::vector<std::string> raw_lines;
    auto followed = client->follow_logs([&](const Json& line, std::string_view raw) {
        texts.push_back(line["log"]["text"].get<std::string>());
        raw_lines.emplace_back(raw);
        return true;
    });
    CHECK(followed);
    CHECK(texts == std::vector<std::string>{"a", "b"});
    CHECK(raw_lines[0] == R"({"log":{"time":1.5,"worker":"web","instance":0,"stream":"stdout","text":"a"}})");
}

TEST_CASE("ctl client: an upgrade notice ends the wait for a reply; the close says the exec happened") {
    ScriptedServer server({
        R"({"progress":"web[0]: started pid 1250 beside pid 1234"})" "\n",
        R"({"upgrading":true,"pid":42,"from":"0.1.0","upgrades":0,"resume":{"cmd":"rollout","names":["web"],"wait":true}})" "\n",
    });
    auto client = Client::connect(server.path());
    REQUIRE(client);
    CHECK(client->server_pid() == ::getpid());  // the scripted server is a thread of this process
    REQUIRE(client->send(Json::parse(R"({"cmd":"restart","names":["web"]})")));
    int progress = 0;
    auto reply = client->read_reply([&](const Json&) { ++progress; });
    REQUIRE(reply);
    CHECK(progress == 1);
    CHECK(fdsup::ctl::is_upgrading(reply->value));
    CHECK(reply->value["resume"]["cmd"] == "rollout");
    CHECK(client->upgrade_went_ahead());
}

TEST_CASE("ctl client: logs -f: an upgrade notice, then an exec that failed, and the lines go on") {
    ScriptedServer server({
        R"({"ok":true,"follow":true,"lines":[]})" "\n",
        R"({"log":{"time":1.5,"worker":"web","instance":0,"stream":"stdout","text":"a"}})" "\n",
        R"({"upgrading":true,"pid":42})" "\n",
        R"({"upgrading":false,"error":"upgrade refused: exec /x: No such file or directory"})" "\n",
        R"({"log":{"time":2.5,"worker":"web","instance":0,"stream":"stdout","text":"b"}})" "\n",
    });
    auto client = Client::connect(server.path());
    REQUIRE(client);
    REQUIRE(client->send(Json::parse(R"({"cmd":"logs","name":"web","lines":0,"follow":true})")));
    REQUIRE(client->read_reply(nullptr));
    std::vector<std::string> texts;
    auto on_log = [&](const Json& line, std::string_view) {
        texts.push_back(line["log"]["text"].get<std::string>());
        return true;
    };
    auto notice = client->follow_logs(on_log);
    REQUIRE(notice);
    REQUIRE(*notice);
    CHECK((*notice)->value["pid"] == 42);
    CHECK_FALSE(client->upgrade_went_ahead());
    auto rest = client->follow_logs(on_log);
    REQUIRE(rest);
    CHECK_FALSE(*rest);  // the server closed: the end of the stream
    CHECK(texts == std::vector<std::string>{"a", "b"});
}
