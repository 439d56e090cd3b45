"""The notify socket takes datagrams from anyone who can reach it (mode 0666). Only a
worker's own process (or, with notify_access = "all", its descendants) is heard;
garbage, unasked-for fds and spoofing are dropped and counted, fds closed, and the
supervisor carries on."""
import array
import json
import os
import socket
import unittest

from fdsup_harness import FdsupTestCase, open_fd_count, wait_for_connections_closed, wait_until

SENDER = """
[workers.w]
command = ["@PYTHON@", "@SCRIPTS@/notify_sender.py", "@TMP@/plan.json"]
ready = "notify"
ready_timeout = "1h"
notify_access = "{access}"
"""


def status_of(d, worker="w"):
    status = d.ctl_json("status")
    w = [w for w in status["workers"] if w["name"] == worker][0]
    return status["supervisor"]["notify_dropped"], w["instances"][0]


class NotifyAbuse(FdsupTestCase):
    def sender(self, plan, access="main"):
        d = self.fdsupd(SENDER.format(access=access))
        with open(os.path.join(d.tmp, "plan.json"), "w") as f:
            json.dump(plan + [{"say": "plan done"}], f)
        d.start(wait_for_workers=["w[0]"])
        d.wait_control()
        d.wait_log(r"w\[0\]: plan done")
        return d

    def test_garbage_from_the_worker_is_dropped_and_counted(self):
        garbage = [
            "",                               # empty
            "READY=1\0junk",                  # NUL byte
            "just some words",                # no '='
            "ready=1",                        # lower-case key
            "READY=yes",                      # a value READY cannot have
            "EXTEND_TIMEOUT_USEC=soon",
            "STATUS=\x1b[2Jcleared your terminal",
            "X=" + "a" * 5000,                # over 4096 bytes
        ]
        d = self.sender([{"send": g} for g in garbage])
        dropped, instance = status_of(d)
        self.assertEqual(dropped, len(garbage), d.log())
        self.assertEqual((instance["state"], instance["ready"], instance["status"]), ("starting", False, None))
        for why in ("message contains a NUL byte", "not a KEY=VALUE assignment", "invalid key",
                    "READY must be 1", "STATUS is not printable UTF-8", "(at most 4096)"):
            self.assertIn(why, d.log())

    def test_unasked_fds_are_closed_and_nothing_leaks(self):
        d = self.sender([])
        # Counted once fdsupd has closed its end of each fdsupctl connection (it does when
        # it reads their EOF, a moment after fdsupctl exits): one still open made the
        # counts differ by one under load.
        wait_for_connections_closed(d)
        baseline = open_fd_count(d.pid)
        d2 = self.sender([{"send": "STATUS=with fds", "fds": 200}, {"send": "FDSTORE=1\nFDNAME=x", "fds": 3},
                          {"barrier": True}, {"send": "READY=1\nSTATUS=fine"}])
        baseline2 = None
        wait_until(lambda: status_of(d2)[1]["ready"], what="READY=1 after the bad ones")
        dropped, instance = status_of(d2)
        # The datagram with unasked-for fds is dropped whole; FDSTORE=1 to a worker without
        # a store only loses its fds (systemd handles the rest of such a message).
        self.assertEqual(dropped, 1)
        self.assertEqual(instance["status"], "fine")
        self.assertIn("200 fd(s) without FDSTORE=1; fds closed", d2.log())
        self.assertIn("FDSTORE=1 refused, fds closed: the fd store is not enabled for this worker", d2.log())
        # BARRIER=1: the pipe's write end was closed once handled, which released the worker.
        d2.wait_log(r"w\[0\]: barrier: released")
        # Both supervisors hold the same fds: none of the 203 received ones stayed open.
        wait_for_connections_closed(d2)
        baseline2 = open_fd_count(d2.pid)
        self.assertEqual(baseline2, baseline)
        self.assertEqual(open_fd_count(d.pid), baseline)

    def test_spoofing_from_a_process_that_is_not_a_worker(self):
        d = self.sender([])
        path = os.path.join(d.tmp, "run", "notify.sock")
        worker_pid = status_of(d)[1]["pid"]
        # The test process is no worker: READY=1, even naming the worker's pid, is ignored.
        wait_for_connections_closed(d)  # status_of's fdsupctl
        baseline = open_fd_count(d.pid)
        for text in ("READY=1", f"MAINPID={worker_pid}\nREADY=1", "WATCHDOG=trigger"):
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
                s.sendto(text.encode(), path)
        # ... and fds it sends are closed, not kept.
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s, open("/dev/null") as null:
            s.sendmsg([b"FDSTORE=1\nFDNAME=x"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                                 array.array("i", [null.fileno()] * 50))], 0, path)
        wait_until(lambda: status_of(d)[0] == 4, what="four dropped datagrams")
        wait_for_connections_closed(d)
        self.assertEqual(open_fd_count(d.pid), baseline)
        dropped, instance = status_of(d)
        self.assertEqual((instance["state"], instance["ready"], instance["pid"]), ("starting", False, worker_pid))
        self.assertIn(f"notify: dropped a message from pid {os.getpid()}: not a worker process", d.log())

    def test_a_descendant_is_heard_only_with_notify_access_all(self):
        d = self.sender([{"send": "READY=1\nSTATUS=from a child\nBARRIER=1", "from": "child"}], access="main")
        wait_until(lambda: status_of(d)[0] == 1, what="the child's datagram dropped")
        self.assertFalse(status_of(d)[1]["ready"])
        self.assertRegex(d.log(), r'a descendant of w\[0\] \(pid \d+\), and notify_access = "main"')

        d = self.sender([{"send": "READY=1\nSTATUS=from a child\nBARRIER=1", "from": "child"}], access="all")
        wait_until(lambda: status_of(d)[1]["ready"], what="ready through the child")
        self.assertEqual(status_of(d)[1]["status"], "from a child")
        self.assertEqual(status_of(d)[0], 0)

    def test_the_supervisor_keeps_serving_after_a_flood(self):
        d = self.sender([{"send": "garbage"} for _ in range(2000)] + [{"send": "READY=1"}])
        wait_until(lambda: status_of(d)[1]["ready"], what="ready after the flood")
        self.assertEqual(status_of(d)[0], 2000)
        # The log is rate limited: far fewer lines than datagrams, and a summary once
        # the window ends says how many went unlogged.
        d.wait_log(r"notify: \d+ more messages dropped without a log line \(2000 dropped in all\)")
        self.assertLess(d.log().count("notify: dropped"), 100)


if __name__ == "__main__":
    unittest.main()
