#!/usr/bin/env python3
"""Fetch listening sockets from fdsup over SCM_RIGHTS (for `scm_rights = [...]`), and
park fds in the worker's fd store (for `fd_store_max` > 0).

    from fdsup_fds import get_sockets, store_fds, inherited_fds
    http, = get_sockets(["http"])        # socket.socket objects, close-on-exec
    http.accept()

    store_fds("state", [memfd])          # the next process of this instance gets it...
    inherited_fds().get("state")         # ...here: [fd], from LISTEN_FDS/LISTEN_FDNAMES

Run as a script it is a small HTTP server on the socket it fetches, e.g. as the
worker of conf/examples/scm-rights.toml:  fdsup_fds.py http
With --count it also counts the requests it served in a memfd kept in the fd store,
so the count goes on across crashes and restarts (conf/examples/fd-store.toml).
What the fd socket gives whom is in fdsup's README ("Sockets over SCM_RIGHTS, and
fdsupctl exec", "The fd store") and in fdsup.toml(5) (scm_rights, fd_store_max); the
wire format in supervisord/fdserver/fd_server.h of fdsup's source.
"""
import json
import os
import socket
import sys

MAX_FDS_PER_MESSAGE = 250


def _fd_socket_path():
    path = os.environ.get("FDSUP_FD_SOCKET")
    if not path:
        raise OSError("FDSUP_FD_SOCKET is not set (is this process started by fdsupd?)")
    return "\0" + path[1:] if path.startswith("@") else path


def get_sockets(names):
    """The listening sockets called `names`, in that order. Raises OSError with
    fdsupd's reason ("permission denied", "unknown socket ...") on refusal."""
    path = _fd_socket_path()
    fds, buffered = [], b""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(path)
        conn.sendall(json.dumps({"cmd": "get", "names": list(names)}).encode() + b"\n")
        try:
            more = True
            while more:
                data, got, flags, _ = socket.recv_fds(conn, 65536, MAX_FDS_PER_MESSAGE)
                fds.extend(got)
                if flags & socket.MSG_CTRUNC:
                    raise OSError("fds were cut short (MSG_CTRUNC)")
                if not data:
                    raise OSError("fdsupd closed the connection before answering in full")
                buffered += data
                while more and b"\n" in buffered:
                    line, buffered = buffered.split(b"\n", 1)
                    reply = json.loads(line)
                    if not reply.get("ok"):
                        raise OSError(reply.get("error", "refused"))
                    more = reply.get("more", False)
            if len(fds) != len(names):
                raise OSError(f"asked for {len(names)} sockets, got {len(fds)}")
        except BaseException:
            for fd in fds:
                os.close(fd)
            raise
    for fd in fds:
        os.set_inheritable(fd, False)  # recv_fds cannot ask for MSG_CMSG_CLOEXEC
    return [socket.socket(fileno=fd) for fd in fds]


def store_fds(name, fds, poll=True):
    """Parks `fds` (ints, at most 253) in this worker's fd store under `name`; the next
    process of this instance gets them back after its sockets (see inherited_fds).
    `poll=False` keeps them even after they hang up (FDPOLL=0). Returns how many were
    stored (an fd already in the store is not stored twice); raises OSError with
    fdsupd's reason if it refused them."""
    request = {"cmd": "store", "name": name}
    if not poll:
        request["poll"] = False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(_fd_socket_path())
        socket.send_fds(conn, [json.dumps(request).encode() + b"\n"], list(fds))
        with conn.makefile("rb") as reader:
            line = reader.readline()
    reply = json.loads(line) if line else {"ok": False, "error": "fdsupd closed the connection without answering"}
    if not reply.get("ok"):
        raise OSError(reply.get("error", "refused"))
    return reply["stored"]


def inherited_fds():
    """{name: [fd, ...]} of what LISTEN_FDS/LISTEN_FDNAMES hand this process (the
    worker's inherited sockets, then its stored fds), as sd_listen_fds_with_names()."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()):
        return {}
    count = int(os.environ.get("LISTEN_FDS", "0"))
    names = os.environ.get("LISTEN_FDNAMES", "").split(":")
    found = {}
    for i in range(count):
        found.setdefault(names[i] if i < len(names) else "unknown", []).append(3 + i)
    return found


def request_counter():
    """A memfd holding a request count, from the fd store if a previous process left
    one there, else new (and stored)."""
    kept = inherited_fds().get("counter")
    if kept:
        return kept[0]
    fd = os.memfd_create("counter")
    os.pwrite(fd, (0).to_bytes(8, "little"), 0)
    store_fds("counter", [fd])
    return fd


def main():
    import http.server
    args = [a for a in sys.argv[1:] if a != "--count"]
    name = args[0] if args else "http"
    sock, = get_sockets([name])
    counter = request_counter() if "--count" in sys.argv else None

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            text = "{}[{}] pid {} via SCM_RIGHTS".format(os.environ.get("FDSUP_WORKER", "?"),
                                                         os.environ.get("FDSUP_INSTANCE", "?"), os.getpid())
            if counter is not None:
                served = int.from_bytes(os.pread(counter, 8, 0), "little") + 1
                os.pwrite(counter, served.to_bytes(8, "little"), 0)
                text += f", request #{served}"
            body = (text + "\n").encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.HTTPServer(("", 0), Handler, bind_and_activate=False)
    server.socket.close()
    server.socket = sock
    print(f"fdsup_fds: serving on fetched socket {name!r}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
