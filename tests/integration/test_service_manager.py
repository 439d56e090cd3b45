#!/usr/bin/env python3
"""fdsupd under a service manager (systemd's sd_notify protocol, spoken without
libsystemd): a fake manager (a datagram socket passed as NOTIFY_SOCKET) hears READY=1
from fdsupd's own pid once its workers are started, STATUS= summaries, RELOADING=1 and
READY=1 around every reload (failed ones too), WATCHDOG=1 pings at half of
WATCHDOG_USEC when WATCHDOG_PID is fdsupd's or unset (never when it names another
process), and STOPPING=1 at shutdown."""
import os
import subprocess
import time
import unittest

from fdsup_harness import FDSUPD, FakeManager, FdsupTestCase, wait_until

CONFIG = """
[workers.sleeper]
command = ["/bin/sleep", "1000"]
instances = 2
"""


class ServiceManager(FdsupTestCase):
    def manager(self, d):
        manager = FakeManager(d.tmp)
        self.addCleanup(manager.close)
        return manager

    def test_ready_status_reload_and_stopping_come_from_fdsupds_pid(self):
        d = self.fdsupd(CONFIG)
        manager = self.manager(d)
        d.env = dict(os.environ, NOTIFY_SOCKET=manager.path)
        d.start()
        pid, ready = manager.next_with("READY")
        self.assertEqual((pid, ready["READY"]), (d.pid, "1"))
        self.assertNotIn(None, d.instance_pids("sleeper").values())  # started before READY=1
        if ready["STATUS"] != "1 worker, 2 of 2 instances running":  # else it follows
            self.assertEqual(manager.wait_status("1 worker, 2 of 2 instances running"), d.pid)

        before = time.clock_gettime(time.CLOCK_MONOTONIC)
        d.ctl_ok("reload")
        pid, reloading = manager.next_with("RELOADING")
        self.assertEqual((pid, reloading["RELOADING"]), (d.pid, "1"))
        # MONOTONIC_USEC: when the reload began, on the clock systemd compares it with.
        self.assertGreaterEqual(int(reloading["MONOTONIC_USEC"]), int(before * 1e6))
        self.assertLessEqual(int(reloading["MONOTONIC_USEC"]), int(time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6))
        pid, ready = manager.next_with("READY")
        self.assertEqual((pid, ready["STATUS"]), (d.pid, "1 worker, 2 of 2 instances running"))

        # A reload that fails still ends in READY=1 (else systemd waits for it forever).
        d.write_config(CONFIG + "bogus_key = 1\n")
        self.assertEqual(d.ctl("reload")[0], 1)
        manager.next_with("RELOADING")
        pid, ready = manager.next_with("READY")
        self.assertIn("(the last reload failed)", ready["STATUS"])

        d.stop()
        pid, stopping = manager.next_with("STOPPING")
        self.assertEqual((pid, stopping["STOPPING"]), (d.pid, "1"))

    def test_a_stopped_worker_shows_in_the_status(self):
        d = self.fdsupd(CONFIG)
        manager = self.manager(d)
        d.env = dict(os.environ, NOTIFY_SOCKET=manager.path)
        d.start()
        manager.next_with("READY")
        d.ctl_ok("stop", "sleeper")
        self.assertEqual(manager.wait_status("1 worker, 0 of 2 instances running, 2 stopped"), d.pid)
        d.ctl_ok("start", "sleeper")
        self.assertEqual(manager.wait_status("1 worker, 2 of 2 instances running"), d.pid)

    def pings(self, manager, seconds):
        """(sender pids of) the WATCHDOG=1 messages heard within `seconds`."""
        senders = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            message = manager.receive(left)
            if message and message[1].get("WATCHDOG") == "1":
                senders.append(message[0])
        return senders

    def test_the_watchdog_is_pinged_at_half_its_timeout(self):
        d = self.fdsupd(CONFIG)
        manager = self.manager(d)
        d.env = dict(os.environ, NOTIFY_SOCKET=manager.path, WATCHDOG_USEC="200000")  # no WATCHDOG_PID: ours
        d.start()
        manager.next_with("READY")
        senders = self.pings(manager, 1.0)
        self.assertGreaterEqual(len(senders), 5)  # every 100 ms; a loaded machine may miss some
        self.assertLessEqual(len(senders), 12)
        self.assertEqual(set(senders), {d.pid})
        d.wait_log(r"service manager watchdog: WATCHDOG=1 every 100 ms")

    def test_a_watchdog_meant_for_another_process_is_not_pinged(self):
        d = self.fdsupd(CONFIG)
        manager = self.manager(d)
        d.env = dict(os.environ, NOTIFY_SOCKET=manager.path, WATCHDOG_USEC="100000", WATCHDOG_PID="1")
        d.start()
        manager.next_with("READY")
        self.assertEqual(self.pings(manager, 1.0), [])

    def test_a_watchdog_pid_naming_fdsupd_is_pinged(self):
        d = self.fdsupd(CONFIG)
        manager = self.manager(d)
        # The shell's pid is fdsupd's once it execs.
        proc = subprocess.Popen(["/bin/sh", "-c", 'WATCHDOG_PID=$$ exec "$0" -c "$1"', FDSUPD, d.config_path],
                                env=dict(os.environ, NOTIFY_SOCKET=manager.path, WATCHDOG_USEC="100000"),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.addCleanup(lambda: (proc.poll() is None and proc.kill(), proc.wait()))
        pid, _ = manager.next_with("READY")
        self.assertEqual(pid, proc.pid)
        self.assertEqual(set(self.pings(manager, 0.5)), {proc.pid})
        proc.terminate()
        self.assertEqual(proc.wait(timeout=30), 0)


if __name__ == "__main__":
    unittest.main()
