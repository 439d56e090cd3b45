"""What a worker is given: exactly fds 0-2 and its map, the LISTEN_FDS protocol, the
FDSUP_* variables, default signal state, ids, limits, umask, cwd, its own session, and
nothing of the supervisor's own manager (LISTEN_*, NOTIFY_SOCKET)."""
import os
import re
import resource
import stat
import unittest

from fdsup_harness import Fdsupd, FdsupTestCase, read_json_file

STARTING_NOFILE_SOFT = 1000

CONFIG = """
[sockets.http]
listen = "tcp://127.0.0.1:0"
[sockets.admin]
listen = "unix:@TMP@/admin.sock"
mode = "0640"
[sockets.metrics]
listen = "udp://127.0.0.1:0"

[workers.probe]
command = ["@HELPERS@/probe_worker", "@TMP@/out/probe-{instance}.json", "{fd:admin}", "{name}", "{literal}"]
instances = 2
fds = { 3 = "http", 4 = "admin", 5 = "metrics" }
env = { APP_ENV = "prod" }
umask = "0027"
working_dir = "@TMP@/work"
rlimits = { core = 0 }

[workers.inetd]
command = ["@HELPERS@/probe_worker", "@TMP@/out/inetd.json"]
fds = { 0 = "http" }

[workers.shorthand]
command = ["@HELPERS@/probe_worker", "@TMP@/out/shorthand.json"]
sockets = ["admin", "http"]
clear_env = true

[workers.nobody]
command = ["@HELPERS@/probe_worker", "@TMP@/out/nobody.json"]
user = "nobody"
group = "nogroup"
sockets = ["http"]
"""


def set_starting_limit():
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (STARTING_NOFILE_SOFT, hard))


class WorkerEnvironment(FdsupTestCase):
    @classmethod
    def setUpClass(cls):
        # One supervisor for every check here: each test reads the same reports.
        cls.d = Fdsupd(CONFIG)
        # Not tearDownClass: that does not run when setUpClass fails (a report that never
        # came), and fdsupd and its workers would outlive the test.
        cls.addClassCleanup(cls.d.cleanup)
        os.makedirs(os.path.join(cls.d.tmp, "work"))
        os.makedirs(os.path.join(cls.d.tmp, "out"))
        os.chmod(os.path.join(cls.d.tmp, "out"), 0o777)  # the "nobody" worker writes here too
        os.chmod(cls.d.tmp, 0o755)
        # What a supervisor started by systemd has: these belong to fdsupd, never to workers.
        cls.d.env.update({"NOTIFY_SOCKET": "/run/bogus/notify", "LISTEN_FDS": "4", "LISTEN_PID": "1",
                          "LISTEN_FDNAMES": "x", "WATCHDOG_USEC": "1000", "FDSUP_PRIVATE": "x"})
        cls.d.start(preexec_fn=set_starting_limit)
        cls.reports = {name: read_json_file(os.path.join(cls.d.tmp, "out", name + ".json"))
                       for name in ("probe-0", "probe-1", "inetd", "shorthand", "nobody")}

    def fds(self, report):
        return {entry["fd"]: entry for entry in report["fds"]}

    def test_exactly_stdio_and_the_map_are_open(self):
        http = self.d.address("http")
        for name in ("probe-0", "probe-1"):
            fds = self.fds(self.reports[name])
            self.assertEqual(sorted(fds), [0, 1, 2, 3, 4, 5], f"{name} has other fds open: {fds}")
            self.assertEqual(fds[0]["target"], "/dev/null")
            self.assertRegex(fds[1]["target"], r"^pipe:")
            self.assertRegex(fds[2]["target"], r"^pipe:")
            self.assertNotEqual(fds[1]["target"], fds[2]["target"])
            self.assertEqual(fds[3]["socket"]["local"], f"{http[0]}:{http[1]}")
            self.assertTrue(fds[3]["socket"]["listening"])
            self.assertEqual(fds[4]["socket"]["local"], os.path.join(self.d.tmp, "admin.sock"))
            self.assertEqual(fds[5]["socket"]["type"], 2)  # SOCK_DGRAM
            for fd in fds.values():
                self.assertFalse(fd["cloexec"], f"fd {fd['fd']} of {name} is close-on-exec")

    def test_listen_fds_protocol_and_fdsup_variables(self):
        for index in (0, 1):
            report = self.reports[f"probe-{index}"]
            env = report["env"]
            self.assertEqual(env["LISTEN_PID"], str(report["pid"]))
            self.assertEqual(env["LISTEN_FDS"], "3")
            self.assertEqual(env["LISTEN_FDNAMES"], "http:admin:metrics")
            self.assertEqual(env["FDSUP_FD_HTTP"], "3")
            self.assertEqual(env["FDSUP_FD_ADMIN"], "4")
            self.assertEqual(env["FDSUP_FD_METRICS"], "5")
            self.assertEqual(env["FDSUP_WORKER"], "probe")
            self.assertEqual(env["FDSUP_INSTANCE"], str(index))
            self.assertEqual(env["APP_ENV"], "prod")
            for leaked in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "FDSUP_PRIVATE"):
                self.assertNotIn(leaked, env)
            self.assertEqual(report["argv"][1:], [os.path.join(self.d.tmp, "out", f"probe-{index}.json"),
                                                  "4", "probe", "{literal}"])

    def test_signals_are_reset(self):
        # fdsupd itself ignores SIGPIPE and has libuv handlers for TERM/INT/HUP/USR2.
        for name, report in self.reports.items():
            self.assertEqual(report["sigmask"], [], name)
            self.assertEqual(report["ignored"], [], name)
            self.assertEqual(report["handled"], [], name)

    def test_session_parent_and_pdeathsig(self):
        for name, report in self.reports.items():
            self.assertEqual(report["pgid"], report["pid"], name)
            self.assertEqual(report["sid"], report["pid"], name)
            self.assertEqual(report["ppid"], self.d.pid, name)
            self.assertEqual(report["pdeathsig"], 9, name)

    def test_limits_umask_cwd(self):
        report = self.reports["probe-0"]
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        hard = "infinity" if hard == resource.RLIM_INFINITY else hard
        self.assertEqual(report["rlimits"]["nofile"], {"soft": STARTING_NOFILE_SOFT, "hard": hard})
        self.assertEqual(report["rlimits"]["core"], {"soft": 0, "hard": 0})
        self.assertEqual(report["umask"], 0o027)
        self.assertEqual(report["cwd"], os.path.join(self.d.tmp, "work"))
        # The supervisor raised its own soft limit to the hard one.
        with open(f"/proc/{self.d.pid}/limits") as f:
            line = next(l for l in f if l.startswith("Max open files"))
        soft, hard_text = line.split()[3:5]
        self.assertEqual(soft, hard_text)
        # Workers without umask/working_dir keep the supervisor's.
        self.assertEqual(self.reports["inetd"]["cwd"], os.getcwd())

    def test_socket_on_stdin_inetd_style(self):
        fds = self.fds(self.reports["inetd"])
        self.assertEqual(sorted(fds), [0, 1, 2])
        self.assertTrue(fds[0]["socket"]["listening"])
        self.assertNotIn("LISTEN_FDS", self.reports["inetd"]["env"])
        self.assertEqual(self.reports["inetd"]["env"]["FDSUP_FD_HTTP"], "0")

    def test_sockets_shorthand_and_clear_env(self):
        report = self.reports["shorthand"]
        self.assertEqual(sorted(self.fds(report)), [0, 1, 2, 3, 4])
        self.assertEqual(set(report["env"]), {"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "FDSUP_FD_ADMIN",
                                              "FDSUP_FD_HTTP", "FDSUP_WORKER", "FDSUP_INSTANCE"})
        self.assertEqual(report["env"]["LISTEN_FDNAMES"], "admin:http")

    def test_privilege_drop(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to switch users")
        report = self.reports["nobody"]
        for key in ("uid", "euid", "suid"):
            self.assertEqual(report[key], 65534)
        for key in ("gid", "egid", "sgid"):
            self.assertEqual(report[key], 65534)
        self.assertEqual(report["groups"], [65534])
        self.assertEqual(report["env"]["USER"], "nobody")
        self.assertEqual(report["pdeathsig"], 9)  # set after the uid change, so it survived it
        self.assertEqual(self.reports["probe-0"]["uid"], 0)

    def test_unix_socket_mode(self):
        st = os.stat(os.path.join(self.d.tmp, "admin.sock"))
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o640)


if __name__ == "__main__":
    unittest.main()
