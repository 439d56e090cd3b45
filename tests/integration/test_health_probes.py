#!/usr/bin/env python3
"""Probes (SPEC "Health"): ready = "probe" with a [workers.NAME.ready_probe], the
liveness probe that replaces a failing instance the graceful way, each probe kind
passing and failing as documented, exec probes that leave no zombie and no fd, probes
that stop with their worker and go on across an in-place upgrade, and the metrics
listener's /healthz and /readyz."""
import os
import re
import signal
import socket
import subprocess
import time
import unittest
import urllib.error
import urllib.request

from fdsup_harness import (FdsupTestCase, LoadClient, children_of, http_get, open_fd_count, process_state,
                           wait_for_connections_closed, wait_until)

HTTP = """
[sockets.http]
listen = "tcp://127.0.0.1:0"
"""

# health_app answers its per-instance health socket with the code in @TMP@/status-N.
APP = """
[workers.web]
command = ["@PYTHON@", "@SCRIPTS@/health_app.py", "@TMP@/health-{instance}.sock", "@TMP@/status-{instance}"]
sockets = ["http"]
"""


def read_text(path):
    with open(path) as f:
        return f.read()


def set_status(d, index, text):
    path = os.path.join(d.tmp, f"status-{index}")
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)


class ReadyProbe(FdsupTestCase):
    def test_an_instance_is_ready_at_its_probes_first_pass(self):
        d = self.fdsupd(HTTP + APP + """
ready = "probe"
ready_timeout = "60s"
[workers.web.ready_probe]
http = "http://unix:@TMP@/health-{instance}.sock:/healthz"
interval = "50ms"
""")
        set_status(d, 0, "503")
        d.start(wait_for_workers=["web[0]"], wait_control=True)
        # (The first checks may come before the app made its health socket.)
        wait_until(lambda: "503" in ((d.instance("web").get("health") or {}).get("last") or {}).get("detail", ""),
                   what="a check answered 503")
        starting = d.instance("web")
        self.assertEqual((starting["state"], starting["ready"]), ("starting", False))
        self.assertEqual(starting["health"]["checking"], "ready_probe")
        self.assertFalse(starting["health"]["last"]["passed"])
        self.assertIn("GET http://unix:", starting["health"]["last"]["detail"])
        self.assertIn("503", starting["health"]["last"]["detail"])
        self.assertIn("web     0", d.ctl_ok("status"))
        self.assertIn("web[0]: probe failed: GET", d.ctl_ok("status"))
        set_status(d, 0, "204")
        d.wait_log(r"worker web\[0\]: pid \d+ ready after")
        ready = d.instance("web")
        self.assertEqual((ready["state"], ready["ready"], ready["pid"]), ("running", True, starting["pid"]))
        self.assertTrue(ready["health"]["last"]["passed"])
        self.assertIsNone(ready["health"]["checking"])  # no liveness probe: nothing runs now
        self.assertGreater(d.metric("fdsup_probe_checks_total", 'worker="web",probe="ready",result="fail"'), 0)
        self.assertEqual(d.metric("fdsup_probe_checks_total", 'worker="web",probe="ready",result="pass"'), 1)
        self.assertTrue(http_get(*d.address("http")).startswith("web[0]"))

    def test_a_probe_that_never_passes_fails_the_start_at_ready_timeout(self):
        d = self.fdsupd(HTTP + APP + """
ready = "probe"
ready_timeout = "2s"
restart = "never"
[workers.web.ready_probe]
http = "http://unix:@TMP@/health-{instance}.sock:/"
interval = "50ms"
timeout = "100ms"
""")
        set_status(d, 0, "hang")
        d.start(wait_for_workers=["web[0]"], wait_control=True)
        d.wait_log(r"worker web\[0\]: pid \d+: not ready within ready_timeout")
        wait_until(lambda: d.instance("web")["state"] == "failed", what="web[0] failed")
        self.assertIn("timed out after 100ms", d.instance("web")["health"]["last"]["detail"])


class Liveness(FdsupTestCase):
    def test_a_frozen_instance_is_replaced_and_its_siblings_clients_see_no_failure(self):
        interval, failures = 0.2, 3
        d = self.fdsupd(HTTP + APP.replace('[workers.web]', '[workers.web]\ninstances = 2') + f"""
stop_timeout = "5s"
[workers.web.liveness_probe]
http = "http://unix:@TMP@/health-{{instance}}.sock:/healthz"
interval = "{int(interval * 1000)}ms"
timeout = "{int(interval * 1000)}ms"
failures = {failures}
""")
        d.start(wait_for_workers=["web[0]", "web[1]"], wait_control=True)
        wait_until(lambda: all((d.instance("web", i).get("health") or {}).get("last") for i in (0, 1)),
                   what="a passed liveness check of each")
        frozen = d.instance("web", 0)["pid"]
        sibling = d.instance("web", 1)["pid"]
        # Frozen while it holds no request (the load begins after), so every request the
        # load makes is one its sibling (or the replacement) serves.
        os.kill(frozen, signal.SIGSTOP)
        wait_until(lambda: process_state(frozen) == "T", what="the process stopped")
        frozen_at = time.monotonic()
        load = LoadClient(*d.address("http"), d.tmp)
        self.addCleanup(load.kill)
        load.wait_for_more(20, "requests served while web[0] is frozen")
        d.wait_log(rf"worker web\[0\]: pid {frozen}: liveness probe failed {failures} times: GET .*timed out")
        noticed = time.monotonic() - frozen_at
        wait_until(lambda: d.instance("web", 0)["pid"] not in (frozen, None)
                   and d.instance("web", 0)["ready"], what="a replacement of web[0] in service")
        wait_until(lambda: process_state(frozen) is None, what="the frozen process gone")
        load.wait_for_more(20, "requests served after the replacement")
        result = load.finish()
        print(f"\nliveness: frozen web[0] noticed after {noticed * 1000:.0f} ms "
              f"(interval {interval * 1000:.0f} ms x failures {failures}); load {result}")
        self.assertEqual({k: result[k] for k in ("refused", "connect_other", "reset", "bad_response", "timeout")},
                         {"refused": 0, "connect_other": 0, "reset": 0, "bad_response": 0, "timeout": 0})
        # interval x failures, plus each check's timeout and the loop's slack.
        self.assertLess(noticed, interval * failures + failures * interval + 2.0)
        self.assertEqual(d.instance("web", 1)["pid"], sibling)  # untouched
        replaced = d.instance("web", 0)
        self.assertIn(f"pid {frozen}: liveness probe failed 3 times: GET", replaced["health"]["replaced"])
        self.assertEqual(replaced["restarts"], 1)
        self.assertIn("web[0]: replaced by its liveness probe", d.ctl_ok("status"))
        self.assertEqual(d.metric("fdsup_liveness_replacements_total", 'worker="web"'), 1)
        # Replaced the graceful way: the replacement was ready before the old one got stop_signal.
        log = d.log()
        ready_at = log.index(f"worker web[0]: pid {replaced['pid']} ready after")
        stop_at = log.index(f"worker web[0]: stopping pid {frozen} with SIGTERM")
        self.assertLess(ready_at, stop_at)

    def test_when_the_replacement_does_not_take_over_the_failed_process_is_restarted_anyway(self):
        # The health endpoint says 503 to every process of index 0: the liveness probe
        # fails, and so does the replacement's ready probe, until ready_timeout.
        d = self.fdsupd(HTTP + APP + """
ready = "probe"
ready_timeout = "1500ms"
backoff = "100ms"
[workers.web.ready_probe]
http = "http://unix:@TMP@/health-{instance}.sock:/"
interval = "50ms"
[workers.web.liveness_probe]
http = "http://unix:@TMP@/health-{instance}.sock:/"
interval = "50ms"
failures = 2
""")
        d.start(wait_for_workers=["web[0]"], wait_control=True)
        wait_until(lambda: d.instance("web")["ready"], what="web[0] ready")
        failed = d.instance("web")["pid"]
        set_status(d, 0, "503")
        d.wait_log(rf"worker web\[0\]: pid {failed}: liveness probe failed 2 times: GET .*: 503; its replacement did "
                   r"not take over: web\[0\]: replacement failed: not ready within ready_timeout")
        wait_until(lambda: process_state(failed) is None, what="the failed process stopped")
        set_status(d, 0, "200")
        wait_until(lambda: d.instance("web")["ready"] and d.instance("web")["pid"] != failed,
                   what="web[0] restarted by its policy, and ready")
        self.assertIsNone(d.ctl_json("status")["workers"][0]["rollout"])

    def test_a_worker_an_operator_stopped_is_not_probed_and_probes_go_on_after_start(self):
        d = self.fdsupd(HTTP + """
[workers.web]
command = ["@PYTHON@", "@SCRIPTS@/health_app.py", "@TMP@/health-{instance}.sock", "@TMP@/status-{instance}"]
sockets = ["http"]
[workers.web.liveness_probe]
exec = ["sh", "-c", "echo x >> @TMP@/checks-{instance}"]
interval = "50ms"
""")
        d.start(wait_for_workers=["web[0]"], wait_control=True)
        checks = os.path.join(d.tmp, "checks-0")
        wait_until(lambda: os.path.exists(checks) and len(read_text(checks)) >= 6, what="three checks")
        d.ctl_ok("stop", "web")
        counted = read_text(checks)
        # Long enough for twenty checks at this interval: none comes.
        time.sleep(1.0)
        self.assertEqual(read_text(checks), counted)
        self.assertIsNone(d.instance("web")["health"]["checking"])
        d.ctl_ok("start", "web")
        wait_until(lambda: len(read_text(checks)) > len(counted), what="checks again after start")


class ProbeKinds(FdsupTestCase):
    def listener(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        self.addCleanup(s.close)
        return s

    def test_tcp_passes_on_connect_and_a_refused_connect_fails(self):
        target = self.listener()
        port = target.getsockname()[1]
        d = self.fdsupd(HTTP + APP + f"""
[workers.web.liveness_probe]
tcp = "127.0.0.1:{port}"
interval = "50ms"
failures = 2
""")
        d.start(wait_for_workers=["web[0]"], wait_control=True)
        wait_until(lambda: ((d.instance("web").get("health") or {}).get("last") or {}).get("passed"),
                   what="a passed tcp check")
        self.assertEqual(d.instance("web")["health"]["last"]["detail"], f"connect 127.0.0.1:{port}: connected")
        first = d.instance("web")["pid"]
        target.close()
        d.wait_log(rf"worker web\[0\]: pid {first}: liveness probe failed 2 times: connect 127.0.0.1:{port}: "
                   r"Connection refused")
        wait_until(lambda: d.instance("web")["health"]["replaced"] is not None, what="the replacement noted")
        d.ctl_ok("stop", "web")  # every replacement would fail the same way

    def test_http_2xx_and_3xx_pass_4xx_5xx_and_a_closed_connection_fail(self):
        d = self.fdsupd(HTTP + APP + """
[workers.web.liveness_probe]
http = "http://unix:@TMP@/health-{instance}.sock:/healthz?full=1"
interval = "30ms"
failures = 1000
""")
        d.start(wait_for_workers=["web[0]"], wait_control=True)

        def last_after(status):
            set_status(d, 0, status)
            seen = []

            def changed():
                h = d.instance("web")["health"]
                if h["last"] and status.split()[0] in h["last"]["detail"] or (
                        status == "close" and h["last"] and "closed" in h["last"]["detail"]):
                    seen.append(h["last"])
                    return True
                return False
            wait_until(changed, what=f"a check answered {status}")
            return seen[0]

        for code, passes in (("200", True), ("302", True), ("404", False), ("503", False), ("204", True)):
            last = last_after(code)
            self.assertEqual(last["passed"], passes, last)
            self.assertEqual(last["detail"], f"GET http://unix:{d.tmp}/health-0.sock:/healthz?full=1: {code}")
            self.assertGreater(last["latency_ms"], 0)
        closed = last_after("close")
        self.assertFalse(closed["passed"])

    def test_exec_passes_on_exit_0_runs_with_the_instances_env_and_leaves_no_zombie_or_fd(self):
        d = self.fdsupd(HTTP + APP + """
env = { PROBE_WANTS = "yes" }
stdout = "null"
stderr = "null"
[workers.web.liveness_probe]
exec = ["sh", "-c", "test \\"$PROBE_WANTS-$FDSUP_INSTANCE\\" = yes-0 && test ! -e @TMP@/fail"]
interval = "20ms"
failures = 1000
""")
        passes = lambda: d.metric("fdsup_probe_checks_total", 'worker="web",probe="liveness",result="pass"')

        def quiet_fds():
            """fdsupd's fds with the worker stopped and every child reaped: the only
            children it ever had here are the worker and its probes, none a zombie."""
            d.ctl_ok("stop", "web")
            wait_until(lambda: children_of(d.pid) == [], what="no child of fdsupd left (no zombie probe)")
            wait_for_connections_closed(d)  # fdsupctl's own, closed a moment after it went
            return open_fd_count(d.pid)

        d.start(wait_for_workers=["web[0]"], wait_control=True)
        wait_until(lambda: passes() >= 5, what="five passed exec checks")
        fds = quiet_fds()
        d.ctl_ok("start", "web")
        open(os.path.join(d.tmp, "fail"), "w").close()
        wait_until(lambda: (d.instance("web")["health"]["last"] or {}).get("detail") == "exit status 1",
                   what="a failed exec check")
        self.assertFalse(d.instance("web")["health"]["last"]["passed"])
        os.unlink(os.path.join(d.tmp, "fail"))
        before = passes()
        wait_until(lambda: passes() >= before + 50, what="fifty more checks")
        self.assertEqual(quiet_fds(), fds)  # none leaked

    def test_an_exec_probe_is_killed_at_its_timeout_with_its_children(self):
        d = self.fdsupd(HTTP + APP + """
[workers.web.liveness_probe]
exec = ["sh", "-c", "sleep 30 & echo $! > @TMP@/sleeper; wait"]
interval = "100ms"
timeout = "200ms"
failures = 1000
""")
        d.start(wait_for_workers=["web[0]"], wait_control=True)
        wait_until(lambda: (d.instance("web")["health"]["last"] or {}).get("detail") == "timed out after 200ms",
                   what="a timed-out exec check")
        # Each check rewrites the file (empty for a moment): a pid of one of them.
        pid_file = os.path.join(d.tmp, "sleeper")
        read = []
        wait_until(lambda: read.append(read_text(pid_file).strip()) or read[-1], what="a sleeper's pid")
        sleeper = int(read[-1])
        wait_until(lambda: process_state(sleeper) is None, what="the probe's child killed with it")
        d.ctl_ok("stop", "web")
        wait_until(lambda: children_of(d.pid) == [], what="no probe process left")


class AcrossUpgrade(FdsupTestCase):
    def test_failures_so_far_and_the_last_result_go_on_in_the_next_image(self):
        d = self.fdsupd(HTTP + APP + """
[workers.web.liveness_probe]
exec = ["sh", "-c", "test ! -e @TMP@/fail"]
interval = "100ms"
failures = 1000
""")
        open(os.path.join(d.tmp, "fail"), "w").close()
        d.start(wait_for_workers=["web[0]"], wait_control=True)
        wait_until(lambda: d.instance("web")["health"]["failures"] >= 3, what="three failures in a row")
        before = d.instance("web")
        d.ctl_ok("upgrade")
        after = d.instance("web")
        self.assertEqual(after["pid"], before["pid"])
        self.assertGreaterEqual(after["health"]["failures"], before["health"]["failures"])
        self.assertIsNotNone(after["health"]["last"])
        wait_until(lambda: d.instance("web")["health"]["failures"] > after["health"]["failures"],
                   what="the count going on in the next image")
        os.unlink(os.path.join(d.tmp, "fail"))
        wait_until(lambda: d.instance("web")["health"]["failures"] == 0, what="a pass resetting it")
        # No probe of the first image was left behind as a zombie nobody reaps.
        self.assertEqual([p for p in children_of(d.pid) if process_state(p) == "Z"], [])


class Endpoints(FdsupTestCase):
    def test_healthz_answers_and_readyz_says_which_instances_are_not_ready(self):
        d = self.fdsupd(HTTP + """
[supervisor]
metrics_listen = "127.0.0.1:0"
""" + APP + """
instances = 2
ready = "probe"
[workers.web.ready_probe]
http = "http://unix:@TMP@/health-{instance}.sock:/"
interval = "50ms"
[workers.idle]
command = ["sleep", "1000"]
""")
        set_status(d, 1, "500")
        d.start(wait_for_workers=["web[0]", "web[1]"], wait_control=True)
        bound = d.wait_log(r"metrics: http://([\d.]+:\d+)/metrics")[0].group(1)

        def get(path):
            try:
                with urllib.request.urlopen(f"http://{bound}{path}", timeout=5) as r:
                    return r.status, r.read().decode()
            except urllib.error.HTTPError as e:
                return e.code, e.read().decode()

        self.assertEqual(get("/healthz"), (200, "ok\n"))
        wait_until(lambda: d.instance("web", 0)["ready"], what="web[0] ready")
        code, body = get("/readyz")
        self.assertEqual((code, body), (503, "web[1]: starting\n"))
        set_status(d, 1, "200")
        wait_until(lambda: get("/readyz")[0] == 200, what="every instance ready")
        self.assertEqual(get("/readyz"), (200, "ready\n"))
        d.ctl_ok("stop", "idle")  # a worker an operator stopped is not meant to run
        self.assertEqual(get("/readyz"), (200, "ready\n"))
        self.assertEqual(get("/nope")[0], 404)


class Config(FdsupTestCase):
    def test_a_probe_aimed_at_a_socket_fdsupd_owns_is_refused_at_load(self):
        d = self.fdsupd("""
[sockets.http]
listen = "tcp://127.0.0.1:18089"
[workers.web]
command = ["sleep", "1000"]
sockets = ["http"]
instances = 2
[workers.web.liveness_probe]
http = "http://127.0.0.1:18089/healthz"
""")
        r = subprocess.run([os.environ["FDSUPD"], "--check-config", "-c", d.config_path], capture_output=True,
                           text=True, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertRegex(r.stderr, r"fdsup.toml:\d+:\d+: workers.web.liveness_probe.http: aims at socket \"http\" "
                                   r"\(tcp://127.0.0.1:18089\), which fdsupd owns and shares among instances: any "
                                   r"instance may answer")


if __name__ == "__main__":
    unittest.main()
