#!/usr/bin/env python3
"""ready = "accepting": an instance is ready once one of its processes waits for
connections on a socket fdsupd handed it, seen from /proc without the app's help.
Node.js (epoll, through libuv), gunicorn's sync workers (select, in a forked child),
asyncio (epoll), http_worker (ppoll) and a socket fetched over SCM_RIGHTS; an app that
never listens is killed at ready_timeout; other ready modes cost nothing. And the
point of it all: rolling restarts of a Node.js app that takes a second to start, under
continuous load, with no failed request and no client waiting for the start-up (the
same with ready = "exec" shows the start-up time as latency)."""
import os
import shutil
import unittest

from fdsup_harness import FdsupTestCase, LoadClient, children_of, helper, http_get, wait_until

HTTP = """
[sockets.http]
listen = "tcp://127.0.0.1:0"
"""
STARTUP_MS = 300
# The rolling restarts' app starts up for longer: its start-up is a busy loop, and on two
# CPUs shared with other tests the old instances' clients can be held up by the CPU alone
# (one request waited 316 ms once, under a 300 ms start-up, while p99 was 11 ms). A second
# gives that margin, and "exec" still shows the whole start-up as latency.
ROLLING_STARTUP_MS = 1000
NODE = shutil.which("node") or shutil.which("nodejs")


def ready_after(d, worker, index=0):
    """The 'ready after' fdsupd logged for the instance's current process, in ms."""
    pid = d.instance(worker, index)["pid"]
    m = d.wait_log(rf"worker {worker}\[{index}\]: pid {pid} ready after (\d+)ms")
    return int(m[-1].group(1))


class Detection(FdsupTestCase):
    def accepting(self, command, given='sockets = ["http"]'):
        d = self.fdsupd(HTTP + f"""
[workers.web]
command = {command}
{given}
ready = "accepting"
ready_timeout = "30s"
""")
        d.start(wait_for_workers=["web[0]"], wait_control=True)
        wait_until(lambda: d.instance("web")["ready"], what="web[0] seen accepting")
        return d, d.instance("web")

    def test_node_is_seen_waiting_in_epoll(self):
        self.assertIsNotNone(NODE, "node (Debian's nodejs) is needed: ./dev.sh installs it")
        d, web = self.accepting(f'["{NODE}", "@SCRIPTS@/slow_node_app.js", "{STARTUP_MS}"]')
        self.assertTrue(web["health"]["accepting"].startswith(f"epoll, pid {web['pid']} fd "), web["health"])
        self.assertGreaterEqual(ready_after(d, "web"), STARTUP_MS)  # not before it listened
        self.assertTrue(http_get(*d.address("http")).startswith("web[0]"))

    def test_gunicorn_sync_workers_are_seen_in_select_in_a_child(self):
        d, web = self.accepting('["/usr/bin/python3", "-m", "gunicorn", "--workers", "2", "--chdir", "@SCRIPTS@", '
                                '"gunicorn_app:app"]')
        how, pid = web["health"]["accepting"].split(", pid ")
        self.assertEqual(how, "select")
        self.assertIn(int(pid.split()[0]), children_of(web["pid"]))  # a worker, not the master
        self.assertTrue(http_get(*d.address("http")).startswith("web[0]"))

    def test_asyncio_is_seen_in_epoll(self):
        d, web = self.accepting('["@PYTHON@", "@SCRIPTS@/asyncio_app.py", "200"]')
        self.assertTrue(web["health"]["accepting"].startswith(f"epoll, pid {web['pid']} "))
        self.assertGreaterEqual(ready_after(d, "web"), 200)

    def test_a_server_in_ppoll_on_a_socket_fetched_over_scm_rights(self):
        # Matched by the socket's inode: the fd http_worker fetched is a number fdsupd
        # never gave it.
        d, web = self.accepting('["@HELPERS@/http_worker", "--fetch", "http"]', given='scm_rights = ["http"]')
        self.assertTrue(web["health"]["accepting"].startswith(f"poll, pid {web['pid']} "), web["health"])

    def test_an_app_that_never_listens_is_killed_at_ready_timeout(self):
        d = self.fdsupd(HTTP + """
[workers.web]
command = ["@HELPERS@/probe_worker", "@TMP@/report.json"]
sockets = ["http"]
ready = "accepting"
ready_timeout = "500ms"
restart = "never"
""")
        d.start(wait_for_workers=["web[0]"], wait_control=True)
        d.wait_log(r"worker web\[0\]: pid \d+: not ready within ready_timeout")
        wait_until(lambda: d.instance("web")["state"] == "failed", what="web[0] failed")
        self.assertGreater(d.metric("fdsup_accept_scans_total"), 3)  # it was looked at, backing off

    def test_other_ready_modes_cost_nothing(self):
        d = self.fdsupd(HTTP + """
[workers.web]
command = ["@HELPERS@/http_worker"]
sockets = ["http"]
instances = 3
[workers.delayed]
command = ["@HELPERS@/http_worker"]
sockets = ["http"]
ready = "delay"
ready_delay = "100ms"
""")
        d.start(wait_for_workers=["web[2]", "delayed[0]"], wait_control=True)
        wait_until(lambda: d.instance("delayed")["ready"], what="delayed ready")
        self.assertEqual(d.metric("fdsup_accept_scans_total"), 0)
        self.assertNotIn("health", d.instance("web"))


class RollingRestartsOfANodeApp(FdsupTestCase):
    def restarts_under_load(self, ready):
        d = self.fdsupd(HTTP + f"""
[workers.web]
command = ["{NODE}", "@SCRIPTS@/slow_node_app.js", "{ROLLING_STARTUP_MS}"]
sockets = ["http"]
instances = 2
ready = "{ready}"
ready_timeout = "30s"
stop_timeout = "5s"
""")
        d.start(wait_for_workers=["web[0]", "web[1]"], wait_control=True)
        wait_until(lambda: all(d.instance("web", i)["ready"] for i in (0, 1)), what="both instances ready")
        load = LoadClient(*d.address("http"), d.tmp, concurrency=4)
        self.addCleanup(load.kill)
        load.wait_for_more(50, "requests before the restarts")
        for n in range(5):
            d.ctl_ok("restart", "web")
            load.wait_for_more(20, f"requests after restart {n + 1}")
        return load.finish()

    def test_five_rolling_restarts_under_load_fail_nothing_and_nobody_waits_for_the_start_up(self):
        self.assertIsNotNone(NODE, "node (Debian's nodejs) is needed: ./dev.sh installs it")
        accepting = self.restarts_under_load("accepting")
        exec_ = self.restarts_under_load("exec")
        print(f"\nNode.js app, {ROLLING_STARTUP_MS} ms start-up, 2 instances, 5 rolling restarts under load:")
        for name, r in (("accepting", accepting), ("exec", exec_)):
            failed = sum(r[k] for k in ("refused", "connect_other", "reset", "bad_response", "timeout"))
            print(f"  ready = {name:9}  requests {r['requests']:6}  failed {failed}  p50 {r['p50_us'] / 1000:.1f} ms"
                  f"  p99 {r['p99_us'] / 1000:.1f} ms  max {r['max_us'] / 1000:.1f} ms")
        failures = {k: accepting[k] for k in ("refused", "connect_other", "reset", "bad_response", "timeout")}
        self.assertEqual(failures, dict.fromkeys(failures, 0), accepting)
        # With "exec" both old processes are told to stop while the new ones still start
        # up: the clients of that gap wait for the start-up. With "accepting" none does.
        self.assertGreater(exec_["max_us"], ROLLING_STARTUP_MS * 1000 * 2 // 3, exec_)
        self.assertLess(accepting["max_us"], ROLLING_STARTUP_MS * 1000, accepting)


if __name__ == "__main__":
    unittest.main()
