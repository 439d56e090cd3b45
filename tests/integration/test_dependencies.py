"""`after`: a worker starts only once every instance of the workers it names is ready
(`ready = "delay"` here), and shutdown stops it before them."""
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
            self.assertLess(position(log, rf"worker {re.escape(dependency)}: ready"), app_start)

        d.signal(15)
        self.assertEqual(d.wait_exit(), 0)
        log = d.log()
        app_gone = position(log, r"worker app\[0\]: pid \d+ killed by signal TERM .*; stopped")
        for dependency in ("db[0]", "db[1]", "cache[0]"):
            self.assertGreater(position(log, rf"worker {re.escape(dependency)}: stopping pid"), app_gone)


if __name__ == "__main__":
    unittest.main()
