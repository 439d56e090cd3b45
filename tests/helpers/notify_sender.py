#!/usr/bin/env python3
"""notify_sender - fdsup test helper: a worker that sends scripted sd_notify datagrams.

Usage: notify_sender.py PLAN.json

PLAN.json is a list of steps, run in order:
  {"send": "READY=1"}                 one datagram to $NOTIFY_SOCKET (any text, NULs too)
  {"send": "...", "fds": N}           ... carrying N fds (copies of /dev/null) in SCM_RIGHTS
  {"send": "...", "from": "child"}    ... sent by a forked child (a descendant) with a barrier
                                      pipe (say BARRIER=1), which lives until fdsupd closed it
  {"barrier": true}                   BARRIER=1 with a pipe's write end, as sd_notify_barrier
                                      does; prints "barrier: released" once the supervisor
                                      closed it
  {"sleep": SECONDS}
  {"say": "text"}                     a line on stdout (the supervisor logs it)
Then it idles until SIGTERM and exits 0.
"""
import array
import json
import os
import select
import signal
import socket
import sys
import time


def address():
    path = os.environ.get("NOTIFY_SOCKET", "")
    if not path:
        print("notify_sender: NOTIFY_SOCKET is not set", flush=True)
        sys.exit(3)
    return "\0" + path[1:] if path.startswith("@") else path


def send(text, fds=()):
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        data = text.encode("utf-8", "surrogateescape")
        rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
        s.sendmsg([data], rights, 0, address())


def run(step):
    if "send" in step:
        fds = [os.open("/dev/null", os.O_RDONLY) for _ in range(step.get("fds", 0))]
        try:
            if step.get("from") == "child":
                # A descendant is recognised through its parent chain, so it must still
                # exist when fdsupd reads its message: it sends a barrier pipe along
                # (the text should say BARRIER=1) and exits only once fdsupd closed it,
                # as sd_notify_barrier() does.
                r, w = os.pipe()
                pid = os.fork()
                if pid == 0:
                    try:
                        os.close(r)
                        send(step["send"], fds + [w])
                        os.close(w)
                    finally:
                        os._exit(0)
                os.close(w)
                select.select([r], [], [], 20)
                os.close(r)
                os.waitpid(pid, 0)
            else:
                send(step["send"], fds)
        finally:
            for fd in fds:
                os.close(fd)
    elif "barrier" in step:
        r, w = os.pipe()
        send("BARRIER=1", [w])
        os.close(w)
        ready, _, _ = select.select([r], [], [], 20)
        print("barrier: released" if ready and os.read(r, 1) == b"" else "barrier: timed out", flush=True)
        os.close(r)
    elif "sleep" in step:
        time.sleep(step["sleep"])
    elif "say" in step:
        print(step["say"], flush=True)


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with open(sys.argv[1]) as f:
        plan = json.load(f)
    for step in plan:
        run(step)
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
