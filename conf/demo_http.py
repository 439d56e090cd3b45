#!/usr/bin/env python3
"""fdsup's demo worker: an HTTP server that takes its listening socket from the
supervisor through systemd's LISTEN_FDS protocol (as sd_listen_fds() does) and answers
every request with its worker name, instance and pid.

It never binds anything itself: the socket belongs to fdsupd, which keeps it open
across crashes and restarts of this process. It tells fdsupd when it is ready
(sd_notify's READY=1, in a few lines of Python) and drains on SIGTERM: it stops
accepting, finishes the requests it has, then exits, so a rolling restart
(`fdsupctl restart web`) loses no request.
"""
import http.server
import os
import signal
import socket
import sys
import threading

SD_LISTEN_FDS_START = 3


def listen_fds():
    """The sockets passed by the supervisor (the sd_listen_fds() checks, in Python)."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()):
        sys.exit("demo_http: LISTEN_PID is not this process; start me from fdsupd")
    count = int(os.environ.get("LISTEN_FDS", "0"))
    names = os.environ.get("LISTEN_FDNAMES", "").split(":")
    for var in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(var, None)  # our own children must not think these are theirs
    return {names[i] if i < len(names) else str(i): SD_LISTEN_FDS_START + i for i in range(count)}


def sd_notify(message):
    """sd_notify(3) without libsystemd: one datagram to $NOTIFY_SOCKET, if set."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return
    if path.startswith("@"):
        path = "\0" + path[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(message.encode(), path)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = "{}[{}] pid {}\n".format(os.environ.get("FDSUP_WORKER", "?"),
                                       os.environ.get("FDSUP_INSTANCE", "?"), os.getpid()).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        # One line per request on stdout: fdsupd captures it as "web[0]: ...".
        print("%s %s" % (self.address_string(), fmt % args), flush=True)


def main():
    fds = listen_fds()
    fd = fds.get("http")
    if fd is None:
        sys.exit("demo_http: no socket named 'http' in LISTEN_FDNAMES")
    server = http.server.ThreadingHTTPServer(("", 0), Handler, bind_and_activate=False)
    server.socket.close()
    server.socket = socket.socket(fileno=fd)
    # Several processes accept on this socket (instances, and old and new ones during
    # a rolling restart): after a wake-up another one may take the connection first,
    # and a blocking accept() would then hang this process past its SIGTERM.
    server.socket.setblocking(False)
    print("demo_http: serving on fd {} ({})".format(fd, server.socket.getsockname()), flush=True)
    # The graceful drain: SIGTERM is taken synchronously by the main thread while
    # another serves; then stop accepting, let the request threads finish
    # (server_close joins them), exit 0.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # before any thread starts
    server.daemon_threads = False
    serving = threading.Thread(target=server.serve_forever)
    serving.start()
    sd_notify("READY=1\nSTATUS=serving on {}".format(server.socket.getsockname()))
    signal.sigwait({signal.SIGTERM})
    server.shutdown()
    serving.join()
    server.server_close()
    print("demo_http: drained, exiting", flush=True)


if __name__ == "__main__":
    main()
