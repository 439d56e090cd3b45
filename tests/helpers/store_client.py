#!/usr/bin/env python3
"""store_client - fdsup test helper: a worker that parks fds in fdsupd's fd store by script.

Usage: store_client.py PLAN.json RESULTS.jsonl

PLAN.json is a list of steps, run in order. An fd spec in "fds" makes a fresh fd:
  "pair:KEY"   one end of a new socketpair (the other end is kept under KEY)
  "memfd:KEY"  a new memfd (kept under KEY too, so it can be sent again)
  "kept:KEY"   the fd kept under KEY, sent again
  "null"       /dev/null
Steps:
  {"notify": "FDSTORE=1\\nFDNAME=x", "fds": [...]}   one datagram to $NOTIFY_SOCKET
  {"fdsock": {...request...}, "fds": [...]}          one request line on $FDSUP_FD_SOCKET
        with the fds in SCM_RIGHTS; the reply line is appended to RESULTS.jsonl
        ("raw": "text" sends that text instead of a JSON line, and no reply is awaited
        if it has no newline: the connection is closed right after)
  {"parts": [["text", N], ...]}                      one connection, one sendmsg per part
        with N fds (/dev/null) each; the reply line is appended to RESULTS.jsonl
  {"close": "KEY"}                                   closes a kept fd (a peer hangs up)
  {"wait_signal": "USR1"}                            waits for that signal (USR1, USR2, TERM)
  {"exit": CODE}                                     exits at once
  {"say": "text"}                                    a line on stdout (fdsupd logs it)
Every fd it sent is closed in this process right after the send. Then it idles until
SIGTERM (which is blocked from the start, so that a plan can wait for it).
"""
import array
import json
import os
import signal
import socket
import sys

kept = {}


def make_fd(spec):
    kind, _, key = spec.partition(":")
    if kind == "pair":
        a, b = socket.socketpair()
        kept[key] = b.detach()
        return a.detach()
    if kind == "memfd":
        fd = os.memfd_create(key)
        kept[key] = fd
        return os.dup(fd)
    if kind == "kept":
        return os.dup(kept[key])
    return os.open("/dev/null", os.O_RDONLY)


def rights(fds):
    return [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []


def notify(text, fds):
    path = os.environ["NOTIFY_SOCKET"]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendmsg([text.encode()], rights(fds), 0, "\0" + path[1:] if path.startswith("@") else path)


def fd_socket_request(step, fds, results):
    raw = step.get("raw")
    data = (raw if raw is not None else json.dumps(step["fdsock"]) + "\n").encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(os.environ["FDSUP_FD_SOCKET"])
        s.sendmsg([data], rights(fds))
        if not data.endswith(b"\n"):
            return  # a truncated request: hang up without finishing it
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
    with open(results, "a") as f:
        f.write(reply.decode() if reply else '{"closed": true}\n')


def parts_request(parts, results):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(os.environ["FDSUP_FD_SOCKET"])
        for text, count in parts:
            fds = [os.open("/dev/null", os.O_RDONLY) for _ in range(count)]
            try:
                s.sendmsg([text.encode()], rights(fds))
            except OSError:
                pass  # fdsupd may have answered and closed already
            finally:
                for fd in fds:
                    os.close(fd)
        reply = s.makefile("rb").readline()
    with open(results, "a") as f:
        f.write(reply.decode() if reply else '{"closed": true}\n')


def main():
    # Blocked from the start: a signal sent before its wait step must not kill us.
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM])
    plan_path, results = sys.argv[1], sys.argv[2]
    with open(plan_path) as f:
        plan = json.load(f)
    for step in plan:
        if "notify" in step or "fdsock" in step or "raw" in step:
            fds = [make_fd(spec) for spec in step.get("fds", [])]
            try:
                if "notify" in step:
                    notify(step["notify"], fds)
                else:
                    fd_socket_request(step, fds, results)
            finally:
                for fd in fds:
                    os.close(fd)
        elif "parts" in step:
            parts_request(step["parts"], results)
        elif "close" in step:
            os.close(kept.pop(step["close"]))
        elif "wait_signal" in step:
            signal.sigwait([getattr(signal, "SIG" + step["wait_signal"])])
        elif "say" in step:
            print(step["say"], flush=True)
        elif "exit" in step:
            sys.stdout.flush()
            os._exit(step["exit"])
    signal.sigwait([signal.SIGTERM])


if __name__ == "__main__":
    main()
