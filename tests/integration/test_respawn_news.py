"""A restart straight after an exit (no backoff): what fdsupd tells about it (the exited
and restart_scheduled events, the "restart #N now" log line) reads in the same order,
before anything about the new process, with the exited process's pid on the restart's
line and none on restart_scheduled, and nothing is left unreaped; the same when the
replacement cannot start. (Whoever moves any of it past the replacement's clone, to
shorten the respawn, must keep all of this.)
Also the respawn's stdio: "null" is fdsupd's own /dev/null, shared rather than copied
per spawn, so fdsupd's fd count stays flat however many respawns there are."""
import json
import os
import re
import signal
import time
import unittest

from fdsup_harness import FdsupTestCase, wait_until

CONFIG = """
[supervisor]
log_format = "json"

[workers.w]
command = ["@TMP@/worker.sh"]
backoff = "0s"
healthy_after = "0ms"
start_limit_burst = 1000
stdout = "null"
stderr = "null"
"""

WORKER = "#!/bin/sh\nexec sleep 600\n"


def json_lines(text):
    """Every complete line of the log, parsed."""
    return [json.loads(line) for line in text.split("\n")[:-1]]


def settled_fd_count(pid):
    """fdsupd's open fds, once two readings 0.2 s apart agree: a spent pidfd closes a
    moment after its replacement starts, a control connection once fdsupd sees it end."""
    readings = []

    def steady():
        readings.append(len(os.listdir(f"/proc/{pid}/fd")))
        time.sleep(0.2)
        return len(readings) > 1 and readings[-1] == readings[-2]
    wait_until(steady, what="fdsupd's fd count to settle")
    return readings[-1]


class RespawnNews(FdsupTestCase):
    def start_worker(self, config=CONFIG):
        d = self.fdsupd(config)
        self.script = os.path.join(d.tmp, "worker.sh")
        with open(self.script, "w") as f:
            f.write(WORKER)
        os.chmod(self.script, 0o755)
        d.start(wait_for_workers=["w[0]"], wait_control=True)
        return d

    def events(self, d):
        return [json.loads(line) for line in d.ctl_ok("--json", "events", "w").splitlines()]

    def test_exit_restart_and_start_are_told_in_order_with_their_pids(self):
        d = self.start_worker()
        pid = d.current_pid("w[0]")
        for kill in range(1, 4):
            os.kill(pid, signal.SIGKILL)
            new = d.current_pid("w[0]", after=pid)
            wait_until(lambda: any(e["event"] == "started" and e["pid"] == new for e in self.events(d)),
                       what=f"the start of pid {new}")
            events = self.events(d)
            at = next(i for i, e in enumerate(events) if e["event"] == "exited" and e["pid"] == pid)
            exited, scheduled, started = events[at:at + 3]
            self.assertEqual([e["event"] for e in (exited, scheduled, started)],
                             ["exited", "restart_scheduled", "started"], events[at:])
            self.assertEqual((exited["signal"], exited["reason"]), (9, "crash"))
            self.assertIsNone(scheduled["pid"])  # as it was when scheduled: no process
            self.assertEqual((scheduled["delay"], scheduled["restarts"]), (0, kill))
            self.assertEqual((started["pid"], started["restarts"]), (new, kill))
            self.assertEqual([e["seq"] for e in (exited, scheduled, started)],
                             [exited["seq"], exited["seq"] + 1, exited["seq"] + 2])
            times = [e["time"] for e in (exited, scheduled, started)]
            self.assertEqual(times, sorted(times))

            # The log: the restart's line, about the pid that exited, then the new start's.
            lines = [l for l in json_lines(d.log()) if l["worker"] == "w"]
            restart = [i for i, l in enumerate(lines)
                       if re.fullmatch(rf"worker w\[0\]: pid {pid} killed by signal KILL after \S+; "
                                       rf"restart #{kill} now", l["message"])]
            self.assertEqual(len(restart), 1, lines)
            self.assertEqual((lines[restart[0]]["pid"], lines[restart[0]]["level"]), (pid, "warning"))
            begun = [i for i, l in enumerate(lines) if l["message"] == f"worker w[0]: started pid {new}"]
            self.assertEqual(len(begun), 1, lines)
            self.assertEqual(lines[begun[0]]["pid"], new)
            self.assertLess(restart[0], begun[0])
            # Read without reaping it, then reaped once the replacement was started: no
            # zombie is left behind.
            wait_until(lambda: not os.path.exists(f"/proc/{pid}"), what=f"pid {pid} reaped")
            pid = new

    def test_a_replacement_that_cannot_start_is_told_after_the_restart(self):
        # Each failed start is retried at once too: a small start limit ends it.
        d = self.start_worker(CONFIG.replace("start_limit_burst = 1000", "start_limit_burst = 3"))
        pid = d.current_pid("w[0]")
        os.remove(self.script)
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: any(e["event"] == "failed" for e in self.events(d)), what="the start limit")
        events = self.events(d)
        at = next((i for i, e in enumerate(events) if e["event"] == "exited" and e["pid"] == pid), None)
        self.assertIsNotNone(at, events)
        self.assertEqual([e["event"] for e in events[at:at + 3]], ["exited", "restart_scheduled", "start_failed"],
                         events[at:])
        self.assertEqual(events[at + 1]["delay"], 0)
        lines = [l["message"] for l in json_lines(d.log()) if l["worker"] == "w"]
        restart = next(i for i, m in enumerate(lines) if re.search(rf"pid {pid} killed .*; restart #1 now$", m))
        failure = next(i for i, m in enumerate(lines) if "No such file or directory" in m)
        self.assertLess(restart, failure, lines)

    def test_null_output_is_fdsupds_dev_null_and_respawns_open_nothing(self):
        d = self.start_worker()
        pid = d.current_pid("w[0]")

        settled = None
        for respawn in range(6):
            for fd in (0, 1, 2):
                self.assertEqual(os.readlink(f"/proc/{pid}/fd/{fd}"), "/dev/null")
            with open(f"/proc/{pid}/fdinfo/1") as f:
                flags = int(re.search(r"flags:\s+(\d+)", f.read()).group(1), 8)
            self.assertEqual(flags & os.O_ACCMODE, os.O_RDWR)
            if respawn == 1:
                settled = settled_fd_count(d.pid)  # after a first respawn: everything opened on first use is
            elif respawn > 1:
                self.assertEqual(settled_fd_count(d.pid), settled)
            os.kill(pid, signal.SIGKILL)
            pid = d.current_pid("w[0]", after=pid)

    def test_a_burst_of_exits_is_told_and_leaves_no_pidfd_open(self):
        # 100 instances killed together: every restart is logged, and fdsupd's fds (each
        # exit's spent pidfd is closed after its replacement's clone) come back to what
        # they were.
        d = self.start_worker(CONFIG.replace('stdout = "null"', 'instances = 100\nstdout = "null"'))

        def all_running():
            pids = d.instance_pids("w")
            return pids if len(pids) == 100 and all(pids.values()) else None
        running = wait_until(all_running, what="100 instances running")
        # One respawn first, so that whatever fdsupd opens on first use is counted before.
        os.kill(running[0], signal.SIGKILL)
        running[0] = d.current_pid("w[0]", after=running[0])
        before = settled_fd_count(d.pid)
        for pid in running.values():
            os.kill(pid, signal.SIGKILL)
        def all_replaced():
            pids = all_running()
            return pids is not None and all(pids[i] != running[i] for i in pids)
        wait_until(all_replaced, what="100 instances respawned")
        self.assertEqual(settled_fd_count(d.pid), before)
        restarts = [l for l in json_lines(d.log()) if re.search(r"killed by signal KILL .*; restart #\d+ now$", l["message"])]
        self.assertEqual(len(restarts), 101, restarts[-3:])


if __name__ == "__main__":
    unittest.main()
