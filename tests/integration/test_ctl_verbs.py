"""Every fdsupctl verb end to end against the real fdsupd: human and --json output,
exit codes, and what each verb does to the workers."""
import json
import os
import re
import select
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from fdsup_harness import FDSUPCTL, FdsupTestCase, http_get, pid_alive, stat_fields, wait_until

CONFIG = """
[sockets.http]
listen = "tcp://127.0.0.1:0"

[workers.web]
command = ["@HELPERS@/http_worker"]
instances = 2
sockets = ["http"]

[workers.chatty]
command = ["/bin/sh", "-c", "trap 'echo got-usr1' USR1; echo hello from $FDSUP_INSTANCE; echo to-stderr >&2; while :; do sleep 1000 & wait $!; done"]
stop_timeout = "5s"
"""


class Verbs(FdsupTestCase):
    def setUp(self):
        super().setUp()
        self.d = self.fdsupd(CONFIG).start(wait_for_workers=["web[0]", "web[1]", "chatty[0]"])
        self.d.wait_control()
        self.d.wait_log(r"http_worker: serving on fd 3", count=2)

    def test_status_human_and_json(self):
        d = self.d
        status = d.ctl_json("status")
        self.assertTrue(status["ok"])
        self.assertEqual(status["supervisor"]["pid"], d.pid)
        self.assertEqual(status["supervisor"]["config"], d.config_path)
        host, port = d.address("http")
        self.assertEqual(status["sockets"], [{"name": "http", "listen": "tcp://127.0.0.1:0",
                                              "bound": f"{host}:{port}", "used_by": ["web"],
                                              "used_by_scm_rights": []}])
        web = [w for w in status["workers"] if w["name"] == "web"][0]
        self.assertEqual(web["state"], "running")
        self.assertEqual([i["index"] for i in web["instances"]], [0, 1])
        for i in web["instances"]:
            self.assertTrue(pid_alive(i["pid"]))
            self.assertEqual((i["state"], i["ready"], i["restarts"]), ("running", True, 0))
            self.assertEqual(i["last_exit"], {"code": None, "signal": None})

        out = d.ctl_ok("status")
        self.assertRegex(out, rf"^fdsupd \d+\.\d+\.\d+, pid {d.pid}, up ")
        for i in web["instances"]:
            self.assertRegex(out, rf"\nweb +{i['index']} +running +{i['pid']} +\d+\.\d +[\d.]+[BKMG] +\S+ +0 +- +yes +- +3=http\n")
        self.assertRegex(out, rf"\nhttp +tcp://127\.0\.0\.1:0 +{host}:{port} +web\n")  # the real port

        only = d.ctl_json("status", "chatty")
        self.assertEqual([w["name"] for w in only["workers"]], ["chatty"])
        code, _, err = d.ctl("status", "nope")
        self.assertEqual(code, 1)
        self.assertIn('unknown worker "nope"', err)

    def test_stop_queues_clients_in_the_backlog_then_start_serves_them(self):
        d = self.d
        before = d.instance_pids("web")
        out = d.ctl_ok("stop", "web")
        for index, pid in before.items():
            self.assertIn(f"web[{index}]: pid {pid} exited with code 0; stopped", out)  # drained
            self.assertFalse(pid_alive(pid))
        status = d.ctl_json("status", "web")["workers"][0]
        self.assertEqual(status["state"], "stopped")
        self.assertEqual([i["pid"] for i in status["instances"]], [None, None])

        # The socket stays open in the supervisor: a client connects and waits.
        host, port = d.address("http")
        waiting = socket.create_connection((host, port), timeout=20)
        waiting.sendall(b"GET / HTTP/1.0\r\n\r\n")
        out = d.ctl_ok("start", "web")
        self.assertRegex(out, r"web\[0\]: started pid \d+\nweb\[1\]: started pid \d+\n")
        reply = b""
        while chunk := waiting.recv(4096):
            reply += chunk
        waiting.close()
        self.assertIn(b"200 OK", reply)

        # stopped by the operator: a start of a running worker changes nothing
        pids = d.instance_pids("web")
        self.assertRegex(d.ctl_ok("start", "web"), r"web\[0\]: already running, pid \d+")
        self.assertEqual(d.instance_pids("web"), pids)

    def test_restart_replaces_every_instance_human_and_json(self):
        d = self.d
        before = d.instance_pids("web")
        out = d.ctl_ok("restart", "web")
        after = d.instance_pids("web")
        for index in (0, 1):
            self.assertNotEqual(before[index], after[index])
            self.assertIn(f"web[{index}]: pid {before[index]} replaced by pid {after[index]}", out)
        host, port = d.address("http")
        self.assertRegex(http_get(host, port), r"^web\[[01]\] pid \d+\n$")

        reply = d.ctl_json("restart", "web")
        self.assertTrue(reply["ok"])
        self.assertEqual([(i["worker"], i["index"], i["previous_pid"]) for i in reply["instances"]],
                         [("web", 0, after[0]), ("web", 1, after[1])])
        self.assertTrue(all(i["ok"] and i["state"] == "running" for i in reply["instances"]))

        code, out, err = d.ctl("restart", "web", "nope")
        self.assertEqual(code, 1)
        self.assertIn('unknown worker "nope"', err)
        self.assertEqual(d.instance_pids("web"), d.instance_pids("web"))

    def test_signal_and_logs(self):
        d = self.d
        pid = d.instance_pids("chatty")[0]
        out = d.ctl_ok("signal", "chatty", "USR1")
        self.assertEqual(out, f"sent SIGUSR1 to chatty: pids {pid}\n")
        d.wait_log(r"chatty\[0\]: got-usr1")
        reply = d.ctl_json("signal", "chatty", "SIGUSR1")
        self.assertEqual((reply["signal"], reply["pids"]), ("USR1", [pid]))
        # An unknown signal is a usage error, found by fdsupctl itself.
        code, _, err = d.ctl("signal", "chatty", "NOPE")
        self.assertEqual(code, 2)
        self.assertIn('unknown signal "NOPE"', err)
        self.assertIn("usage: fdsupctl", err)
        self.assertEqual(d.instance_pids("chatty")[0], pid)

        logs = d.ctl_json("logs", "chatty", "-n", "10")
        texts = [(l["stream"], l["text"]) for l in logs["lines"]]
        self.assertIn(("stdout", "hello from 0"), texts)
        self.assertIn(("stderr", "to-stderr"), texts)
        out = d.ctl_ok("logs", "chatty", "-n", "1")
        self.assertEqual(len(out.splitlines()), 1)
        self.assertRegex(out, r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} chatty\[0\]: got-usr1\n$")

        # -f: the recent lines, then new ones as they come
        follower = subprocess.Popen([FDSUPCTL, "-s", d.control_socket, "logs", "chatty", "-n", "0", "-f"],
                                    stdout=subprocess.PIPE, text=True)
        try:
            # The follower may subscribe after a signal: signal until a line arrives.
            deadline = time.monotonic() + 20
            line = ""
            while time.monotonic() < deadline and "got-usr1" not in line:
                d.ctl_ok("signal", "chatty", "USR1")
                ready, _, _ = select.select([follower.stdout], [], [], 0.5)
                if ready:
                    line = follower.stdout.readline()
            self.assertIn("chatty[0]: got-usr1", line)
        finally:
            follower.send_signal(signal.SIGINT)
            self.assertEqual(follower.wait(timeout=20), 0)
            follower.stdout.close()

    def test_scale_up_and_down_takes_the_newest(self):
        d = self.d
        before = d.instance_pids("web")
        out = d.ctl_ok("scale", "web", "4")
        self.assertRegex(out, r"^web\[2\]: started pid \d+\nweb\[3\]: started pid \d+\n$")
        pids = d.instance_pids("web")
        self.assertEqual(sorted(pids), [0, 1, 2, 3])
        reply = d.ctl_json("scale", "web", "1")
        self.assertEqual((reply["from"], reply["to"]), (4, 1))
        self.assertEqual(sorted(i["index"] for i in reply["instances"]), [1, 2, 3])
        self.assertEqual(d.instance_pids("web"), {0: before[0]})  # the oldest kept its process
        for index in (1, 2, 3):
            self.assertFalse(pid_alive(pids[index]))
        self.assertEqual(d.ctl("scale", "web", "x")[0], 2)
        self.assertEqual(d.ctl("scale", "web", "-1")[0], 2)

    def test_version_help_and_usage(self):
        d = self.d
        out = d.ctl_ok("version")
        self.assertRegex(out, r"^fdsupctl \d+\.\d+\.\d+ \(protocol 3\)\n"
                              rf"fdsupd \d+\.\d+\.\d+ \(protocol 3, state format \d+, pid {d.pid}\)\n$")
        reply = d.ctl_json("version")
        self.assertEqual((reply["protocol"], reply["pid"]), (3, d.pid))
        for verb in ("status", "start", "stop", "restart", "signal", "scale", "reload", "logs", "shutdown",
                     "version"):
            code, out, _ = d.ctl(verb, "--help")
            self.assertEqual(code, 0, verb)
            self.assertRegex(out, rf"^usage: fdsupctl .*\b{verb}\b")
        self.assertEqual(d.ctl("frobnicate")[0], 2)
        self.assertEqual(d.ctl("stop")[0], 2)  # no names

    def test_shutdown(self):
        d = self.d
        pids = list(d.instance_pids("web").values())
        out = d.ctl_ok("shutdown")
        self.assertEqual(out, "all workers stopped; fdsupd is exiting\n")
        self.assertEqual(d.wait_exit(), 0)
        for pid in pids:
            self.assertFalse(pid_alive(pid))
        self.assertFalse(os.path.exists(d.control_socket))


def resident_pages(pid):
    """/proc/PID/stat's rss (field 24), 0 if gone."""
    fields = stat_fields(pid)
    return int(fields[21]) if fields else 0


class ManyInstances(FdsupTestCase):
    def test_a_status_of_thousands_of_instances_lists_each_once_in_order_with_its_usage(self):
        # From 1,024 instances of a worker, the second half of them is written on a second
        # thread and spliced on: the reply must read as if written in one go.
        count = 1100
        d = self.fdsupd(f"""
[workers.many]
command = ["/bin/sleep", "1000"]
instances = {count}
""").start(wait_control=True)
        wait_until(lambda: all(d.instance_pids("many").values()) and len(d.instance_pids("many")) == count,
                   timeout=60, what=f"{count} instances running")
        # Spawned is not yet run: on two busy CPUs a sleep can wait tens of milliseconds
        # after its exec before it touches a page (one showed 0 bytes at 74 ms). What is
        # checked is that fdsupd reports what the kernel has, so the kernel goes first.
        wait_until(lambda: all(resident_pages(pid) > 0 for pid in d.instance_pids("many").values()),
                   timeout=60, what=f"{count} sleeps resident")
        code, out, err = d.ctl("--json", "status")
        self.assertEqual(code, 0, err)
        instances = json.loads(out)["workers"][0]["instances"]
        self.assertEqual([i["index"] for i in instances], list(range(count)))
        for i in instances:
            self.assertTrue(pid_alive(i["pid"]), i)
            self.assertEqual(i["usage"]["processes"], 1, i)
            self.assertGreater(i["usage"]["memory_bytes"], 0, i)
        self.assertEqual(len({i["pid"] for i in instances}), count)


class NoSupervisor(FdsupTestCase):
    def test_exit_3_names_the_socket(self):
        # In a directory of its own that does not exist: a fixed name in /tmp could
        # exist, made by anyone (another test run, another checkout's).
        tmp = tempfile.mkdtemp(prefix="fdsup-test-")
        self.addCleanup(os.rmdir, tmp)
        path = os.path.join(tmp, "no-such-dir", "control.sock")
        for args in (["status"], ["restart", "web"], ["--json", "status"]):
            r = subprocess.run([FDSUPCTL, "-s", path, *args], capture_output=True, text=True, timeout=20)
            self.assertEqual(r.returncode, 3, r)
            self.assertIn(path, r.stderr)
        env = dict(os.environ, FDSUP_CONTROL=path)
        r = subprocess.run([FDSUPCTL, "status"], capture_output=True, text=True, timeout=20, env=env)
        self.assertEqual(r.returncode, 3)
        self.assertIn(path, r.stderr)

    def test_an_unknown_signal_is_a_usage_error_before_fdsupd_is_asked(self):
        path = "/tmp/fdsup-no-such-dir/control.sock"
        ctl = lambda *args: subprocess.run([FDSUPCTL, "-s", path, *args], capture_output=True, text=True, timeout=20)
        r = ctl("signal", "app", "BOGUS")
        self.assertEqual(r.returncode, 2, r)
        self.assertIn('fdsupctl: unknown signal "BOGUS"', r.stderr)
        for sig in ("SIGBOGUS", "65", "0", "RTMIN+99", "-1"):
            r = ctl("signal", "app", sig)
            self.assertEqual(r.returncode, 2, r)
            self.assertNotIn(path, r.stderr)
        # Names fdsupd knows get as far as asking it (which cannot be reached here: 3).
        for sig in ("HUP", "sighup", "9", "64", "RTMIN+3", "SIGRTMAX-1"):
            r = ctl("signal", "app", sig)
            self.assertEqual(r.returncode, 3, r)


if __name__ == "__main__":
    unittest.main()
