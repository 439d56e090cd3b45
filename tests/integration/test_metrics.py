#!/usr/bin/env python3
"""Metrics: [supervisor] metrics_listen serves the Prometheus text exposition over HTTP
from fdsupd's own loop, `fdsupctl metrics` prints the same; the page passes
`promtool check metrics` (Debian package prometheus), and its counters move: a
SIGKILLed worker's restarts, reloads, control requests. Bad requests get an HTTP error
and change nothing."""
import os
import re
import shutil
import signal
import socket
import subprocess
import unittest

from fdsup_harness import FdsupTestCase, wait_until

CONFIG = """
[supervisor]
metrics_listen = "127.0.0.1:0"

[workers.web]
command = ["/bin/sleep", "1000"]
instances = 2
backoff = "10ms"
"""


def http(port, request):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return head.decode(), body.decode()


def sample(text, name, labels=""):
    m = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


class Metrics(FdsupTestCase):
    def start(self):
        d = self.fdsupd(CONFIG).start()
        port = int(d.wait_log(r"metrics: http://127\.0\.0\.1:(\d+)/metrics")[0].group(1))
        wait_until(lambda: all(pid for pid in d.instance_pids("web").values()), what="web running")
        return d, port

    def test_the_page_passes_promtool_and_its_restart_counter_moves(self):
        d, port = self.start()
        head, page = http(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertTrue(head.startswith("HTTP/1.1 200 OK"), head)
        self.assertIn("Content-Type: text/plain; version=0.0.4", head)
        if shutil.which("promtool") is not None:
            r = subprocess.run(["promtool", "check", "metrics"], input=page, capture_output=True, text=True)
            self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""))
        else:
            self.skipTest("promtool is not installed (Debian package prometheus)")
        labels = '{worker="web",instance="0"}'
        self.assertEqual(sample(page, "fdsup_instance_restarts_total", labels), 0)
        self.assertEqual(sample(page, "fdsup_instance_state", labels[:-1] + ',state="running"}'), 1)
        self.assertEqual(sample(page, "fdsup_spawn_duration_seconds_count"), 2)

        os.kill(d.instance_pids("web")[0], signal.SIGKILL)
        # Counted when the restart is scheduled; spawned a backoff later.
        scrape = lambda: http(port, b"GET /metrics HTTP/1.0\r\n\r\n")[1]
        wait_until(lambda: sample(scrape(), "fdsup_spawn_duration_seconds_count") == 3, what="the respawn")
        page = scrape()
        self.assertEqual(sample(page, "fdsup_instance_restarts_total", labels), 1)
        self.assertEqual(sample(page, "fdsup_instance_last_exit_signal", labels), signal.SIGKILL)
        self.assertEqual(sample(page, "fdsup_spawn_duration_seconds_count"), 3)

    def test_fdsupctl_metrics_prints_the_same_families_and_counts_requests(self):
        d, port = self.start()
        d.ctl_ok("status")
        d.ctl_ok("reload")
        code, out, _ = d.ctl("metrics")
        self.assertEqual(code, 0)
        families = lambda text: sorted(set(re.findall(r"^# TYPE (\S+)", text, re.M)))
        self.assertEqual(families(out), families(http(port, b"GET /metrics HTTP/1.0\r\n\r\n")[1]))
        self.assertEqual(sample(out, "fdsup_reloads_total", '{result="ok"}'), 1)
        self.assertGreaterEqual(sample(out, "fdsup_control_requests_total", '{command="status"}'), 1)
        self.assertEqual(sample(out, "fdsup_control_requests_total", '{command="metrics"}'), 1)

    def test_fdsupctl_metrics_larger_than_the_pending_output_bound_is_sent_whole(self):
        # As 10,000 instances make it: one reply above kMaxPendingOutput (8 MiB) with
        # nothing else waiting for the client is sent, not taken for a client that does
        # not read (which closed the connection: fdsupctl exited 3).
        name = "w" * 4000
        d = self.fdsupd(f"""
[workers.{name}]
command = ["/bin/sleep", "1000"]
instances = 120
""").start(wait_control=True)
        wait_until(lambda: len([p for p in d.instance_pids(name).values() if p]) == 120, what="120 instances running")
        code, out, err = d.ctl("metrics")
        self.assertEqual(code, 0, err)
        self.assertGreater(len(out), 8 * 1024 * 1024)
        for index in (0, 119):
            self.assertEqual(sample(out, "fdsup_instance_ready", f'{{worker="{name}",instance="{index}"}}'), 1)
        self.assertEqual(d.ctl_json("status")["ok"], True)  # and the connection after it works as ever

    def test_only_metrics_healthz_and_readyz_are_served_every_other_path_is_404_naming_them(self):
        d, port = self.start()
        for path in (b"/", b"/healthz/", b"/ready", b"/metrics/", b"/metricsx", b"/index.html", b"//metrics"):
            head, body = http(port, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertTrue(head.startswith("HTTP/1.1 404 Not Found"), (path, head))
            self.assertEqual(body, "not found; this server has /healthz, /metrics, /readyz\n", path)
        head, body = http(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertTrue(head.startswith("HTTP/1.1 200 OK"), head)
        self.assertEqual(body, "ok\n")
        head, body = http(port, b"GET /metrics?name=fdsup HTTP/1.1\r\nHost: x\r\n\r\n")  # a query is no other path
        self.assertTrue(head.startswith("HTTP/1.1 200 OK"), head)
        self.assertIn("# TYPE fdsup_uptime_seconds", body)
        self.assertIsNone(d.proc.poll())

    def test_a_metrics_listen_added_by_reload_is_bound_by_an_in_place_upgrade(self):
        without = CONFIG.replace('metrics_listen = "127.0.0.1:0"\n', "")
        self.assertNotEqual(without, CONFIG)
        d = self.fdsupd(without).start()
        d.wait_control()
        wait_until(lambda: all(pid for pid in d.instance_pids("web").values()), what="web running")
        d.write_config(CONFIG)
        code, out, err = d.ctl("reload")
        self.assertEqual(code, 0, err)
        self.assertIn("supervisor.metrics_listen changed: takes effect when fdsupd restarts or is upgraded in "
                      "place (fdsupctl upgrade)", out + err)
        self.assertNotRegex(d.log(), r"metrics: http://")  # not by the reload itself
        pids = d.instance_pids("web")
        code, out, err = d.ctl("upgrade")
        self.assertEqual(code, 0, err)
        port = int(d.wait_log(r"metrics: http://127\.0\.0\.1:(\d+)/metrics")[0].group(1))
        head, page = http(port, b"GET /metrics HTTP/1.0\r\n\r\n")
        self.assertTrue(head.startswith("HTTP/1.1 200 OK"), head)
        self.assertEqual(sample(page, "fdsup_upgrades_total"), 1)
        self.assertEqual(d.instance_pids("web"), pids)

    def test_bad_requests_get_an_http_error_and_nothing_else_changes(self):
        d, port = self.start()
        self.assertTrue(http(port, b"GET /nope HTTP/1.0\r\n\r\n")[0].startswith("HTTP/1.1 404"))
        self.assertTrue(http(port, b"POST /metrics HTTP/1.0\r\n\r\n")[0].startswith("HTTP/1.1 405"))
        self.assertTrue(http(port, b"garbage\r\n\r\n")[0].startswith("HTTP/1.1 400"))
        self.assertTrue(http(port, b"GET /" + b"x" * 20000)[0].startswith("HTTP/1.1 431"))
        head, body = http(port, b"HEAD /metrics HTTP/1.0\r\n\r\n")
        self.assertTrue(head.startswith("HTTP/1.1 200"))
        self.assertEqual(body, "")
        # Idle connections cannot lock a scraper out: beyond the limit each new one pushes
        # out the oldest idle one, and the scrape is answered.
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
        try:
            self.assertTrue(http(port, b"GET /metrics HTTP/1.0\r\n\r\n")[0].startswith("HTTP/1.1 200"))
            self.assertEqual(d.ctl("status")[0], 0)
            self.assertEqual(idle[0].recv(1), b"")  # the oldest was closed
        finally:
            for s in idle:
                s.close()
        self.assertIsNone(d.proc.poll())


if __name__ == "__main__":
    unittest.main()
