// fdsupctl: argv -> one request to fdsupd -> its reply on stdout, and the exit status.
//
// Exit status (SPEC): 0 done · 1 fdsupd refused or the operation failed · 2 usage
// error · 3 cannot reach fdsupd (connect failed, or the connection broke before the
// final reply).
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <variant>

#include "ctl/arguments.h"
#include "ctl/client.h"
#include "ctl/exec.h"
#include "ctl/render.h"
#include "ctl/terminal_safe.h"

namespace {

using fdsup::ctl::Command;
using fdsup::ctl::Json;

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kExitUnreachable = 3;

void print(std::FILE* stream, std::string_view text) {
    if (!text.empty()) std::fwrite(text.data(), 1, text.size(), stream);
}

int unreachable(const fdsup::Error& error) {
    std::fprintf(stderr, "fdsupctl: %s\n", error.text().c_str());
    return kExitUnreachable;
}

// `logs -f` ends with Ctrl-C: that is its normal end, not a failure. Every log line is
// flushed as it is printed, so there is nothing left to do but leave.
extern "C" void leave_on_interrupt(int) {
    _exit(kExitOk);
}

void exit_zero_on_interrupt() {
    struct sigaction action{};
    action.sa_handler = leave_on_interrupt;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, nullptr);
}

// After a successful `logs -f` reply: every log line as it arrives.
int follow_logs(fdsup::ctl::Client& client, bool json) {
    int stdout_error = 0;
    auto followed = client.follow_logs([&](const Json& line, std::string_view raw) {
        std::string text = json ? fdsup::ctl::json_terminal_safe(raw) + "\n" : fdsup::ctl::render_log_line(line.contains("log") ? line.at("log") : Json());
        print(stdout, text);
        if (std::fflush(stdout) != 0) {
            stdout_error = errno;
            return false;
        }
        return true;
    });
    if (!followed) return unreachable(followed.error());
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
    if (command.follow) exit_zero_on_interrupt();

    auto client = fdsup::ctl::Client::connect(command.socket_path);
    if (!client) return unreachable(client.error());
    auto sent = client->send(command.request);

    // Progress is for someone watching; in a pipe or a log it would be noise.
    bool show_progress = isatty(STDERR_FILENO) == 1;
    auto reply = client->read_reply([&](const Json& progress_line) {
        if (!show_progress) return;
        print(stderr, fdsup::ctl::render_progress(progress_line));
        std::fflush(stderr);
    });
    // fdsupd may refuse a connection (permission, too many clients) with a reply and
    // close it before the request is written: that reply, not the EPIPE, says why.
    if (!reply) return unreachable(sent ? reply.error() : sent.error());

    bool ok = fdsup::ctl::reply_ok(reply->value);
    if (command.json) {
        print(stdout, fdsup::ctl::json_terminal_safe(reply->line) + "\n");
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
        return follow_logs(*client, command.json);
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
