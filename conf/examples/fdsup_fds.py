#!/usr/bin/env python3
"""Fetch listening sockets from fdsup over SCM_RIGHTS (for `scm_rights = [...]`).

    from fdsup_fds import get_sockets
    http, = get_sockets(["http"])        # socket.socket objects, close-on-exec
    http.accept()

Run as a script it is a small HTTP server on the socket it fetches, e.g. as the
worker of conf/examples/scm-rights.toml:  fdsup_fds.py http
The protocol is in ../../../shared/SPEC.md ("fd socket") and supervisord/fdserver/fd_server.h.
"""
import json
import os
import socket
import sys

MAX_FDS_PER_MESSAGE = 250


def get_sockets(names):
    """The listening sockets called `names`, in that order. Raises OSError with
    fdsupd's reason ("permission denied", "unknown socket ...") on refusal."""
    path = os.environ.get("FDSUP_FD_SOCKET")
    if not path:
        raise OSError("FDSUP_FD_SOCKET is not set (is this process started by fdsupd?)")
    if path.startswith("@"):
        path = "\0" + path[1:]
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


def main():
    import http.server
    name = sys.argv[1] if len(sys.argv) > 1 else "http"
    sock, = get_sockets([name])

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = "{}[{}] pid {} via SCM_RIGHTS\n".format(os.environ.get("FDSUP_WORKER", "?"),
                                                        os.environ.get("FDSUP_INSTANCE", "?"), os.getpid()).encode()
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
