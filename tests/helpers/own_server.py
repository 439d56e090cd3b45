#!/usr/bin/env python3
"""A server that binds its own socket, as a service not yet under fdsup does: for taking
it over (`fdsupctl adopt`, `adopt = { pid_file }`). See README.md."""
import argparse
import json
import os
import select
import signal
import socket
import sys


def write_atomically(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)


def serve(listener, wake):
    """HTTP/1.0, one connection at a time, until SIGTERM: between two connections, so that
    none it has accepted goes unanswered. The listener is non-blocking (as most servers
    make theirs), so another process taking a connection first costs nothing."""
    listener.setblocking(False)
    body = f"own_server pid {os.getpid()}\n".encode()
    reply = b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    while True:
        readable, _, _ = select.select([listener, wake], [], [])
        if wake in readable:
            return
        try:
            conn, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            continue
        with conn:
            conn.setblocking(True)
            conn.settimeout(5)
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                conn.sendall(reply)
            except OSError:
                pass


def main():
    p = argparse.ArgumentParser()
    p.add_argument("report", help="where to write {pid, port, fd} once bound")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--udp", action="store_true", help="a udp socket instead (never serves)")
    p.add_argument("--no-listen", action="store_true", help="bind only, never listen (never serves)")
    p.add_argument("--unix", metavar="PATH", help="a unix stream socket at PATH instead")
    p.add_argument("--pid-file")
    args = p.parse_args()

    r, w = os.pipe()
    os.set_blocking(w, False)
    signal.set_wakeup_fd(w)
    signal.signal(signal.SIGTERM, lambda *_: None)  # the wakeup fd says it

    kind = socket.SOCK_DGRAM if args.udp else socket.SOCK_STREAM
    if args.unix:
        listener = socket.socket(socket.AF_UNIX, kind)
        listener.bind(args.unix)
    else:
        listener = socket.socket(socket.AF_INET, kind)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", args.port))
    serving = not args.udp and not args.no_listen
    if serving:
        listener.listen(128)
    if args.pid_file:
        write_atomically(args.pid_file, f"{os.getpid()}\n")
    port = None if args.unix else listener.getsockname()[1]
    write_atomically(args.report, json.dumps({"pid": os.getpid(), "port": port, "fd": listener.fileno()}))
    if serving:
        serve(listener, r)
    else:
        select.select([r], [], [])
    sys.exit(0)


if __name__ == "__main__":
    main()
