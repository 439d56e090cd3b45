"""A worker whose child gets away from it, the ways real programs do.

    daemonizer.py PIDFILE [--mode daemon|setpgid] [--exit]

- daemon: double fork + setsid, as a daemonizing program does; the grandchild is in
  a session and process group of its own, reparented away from the worker.
- setpgid: the child moves into a process group of its own (same session), as a
  shell with job control does. (The worker itself cannot change its group: it
  leads the session the supervisor made for it.)

The runaway appends its pid as one line to PIDFILE and sleeps, ignoring SIGTERM and
SIGHUP (a runaway that heeds SIGTERM would hide a supervisor that never sends it
anything else). The worker prints "worker PID up" once the runaway is written, then
sleeps (SIGTERM ends it), or exits 0 with --exit.
"""
import argparse
import os
import signal
import sys
import time


def runaway(pidfile, ready_w):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    with open(pidfile, "a") as f:
        f.write(f"{os.getpid()}\n")
    # Only now: the worker's "up" means the pid is in the file.
    os.write(ready_w, b"x")
    os.close(ready_w)
    while True:
        time.sleep(1000)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("pidfile")
    parser.add_argument("--mode", choices=["daemon", "setpgid"], default="daemon")
    parser.add_argument("--exit", action="store_true")
    args = parser.parse_args()

    ready_r, ready_w = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(ready_r)
        if args.mode == "daemon":
            os.setsid()
            if os.fork() != 0:
                os._exit(0)
        else:
            os.setpgid(0, 0)
        # Its stdio goes to the worker's log pipes like any child's; it writes nothing.
        runaway(args.pidfile, ready_w)
    os.close(ready_w)
    os.read(ready_r, 1)  # the runaway has written its pid
    if args.mode == "daemon":
        os.waitpid(child, 0)  # the intermediate child
    print(f"worker {os.getpid()} up", flush=True)
    if args.exit:
        sys.exit(0)
    while True:
        time.sleep(1000)


if __name__ == "__main__":
    main()
