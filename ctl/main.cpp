// fdsupctl: argv -> one request to fdsupd -> its reply on stdout, and the exit status.
//
// Exit status (SPEC): 0 done · 1 fdsupd refused or the operation failed · 2 usage
// error · 3 cannot reach fdsupd (connect failed, or the connection broke before the
// final reply and the request could not be followed across an in-place upgrade).
//
// A request that waits (a rolling restart), `logs -f` and `events -f` go on across an
// in-place upgrade of fdsupd: see ctl/resume.h.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <variant>

#include "ctl/arguments.h"
#include "ctl/client.h"
#include "ctl/event_line.h"
#include "ctl/exec.h"
#include "ctl/exit_status.h"
#include "ctl/render.h"
#include "ctl/resume.h"
#include "ctl/terminal_safe.h"
#include "ctl/top.h"

namespace {

using fdsup::ctl::Command;
using fdsup::ctl::Json;

using fdsup::ctl::kExitFailed;
using fdsup::ctl::kExitOk;
using fdsup::ctl::kExitUnreachable;
using fdsup::ctl::kExitUsage;

void print(std::FILE* stream, std::string_view text) {
    if (!text.empty()) std::fwrite(text.data(), 1, text.size(), stream);
}

int unreachable(const fdsup::Error& error) {
    std::fprintf(stderr, "fdsupctl: %s\n", error.text().c_str());
    return kExitUnreachable;
}

// `logs -f` and `top` end with Ctrl-C: that is their normal end, not a failure. Every
// log line and frame is flushed as it is printed, so there is nothing left to do but
// leave. (top's screen puts its own handler in place, to restore the terminal first.)
extern "C" void leave_on_interrupt(int) {
    _exit(kExitOk);
}

void exit_zero_on_interrupt() {
    struct sigaction action{};
    action.sa_handler = leave_on_interrupt;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, nullptr);
}

// The notice's "instances" (what the request did before an upgrade), gathered.
void gather_done_before(const Json& notice, Json& done_before) {
    auto instances = notice.find("instances");
    if (instances == notice.end() || !instances->is_array()) return;
    for (const auto& instance : *instances) done_before.push_back(instance);
}

// A request going on across in-place upgrades (ctl/resume.h): where its final reply
// comes from, and what it said before.
struct InFlight {
    fdsup::ctl::Client client;
    Json done_before = Json::array();  // instances reported done before an upgrade
    bool resumed = false;
};

// The final reply of the request in flight, following it across in-place upgrades.
// `consequence` ends the message if it cannot be followed; `goes_on` the note if it can.
fdsup::Result<fdsup::ctl::Reply> final_reply(InFlight& flight, const std::string& consequence,
                                             const std::string& goes_on,
                                             const std::function<void(const Json&)>& on_progress) {
    for (;;) {
        auto reply = flight.client.read_reply(on_progress);
        if (!reply || !fdsup::ctl::is_upgrading(reply->value)) return reply;
        auto next = fdsup::ctl::resume_after_upgrade(flight.client, reply->value, consequence);
        if (!next) return std::unexpected(next.error());
        if (!*next) continue;  // the exec failed after all: the request goes on here
        gather_done_before(reply->value, flight.done_before);
        flight.client = std::move((*next)->client);
        flight.resumed = true;
        std::fprintf(stderr, "fdsupctl: %s; %s\n", (*next)->note.c_str(), goes_on.c_str());
        std::fflush(stderr);
    }
}

// A restart's reply once it went on across an upgrade: the next image's `rollout`
// answer with what the old one had reported done, as one reply of the original verb,
// in the order of the names asked for.
Json merged_reply(const Command& command, const Json& done_before, const Json& resumed) {
    Json instances = done_before;
    if (auto more = resumed.find("instances"); more != resumed.end() && more->is_array())
        for (const auto& instance : *more) instances.push_back(instance);
    const Json names = command.request.value("names", Json::array());
    auto position = [&](const Json& instance) {
        auto it = std::find(names.begin(), names.end(), instance.value("worker", Json()));
        return std::distance(names.begin(), it);
    };
    std::stable_sort(instances.begin(), instances.end(),
                     [&](const Json& a, const Json& b) { return position(a) < position(b); });
    size_t failed = static_cast<size_t>(std::count_if(instances.begin(), instances.end(), [](const Json& instance) {
        return instance.value("ok", true) != true;
    }));
    bool ok = failed == 0 && fdsup::ctl::reply_ok(resumed);
    Json reply{{"ok", ok}, {"instances", instances}};
    if (failed > 0) {
        auto first = std::find_if(instances.begin(), instances.end(),
                                  [](const Json& instance) { return instance.value("ok", true) != true; });
        // As fdsupd says it (Supervisor's result_of).
        reply["error"] = command.verb + " failed for " + std::to_string(failed) + " of " +
                         std::to_string(instances.size()) + " instance" + (instances.size() == 1 ? "" : "s") + ": " +
                         first->value("message", std::string("?"));
    } else if (!ok) {
        reply["error"] = resumed.value("error", Json("fdsupd reported a failure without saying why"));
    }
    return reply;
}

// `events --json`: each EVENT of a reply on a line of its own (SPEC: one JSON object
// per event), as fdsupd sent it.
std::string event_lines(const Json& reply) {
    std::string out;
    if (auto events = reply.find("events"); events != reply.end() && events->is_array())
        for (const auto& event : *events)
            out += fdsup::ctl::json_terminal_safe(event.dump(-1, ' ', false, Json::error_handler_t::replace)) + "\n";
    return out;
}

// After a successful `logs -f` (or `events -f`) reply: every log line (event) as it
// arrives, across in-place upgrades (each time, the next image's whole ring, or the
// events after the last one this client was sent, then what comes).
int follow_stream(InFlight& flight, const std::string& verb, bool json) {
    const bool events = verb == "events";
    int stdout_error = 0;
    auto print_line = [&](std::string_view text) {
        print(stdout, text);
        if (std::fflush(stdout) != 0) {
            stdout_error = errno;
            return false;
        }
        return true;
    };
    auto on_log = [&](const Json& line, std::string_view raw) {
        if (events) {
            const Json& event = line.at("event");
            return print_line(json ? fdsup::ctl::json_terminal_safe(
                                         event.dump(-1, ' ', false, Json::error_handler_t::replace)) + "\n"
                                   : fdsup::ctl::render_event(event));
        }
        return print_line(json ? fdsup::ctl::json_terminal_safe(raw) + "\n"
                               : fdsup::ctl::render_log_line(line.contains("log") ? line.at("log") : Json()));
    };
    const std::string consequence = events ? "following the events ends here" : "following the logs ends here";
    for (;;) {
        auto followed = flight.client.follow_logs(on_log, events ? "event" : "log");
        if (!followed) return unreachable(followed.error());
        if (!*followed) break;  // fdsupd closed the connection, or stdout went
        const fdsup::ctl::Reply notice = std::move(**followed);
        // (events --json prints events only: the upgrade shows as its own events)
        if (json && !events && !print_line(fdsup::ctl::json_terminal_safe(notice.line) + "\n")) break;
        auto next = fdsup::ctl::resume_after_upgrade(flight.client, notice.value, consequence);
        if (!next) return unreachable(next.error());
        if (!*next) continue;  // the exec failed after all: the lines go on coming here
        flight.client = std::move((*next)->client);
        std::fprintf(stderr, "fdsupctl: %s; following again\n", (*next)->note.c_str());
        std::fflush(stderr);
        // The next image's whole ring: the lines this one had not read yet.
        auto reply = final_reply(flight, consequence, "following again", nullptr);
        if (!reply) return unreachable(reply.error());
        if (!fdsup::ctl::reply_ok(reply->value)) {
            print(stderr, fdsup::ctl::render_reply(verb, Json::object(), reply->value).err);
            return kExitFailed;
        }
        std::string text = events ? (json ? event_lines(reply->value) : fdsup::ctl::render_events(reply->value))
                                  : (json ? fdsup::ctl::json_terminal_safe(reply->line) + "\n"
                                          : fdsup::ctl::render_logs(reply->value));
        if (!text.empty() && !print_line(text)) break;
    }
    // The reader went away (`fdsupctl logs -f web | head`): as good as Ctrl-C.
    if (stdout_error == 0 || stdout_error == EPIPE) return kExitOk;
    std::fprintf(stderr, "fdsupctl: write to stdout: %s\n", std::strerror(stdout_error));
    return kExitFailed;
}

int run(const Command& command) {
    if (command.verb == "version" && !command.json) {
        // Printed first: it is worth having even when fdsupd cannot be reached.
        std::printf("%s\n", fdsup::ctl::client_version_line().c_str());
        std::fflush(stdout);
    }
    if (command.follow || command.top) exit_zero_on_interrupt();
    if (command.top) return fdsup::ctl::run_top(command);

    auto client = fdsup::ctl::Client::connect(command.socket_path);
    if (!client) return unreachable(client.error());
    // --json prints the reply's line as it came: status's "workers" (megabytes with
    // thousands of instances) need not be built as well. Nothing below reads them.
    if (command.json && command.verb == "status") client->skip_member("workers");
    auto sent = client->send(command.request);
    InFlight flight{std::move(*client)};

    // Progress is for someone watching; in a pipe or a log it would be noise.
    bool show_progress = isatty(STDERR_FILENO) == 1;
    auto reply = final_reply(flight, "the outcome of the " + command.verb + " is not known",
                             "the " + command.verb + " goes on there", [&](const Json& progress_line) {
        if (!show_progress) return;
        print(stderr, fdsup::ctl::render_progress(progress_line));
        std::fflush(stderr);
    });
    // fdsupd may refuse a connection (permission, too many clients) with a reply and
    // close it before the request is written: that reply, not the EPIPE, says why.
    if (!reply) return unreachable(sent || flight.resumed ? reply.error() : sent.error());
    if (flight.resumed && command.verb != "logs" && command.verb != "events") {
        reply->value = merged_reply(command, flight.done_before, reply->value);
        reply->line = reply->value.dump(-1, ' ', false, Json::error_handler_t::replace);
    }

    bool ok = fdsup::ctl::reply_ok(reply->value);
    if (command.json && command.verb == "events" && ok) {
        print(stdout, event_lines(reply->value));
    } else if (command.json) {
        print(stdout, fdsup::ctl::json_terminal_safe_owned(std::move(reply->line)));
        print(stdout, "\n");
    } else {
        auto rendered = fdsup::ctl::render_reply(command.verb, command.request, reply->value);
        print(stdout, rendered.out);
        std::fflush(stdout);  // stdout before stderr, as a terminal would show them in order
        print(stderr, rendered.err);
    }
    if (!ok) return kExitFailed;

    // A reply saying "follow": false (nothing to follow) ends it here.
    auto following = reply->value.find("follow");
    bool server_follows = following == reply->value.end() || !following->is_boolean() || following->get<bool>();
    if (command.follow && server_follows) {
        std::fflush(stdout);
        return follow_stream(flight, command.verb, command.json);
    }
    return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
    // Writes to a closed socket or pipe must fail with EPIPE, which is reported, rather
    // than kill fdsupctl with no message.
    void (*inherited_sigpipe)(int) = signal(SIGPIPE, SIG_IGN);
    if (inherited_sigpipe == SIG_ERR) inherited_sigpipe = SIG_DFL;

    auto outcome = fdsup::ctl::parse_arguments(argc, argv, fdsup::ctl::Environment::from_process());
    if (const auto* help = std::get_if<fdsup::ctl::Help>(&outcome)) {
        print(stdout, help->text);
        return kExitOk;
    }
    if (const auto* usage = std::get_if<fdsup::ctl::UsageError>(&outcome)) {
        std::fprintf(stderr, "fdsupctl: %s\n", usage->message.c_str());
        if (!usage->synopsis.empty()) std::fprintf(stderr, "%s\n", usage->synopsis.c_str());
        return kExitUsage;
    }
    const auto& command = std::get<Command>(outcome);
    if (command.exec) return fdsup::ctl::exec_with_sockets(*command.exec, inherited_sigpipe);
    return run(command);
}
