// Result<T>: the error type of all syscall-facing code (sys/, launcher/, sockets/).
// An Error carries a message naming the thing and the failed operation, plus the
// errno that caused it (0 when the failure is not a syscall's).
#pragma once

#include <cerrno>
#include <cstring>
#include <expected>
#include <string>
#include <utility>

namespace fdsup {

struct Error {
    std::string message;  // "bind tcp://127.0.0.1:80"
    int err = 0;          // errno, or 0
    // Trying again cannot help until the config or the system changes (a program that
    // cannot be exec'd, an unknown user): the supervisor stops retrying such spawns.
    bool permanent = false;

    // "bind tcp://127.0.0.1:80: Address already in use"
    std::string text() const {
        if (err == 0) return message;
        return message + ": " + std::strerror(err);
    }
};

template <class T>
using Result = std::expected<T, Error>;

// A failed Result carrying `message` and the errno value `err`.
inline std::unexpected<Error> fail(std::string message, int err = 0) {
    return std::unexpected<Error>(Error{std::move(message), err});
}

// A failed Result for the syscall that just failed (reads errno now).
inline std::unexpected<Error> fail_errno(std::string message) {
    return fail(std::move(message), errno);
}

}  // namespace fdsup
