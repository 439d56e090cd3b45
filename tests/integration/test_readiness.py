"""Readiness through sd_notify: a worker using the real libsystemd becomes ready, a
worker that never says so (or exits first) is a failed start, and the watchdog
restarts a worker that stops pinging."""
import json
import os
import re
import unittest

from fdsup_harness import FdsupTestCase, helper, http_get, pid_alive, wait_until

HTTP = """
[sockets.http]
listen = "tcp://127.0.0.1:0"
"""


def instance(d, worker, index=0):
    for w in d.ctl_json("status")["workers"]:
        if w["name"] == worker:
            return [i for i in w["instances"] if i["index"] == index and not i.get("retiring")][0]
    raise AssertionError(f"no worker {worker}")


class Readiness(FdsupTestCase):
    def test_libsystemd_sd_notify_makes_a_worker_ready(self):
        # http_worker calls sd_notify(0, "READY=1\nSTATUS=serving") from libsystemd
        # once the test removes its "hold" file; until then the instance is starting.
        d = self.fdsupd(HTTP + """
[workers.web]
command = ["@HELPERS@/http_worker", "--notify", "--hold-ready-while", "@TMP@/hold"]
sockets = ["http"]
ready = "notify"
""")
        open(os.path.join(d.tmp, "hold"), "w").close()
        d.start(wait_for_workers=["web[0]"])
        d.wait_control()
        before = instance(d, "web")
        pid = before["pid"]
        self.assertEqual((before["state"], before["ready"], before["status"]), ("starting", False, None))
        os.unlink(os.path.join(d.tmp, "hold"))
        d.wait_log(rf"worker web\[0\]: pid {pid} ready after \d+")
        after = instance(d, "web")
        self.assertEqual((after["state"], after["ready"], after["status"], after["pid"]),
                         ("running", True, "serving", pid))
        self.assertIn("web[0]: status: serving", d.ctl_ok("status"))
        self.assertTrue(http_get(*d.address("http")).startswith("web["))
        self.assertEqual(d.ctl_json("status")["supervisor"]["notify_dropped"], 0)

    def test_a_ready_timeout_counts_from_the_exec_not_from_fdsupds_own_start(self):
        # fdsupd's start is made slow between its loop's birth and the workers' start (the
        # control socket's bind sleeps 600 ms). A ready timeout counted from the loop's
        # clock of then would have run out before the worker even started ("0ms after
        # exec"); counted from the exec, the worker's READY=1 after 200 ms is in time.
        env = dict(os.environ, LD_PRELOAD=helper("slow_bind.so"), FDSUP_SLOW_BIND_SUFFIX="/control.sock",
                   FDSUP_SLOW_BIND_MS="600", ASAN_OPTIONS="verify_asan_link_order=0:detect_leaks=1")
        d = self.fdsupd(HTTP + """
[workers.web]
command = ["@HELPERS@/http_worker", "--notify", "--startup-delay-ms", "200"]
sockets = ["http"]
ready = "notify"
ready_timeout = "500ms"
""", env=env).start(wait_for_workers=["web[0]"])
        pid = d.current_pid("web[0]")
        d.wait_log(rf"worker web\[0\]: pid {pid} ready after \d+")
        self.assertNotIn("not ready within ready_timeout", d.log())
        self.assertEqual(instance(d, "web")["restarts"], 0)

    def test_start_waits_for_ready(self):
        d = self.fdsupd(HTTP + """
[workers.web]
command = ["@HELPERS@/http_worker", "--notify", "--startup-delay-ms", "300"]
sockets = ["http"]
ready = "notify"
""").start(wait_for_workers=["web[0]"])
        d.wait_control()
        d.wait_log(r"worker web\[0\]: pid \d+ ready")
        d.ctl_ok("stop", "web")
        d.ctl_ok("start", "web")  # returns once READY=1 has arrived
        now = instance(d, "web")
        self.assertEqual((now["state"], now["ready"]), ("running", True))

    def test_not_ready_in_time_is_a_failed_start(self):
        # Never sends READY=1: killed after ready_timeout, restarted with backoff.
        d = self.fdsupd(HTTP + """
[workers.web]
command = ["@HELPERS@/http_worker"]
sockets = ["http"]
ready = "notify"
ready_timeout = "300ms"
backoff = "100ms"
""").start(wait_for_workers=["web[0]"])
        first = d.worker_pids("web[0]")[0]
        d.wait_log(rf"worker web\[0\]: pid {first}: not ready within ready_timeout .*; stopping it")
        d.wait_log(rf"worker web\[0\]: not ready within ready_timeout .*restart #1 in 100ms")
        d.current_pid("web[0]", after=first)
        self.assertFalse(re.search(r"worker web\[0\]: pid \d+ ready", d.log()))

    def test_not_ready_in_time_with_restart_never_fails(self):
        d = self.fdsupd(HTTP + """
[workers.web]
command = ["@HELPERS@/http_worker"]
sockets = ["http"]
ready = "notify"
ready_timeout = "200ms"
restart = "never"
""").start(wait_for_workers=["web[0]"])
        d.wait_control()
        d.wait_log(r"worker web\[0\]: .*failed: not ready within ready_timeout .*\(restart = never\)")
        now = instance(d, "web")
        self.assertEqual(now["state"], "failed")
        self.assertIn("not ready within ready_timeout", now["last_error"])
        code, out, err = d.ctl("start", "web")  # the operator's start reports the same failure
        self.assertEqual(code, 1, out + err)
        self.assertIn("web[0]: not ready within ready_timeout", out + err)

    def test_exit_before_ready_is_a_failure_even_with_code_0(self):
        d = self.fdsupd("""
[workers.quick]
command = ["/bin/true"]
ready = "notify"
restart = "on-failure"
backoff = "50ms"
start_limit_burst = 2
""").start(wait_for_workers=["quick[0]"])
        d.wait_log(r"worker quick\[0\]: pid \d+ exited with code 0 after .* before it was ready.*restart #1")
        d.wait_log(r"worker quick\[0\]: start limit hit")

    def sender(self, plan, extra=""):
        d = self.fdsupd("""
[workers.w]
command = ["@PYTHON@", "@SCRIPTS@/notify_sender.py", "@TMP@/plan.json"]
ready = "notify"
""" + extra)
        with open(os.path.join(d.tmp, "plan.json"), "w") as f:
            json.dump(plan, f)
        d.start(wait_for_workers=["w[0]"])
        d.wait_control()
        return d

    def test_extend_timeout_usec_moves_the_ready_deadline(self):
        # ready_timeout is 300 ms, but the worker asks for more time (the largest value
        # there is: it must not wrap around into the past) and is ready after 1 s.
        d = self.sender([{"send": "EXTEND_TIMEOUT_USEC=18446744073709551615"}, {"sleep": 1.0}, {"send": "READY=1"}],
                        'ready_timeout = "300ms"\n')
        pid = d.worker_pids("w[0]")[0]
        d.wait_log(rf"worker w\[0\]: pid {pid} ready after")
        self.assertNotIn("not ready within ready_timeout", d.log())

    def test_reloading_is_shown_until_ready_again(self):
        d = self.sender([{"send": "READY=1"}, {"send": "RELOADING=1\nMONOTONIC_USEC=1\nSTATUS=reloading"},
                         {"say": "step 1"}, {"sleep": 30}])
        d.wait_log(r"w\[0\]: step 1")
        wait_until(lambda: instance(d, "w").get("reloading"), what="reloading shown")
        self.assertEqual((instance(d, "w")["status"], instance(d, "w")["state"]), ("reloading", "running"))


class Watchdog(FdsupTestCase):
    def test_a_worker_that_stops_pinging_is_restarted(self):
        # Pings every 150 ms (half of WATCHDOG_USEC) three times, then goes silent.
        d = self.fdsupd(HTTP + """
[workers.web]
command = ["@HELPERS@/http_worker", "--notify", "--watchdog-pings", "3"]
sockets = ["http"]
ready = "notify"
watchdog = "300ms"
backoff = "50ms"
""").start(wait_for_workers=["web[0]"])
        first = d.worker_pids("web[0]")[0]
        d.wait_log(rf"worker web\[0\]: pid {first}: watchdog timeout: no WATCHDOG=1 for \d+ms; stopping it")
        d.wait_log(rf"worker web\[0\]: watchdog timeout: .*\(pid {first} exited with code 0 after .*\); restart #1")
        second = d.current_pid("web[0]", after=first)
        self.assertNotEqual(first, second)
        wait_until(lambda: not pid_alive(first), what="the silent worker gone")

    def test_a_worker_that_keeps_pinging_is_left_alone(self):
        d = self.fdsupd(HTTP + """
[workers.web]
command = ["@HELPERS@/http_worker", "--notify", "--watchdog-pings", "-1"]
sockets = ["http"]
ready = "notify"
watchdog = "1s"
""").start(wait_for_workers=["web[0]"])
        d.wait_control()
        pid = d.worker_pids("web[0]")[0]
        d.wait_log(rf"worker web\[0\]: pid {pid} ready")
        # Pinged every 500 ms: after four watchdog periods it is still the same process.
        wait_until(lambda: instance(d, "web")["uptime_s"] > 4.0, what="four seconds of uptime")
        self.assertEqual(instance(d, "web")["pid"], pid)
        self.assertNotIn("watchdog timeout", d.log())
        self.assertEqual(instance(d, "web")["watchdog_s"], 1.0)

    def test_stop_during_a_watchdog_kill_stays_stopped(self):
        # The watchdog is killing a worker that ignores SIGTERM; the operator's stop
        # arrives meanwhile: once the process is gone, nothing restarts it.
        d = self.fdsupd(HTTP + """
[workers.web]
command = ["@HELPERS@/http_worker", "--ignore-term", "--notify", "--watchdog-pings", "1"]
sockets = ["http"]
ready = "notify"
watchdog = "300ms"
stop_timeout = "1s"
backoff = "50ms"
""").start(wait_for_workers=["web[0]"])
        d.wait_control()
        pid = d.worker_pids("web[0]")[0]
        d.wait_log(rf"worker web\[0\]: pid {pid}: watchdog timeout")
        d.ctl_ok("stop", "web")
        self.assertFalse(pid_alive(pid))
        self.assertEqual(instance(d, "web")["state"], "stopped")
        self.assertNotRegex(d.log(), r"restart #1")
        self.assertEqual(len(d.worker_pids("web[0]")), 1)

    def test_watchdog_trigger_restarts_at_once(self):
        d = self.fdsupd("""
[workers.w]
command = ["@PYTHON@", "@SCRIPTS@/notify_sender.py", "@TMP@/plan.json"]
ready = "notify"
watchdog = "1h"
backoff = "50ms"
""")
        with open(os.path.join(d.tmp, "plan.json"), "w") as f:
            json.dump([{"send": "READY=1"}, {"sleep": 0.2}, {"send": "WATCHDOG=trigger"}], f)
        d.start(wait_for_workers=["w[0]"])
        first = d.worker_pids("w[0]")[0]
        d.wait_log(rf"worker w\[0\]: pid {first}: watchdog triggered by the worker \(WATCHDOG=trigger\)")
        d.current_pid("w[0]", after=first)


if __name__ == "__main__":
    unittest.main()
