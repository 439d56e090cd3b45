"""start = "on-demand" and idle_stop: no process until the first connection, which is
answered (not refused); stopped again after idle_stop with no connection (or when the
app exits 0), and the socket still accepts and starts it again."""
import json
import os
import re
import socket
import subprocess
import time
import unittest

from fdsup_harness import FDSUPD, FdsupTestCase, children_of, http_get, pid_alive, wait_until

CONFIG = """
[supervisor]
metrics_listen = "127.0.0.1:0"

[sockets.http]
listen = "tcp://127.0.0.1:0"

[workers.web]
command = ["@HELPERS@/http_worker"]
sockets = ["http"]
start = "on-demand"
idle_stop = "1s"
stop_timeout = "5s"

[workers.client]
command = ["/bin/sleep", "1000"]
after = ["web"]
"""


def http(port, path):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.0\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return head.decode().split("\r\n")[0], body.decode()


class OnDemand(FdsupTestCase):
    def web(self, d):
        return [w for w in d.ctl_json("status")["workers"] if w["name"] == "web"][0]

    def wait_idle(self, d):
        def idle():
            w = self.web(d)
            return w if w["state"] == "idle" and all(i["pid"] is None for i in w["instances"]) else None
        return wait_until(idle, what="web idle (on demand)")

    def starts(self, d):
        return d.metric("fdsup_on_demand_starts_total", 'worker="web"')

    def test_first_request_starts_it_is_answered_and_idle_stop_stops_it_again(self):
        d = self.fdsupd(CONFIG).start(wait_for_workers=["client[0]"], wait_control=True)
        host, port = d.address("http")
        metrics_port = int(d.wait_log(r"metrics: http://127\.0\.0\.1:(\d+)/metrics")[0].group(1))
        # A dependent of an idle on-demand worker does not wait for it (client started above).
        w = self.wait_idle(d)
        self.assertEqual(w["on_demand"], {"watched": True, "starts": 0, "idle_stop_s": 1.0})
        self.assertNotIn("worker web[0]: started pid", d.log())
        client_pid = d.instance("client")["pid"]
        self.assertEqual(set(children_of(d.pid)), {client_pid})  # no web process
        self.assertRegex(d.ctl_ok("status"), r"web\s+0\s+idle \(on demand\)")
        self.assertEqual(http(metrics_port, "/readyz")[0], "HTTP/1.1 200 OK")  # idle is not "not ready"
        self.assertEqual(self.starts(d), 0)

        body = http_get(host, port)  # queued, then accepted by the worker it starts
        pid = int(re.match(r"web\[0\] pid (\d+)", body).group(1))
        self.assertEqual(d.worker_pids("web[0]"), [pid])
        self.assertEqual(self.starts(d), 1)
        self.assertEqual(d.instance("web")["restarts"], 0)

        d.wait_log(r"worker web: no connection for \S+ \(idle_stop 1.0s\); stopping it")
        self.wait_idle(d)
        wait_until(lambda: not pid_alive(pid), what="the worker's process gone")
        self.assertRegex(d.ctl_ok("status"), r"web\s+0\s+idle \(on demand\)")

        body = http_get(host, port)  # the socket still accepts, and starts it again
        second = int(re.match(r"web\[0\] pid (\d+)", body).group(1))
        self.assertNotEqual(second, pid)
        self.assertEqual(self.starts(d), 2)
        self.assertEqual(d.instance("web")["restarts"], 0)
        # As events: each start by a connection, and the stop for idleness between them.
        events = [json.loads(line) for line in d.ctl_ok("--json", "events", "web").splitlines()]
        demand = [(e["event"], e.get("starts")) for e in events if e["event"] in ("on_demand_start", "idle_stop")]
        self.assertEqual(demand, [("on_demand_start", 1), ("idle_stop", None), ("on_demand_start", 2)])
        self.assertGreaterEqual(next(e for e in events if e["event"] == "idle_stop")["idle"], 1.0)

    def test_the_watch_leaves_the_listening_socket_in_blocking_mode(self):
        # The watch is on the very open file the worker inherits: it must not hand it
        # over non-blocking (an app with a blocking accept() loop would get EAGAIN).
        d = self.fdsupd(CONFIG.replace('command = ["@HELPERS@/http_worker"]',
                                       'command = ["/bin/sh", "-c", "grep ^flags: /proc/self/fdinfo/3 >> @TMP@/flags; '
                                       'exec @HELPERS@/http_worker"]')).start(wait_control=True)
        self.wait_idle(d)
        self.assertTrue(http_get(*d.address("http")).startswith("web[0]"))
        flags = open(os.path.join(d.tmp, "flags")).read().split()
        self.assertEqual(flags[0], "flags:")
        self.assertEqual(int(flags[1], 8) & os.O_NONBLOCK, 0, flags)

    def test_a_connection_held_open_keeps_it_running(self):
        d = self.fdsupd(CONFIG).start(wait_control=True)
        host, port = d.address("http")
        self.wait_idle(d)
        with socket.create_connection((host, port), timeout=10) as held:
            d.wait_log(r"worker web\[0\]: started pid (\d+)")
            pid = d.worker_pids("web[0]")[0]
            # Three times idle_stop (sampled every 100 ms): it would have been stopped.
            time.sleep(3)
            self.assertTrue(pid_alive(pid))
            self.assertNotIn("no connection for", d.log())
            held.sendall(b"GET / HTTP/1.0\r\n\r\n")
            self.assertIn(b"web[0] pid", held.recv(65536) + held.recv(65536))
        d.wait_log(r"worker web: no connection for")
        self.wait_idle(d)

    def test_an_exit_with_status_0_is_idle_not_a_crash(self):
        d = self.fdsupd(CONFIG.replace('["@HELPERS@/http_worker"]', '["@HELPERS@/http_worker", "--exit-after", "1"]')
                        .replace('idle_stop = "1s"\n', "")).start(wait_control=True)
        host, port = d.address("http")
        self.wait_idle(d)
        first = http_get(host, port)
        d.wait_log(r"worker web\[0\]: pid \d+ exited with code 0 .*; idle \(on demand\)")
        w = self.wait_idle(d)
        self.assertEqual(w["instances"][0]["restarts"], 0)
        self.assertNotIn("restart #", d.log())
        second = http_get(host, port)
        self.assertNotEqual(first, second)  # another pid
        self.assertEqual(self.starts(d), 2)

    def test_operator_start_and_stop(self):
        d = self.fdsupd(CONFIG).start(wait_control=True)
        host, port = d.address("http")
        self.wait_idle(d)
        # start: now, without a connection; idle_stop applies as after an on-demand start.
        self.assertIn("started pid", d.ctl_ok("start", "web"))
        d.wait_log(r"worker web: no connection for")
        self.wait_idle(d)
        self.assertEqual(self.starts(d), 0)  # the operator's start is not counted
        # stop: stopped and not watched; a connection waits in the backlog until start.
        d.ctl_ok("stop", "web")
        self.assertEqual(self.web(d)["state"], "stopped")
        self.assertFalse(self.web(d)["on_demand"]["watched"])
        waiting = socket.create_connection((host, port), timeout=10)
        self.addCleanup(waiting.close)
        waiting.sendall(b"GET / HTTP/1.0\r\n\r\n")
        time.sleep(1)  # long enough for a watch to have started it
        self.assertEqual(d.worker_pids("web[0]"), [d.worker_pids("web[0]")[0]])  # only the operator's
        self.assertEqual(self.web(d)["state"], "stopped")
        d.ctl_ok("start", "web")
        data = b""
        while chunk := waiting.recv(65536):
            data += chunk
        self.assertIn(b"web[0] pid", data)

    def test_upgrade_while_idle_keeps_it_idle_and_watched(self):
        d = self.fdsupd(CONFIG).start(wait_control=True)
        host, port = d.address("http")
        self.wait_idle(d)
        http_get(host, port)
        self.wait_idle(d)
        d.ctl_ok("upgrade")
        w = self.wait_idle(d)
        self.assertEqual(w["on_demand"]["starts"], 1)  # carried over
        self.assertIn("web[0] pid", http_get(host, port))
        self.assertEqual(self.starts(d), 2)
        self.wait_idle(d)  # idle_stop still works in the new image

    def test_upgrade_while_running_keeps_the_process_and_idle_stop(self):
        d = self.fdsupd(CONFIG).start(wait_control=True)
        host, port = d.address("http")
        self.wait_idle(d)
        with socket.create_connection((host, port), timeout=10) as held:  # keeps it running
            d.wait_log(r"worker web\[0\]: started pid")
            pid = d.worker_pids("web[0]")[0]
            d.ctl_ok("upgrade")
            self.assertEqual((d.instance("web")["pid"], d.instance("web")["state"]), (pid, "running"))
            held.sendall(b"GET / HTTP/1.0\r\n\r\n")
            self.assertIn(f"pid {pid}".encode(), held.recv(65536) + held.recv(65536))
        self.wait_idle(d)  # the new image's idle_stop stops it
        self.assertEqual(self.web(d)["on_demand"]["starts"], 1)

    def test_scale_while_idle_adds_idle_instances(self):
        d = self.fdsupd(CONFIG).start(wait_control=True)
        host, port = d.address("http")
        self.wait_idle(d)
        d.ctl_ok("scale", "web", "2")
        w = self.wait_idle(d)
        self.assertEqual([i["state"] for i in w["instances"]], ["idle", "idle"])
        self.assertNotRegex(d.log(), r"worker web\[\d\]: started pid")
        self.assertIn("pid", http_get(host, port))
        wait_until(lambda: all(i["pid"] for i in self.web(d)["instances"]), what="both instances started")

    def test_a_datagram_starts_it_and_an_exit_0_makes_it_idle(self):
        # A one-shot UDP echo: answers one datagram on its inherited fd 3, exits 0.
        echo = ("import socket; s = socket.socket(fileno=3); data, peer = s.recvfrom(100); "
                "s.sendto(b'echo ' + data, peer)")
        d = self.fdsupd(f"""
[sockets.dgram]
listen = "udp://127.0.0.1:0"
[workers.echo]
command = ["@PYTHON@", "-c", "{echo}"]
sockets = ["dgram"]
start = "on-demand"
""").start(wait_control=True)
        host, port = d.address("dgram")
        wait_until(lambda: d.instance("echo")["state"] == "idle", what="echo idle")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(10)
            for n in (1, 2):
                s.sendto(b"hello", (host, port))
                self.assertEqual(s.recvfrom(100)[0], b"echo hello")
                d.wait_log(r"worker echo\[0\]: pid \d+ exited with code 0 .*; idle \(on demand\)", count=n)
                wait_until(lambda: d.instance("echo")["state"] == "idle", what="echo idle again")
        self.assertEqual(d.metric("fdsup_on_demand_starts_total", 'worker="echo"'), 2)
        self.assertEqual(d.instance("echo")["restarts"], 0)

    def test_config_errors(self):
        cases = [
            ('command = ["/bin/true"]\nidle_stop = "1s"\n',
             'idle_stop: needs start = "on-demand"'),
            ('command = ["/bin/true"]\nstart = "on-demand"\n',
             '"on-demand" needs at least one socket the worker inherits'),
            ('command = ["/bin/true"]\nstart = "on-demand"\nscm_rights = ["http"]\n',
             'sockets fetched over scm_rights are not watched'),
            ('command = ["/bin/true"]\nstart = "later"\n', 'start'),
            ('command = ["/bin/true"]\nsockets = ["dgram"]\nstart = "on-demand"\nidle_stop = "1s"\n',
             'socket "dgram" (udp://127.0.0.1:0) has no connections for fdsupd to count'),
            ('command = ["/bin/true"]\nsockets = ["http"]\nstart = "on-demand"\nidle_stop = "0s"\n',
             'must be greater than 0'),
        ]
        def check(worker):
            d = self.fdsupd('[sockets.http]\nlisten = "tcp://127.0.0.1:0"\n'
                            '[sockets.dgram]\nlisten = "udp://127.0.0.1:0"\n'
                            '[workers.w]\n' + worker)
            return subprocess.run([FDSUPD, "--check-config", "-c", d.config_path], capture_output=True, text=True)
        for worker, message in cases:
            r = check(worker)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn(message, r.stderr)
        # A datagram socket is fine without idle_stop: a datagram starts it.
        r = check('command = ["/bin/sleep", "1000"]\nsockets = ["dgram"]\nstart = "on-demand"\n')
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_reload_adds_an_idle_worker_and_applies_start_live(self):
        d = self.fdsupd('[sockets.http]\nlisten = "tcp://127.0.0.1:0"\n').start(wait_control=True)
        host, port = d.address("http")
        d.write_config(CONFIG)
        d.ctl_ok("reload")
        self.wait_idle(d)
        self.assertNotIn("worker web[0]: started pid", d.log())
        # with-supervisor now: an idle worker starts at once.
        d.write_config(CONFIG.replace('start = "on-demand"\nidle_stop = "1s"\n', ""))
        d.ctl_ok("reload")
        wait_until(lambda: d.instance("web")["pid"], what="web started by the reload")
        self.assertIsNone(self.web(d)["on_demand"])
        # and back: running, idle_stop stops it.
        d.write_config(CONFIG)
        d.ctl_ok("reload")
        self.wait_idle(d)
        self.assertIn("web[0] pid", http_get(host, port))


if __name__ == "__main__":
    unittest.main()
