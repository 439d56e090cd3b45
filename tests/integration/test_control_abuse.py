"""Bad input on the control socket: invalid JSON, unknown commands, missing fields, a
1 MiB line, idle clients, 200 clients at once, clients that stop reading, peers that are
not allowed. Each gets an error or is dropped; fdsupd keeps serving and its fd count
returns to where it was."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import unittest

from fdsup_harness import FDSUPCTL, FdsupTestCase, open_fd_count, wait_for_connections_closed, wait_until

CONFIG = """
[supervisor]
control_idle_timeout = "1s"
control_max_clients = 32

[workers.chatty]
command = ["/bin/sh", "@TMP@/chatty.sh"]
"""

# Prints 1.2 MB at start (fills the logs ring), and 12 MB more on each SIGUSR1.
CHATTY = """\
burst() { head -c "$1" /dev/zero | tr '\\0' x | fold -w 8000; }
trap 'burst 12000000' USR1
burst 1200000
echo ready
while :; do sleep 1000 & wait $!; done
"""


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)  # blocking: a full backlog waits instead of failing with EAGAIN
    s.settimeout(20)
    return s


def read_line(s, buf):
    """The next line from `s` (bytes), with `buf` a bytearray of what was read ahead."""
    while b"\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise EOFError("closed")
        buf.extend(chunk)
    line, _, rest = bytes(buf).partition(b"\n")
    buf[:] = rest
    return json.loads(line)


def closed_by_peer(s, timeout=20):
    s.settimeout(timeout)
    try:
        while True:
            if not s.recv(65536):
                return True
    except ConnectionResetError:
        return True


class Abuse(FdsupTestCase):
    def setUp(self):
        super().setUp()
        self.d = self.fdsupd(CONFIG)
        with open(os.path.join(self.d.tmp, "chatty.sh"), "w") as f:
            f.write(CHATTY)
        self.d.start()
        self.d.wait_log(r"chatty\[0\]: pid \d+ ready")
        self.d.wait_control()
        self.baseline = self.fd_count_settled()

    def fd_count_settled(self):
        # the last fdsupctl's connection closes asynchronously: waited for, not slept on
        # (0.2 s was not always enough under load; the baseline then counted it)
        wait_for_connections_closed(self.d)
        return open_fd_count(self.d.pid)

    def assert_fds_back(self):
        wait_until(lambda: open_fd_count(self.d.pid) <= self.baseline,
                   what=f"fdsupd's fd count back to {self.baseline}")
        self.assertEqual(self.d.ctl_json("status")["ok"], True)

    def test_bad_requests_get_errors_and_the_connection_keeps_working(self):
        s = connect(self.d.control_socket)
        buf = bytearray()
        cases = [
            (b"this is not json\n", "invalid JSON"),
            (b"[1,2,3]\n", "a request must be a JSON object"),
            (b'{"cmd":"frobnicate"}\n', 'unknown command "frobnicate"'),
            (b'{"nocmd":1}\n', 'missing field "cmd"'),
            (b'{"cmd":"stop"}\n', 'missing field "names"'),
            (b'{"cmd":"stop","names":"chatty"}\n', 'field "names" must be a list'),
            (b'{"cmd":"scale","name":"chatty"}\n', 'missing field "instances"'),
            (b'{"cmd":"scale","name":"chatty","instances":"x"}\n', 'field "instances" must be an integer'),
            (b'{"cmd":"signal","name":"nope"}\n', 'unknown worker "nope"'),
            (b'{"cmd":"logs","name":"chatty","follow":"yes"}\n', 'field "follow" must be true or false'),
            (b"x" * (1024 * 1024) + b"\n", "request line longer than 65536 bytes"),
        ]
        for request, error in cases:
            s.sendall(request)
            reply = read_line(s, buf)
            self.assertEqual(reply["ok"], False, request[:50])
            self.assertIn(error, reply["error"])
        s.sendall(b'{"cmd":"status"}\n')
        self.assertTrue(read_line(s, buf)["ok"])
        s.close()
        self.assertTrue(self.d.ctl_json("status")["workers"][0]["instances"][0]["pid"])
        self.assert_fds_back()

    def test_idle_client_is_dropped(self):
        s = connect(self.d.control_socket)
        self.assertTrue(closed_by_peer(s))  # control_idle_timeout = 1s
        s.close()
        self.d.wait_log(r"control client \d+ \(pid \d+\): closed: idle for 1000ms")
        self.assert_fds_back()

    def test_200_clients_at_once(self):
        clients = [connect(self.d.control_socket) for _ in range(200)]
        for s in clients:
            try:
                s.sendall(b'{"cmd":"status"}\n')
            except (BrokenPipeError, ConnectionResetError):
                pass  # refused and closed before we wrote
        served = refused = 0
        for s in clients:
            try:
                reply = read_line(s, bytearray())
            except (EOFError, ConnectionResetError):
                continue
            if reply["ok"]:
                served += 1
            else:
                self.assertIn("too many control connections (32)", reply["error"])
                refused += 1
        for s in clients:
            s.close()
        self.assertGreaterEqual(served, 32)
        self.assertGreater(refused, 0)
        self.assert_fds_back()

    def test_client_that_stops_reading_mid_reply_is_dropped(self):
        # The logs reply (about 1 MB) is more than the socket holds: it stays half sent
        # while the client sleeps; the idle timeout closes the connection.
        s = connect(self.d.control_socket)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(b'{"cmd":"logs","name":"chatty","lines":1000}\n')
        self.d.wait_log(r"control client \d+ \(pid \d+\): closed: idle for 1000ms")
        s.close()
        self.assert_fds_back()

    def test_follower_that_does_not_read_is_dropped_at_the_output_bound(self):
        s = connect(self.d.control_socket)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(b'{"cmd":"logs","name":"chatty","lines":0,"follow":true}\n')
        buf = bytearray()
        self.assertTrue(read_line(s, buf)["follow"])
        self.d.ctl_ok("signal", "chatty", "USR1")  # 12 MB of output: more than 8 MiB wait
        self.d.wait_log(r"control client \d+ \(pid \d+\): dropped: not reading its replies")
        self.assertTrue(closed_by_peer(s))
        s.close()
        self.assert_fds_back()

    def test_a_peer_that_is_not_allowed_is_refused(self):
        nobody = 65534
        # fdsupctl must be reachable by nobody: a copy in a world-readable place.
        ctl = os.path.join(self.d.tmp, "fdsupctl")
        shutil.copy(FDSUPCTL, ctl)
        os.chmod(self.d.tmp, 0o755)
        os.chmod(ctl, 0o755)
        def as_nobody():
            os.setgroups([])
            os.setgid(nobody)
            os.setuid(nobody)
        # Default mode 0600: nobody cannot even connect.
        r = subprocess.run([ctl, "-s", self.d.control_socket, "status"], capture_output=True, text=True,
                           timeout=20, preexec_fn=as_nobody)
        self.assertEqual(r.returncode, 3, r)
        self.assertIn("Permission denied", r.stderr)
        # With the file opened up, the peer check still refuses.
        os.chmod(self.d.control_socket, 0o666)
        r = subprocess.run([ctl, "-s", self.d.control_socket, "stop", "chatty"], capture_output=True, text=True,
                           timeout=20, preexec_fn=as_nobody)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("permission denied: uid 65534", r.stderr)
        self.d.wait_log(r"refused a connection: permission denied: uid 65534")
        # A flood of refused connections is logged 20 times per 10 s, not once each.
        knock = ("import socket, sys\n"
                 "for _ in range(60):\n"
                 "    s = socket.socket(socket.AF_UNIX)\n"
                 "    s.connect(sys.argv[1])\n"
                 "    assert b'permission denied' in s.recv(4096)\n"
                 "    s.close()\n")
        # Debian's python3: the test's own interpreter may live where nobody cannot go (/root).
        subprocess.run(["/usr/bin/python3", "-c", knock, self.d.control_socket], check=True, timeout=20,
                       preexec_fn=as_nobody)
        self.assertLessEqual(len(re.findall(r"refused a connection", self.d.log())), 20)
        self.assertEqual(self.d.ctl_json("status")["workers"][0]["state"], "running")
        self.assert_fds_back()


if __name__ == "__main__":
    unittest.main()
