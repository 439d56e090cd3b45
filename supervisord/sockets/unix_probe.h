// Whether a process still serves the unix socket file at a path: connect() to it.
// A file left by a process that died (or closed the socket without unlinking it) is
// "stale": the kernel refuses the connection (ECONNREFUSED), and only then may the file
// be replaced. Anything else is taken as in use, or as unknown: never replaced.
#pragma once

#include <string>

namespace fdsup {

enum class SocketFileUse {
    absent,  // nothing at the path (ENOENT): nothing to replace
    stale,   // ECONNREFUSED: nobody listens
    in_use,  // someone answers: the connect succeeded, its backlog is full (EAGAIN), or
             // a socket of another type is bound there (EPROTOTYPE)
    unknown, // the probe itself failed (EACCES, EMFILE...): not safe to replace
};

struct SocketFileProbe {
    SocketFileUse use = SocketFileUse::absent;
    int err = 0;  // connect's (or socket's) errno; 0 when the connect succeeded
};

// Connects to `path` with a non-blocking, close-on-exec AF_UNIX socket of `type`
// (SOCK_STREAM, SOCK_DGRAM or SOCK_SEQPACKET: the type the caller means to bind), and
// closes it at once. A stream or seqpacket listener that answers sees one connection
// that closes without a byte, as with any health check.
SocketFileProbe probe_socket_file(const std::string& path, int type);

// Why the probe found the file in use or could not tell, for messages: "a connect
// succeeded", "its backlog is full", "a socket of another type is bound there",
// "connect: Permission denied".
std::string describe_socket_file_probe(const SocketFileProbe& probe);

}  // namespace fdsup
