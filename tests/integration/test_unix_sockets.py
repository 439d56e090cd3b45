"""Unix sockets of [sockets.NAME] and the filesystem: the directories a socket needs are
made (at start and at reload)."""
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


if __name__ == "__main__":
    unittest.main()
