"""Regressions for what a careless parent or config can do to fdsupd: started with
SIGCHLD ignored or stdio closed, exec failures with no backoff at all, and a worker in
backoff when shutdown begins."""
import os
import re
import signal
import unittest

from fdsup_harness import FdsupTestCase, http_get

SERVING = """
[sockets.http]
listen = "tcp://127.0.0.1:0"
[workers.web]
command = ["@HELPERS@/http_worker"]
sockets = ["http"]
healthy_after = "0ms"
"""


class HostileStart(FdsupTestCase):
    def test_sigchld_ignored_by_the_parent(self):
        # Inherited SIG_IGN for SIGCHLD would let the kernel reap workers behind fdsupd.
        d = self.fdsupd(SERVING).start(preexec_fn=lambda: signal.signal(signal.SIGCHLD, signal.SIG_IGN))
        pid = d.current_pid("web[0]")
        os.kill(pid, signal.SIGKILL)
        d.wait_log(rf"worker web\[0\]: pid {pid} killed by signal KILL .*restart #1 now")
        new_pid = d.current_pid("web[0]", after=pid)
        host, port = d.address("http")
        self.assertRegex(http_get(host, port), rf"pid {new_pid}")
        self.assertNotIn("already reaped", d.log())
        self.assertEqual(d.stop(), 0)

    def test_stdin_closed_at_start(self):
        d = self.fdsupd(SERVING).start(preexec_fn=lambda: os.close(0))
        d.wait_log(r"http_worker: serving on fd 3")
        self.assertEqual(os.readlink(f"/proc/{d.pid}/fd/0"), "/dev/null")
        self.assertEqual(d.stop(), 0)

    def test_exec_failures_without_backoff_do_not_recurse(self):
        d = self.fdsupd("""
[workers.missing]
command = ["/nonexistent/bin/app"]
backoff = "0s"
healthy_after = "0s"
start_limit_burst = 3000
""").start()
        d.wait_log(r"worker missing\[0\]: could not be started 3000 times in a row", timeout=120)
        self.assertEqual(len(re.findall(r"missing\[0\]: (could not be started 3000 times in a row: )?"
                                        r"exec /nonexistent/bin/app", d.log())), 3000)
        self.assertEqual(d.stop(), 0)

    def test_no_spawn_after_shutdown_begins(self):
        # db was ready (so web started), then crashed into backoff. web ignores SIGTERM,
        # so it stays alive for stop_timeout, and db, which web depends on, is not
        # stopped before it: db's backoff timer fires during the shutdown.
        d = self.fdsupd("""
[workers.db]
command = ["/bin/sh", "-c", "sleep 0.2; exit 1"]
backoff = "300ms"
healthy_after = "1h"
[workers.web]
command = ["/bin/sh", "-c", "trap '' TERM; sleep 1000"]
after = ["db"]
stop_timeout = "1500ms"
""").start()
        d.wait_log(r"worker web\[0\]: started pid")
        d.wait_log(r"worker db\[0\]: pid \d+ exited with code 1 .*restart #1 in 300ms")
        d.signal(signal.SIGTERM)
        self.assertEqual(d.wait_exit(), 0)  # web had to be SIGKILLed after its stop_timeout: logged, still 0
        log = d.log()
        after_shutdown = log[log.index("shutting down"):]
        self.assertNotIn("started pid", after_shutdown)


if __name__ == "__main__":
    unittest.main()
