// fdsupctl's command line: the verb table and argv -> the request to send.
//
// Pure: no syscalls, no output. The environment the socket path depends on is passed
// in (Environment::from_process() reads it), so every rule is testable.
#pragma once

#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "control/protocol.h"
#include "ctl/top_table.h"

namespace fdsup::ctl {

inline constexpr const char* kDefaultSocket = "/run/fdsup/control.sock";
inline constexpr long long kDefaultLogLines = 50;
// top's interval: at least this, so that a typo cannot make fdsupd answer in a loop.
inline constexpr std::chrono::milliseconds kLeastTopInterval{100};

// The variables the control socket's default depends on; unset and empty are the same.
struct Environment {
    std::optional<std::string> fdsup_control;      // $FDSUP_CONTROL
    std::optional<std::string> runtime_directory;  // $RUNTIME_DIRECTORY (systemd: a:b:c)
    std::optional<std::string> fdsup_fd_socket;    // $FDSUP_FD_SOCKET (exec's fd socket)

    static Environment from_process();
};

// `-s SOCKET`, else $FDSUP_CONTROL, else the first entry of $RUNTIME_DIRECTORY +
// "/control.sock", else kDefaultSocket.
std::string resolve_socket_path(const std::optional<std::string>& from_option, const Environment& env);

// `exec`: fetch these sockets over the fd socket, put them at these fd numbers, exec argv.
struct ExecPlan {
    std::vector<std::pair<int, std::string>> fds;  // fd number -> socket name, as given
    std::vector<std::string> argv;                 // CMD ARGS...
    std::string fd_socket;                         // --fd-socket, $FDSUP_FD_SOCKET, or beside the control socket
};

// `top`: the status request (Command::request) asked again every interval.
struct TopPlan {
    std::chrono::milliseconds interval{1000};  // -d, --interval
    std::optional<long long> iterations;       // -n, --iterations: stop after this many frames
    TopSort sort = TopSort::name;              // --sort: the first (keys change it)
};

// What to do: send `request` to the supervisor at `socket_path` (or, for exec, `exec`;
// for top, `top`).
struct Command {
    std::string socket_path;
    bool json = false;          // print the reply line as received
    std::string verb;
    control::Json request;
    bool follow = false;        // logs -f: after the reply, print log lines until closed
    std::optional<ExecPlan> exec;
    std::optional<TopPlan> top;
};

// Print `text` on stdout, exit 0.
struct Help {
    std::string text;
};

// Print "fdsupctl: message" (and the synopsis line, when there is one) on stderr, exit 2.
struct UsageError {
    std::string message;
    std::string synopsis;  // "usage: fdsupctl [-s SOCKET] [--json] logs NAME [-n N] [-f]", or empty
};

using ParseOutcome = std::variant<Command, Help, UsageError>;

// `args` is argv without argv[0].
ParseOutcome parse_arguments(std::span<const std::string> args, const Environment& env);
ParseOutcome parse_arguments(int argc, const char* const* argv, const Environment& env);

// The verbs, in the order help lists them.
std::vector<std::string_view> verb_names();

// fdsupctl(8) in roff, made from the same verb table as the help (gen_man.cpp writes it
// at build time): the manual cannot drift from the program.
std::string man_page(std::string_view version);

// The usage of fdsupctl (no verb) or of one verb; nullopt for an unknown verb.
std::optional<std::string> help_text(std::string_view verb = {});

}  // namespace fdsup::ctl
