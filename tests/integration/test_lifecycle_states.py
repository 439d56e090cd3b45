"""Lifecycle verbs act on instances in every state: stop during backoff, start after
failed (the start limit is cleared), restart while still starting."""
import subprocess
import unittest

from fdsup_harness import FDSUPCTL, FdsupTestCase, pid_alive, wait_until


class States(FdsupTestCase):
    def test_stop_during_backoff_cancels_the_restart(self):
        d = self.fdsupd("""
[workers.flaky]
command = ["/bin/sh", "-c", "exit 3"]
backoff = "30s"
backoff_max = "30s"
""").start()
        d.wait_control()
        d.wait_log(r"worker flaky\[0\]: pid \d+ exited with code 3 after \S+; restart #1 in 30\.0s")
        self.assertEqual(d.ctl_json("status")["workers"][0]["instances"][0]["state"], "backoff")
        out = d.ctl_ok("stop", "flaky")
        self.assertEqual(out, "flaky[0]: not running (stopped)\n")
        status = d.ctl_json("status")["workers"][0]
        self.assertEqual((status["state"], status["instances"][0]["pid"]), ("stopped", None))
        started = len(d.worker_pids("flaky[0]"))
        # start brings it back at once, not after the 30 s backoff
        _, out, _ = d.ctl("start", "flaky")
        self.assertEqual(len(d.worker_pids("flaky[0]")), started + 1)
        self.assertRegex(out, r"flaky\[0\]: started pid \d+")

    def test_start_after_failed_clears_the_start_limit(self):
        d = self.fdsupd("""
[workers.broken]
command = ["/bin/sh", "-c", "exit 1"]
backoff = "10ms"
start_limit_burst = 2
start_limit_interval = "1h"
""").start()
        d.wait_control()
        d.wait_log(r"worker broken\[0\]: start limit hit")
        wait_until(lambda: d.ctl_json("status")["workers"][0]["instances"][0]["state"] == "failed")
        before = len(d.worker_pids("broken[0]"))
        d.ctl("start", "broken")
        self.assertGreater(len(d.worker_pids("broken[0]")), before)
        # and it fails again by the same limit, reported as such
        d.wait_log(r"worker broken\[0\]: start limit hit", count=2)

    def test_restart_while_starting_starts_it_again(self):
        d = self.fdsupd("""
[workers.slow]
command = ["/bin/sleep", "1000"]
ready = "delay"
ready_delay = "2s"
""").start(wait_for_workers=["slow[0]"])
        d.wait_control()
        first = d.instance_pids("slow")[0]
        instance = d.ctl_json("status")["workers"][0]["instances"][0]
        self.assertEqual((instance["state"], instance["ready"]), ("starting", False))
        out = d.ctl_ok("restart", "slow")  # waits for the new one to be ready
        second = d.instance_pids("slow")[0]
        self.assertNotEqual(first, second)
        self.assertFalse(pid_alive(first))
        self.assertEqual(out, f"slow[0]: pid {first} replaced by pid {second}\n")
        instance = d.ctl_json("status")["workers"][0]["instances"][0]
        self.assertEqual((instance["state"], instance["ready"]), ("running", True))

    def test_stop_wins_over_a_restart_in_progress(self):
        d = self.fdsupd("""
[workers.stubborn]
command = ["@HELPERS@/http_worker", "--ignore-term"]
fds = { 3 = "http" }
stop_timeout = "2s"
restart_strategy = "stop-start"
[sockets.http]
listen = "tcp://127.0.0.1:0"
""").start(wait_for_workers=["stubborn[0]"])
        d.wait_control()
        restart = subprocess.Popen([FDSUPCTL, "-s", d.control_socket, "restart", "stubborn"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        d.wait_log(r"worker stubborn\[0\]: stopping pid")
        d.ctl_ok("stop", "stubborn")
        out, err = restart.communicate(timeout=20)
        self.assertEqual(restart.returncode, 1, out + err)
        self.assertIn("not started again: a later command took over", out)
        self.assertEqual(d.ctl_json("status")["workers"][0]["state"], "stopped")

    def test_operator_restarts_are_not_limited_by_the_start_limit(self):
        # start_limit_burst guards against crash loops, not against the operator:
        # twelve restarts in a row with a burst of 3 all go through.
        for strategy in ("stop-start", "rolling"):
            d = self.fdsupd(f"""
[workers.web]
command = ["/bin/sleep", "1000"]
start_limit_burst = 3
restart_strategy = "{strategy}"
""").start(wait_for_workers=["web[0]"])
            d.wait_control()
            for _ in range(12):
                d.ctl_ok("restart", "web")
            self.assertNotIn("start limit hit", d.log())
            self.assertEqual(d.ctl_json("status")["workers"][0]["state"], "running")


if __name__ == "__main__":
    unittest.main()
