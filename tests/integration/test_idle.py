"""Idle means asleep: with every instance running and nothing happening, fdsupd arms no
timer and wakes up for nothing (issue 23: 0 wakeups in 10 s at 10,000 instances). Only
what happens wakes it: a worker's exit, its output, a request. A periodic timer (a poll,
a sampler, a flush) would show here as wakeups every window."""
import os
import re
import time
import unittest

from fdsup_harness import FdsupTestCase, wait_until

CONFIG = """
[sockets.web]
listen = "tcp://127.0.0.1:0"

[workers.w]
command = ["sleep", "1000"]
instances = 50
sockets = ["web"]
stdout = "log"
stderr = "log"
"""


def instances_of(d, worker):
    return [i for w in d.ctl_json("status")["workers"] if w["name"] == worker for i in w["instances"]]


def context_switches(pid):
    """Voluntary and involuntary context switches of `pid` (its main thread) so far."""
    with open(f"/proc/{pid}/status") as f:
        return sum(int(n) for n in re.findall(r"^(?:non)?voluntary_ctxt_switches:\s+(\d+)", f.read(), re.M))


def wait_at_rest(pid, quiet_s=0.5, timeout=30.0):
    """Until `pid` has not been switched in for `quiet_s` (what came before, a start or a
    request, has finished); fails if it never rests."""
    last, since = context_switches(pid), time.monotonic()
    deadline = time.monotonic() + timeout
    while time.monotonic() - since < quiet_s:
        if time.monotonic() > deadline:
            raise AssertionError(f"fdsupd never went {quiet_s} s without running in {timeout} s")
        time.sleep(0.05)
        now = context_switches(pid)
        if now != last:
            last, since = now, time.monotonic()


class Idle(FdsupTestCase):
    def assert_sleeps(self, d, seconds, after):
        wait_at_rest(d.pid)
        before = context_switches(d.pid)
        time.sleep(seconds)
        self.assertEqual(context_switches(d.pid) - before, 0, f"fdsupd woke up while idle, {after}")

    def test_no_wakeups_while_nothing_happens(self):
        d = self.fdsupd(CONFIG).start(wait_control=True)
        wait_until(lambda: sum(1 for i in instances_of(d, "w") if i["state"] == "running") == 50,
                   what="50 instances running")
        self.assert_sleeps(d, 3.0, "after the start")
        # A status gathers every instance's usage: nothing is left armed after it.
        self.assertEqual(len(instances_of(d, "w")), 50)
        self.assert_sleeps(d, 2.0, "after a status request")
        # A restart's timers (stop escalation, backoff) end with it.
        old_pids = [i["pid"] for i in instances_of(d, "w")]
        d.ctl_ok("restart", "w")
        d.wait_log(r"worker w\[49\]: started pid \d+", count=2)
        # The last old processes may still be on their way out (their exits wake fdsupd):
        # until each is reaped (no /proc entry, not even a zombie's).
        wait_until(lambda: not any(os.path.exists(f"/proc/{pid}") for pid in old_pids),
                   what="the old processes reaped")
        self.assert_sleeps(d, 2.0, "after a rolling restart")


if __name__ == "__main__":
    unittest.main()
