#!/usr/bin/env python3
"""resource_app.py - fdsup test helper: a worker that uses resources on purpose.

    resource_app.py leak KIB         serve HTTP/1.0 on fd 3 (LISTEN_FDS); every request
                                     keeps KIB KiB more (written, so resident). SIGTERM:
                                     exits 0 once the request in hand is answered, and
                                     accepts none after it.
    resource_app.py alloc MIB [SEC]  touch MIB MiB, MiB by MiB (SEC seconds apart,
                                     default 0), then sleep; prints "allocated N" to
                                     stdout after each.
    resource_app.py burn SECONDS     burn SECONDS of CPU time, print "burnt", then sleep.
    resource_app.py forkbomb         fork children that sleep, as fast as the kernel lets
                                     it; a refused fork is retried 10 ms later.
    resource_app.py sleep            sleep (an idle process)."""
import os
import selectors
import signal
import socket
import sys
import time


def serve_leaking(kib):
    label = f"{os.environ.get('FDSUP_WORKER', 'app')}[{os.environ.get('FDSUP_INSTANCE', '0')}]"
    # SIGTERM only sets a flag, looked at between requests: a connection is never
    # accepted once it is set, and one accepted is always answered. The wakeup pipe
    # ends the wait for the next connection.
    stop = []
    wake_read, wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_write, warn_on_full_buffer=False)
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    listener = socket.socket(fileno=3)
    listener.setblocking(False)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    selector.register(wake_read, selectors.EVENT_READ)
    hoard = []
    while not stop:
        selector.select()
        if stop:
            break
        try:
            conn, _ = listener.accept()
        except BlockingIOError:
            continue  # a sibling took it
        try:
            conn.setblocking(True)
            conn.settimeout(5)
            request = b""
            while b"\r\n\r\n" not in request and b"\n\n" not in request:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                request += chunk
            hoard.append(b"x" * (kib * 1024))
            body = f"{label} pid {os.getpid()}\n"
            conn.sendall(f"HTTP/1.0 200 OK\r\nContent-Length: {len(body)}\r\n\r\n{body}".encode())
        except OSError:
            pass
        conn.close()
    os._exit(0)


def allocate(mib, pause):
    kept = []
    for n in range(1, mib + 1):
        kept.append(b"y" * (1024 * 1024))
        print(f"allocated {n}", flush=True)
        if pause:
            time.sleep(pause)
    while True:
        time.sleep(1000)


def burn(seconds):
    start = time.process_time()
    while time.process_time() - start < seconds:
        pass
    print("burnt", flush=True)
    while True:
        time.sleep(1000)


def forkbomb():
    while True:
        try:
            if os.fork() == 0:
                time.sleep(1000)
                os._exit(0)
        except OSError:
            time.sleep(0.01)


def main():
    mode = sys.argv[1]
    if mode == "leak":
        serve_leaking(int(sys.argv[2]))
    elif mode == "alloc":
        allocate(int(sys.argv[2]), float(sys.argv[3]) if len(sys.argv) > 3 else 0)
    elif mode == "burn":
        burn(float(sys.argv[2]))
    elif mode == "forkbomb":
        forkbomb()
    else:
        while True:
            time.sleep(1000)


if __name__ == "__main__":
    main()
