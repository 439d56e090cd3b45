#!/usr/bin/env python3
"""health_app.py - fdsup test helper: an HTTP/1.0 app with a health endpoint of its own
per instance, as apps behind a probe have. Never speaks sd_notify.

    health_app.py HEALTH_SOCKET STATUS_FILE

It serves the listening socket at fd 3 (systemd's LISTEN_FDS protocol): every request
gets 200 and "<FDSUP_WORKER>[<FDSUP_INSTANCE>] pid <pid>\\n". On the unix stream socket
HEALTH_SOCKET (made at start, replacing a stale file) it answers any request with the
status code written in STATUS_FILE (200 if the file is missing); "hang" there means the
request is read and never answered, "close" that the connection is closed unanswered.
One thread, one selector (epoll): a process stopped with SIGSTOP answers neither.
SIGTERM: exits 0 at once (it holds no request between two loop turns)."""
import os
import selectors
import signal
import socket
import sys


def status_wanted(path):
    try:
        with open(path) as f:
            return f.read().strip() or "200"
    except FileNotFoundError:
        return "200"


def main():
    health_path, status_path = sys.argv[1], sys.argv[2]
    label = f"{os.environ.get('FDSUP_WORKER', 'app')}[{os.environ.get('FDSUP_INSTANCE', '0')}]"
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    app = socket.socket(fileno=3)
    app.setblocking(False)
    try:
        os.unlink(health_path)
    except FileNotFoundError:
        pass
    health = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    health.bind(health_path)
    health.listen(16)
    health.setblocking(False)
    selector = selectors.DefaultSelector()
    selector.register(app, selectors.EVENT_READ, "app")
    selector.register(health, selectors.EVENT_READ, "health")
    hanging = []  # answered never: kept open so the prober waits
    while True:
        for key, _ in selector.select():
            try:
                conn, _ = key.fileobj.accept()
            except BlockingIOError:
                continue  # a sibling took it
            conn.setblocking(True)
            conn.settimeout(5)
            try:
                request = b""
                while b"\r\n\r\n" not in request and b"\n\n" not in request:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    request += chunk
                if key.data == "app":
                    body = f"{label} pid {os.getpid()}\n"
                    conn.sendall(f"HTTP/1.0 200 OK\r\nContent-Length: {len(body)}\r\n\r\n{body}".encode())
                else:
                    wanted = status_wanted(status_path)
                    if wanted == "hang":
                        hanging.append(conn)
                        continue
                    if wanted != "close":
                        conn.sendall(f"HTTP/1.1 {wanted} Status\r\nContent-Length: 0\r\n\r\n".encode())
            except OSError:
                pass
            conn.close()


if __name__ == "__main__":
    main()
