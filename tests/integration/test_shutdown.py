"""Graceful shutdown: stop_signal first, SIGKILL after stop_timeout for a worker that
ignores it, the rest of each worker's process group killed too, nothing left; exit 0
when every worker stopped by itself, 1 when one had to be SIGKILLed."""
import os
import re
import signal
import unittest

from fdsup_harness import FdsupTestCase, pid_alive, wait_until

CONFIG = """
[supervisor]
shutdown_timeout = "30s"

[sockets.http]
listen = "tcp://127.0.0.1:0"

[workers.deaf]
command = ["@HELPERS@/http_worker", "--ignore-term"]
sockets = ["http"]
stop_timeout = "300ms"

[workers.polite]
command = ["/bin/sh", "-c", "sleep 1000 & echo helper $!; exec @HELPERS@/http_worker"]
sockets = ["http"]
instances = 2
"""


class Shutdown(FdsupTestCase):
    def check_shutdown(self, sig):
        d = self.fdsupd(CONFIG).start()
        d.wait_log(r"http_worker: serving on fd 3", count=3)
        deaf = d.current_pid("deaf[0]")
        polite = [d.current_pid("polite[0]"), d.current_pid("polite[1]")]
        helpers = [int(m.group(1)) for m in d.wait_log(r"polite\[\d\]: helper (\d+)", count=2)]

        d.signal(sig)
        d.wait_log(r"worker deaf\[0\]: pid \d+ still running after stop_timeout; sending SIGKILL")
        # A second signal during the shutdown changes nothing.
        d.signal(signal.SIGTERM)
        # 0 although deaf had to be SIGKILLed: the stop that was asked for happened (a
        # service manager must not mark fdsupd failed for it); the log says so.
        self.assertEqual(d.wait_exit(), 0)
        log = d.log()
        self.assertIn("shutdown: not every worker stopped within its stop_timeout", log)
        self.assertRegex(log, rf"worker deaf\[0\]: pid {deaf} killed by signal KILL after .*; stopped")
        for pid in polite:
            self.assertRegex(log, rf"worker polite\[\d\]: pid {pid} exited with code 0 after .*; stopped")
        self.assertIn("all workers stopped", log)
        # Nothing survives: not the workers, not the helpers they left in their groups.
        for pid in [deaf, *polite, *helpers]:
            wait_until(lambda: not pid_alive(pid), what=f"pid {pid} gone")

    def test_sigterm(self):
        self.check_shutdown(signal.SIGTERM)

    def test_sigint(self):
        self.check_shutdown(signal.SIGINT)

    def test_exit_0_when_every_worker_stops_by_itself(self):
        d = self.fdsupd(CONFIG.split("[workers.deaf]")[0] + CONFIG.split("stop_timeout = \"300ms\"\n")[1]).start()
        d.wait_log(r"http_worker: serving on fd 3", count=2)
        d.signal(signal.SIGTERM)
        self.assertEqual(d.wait_exit(), 0)
        self.assertNotIn("deaf", d.log())


if __name__ == "__main__":
    unittest.main()
