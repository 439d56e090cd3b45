"""SIGKILL a worker again and again under continuous connection load: the socket stays
open in the supervisor, so no connection is ever refused; the replacement serves and
every restart is logged with its count."""
import os
import signal
import unittest

from fdsup_harness import FdsupTestCase, LoadClient, http_get, pid_alive

CONFIG = """
[sockets.http]
listen = "tcp://127.0.0.1:0"
backlog = 4096

[workers.web]
command = ["@HELPERS@/http_worker"]
instances = 1
sockets = ["http"]
healthy_after = "{healthy_after}"
backoff = "50ms"
backoff_max = "200ms"
start_limit_burst = 100
"""

KILLS = 10


class CrashUnderLoad(FdsupTestCase):
    def run_kills(self, healthy_after, restart_word):
        d = self.fdsupd(CONFIG.format(healthy_after=healthy_after)).start()
        host, port = d.address("http")
        pid = d.current_pid("web[0]")
        d.wait_log(r"http_worker: serving on fd 3")
        load = LoadClient(host, port, d.tmp)
        try:
            load.wait_for_more(50, "load flowing")
            for n in range(1, KILLS + 1):
                os.kill(pid, signal.SIGKILL)
                d.wait_log(rf"worker web\[0\]: pid {pid} killed by signal KILL after .*; restart #{n} {restart_word}")
                new_pid = d.current_pid("web[0]", after=pid)
                self.assertNotEqual(new_pid, pid)
                pid = new_pid
                # Load must keep flowing through the replacement before the next kill.
                load.wait_for_more(20, "requests served by the replacement")
        finally:
            result = load.finish()
        self.assertEqual(result["refused"], 0, result)
        self.assertEqual(result["connect_other"], 0, result)
        self.assertEqual(result["timeout"], 0, result)
        self.assertGreater(result["ok"], 200, result)
        # Only connections the killed worker had already accepted may fail.
        self.assertLessEqual(result["reset"] + result["bad_response"], KILLS * 4, result)
        self.assertTrue(pid_alive(pid))
        self.assertRegex(http_get(host, port), rf"^web\[0\] pid {pid}\n$")
        self.assertEqual(d.stop(), 0)

    def test_restart_after_healthy_run_is_immediate(self):
        self.run_kills("0ms", "now")

    def test_quick_crash_restart_is_backed_off(self):
        self.run_kills("1h", r"in \d+ms")


if __name__ == "__main__":
    unittest.main()
