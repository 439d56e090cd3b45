"""`after`: a worker starts only once every instance of the workers it names is ready
(`ready = "delay"`, or READY=1 from libsystemd's sd_notify), and shutdown stops it
before them. While it waits, status says what for."""
import os
import re
import unittest

from fdsup_harness import FdsupTestCase

CONFIG = """
[workers.db]
command = ["/bin/sleep", "1000"]
instances = 2
ready = "delay"
ready_delay = "300ms"

[workers.cache]
command = ["/bin/sleep", "1000"]
ready = "delay"
ready_delay = "100ms"

[workers.app]
command = ["/bin/sleep", "1000"]
after = ["db", "cache"]
"""


def position(log, pattern):
    m = re.search(pattern, log)
    if m is None:
        raise AssertionError(f"{pattern!r} not in log:\n{log}")
    return m.start()


class Dependencies(FdsupTestCase):
    def test_start_after_ready_and_stop_in_reverse(self):
        d = self.fdsupd(CONFIG).start()
        d.wait_log(r"worker app\[0\]: started pid")
        log = d.log()
        self.assertIn("worker app: waiting for db, cache to be ready", log)
        app_start = position(log, r"worker app\[0\]: started pid")
        for dependency in ("db[0]", "db[1]", "cache[0]"):
            self.assertLess(position(log, rf"worker {re.escape(dependency)}: pid \d+ ready"), app_start)

        d.signal(15)
        self.assertEqual(d.wait_exit(), 0)
        log = d.log()
        app_gone = position(log, r"worker app\[0\]: pid \d+ killed by signal TERM .*; stopped")
        for dependency in ("db[0]", "db[1]", "cache[0]"):
            self.assertGreater(position(log, rf"worker {re.escape(dependency)}: stopping pid"), app_gone)

    def test_first_exec_after_the_dependency_sends_ready(self):
        # db becomes ready only when the test removes its "hold" file and restarts it:
        # until then app waits, and says so.
        d = self.fdsupd("""
[sockets.db]
listen = "tcp://127.0.0.1:0"
[workers.db]
command = ["@HELPERS@/http_worker", "--notify", "--never-ready-if", "@TMP@/hold"]
sockets = ["db"]
ready = "notify"
ready_timeout = "1h"
[workers.app]
command = ["/bin/sleep", "1000"]
after = ["db"]
""")
        open(os.path.join(d.tmp, "hold"), "w").close()
        d.start(wait_for_workers=["db[0]"])
        d.wait_control()
        app = [w for w in d.ctl_json("status")["workers"] if w["name"] == "app"][0]
        self.assertEqual((app["waiting_for"], app["instances"][0]["pid"]), (["db"], None))
        self.assertIn("app: waiting for db to be ready", d.ctl_ok("status"))

        os.unlink(os.path.join(d.tmp, "hold"))
        d.ctl_ok("restart", "db")  # the replacement sends READY=1
        d.wait_log(r"worker app\[0\]: started pid")
        log = d.log()
        ready = position(log, r"worker db\[0\]: pid \d+ ready after")
        self.assertLess(ready, position(log, r"worker app\[0\]: started pid"))
        app = [w for w in d.ctl_json("status")["workers"] if w["name"] == "app"][0]
        self.assertEqual(app["waiting_for"], [])

        mark = len(d.log())
        d.signal(15)
        self.assertEqual(d.wait_exit(), 0)
        log = d.log()[mark:]
        self.assertLess(position(log, r"worker app\[0\]: pid \d+ killed by signal TERM"),
                        position(log, r"worker db\[0\]: stopping pid \d+ with SIGTERM \(timeout"))


if __name__ == "__main__":
    unittest.main()
