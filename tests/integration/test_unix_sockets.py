"""Unix sockets of [sockets.NAME] and the filesystem: the directories a socket needs are
made (at start and at reload); a socket file a live process still serves is never
taken over (fdsupd refuses to start, or the reload, as for a TCP port in use), while a
stale file (nobody listening) is replaced as before."""
import os
import socket
import stat
import unittest

from fdsup_harness import FdsupTestCase, wait_until

SERVED = """
[sockets.admin]
listen = "unix:@PATH@"

[workers.web]
command = ["@HELPERS@/http_worker"]
sockets = ["admin"]
"""


def unix_http_get(path, timeout=5.0):
    """One HTTP/1.0 request over the unix stream socket at `path`; the body."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(b"GET / HTTP/1.0\r\nHost: test\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.0 200") and not head.startswith(b"HTTP/1.1 200"):
        raise AssertionError(f"bad response: {data[:200]!r}")
    return body.decode()


class Listener:
    """Another process's socket at `path` (this test's, standing in for it)."""

    def __init__(self, path, kind=socket.SOCK_STREAM, backlog=16):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, kind)
        self.sock.bind(path)
        if kind != socket.SOCK_DGRAM:
            self.sock.listen(backlog)
        self.inode = os.lstat(path).st_ino

    def still_serving(self, test):
        """Its file is the same one, and a client reaches this very socket."""
        st = os.lstat(self.path)
        test.assertTrue(stat.S_ISSOCK(st.st_mode))
        test.assertEqual(st.st_ino, self.inode)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.connect(self.path)
            self.sock.settimeout(5)
            peer, _ = self.sock.accept()
            peer.close()

    def close(self):
        self.sock.close()


class UnixSockets(FdsupTestCase):
    def test_directories_are_made_at_start_and_at_reload(self):
        d = self.fdsupd("")
        path = os.path.join(d.tmp, "made", "deeper", "admin.sock")
        d.write_config(SERVED.replace("@PATH@", path))
        d.start()
        d.wait_log(r"http_worker: serving on fd 3")
        for made in (os.path.dirname(os.path.dirname(path)), os.path.dirname(path)):
            self.assertEqual(stat.S_IMODE(os.stat(made).st_mode), 0o755)
        self.assertRegex(unix_http_get(path), r"^web\[0\] pid \d+\n$")

        # A socket added by reload, in directories that do not exist yet either.
        later = os.path.join(d.tmp, "later", "x", "more.sock")
        d.write_config(SERVED.replace("@PATH@", path) + f"""
[sockets.more]
listen = "unix:{later}"

[workers.more]
command = ["@HELPERS@/http_worker"]
sockets = ["more"]
""")
        out = d.ctl_ok("reload")
        self.assertIn("added more", out)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.dirname(later)).st_mode), 0o755)
        wait_until(lambda: d.ctl_json("status", "more")["workers"][0]["instances"][0]["state"] == "running",
                   what="more[0] running")
        self.assertRegex(unix_http_get(later), r"^more\[0\] pid \d+\n$")
        self.assertEqual(d.stop(), 0)

    def test_start_is_refused_when_another_process_serves_the_path(self):
        kinds = [("unix", socket.SOCK_STREAM, "a connect succeeded"),
                 ("unixgram", socket.SOCK_DGRAM, "a connect succeeded"),
                 ("unixpacket", socket.SOCK_SEQPACKET, "a connect succeeded"),
                 ("unix", socket.SOCK_DGRAM, "a socket of another type is bound there")]
        for scheme, kind, why in kinds:
            with self.subTest(scheme=scheme, theirs=kind):
                d = self.fdsupd("")
                path = os.path.join(d.tmp, "app.sock")
                other = Listener(path, kind)
                self.addCleanup(other.close)
                d.write_config(f'[sockets.admin]\nlisten = "{scheme}:{path}"\n')
                d.start()
                self.assertEqual(d.wait_exit(), 1)
                self.assertIn(f"socket admin: {scheme}:{path} is in use by another process ({why}); "
                              "not replacing it", d.log())
                st = os.lstat(path)
                self.assertEqual(st.st_ino, other.inode)  # its file, untouched
                if kind == socket.SOCK_STREAM:
                    other.still_serving(self)

    def test_start_is_refused_when_the_listener_is_too_busy_to_answer(self):
        d = self.fdsupd("")
        path = os.path.join(d.tmp, "busy.sock")
        other = Listener(path, backlog=0)
        self.addCleanup(other.close)
        queued = []
        self.addCleanup(lambda: [c.close() for c in queued])
        while True:  # fill its backlog: the next connect would block
            client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            client.setblocking(False)
            try:
                client.connect(path)
            except BlockingIOError:
                client.close()
                break
            queued.append(client)
        d.write_config(f'[sockets.admin]\nlisten = "unix:{path}"\n')
        d.start()
        self.assertEqual(d.wait_exit(), 1)
        self.assertIn(f"socket admin: unix:{path} is in use by another process (its backlog is full); "
                      "not replacing it", d.log())
        self.assertEqual(os.lstat(path).st_ino, other.inode)

    def test_reload_is_refused_when_another_process_serves_the_path_and_nothing_changes(self):
        d = self.fdsupd("")
        path = os.path.join(d.tmp, "admin.sock")
        d.write_config(SERVED.replace("@PATH@", path))
        d.start()
        d.wait_control()
        d.wait_log(r"http_worker: serving on fd 3")
        before = d.ctl_json("status")
        taken = os.path.join(d.tmp, "taken.sock")
        other = Listener(taken)
        self.addCleanup(other.close)
        # A new tcp socket (bound first, by name) and worker, and a unix socket whose path is taken.
        d.write_config(SERVED.replace("@PATH@", path) + f"""
[sockets.api]
listen = "tcp://127.0.0.1:0"

[sockets.other]
listen = "unix:{taken}"

[workers.extra]
command = ["@HELPERS@/http_worker"]
sockets = ["other"]
""")
        code, out, err = d.ctl("reload")
        self.assertEqual(code, 1, out + err)
        self.assertIn("a new socket cannot be bound; nothing changed", err)
        self.assertIn(f"socket other: unix:{taken} is in use by another process (a connect succeeded); "
                      "not replacing it", err)
        after = d.ctl_json("status")
        self.assertEqual([s["name"] for s in after["sockets"]], ["admin"])
        self.assertEqual([(w["name"], [i["pid"] for i in w["instances"]]) for w in after["workers"]],
                         [(w["name"], [i["pid"] for i in w["instances"]]) for w in before["workers"]])
        other.still_serving(self)
        self.assertRegex(unix_http_get(path), r"^web\[0\] pid \d+\n$")
        self.assertEqual(d.stop(), 0)
        self.assertEqual(os.lstat(taken).st_ino, other.inode)  # not removed at shutdown either

    def test_a_stale_socket_file_is_replaced(self):
        d = self.fdsupd("")
        path = os.path.join(d.tmp, "stale.sock")
        left = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        left.bind(path)
        left.close()  # the file stays; nobody listens behind it
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            with self.assertRaises(ConnectionRefusedError):
                probe.connect(path)
        d.write_config(SERVED.replace("@PATH@", path))
        d.start()
        d.wait_log(r"http_worker: serving on fd 3")
        self.assertRegex(unix_http_get(path), r"^web\[0\] pid \d+\n$")
        self.assertEqual(d.stop(), 0)

    def test_reload_may_move_its_own_socket_to_a_new_name_on_the_same_path(self):
        # The old socket is fdsupd's own, still served (by the old worker until it has
        # restarted onto the new one): not "another process".
        d = self.fdsupd("")
        path = os.path.join(d.tmp, "app.sock")
        d.write_config(SERVED.replace("@PATH@", path))
        d.start()
        d.wait_control()
        d.wait_log(r"http_worker: serving on fd 3")
        old_pid = d.instance_pids("web")[0]
        d.write_config(SERVED.replace("@PATH@", path).replace("[sockets.admin]", "[sockets.renamed]")
                       .replace('sockets = ["admin"]', 'sockets = ["renamed"]'))
        out = d.ctl_ok("reload")
        self.assertIn("changed web", out)
        new_pid = d.instance_pids("web")[0]
        self.assertNotEqual(new_pid, old_pid)
        self.assertEqual([s["name"] for s in d.ctl_json("status")["sockets"]], ["renamed"])
        self.assertEqual(unix_http_get(path), f"web[0] pid {new_pid}\n")
        d.wait_log(r"socket admin: closed")
        self.assertTrue(stat.S_ISSOCK(os.lstat(path).st_mode))  # the new one's file stays
        self.assertEqual(unix_http_get(path), f"web[0] pid {new_pid}\n")
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    unittest.main()
