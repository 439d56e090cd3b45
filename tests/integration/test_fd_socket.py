"""The fd socket: listening sockets fetched by name over SCM_RIGHTS. A worker gets
only its own (`fds`/`scm_rights`), root gets any, nobody else anything; requests of
every bad kind get an error, and no fd leaks in the supervisor."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import unittest

from fdsup_harness import (SOURCE_DIR, FdsupTestCase, http_get, kill_if_still, open_fd_count, pid_alive,
                           wait_for_connections_closed, wait_until)

CONFIG = """
[sockets.http]
listen = "tcp://127.0.0.1:0"
[sockets.admin]
listen = "tcp://127.0.0.1:0"

[workers.web]
command = ["@HELPERS@/http_worker", "--fetch", "http"]
scm_rights = ["http"]

[workers.py]
command = ["@PYTHON@", "@SOURCE@/conf/examples/fdsup_fds.py", "admin"]
scm_rights = ["admin"]
"""


def ask(path, request, max_fds=300):
    """Sends one raw request; returns (reply lines as JSON, fds received)."""
    fds, data = [], b""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(path)
        conn.sendall(request)
        while True:
            chunk, got, flags, _ = socket.recv_fds(conn, 65536, max_fds)
            fds.extend(got)
            if not chunk:
                break
            data += chunk
    return [json.loads(line) for line in data.splitlines()], fds


class FdSocket(FdsupTestCase):
    def start(self, extra=""):
        d = self.fdsupd(CONFIG.replace("@SOURCE@", SOURCE_DIR) + extra).start()
        d.wait_control()
        d.wait_log(r"web\[0\]: http_worker: serving on fd \d+")
        d.wait_log(r"py\[0\]: fdsup_fds: serving on fetched socket 'admin'")
        return d, os.path.join(d.tmp, "run", "fds.sock")

    def test_workers_fetch_their_sockets_and_serve(self):
        d, _ = self.start()
        # C (fdsup_fds.h) and Python (conf/examples/fdsup_fds.py) clients, each on its socket.
        self.assertRegex(http_get(*d.address("http")), r"^web\[0\] pid \d+\n$")
        self.assertRegex(http_get(*d.address("admin")), r"^py\[0\] pid \d+ via SCM_RIGHTS\n$")
        with open(f"/proc/{d.instance_pids('web')[0]}/environ", "rb") as f:
            env = f.read().split(b"\0")
        self.assertIn(f"FDSUP_FD_SOCKET={d.tmp}/run/fds.sock".encode(), env)
        self.assertFalse(any(e.startswith(b"LISTEN_FDS=") for e in env))  # not inherited

    def test_status_shows_who_takes_a_socket_over_scm_rights(self):
        d, _ = self.start('\n[workers.plain]\ncommand = ["@HELPERS@/http_worker"]\nsockets = ["http"]\n')
        status = d.ctl_json("status")
        sockets = {s["name"]: s for s in status["sockets"]}
        self.assertEqual((sockets["http"]["used_by"], sockets["http"]["used_by_scm_rights"]), (["plain"], ["web"]))
        self.assertEqual((sockets["admin"]["used_by"], sockets["admin"]["used_by_scm_rights"]), ([], ["py"]))
        workers = {w["name"]: w for w in status["workers"]}
        self.assertEqual((workers["web"]["fds"], workers["web"]["scm_rights"]), ({}, ["http"]))
        self.assertEqual((workers["plain"]["fds"], workers["plain"]["scm_rights"]), ({"3": "http"}, []))
        out = d.ctl_ok("status")
        self.assertRegex(out, r"(?m)^http\s+tcp://127\.0\.0\.1:0\s+127\.0\.0\.1:\d+\s+plain, web \(scm\)$")
        self.assertRegex(out, r"(?m)^admin\s+tcp://127\.0\.0\.1:0\s+127\.0\.0\.1:\d+\s+py \(scm\)$")
        self.assertRegex(out, r"(?m)^web\s+0\s+running\s.*\syes\s+-\s+http \(scm\)$")
        self.assertRegex(out, r"(?m)^plain\s+0\s+running\s.*\syes\s+-\s+3=http$")

    def test_root_may_fetch_any_socket(self):
        d, path = self.start()
        # Not in name order: the fds come in the order asked for.
        replies, fds = ask(path, b'{"cmd":"get","names":["http","admin","http"]}\n')
        try:
            self.assertEqual(replies, [{"ok": True, "more": False, "names": ["http", "admin", "http"]}])
            bound = {s["name"]: s["bound"] for s in d.ctl_json("status")["sockets"]}
            got = ["%s:%d" % socket.socket(fileno=os.dup(fd)).getsockname() for fd in fds]
            self.assertEqual(got, [bound["http"], bound["admin"], bound["http"]])
        finally:
            for fd in fds:
                os.close(fd)

    def test_nobody_is_refused_and_gets_no_fd(self):
        d, path = self.start()
        os.chmod(d.tmp, 0o755)  # the test's private temp dir: let nobody reach the socket
        code = (
            "import os, socket, json\n"
            "os.setgid(65534); os.setuid(65534)\n"
            "c = socket.socket(socket.AF_UNIX); c.connect(%r)\n"
            "data, fds, _, _ = socket.recv_fds(c, 4096, 10)\n"  # refused at connect: no request needed
            "print(json.dumps([data.decode(), len(fds)]))\n" % path)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20, check=True)
        line, nfds = json.loads(out.stdout)
        self.assertEqual((json.loads(line), nfds), ({"ok": False, "error": "permission denied"}, 0))
        self.assertRegex(d.log(), r"fd socket: pid \d+ \(uid 65534\) refused: not a worker, not root")

    def test_a_worker_asking_for_another_workers_socket_is_refused(self):
        d, _ = self.start("""
[workers.thief]
command = ["@HELPERS@/http_worker", "--fetch", "admin"]
scm_rights = ["http"]
restart = "never"
""")
        d.wait_log(r"thief\[0\] stderr: http_worker: cannot get socket admin: permission denied")
        self.assertRegex(d.log(), r'fd socket: thief\[0\] \(pid \d+\) asked for socket "admin", which is not its own')

    def test_a_descendant_and_a_worker_of_another_uid_get_their_workers_sockets(self):
        # A child of the worker's shell (not its main process), and a worker running as
        # nobody (not root, not fdsupd's uid): both judged as the worker they belong to.
        d = self.fdsupd(CONFIG.replace("@SOURCE@", SOURCE_DIR) + """
[workers.child]
command = ["/bin/sh", "-c", "@HELPERS@/http_worker --fetch http; exit $?"]
scm_rights = ["http"]
kill_mode = "group"  # the shell's child goes with it when the test ends

[workers.lowly]
command = ["@HELPERS@/http_worker", "--fetch", "admin"]
scm_rights = ["admin"]
user = "nobody"
""")
        os.makedirs(os.path.join(d.tmp, "run"))
        os.chmod(d.tmp, 0o755)  # the test's private temp dir: let nobody reach the fd socket
        d.start()
        d.wait_control()
        d.wait_log(r"child\[0\]: http_worker: fetched socket http as fd \d+")
        d.wait_log(r"lowly\[0\]: http_worker: fetched socket admin as fd \d+")
        grandchild = int(re.search(r"fd socket: child\[0\] descendant \(pid (\d+)\) fetched 1 socket",
                                   d.log()).group(1))
        # Killed even if the test fails before the graceful stop (fdsupd's SIGKILL at
        # clean-up reaches only its own children): if it is still this test's process
        # (FDSUP_FD_SOCKET in its environment names our temp dir), not whichever got its
        # pid after it exited.
        self.addCleanup(kill_if_still, grandchild, d.tmp)
        self.assertRegex(d.log(), r"fd socket: lowly\[0\] \(pid \d+\) fetched 1 socket")
        self.assertEqual(d.stop(), 0)  # gracefully: the group, grandchild and all
        wait_until(lambda: not pid_alive(grandchild), what="the shell's http_worker gone with its group")

    def test_bad_requests_and_big_ones_leak_nothing(self):
        d, path = self.start()
        wait_for_connections_closed(d)  # wait_control's fdsupctl: its connection closes a moment later
        baseline = open_fd_count(d.pid)
        cases = [
            (b"not json\n", "invalid JSON"),
            (b'{"cmd":"steal","names":["http"]}\n', 'unknown command "steal"'),
            (b'{"cmd":"get"}\n', "names"),
            (b'{"cmd":"get","names":["nope"]}\n', 'unknown socket "nope"'),
            (b'{"cmd":"get","names":' + json.dumps(["http"] * 300).encode() + b"}\n", "too many names (at most 256)"),
            (b"x" * 70000, "request line over 64 KiB"),
        ]
        for request, error in cases:
            replies, fds = ask(path, request)
            self.assertEqual(fds, [])
            self.assertFalse(replies[0]["ok"])
            self.assertIn(error, replies[0]["error"])
        # 256 fds: two messages, 250 then 6.
        replies, fds = ask(path, b'{"cmd":"get","names":' + json.dumps(["http", "admin"] * 128).encode() + b"}\n")
        self.assertEqual([(len(r["names"]), r["more"]) for r in replies], [(250, True), (6, False)])
        self.assertEqual(len(fds), 256)
        for fd in fds:
            os.close(fd)
        # A client that asks for 300 and goes away without reading; one that sends half a line.
        for request in (b'{"cmd":"get","names":' + json.dumps(["http"] * 256).encode() + b"}\n",
                        b'{"cmd":"get","na'):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.connect(path)
                conn.sendall(request)
        wait_until(lambda: open_fd_count(d.pid) == baseline, what="the supervisor's fd count back to baseline")
        self.assertRegex(http_get(*d.address("http")), r"^web\[0\]")

    def test_fdsupctl_exec_serves_on_the_live_socket_beside_the_workers(self):
        d, _ = self.start()
        from fdsup_harness import FDSUPCTL, helper
        server = subprocess.Popen([FDSUPCTL, "-s", d.control_socket, "exec", "--fd", "3=http", "--",
                                   helper("http_worker")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, start_new_session=True)
        self.addCleanup(lambda: server.poll() is None and server.kill())
        # Same pid after exec; LISTEN_FDS/LISTEN_PID set for it as fdsupd would.
        self.assertEqual(server.stdout.readline().strip(), f"http_worker: serving on fd 3 pid {server.pid}")
        host, port = d.address("http")
        seen = set()

        def both_answer():
            seen.add(http_get(host, port).split(" pid ")[0])
            return {"web[0]", "[]"} <= seen  # the worker, and the exec'd server (no FDSUP_WORKER)
        wait_until(both_answer, what="answers from the worker and from the exec'd server")
        server.terminate()
        self.assertEqual(server.wait(timeout=20), 0)

        # The C client across two messages, and targets that the fetched fds sit on.
        probe = ("import os, socket, json; print(json.dumps([os.environ.get('LISTEN_FDS'), "
                 "os.environ.get('LISTEN_FDNAMES'), os.environ.get('LISTEN_PID') == str(os.getpid()), "
                 "['%s:%d' % socket.socket(fileno=os.dup(fd)).getsockname() for fd in (3, 4)], "
                 "len(os.listdir('/proc/self/fd'))]))")
        args = ["exec", "--fd", "4=http", "--fd", "3=admin"]
        for fd in range(5, 256):
            args += ["--fd", f"{fd}=http"]
        out = d.ctl_ok(*args, "--", sys.executable, "-c", probe)
        listen_fds, names, pid_ok, bound, open_fds = json.loads(out)
        sockets = {s["name"]: s["bound"] for s in d.ctl_json("status")["sockets"]}
        self.assertEqual((listen_fds, pid_ok), ("253", True))
        self.assertTrue(names.startswith("admin:http:http:"))
        self.assertEqual(bound, [sockets["admin"], sockets["http"]])
        self.assertGreaterEqual(open_fds, 256)  # 0-2, the 253 sockets, and listdir's own

        code, out, err = d.ctl("exec", "--fd", "3=nope", "--", "/bin/true")
        self.assertEqual(code, 1)
        self.assertIn('cannot get the sockets from', err)
        self.assertIn('unknown socket "nope"', err)
        code, out, err = d.ctl("exec", "--fd", "3=http", "--", "/no/such/command")
        self.assertEqual(code, 1)
        self.assertIn("fdsupctl: exec /no/such/command: No such file or directory", err)

    def test_o_nonblock_is_one_flag_for_every_process_holding_the_socket(self):
        # As the README says beside the drain advice: fdsupd binds blocking sockets and
        # never changes the mode; O_NONBLOCK belongs to the open file description, which
        # fdsupd, every instance and an exec'd tool share, and outlives who set it.
        d, _ = self.start(extra="""
[sockets.plain]
listen = "tcp://127.0.0.1:0"

[workers.sleeper]
command = ["/bin/sleep", "1000"]
sockets = ["plain"]
instances = 2
backoff = "10ms"
""")
        wait_until(lambda: all(d.instance_pids("sleeper").values()), what="both sleepers running")

        def nonblocking(pid, fd=3):
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                flags = int(re.search(r"^flags:\s+([0-7]+)$", f.read(), re.M).group(1), 8)
            return bool(flags & os.O_NONBLOCK)

        def modes():
            return [nonblocking(pid) for pid in d.instance_pids("sleeper").values()]
        self.assertEqual(modes(), [False, False])
        set_mode = ("import fcntl, os, sys; flags = fcntl.fcntl(3, fcntl.F_GETFL); "
                    "fcntl.fcntl(3, fcntl.F_SETFL, flags | os.O_NONBLOCK if sys.argv[1] == 'on' else "
                    "flags & ~os.O_NONBLOCK)")
        d.ctl_ok("exec", "--fd", "3=plain", "--", sys.executable, "-c", set_mode, "on")
        # Set by a process that has exited, for both instances.
        self.assertEqual(modes(), [True, True])
        # And for the next process too: a crashed instance's replacement gets it so.
        old = d.instance_pids("sleeper")[0]
        os.kill(old, signal.SIGKILL)
        replacement = wait_until(lambda: d.instance_pids("sleeper")[0] not in (None, old) and
                                 d.instance_pids("sleeper")[0], what="the replacement of sleeper[0]")
        self.assertTrue(nonblocking(replacement))
        d.ctl_ok("exec", "--fd", "3=plain", "--", sys.executable, "-c", set_mode, "off")
        self.assertEqual(modes(), [False, False])


if __name__ == "__main__":
    unittest.main()
