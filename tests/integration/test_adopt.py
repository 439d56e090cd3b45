#!/usr/bin/env python3
"""Taking over a running server's listening socket (`fdsupctl adopt SOCKET --pid PID
[--fd N]`, `[sockets.NAME] adopt = { pid_file }`): a Python server that bound its own
port serves under load, fdsupd takes its socket and starts a worker on it, the server
stops, and no connection fails; an upgrade carries the socket; a pid file does the same
at start; every refusal says why and changes nothing."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import unittest

from fdsup_harness import FDSUPCTL, SOURCE_DIR, FdsupTestCase, LoadClient, http_get, read_json_file, wait_until

OWN_SERVER = os.path.join(SOURCE_DIR, "tests", "helpers", "own_server.py")

BASE = """
[workers.idle]
command = ["/bin/sleep", "1000"]
"""

# What the operator adds to the file for the server's port, before `fdsupctl adopt`.
WITH_SOCKET = BASE + """
[sockets.web]
listen = "tcp://127.0.0.1:@PORT@"

[workers.web]
command = ["@HELPERS@/http_worker"]
sockets = ["web"]
"""


class OwnServer:
    """tests/helpers/own_server.py: binds 127.0.0.1 itself; stopped with SIGTERM (between
    two connections, as a server's graceful stop) or killed at clean-up."""

    def __init__(self, tmp, name, *args, python=sys.executable, script=OWN_SERVER, preexec_fn=None):
        self.report_path = os.path.join(tmp, name + ".json")
        self.proc = subprocess.Popen([python, script, self.report_path, *args], start_new_session=True,
                                     preexec_fn=preexec_fn)
        report = read_json_file(self.report_path)
        self.pid, self.port, self.fd = report["pid"], report["port"], report["fd"]

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=20)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


class Adopt(FdsupTestCase):
    def start(self, config=BASE):
        d = self.fdsupd(config).start(wait_for_workers=["idle[0]"])
        d.wait_control()
        return d

    def server(self, d, name="server", *args, **kwargs):
        s = OwnServer(d.tmp, name, *args, **kwargs)
        self.addCleanup(s.kill)
        return s

    def test_a_served_port_changes_hands_under_load_without_a_failed_connection(self):
        d = self.start()
        s = self.server(d)
        self.assertIn("own_server pid", http_get("127.0.0.1", s.port))
        load = LoadClient("127.0.0.1", s.port, d.tmp)
        self.addCleanup(load.kill)
        try:
            load.wait_for_more(50, "the server serving the load")
            d.write_config(WITH_SOCKET.replace("@PORT@", str(s.port)))
            out = d.ctl_ok("adopt", "web", "--pid", str(s.pid))
            self.assertIn(f"socket web: taken over from pid {s.pid} fd {s.fd}, listening on 127.0.0.1:{s.port}", out)
            d.wait_log(r"worker web\[0\]: started pid \d+")
            sock = d.ctl_json("status")["sockets"][0]
            self.assertEqual((sock["name"], sock["bound"], sock["adopted_from"]),
                             ("web", f"127.0.0.1:{s.port}", {"pid": s.pid, "fd": s.fd}))
            self.assertIn(f"(from pid {s.pid})", d.ctl_ok("status"))
            adopted = [json.loads(line) for line in d.ctl_ok("--json", "events").splitlines()]
            adopted = [e for e in adopted if e["event"] == "socket_adopted"]
            self.assertEqual([(e["socket"], e["from_pid"], e["fd"], e["address"]) for e in adopted],
                             [("web", s.pid, s.fd, f"127.0.0.1:{s.port}")])
            load.wait_for_more(50, "load while both serve")
            self.assertEqual(s.stop(), 0)  # its graceful stop: the worker alone from now on
            load.wait_for_more(200, "load served by the worker alone")
            self.assertRegex(http_get("127.0.0.1", s.port), r"^web\[0\] pid \d+")
        finally:
            result = load.finish()
        failed = {k: result[k] for k in ("refused", "connect_other", "reset", "bad_response", "timeout")}
        self.assertEqual(failed, {k: 0 for k in failed}, result)
        # A reload that removes the socket closes it once its worker is gone: the port is free.
        d.write_config(BASE)
        d.ctl_ok("reload")
        wait_until(lambda: subprocess.run(["ss", "-Htln", f"sport = :{s.port}"], capture_output=True,
                                          text=True).stdout.strip() == "", what="the port closed")

    def test_an_upgrade_carries_an_adopted_socket(self):
        d = self.start()
        s = self.server(d)
        d.write_config(WITH_SOCKET.replace("@PORT@", str(s.port)))
        d.ctl_ok("adopt", "web", "--pid", str(s.pid), "--fd", str(s.fd))
        self.assertEqual(s.stop(), 0)
        worker = d.instance("web")["pid"]
        d.ctl_ok("upgrade")
        status = d.ctl_json("status")
        self.assertEqual(status["sockets"][0]["adopted_from"], {"pid": s.pid, "fd": s.fd})
        self.assertEqual(d.instance("web")["pid"], worker)
        self.assertRegex(http_get("127.0.0.1", s.port), r"^web\[0\] pid \d+")
        # Restarted on it after the upgrade: the new image owns the very socket.
        d.ctl_ok("restart", "web")
        self.assertNotEqual(d.instance("web")["pid"], worker)
        self.assertRegex(http_get("127.0.0.1", s.port), r"^web\[0\] pid \d+")

    def test_a_unix_socket_is_found_by_its_path_and_left_to_a_server_that_still_runs(self):
        d = self.start()
        path = os.path.join(d.tmp, "app.sock")
        s = self.server(d, "server", "--unix", path)
        d.write_config(BASE + f"""
[sockets.app]
listen = "unix:{path}"

[workers.app]
command = ["@HELPERS@/http_worker"]
sockets = ["app"]
""")
        out = d.ctl_ok("adopt", "app", "--pid", str(s.pid))
        self.assertIn(f"socket app: taken over from pid {s.pid} fd {s.fd}, listening on {path}", out)
        d.wait_log(r"worker app\[0\]: started pid \d+")

        def answers():
            with socket.socket(socket.AF_UNIX) as c:
                c.settimeout(20)
                c.connect(path)
                c.sendall(b"GET / HTTP/1.0\r\n\r\n")
                data = b""
                while chunk := c.recv(4096):
                    data += chunk
                return data.partition(b"\r\n\r\n")[2].decode()
        # Both take connections off the one queue; with the server paused, the worker alone.
        os.kill(s.pid, signal.SIGSTOP)
        self.assertRegex(answers(), r"^app\[0\] pid \d+")
        os.kill(s.pid, signal.SIGCONT)
        # fdsupd's shutdown leaves the file to the server, which still serves it.
        self.assertEqual(d.stop(), 0)
        self.assertTrue(os.path.exists(path))
        self.assertEqual(answers(), f"own_server pid {s.pid}\n")

    def test_a_pid_file_adopts_at_start(self):
        tmp = self.fdsupd(BASE).tmp  # a directory for the server's files
        pid_file = os.path.join(tmp, "server.pid")
        s = OwnServer(tmp, "server", "--pid-file", pid_file)
        self.addCleanup(s.kill)
        config = WITH_SOCKET.replace("@PORT@", str(s.port)).replace(
            'listen = "tcp://127.0.0.1:', f'adopt = {{ pid_file = "{pid_file}" }}\nlisten = "tcp://127.0.0.1:')
        d = self.fdsupd(config).start(wait_for_workers=["web[0]"])
        d.wait_log(rf"socket web: taken over from pid {s.pid} fd {s.fd} \({pid_file}\), listening on 127.0.0.1:{s.port}")
        self.assertEqual(d.ctl_json("status")["sockets"][0]["adopted_from"], {"pid": s.pid, "fd": s.fd})
        self.assertEqual(s.stop(), 0)
        self.assertRegex(http_get("127.0.0.1", s.port), r"^web\[0\] pid \d+")

    def test_a_bad_pid_file_is_a_start_error_naming_the_socket(self):
        tmp = self.fdsupd(BASE).tmp
        with open("/proc/sys/kernel/pid_max") as f:
            no_pid = int(f.read())  # pids are below it: no process has it, now or later
        cases = [
            ("missing.pid", None, r"socket web: pid file \S+missing.pid: No such file or directory"),
            ("garbage.pid", "twelve\n", r"socket web: pid file \S+garbage.pid: \"twelve\" is not a pid"),
            ("gone.pid", f"{no_pid}\n", rf"socket web: no process {no_pid}"),
        ]
        for name, text, message in cases:
            with self.subTest(name):
                path = os.path.join(tmp, name)
                if text is not None:
                    with open(path, "w") as f:
                        f.write(text)
                config = WITH_SOCKET.replace("@PORT@", "1").replace(
                    'listen = "tcp://', f'adopt = {{ pid_file = "{path}" }}\nlisten = "tcp://')
                d = self.fdsupd(config).start()
                self.assertEqual(d.wait_exit(), 1, d.log())
                self.assertRegex(d.log(), message)

    def test_refusals_say_why_and_change_nothing(self):
        d = self.start(BASE + '\n[sockets.mine]\nlisten = "tcp://127.0.0.1:0"\n')
        listening = self.server(d, "listening")
        bound_only = self.server(d, "bound", "--no-listen")
        udp = self.server(d, "udp", "--udp")
        with open("/proc/sys/kernel/pid_max") as f:
            no_pid = int(f.read())  # pids are below it
        port = listening.port
        with_socket = BASE + '\n[sockets.mine]\nlisten = "tcp://127.0.0.1:0"\n' + \
            WITH_SOCKET[len(BASE):].replace("@PORT@", str(port))
        cases = [
            # (config, socket, pid, fd, message)
            (BASE + '\n[sockets.mine]\nlisten = "tcp://127.0.0.1:0"\n', "web", listening.pid, None,
             r"socket web: \S+fdsup.toml has no \[sockets.web\]"),
            (with_socket, "mine", listening.pid, None, r"socket mine: fdsupd owns it already \(127.0.0.1:\d+\)"),
            (with_socket, "web", no_pid, None, rf"socket web: no process {no_pid}"),
            (with_socket, "web", listening.pid, 99, rf"socket web: pid {listening.pid} has no fd 99"),
            (with_socket, "web", listening.pid, 0, rf"socket web: pid {listening.pid} fd 0 is not a socket"),
            (with_socket.replace(f":{port}", f":{bound_only.port}"), "web", bound_only.pid, bound_only.fd,
             rf"socket web: pid {bound_only.pid} fd {bound_only.fd} is not listening \(bound to 127.0.0.1:{bound_only.port}\)"),
            (with_socket.replace(f":{port}", f":{bound_only.port}"), "web", bound_only.pid, None,
             rf"socket web: no socket of pid {bound_only.pid} listens on tcp://127.0.0.1:{bound_only.port} "
             rf"\(fd {bound_only.fd} is not listening"),
            (with_socket.replace(f":{port}", f":{udp.port}"), "web", listening.pid, listening.fd,
             rf"socket web: pid {listening.pid} fd {listening.fd} listens on 127.0.0.1:{port}, "
             rf"\[sockets.web\] says tcp://127.0.0.1:{udp.port}"),
            (with_socket.replace(f":{port}", f":{udp.port}"), "web", listening.pid, None,
             rf"socket web: no socket of pid {listening.pid} listens on tcp://127.0.0.1:{udp.port}"),
            (with_socket.replace(f":{port}", f":{udp.port}"), "web", udp.pid, udp.fd,
             rf"socket web: pid {udp.pid} fd {udp.fd} is a udp socket bound to 127.0.0.1:{udp.port}, "
             rf"\[sockets.web\] says tcp://127.0.0.1:{udp.port}"),
        ]
        before = d.ctl_json("status")
        for config, name, pid, fd, message in cases:
            with self.subTest(message):
                d.write_config(config)
                args = ["adopt", name, "--pid", str(pid)] + (["--fd", str(fd)] if fd is not None else [])
                code, out, err = d.ctl(*args)
                self.assertEqual(code, 1, out + err)
                self.assertRegex(err, message)
                self.assertIn("nothing changed", err)
                after = d.ctl_json("status")
                self.assertEqual([s["name"] for s in after["sockets"]], ["mine"])
                self.assertEqual([w["name"] for w in after["workers"]], ["idle"])
                self.assertEqual(after["workers"][0]["instances"][0]["pid"], before["workers"][0]["instances"][0]["pid"])
        # Usage errors are fdsupctl's own (exit 2), before fdsupd is asked.
        for args in (["adopt", "web"], ["adopt", "--pid", "1"], ["adopt", "web", "--pid", "x"],
                     ["adopt", "web", "--pid", "1", "--fd", "-1"]):
            self.assertEqual(d.ctl(*args)[0], 2, args)
        # The servers were never disturbed: the listening one still serves, alone.
        self.assertIn(f"own_server pid {listening.pid}", http_get("127.0.0.1", port))

    @unittest.skipUnless(os.geteuid() == 0, "running processes as nobody needs root")
    def test_the_caller_may_only_take_what_it_could_ptrace(self):
        nobody = 65534
        d = self.fdsupd(BASE.replace("[workers.idle]", '[supervisor]\ncontrol_group = "nogroup"\n\n[workers.idle]'))
        d.start(wait_for_workers=["idle[0]"]).wait_control()
        os.chmod(d.tmp, 0o755)
        # fdsupctl and the server where nobody can reach them.
        ctl = os.path.join(d.tmp, "fdsupctl")
        shutil.copy(FDSUPCTL, ctl)
        script = os.path.join(d.tmp, "own_server.py")
        shutil.copy(OWN_SERVER, script)
        for path in (ctl, script):
            os.chmod(path, 0o755)

        def as_nobody():
            os.setgroups([])
            os.setgid(nobody)
            os.setuid(nobody)

        def adopt_as_nobody(pid):
            return subprocess.run([ctl, "-s", d.control_socket, "adopt", "web", "--pid", str(pid)],
                                  capture_output=True, text=True, timeout=20, preexec_fn=as_nobody)

        roots = self.server(d, "roots")  # root's own
        d.write_config(WITH_SOCKET.replace("@PORT@", str(roots.port)).replace(
            "[workers.idle]", '[supervisor]\ncontrol_group = "nogroup"\n\n[workers.idle]'))
        r = adopt_as_nobody(roots.pid)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn(f"socket web: uid {nobody} may not take the sockets of pid {roots.pid} (its uid is 0)", r.stderr)
        self.assertEqual(d.ctl_json("status")["sockets"], [])
        # Its own server, nobody may take.
        reports = os.path.join(d.tmp, "nobodys")  # where it may write its report
        os.mkdir(reports)
        os.chmod(reports, 0o777)
        # Debian's python3: the test's own interpreter may live where nobody cannot go (/root).
        mine = OwnServer(reports, "server", python="/usr/bin/python3", script=script, preexec_fn=as_nobody)
        self.addCleanup(mine.kill)
        d.write_config(WITH_SOCKET.replace("@PORT@", str(mine.port)).replace(
            "[workers.idle]", '[supervisor]\ncontrol_group = "nogroup"\n\n[workers.idle]'))
        r = adopt_as_nobody(mine.pid)
        self.assertEqual(r.returncode, 0, r.stderr + d.log())
        self.assertEqual(d.ctl_json("status")["sockets"][0]["adopted_from"]["pid"], mine.pid)

    @unittest.skipUnless(os.geteuid() == 0 and shutil.which("setpriv"), "running fdsupd as nobody needs root and setpriv")
    def test_an_fdsupd_that_may_not_ptrace_the_server_says_so(self):
        nobody = 65534
        d = self.fdsupd(BASE, wrapper=["setpriv", f"--reuid={nobody}", f"--regid={nobody}", "--clear-groups"])
        os.chown(d.tmp, nobody, nobody)
        os.chmod(d.config_path, 0o644)
        d.start(wait_for_workers=["idle[0]"]).wait_control()
        s = self.server(d)  # root's: a process fdsupd, as nobody, may not ptrace
        d.write_config(WITH_SOCKET.replace("@PORT@", str(s.port)))
        for fd in ([], ["--fd", str(s.fd)]):
            code, out, err = d.ctl("adopt", "web", "--pid", str(s.pid), *fd)  # as root: the caller may
            self.assertEqual(code, 1, out + err)
            step = "pidfd_getfd: Operation not permitted" if fd else f"list /proc/{s.pid}/fd: Permission denied"
            self.assertIn(f"socket web: fdsupd may not ptrace pid {s.pid} ({step}; it needs", err)
            self.assertEqual(d.ctl_json("status")["sockets"], [])
        self.assertIn(f"own_server pid {s.pid}", http_get("127.0.0.1", s.port))


if __name__ == "__main__":
    unittest.main()
