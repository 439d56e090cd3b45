#!/usr/bin/env python3
"""Socket activation of fdsupd itself: sockets passed in LISTEN_FDS (by
systemd-socket-activate here, as systemd would) are matched to [sockets.NAME] by
LISTEN_FDNAMES and adopted instead of bound; a passed socket of another type or
address is a clear error; and with an fd store (FDSTORE=, FileDescriptorStoreMax=)
fdsupd parks the sockets it binds itself with its manager, so that even after fdsupd
is killed the socket stays open, clients queue, and the next fdsupd, given the socket
back by name, serves them."""
import os
import re
import shutil
import signal
import socket
import subprocess
import unittest

from fdsup_harness import FDSUPD, FakeManager, FdsupTestCase, http_get, wait_until

WEB = """
[sockets.http]
listen = "tcp://127.0.0.1:{port}"

[workers.web]
command = ["@HELPERS@/http_worker"]
sockets = ["http"]
"""


def free_port(count=1):
    """Ports free on 127.0.0.1 now (`count` > 1: that many, all different)."""
    held = [socket.socket() for _ in range(count)]
    try:
        for s in held:
            s.bind(("127.0.0.1", 0))
        ports = [s.getsockname()[1] for s in held]
    finally:
        for s in held:
            s.close()
    return ports[0] if count == 1 else ports


def listeners_on(port, table="tcp"):
    """How many sockets listen on (tcp) or are bound to (udp) 127.0.0.1:port."""
    with open(f"/proc/net/{table}") as f:
        return sum(1 for line in f.readlines()[1:]
                   if line.split()[1] == f"0100007F:{port:04X}" and (table == "udp" or line.split()[3] == "0A"))


@unittest.skipIf(shutil.which("systemd-socket-activate") is None,
                 "systemd-socket-activate is not installed (Debian package systemd)")
class SocketActivation(FdsupTestCase):
    def activate(self, d, *options):
        """fdsupd under systemd-socket-activate: it starts on the first connection."""
        proc = subprocess.Popen(["systemd-socket-activate", *options, FDSUPD, "-c", d.config_path],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True, text=True)

        def stop():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            proc.stdout.close()
        self.addCleanup(stop)
        return proc

    def test_a_passed_socket_is_adopted_not_bound_again(self):
        port = free_port()
        d = self.fdsupd(WEB.format(port=port))
        proc = self.activate(d, "-l", f"127.0.0.1:{port}", "--fdname=http")
        wait_until(lambda: listeners_on(port) == 1, what="the activator's socket")
        # The first connection starts fdsupd (same process: the activator execs it); the
        # request waits in the backlog until the worker accepts it.
        self.assertRegex(http_get("127.0.0.1", port, timeout=20), r"^web\[0\] pid \d+\n$")
        status = d.ctl_json("status")
        self.assertEqual(status["supervisor"]["pid"], proc.pid)
        self.assertEqual(status["sockets"][0]["bound"], f"127.0.0.1:{port}")
        self.assertEqual(listeners_on(port), 1)  # not bound a second time
        # Its worker gets LISTEN_* of its own (its pid), not the ones fdsupd was given.
        worker = d.instance_pids("web")[0]
        with open(f"/proc/{worker}/environ", "rb") as f:
            self.assertIn(f"LISTEN_PID={worker}\0".encode(), f.read())
        os.killpg(proc.pid, signal.SIGTERM)
        output = proc.communicate(timeout=30)[0]
        self.assertEqual(proc.returncode, 0, output)
        self.assertRegex(output, rf"socket http: adopted fd 3 from the service manager, listening on 127\.0\.0\.1:{port}")

    def test_a_passed_socket_that_differs_from_the_configuration_is_an_error(self):
        port, other = free_port(2)
        cases = [
            (WEB.format(port=other), ["-l", f"127.0.0.1:{port}", "--fdname=http"],
             rf"socket http: the inherited fd 3 is bound to 127\.0\.0\.1:{port}, not tcp://127\.0\.0\.1:{other}"),
            (WEB.format(port=port), ["--datagram", "-l", f"127.0.0.1:{port}", "--fdname=http"],
             rf"socket http: the inherited fd 3 is a udp socket bound to 127\.0\.0\.1:{port}, not tcp://127\.0\.0\.1:{port}"),
        ]
        for config, options, error in cases:
            d = self.fdsupd(config)
            proc = self.activate(d, *options)
            datagram = "--datagram" in options
            wait_until(lambda: listeners_on(port, "udp" if datagram else "tcp") == 1, what="the activator's socket")
            # Wake it: a TCP connection, or a datagram.
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM if datagram else socket.SOCK_STREAM) as s:
                self.assertTrue(self._poke(s, port, datagram))
                output = proc.communicate(timeout=30)[0]
            self.assertEqual(proc.returncode, 1, output)
            self.assertRegex(output, error)

    @staticmethod
    def _poke(s, port, datagram):
        try:
            if datagram:
                s.sendto(b"x", ("127.0.0.1", port))
            else:
                s.connect(("127.0.0.1", port))
            return True
        except ConnectionRefusedError:
            return False

    def test_a_passed_socket_no_configuration_names_is_closed(self):
        port, other = free_port(2)
        d = self.fdsupd(WEB.format(port=other))
        proc = self.activate(d, "-l", f"127.0.0.1:{port}", "--fdname=stray")
        wait_until(lambda: listeners_on(port) == 1, what="the activator's socket")
        with socket.socket() as s:
            self.assertTrue(self._poke(s, port, False))
            wait_until(lambda: d.ctl("status")[0] == 0, what="fdsupd up")
        self.assertRegex(http_get("127.0.0.1", other), r"^web\[0\] pid \d+\n$")  # bound by fdsupd itself
        wait_until(lambda: listeners_on(port) == 0, what="the stray socket closed")
        os.killpg(proc.pid, signal.SIGTERM)
        output = proc.communicate(timeout=30)[0]
        self.assertRegex(output, r'the service manager passed fd 3 named "stray", which no \[sockets\.stray\] names; closed')


class FdStoreParking(FdsupTestCase):
    def test_a_killed_fdsupd_leaves_its_socket_with_the_manager_and_the_next_one_serves_the_queue(self):
        port = free_port()
        d = self.fdsupd(WEB.format(port=port))
        manager = FakeManager(d.tmp)
        self.addCleanup(manager.close)
        d.env = dict(os.environ, NOTIFY_SOCKET=manager.path, FDSTORE="16")
        d.start()
        pid, stored = manager.next_with("FDSTORE")
        self.assertEqual((pid, stored["FDSTORE"], stored["FDNAME"]), (d.pid, "1", "parked.http"))
        self.assertEqual(len(manager.fds), 1)
        parked = socket.socket(fileno=os.dup(manager.fds[0]))
        self.addCleanup(parked.close)
        self.assertEqual(parked.getsockname(), ("127.0.0.1", port))
        d.wait_log(r"socket http: parked in the service manager's fd store")
        d.wait_log(r"web\[0\]: http_worker: serving on fd 3")

        # fdsupd dies (and its worker with it); the socket lives on in the manager, so a
        # client is queued, not refused.
        os.killpg(d.proc.pid, signal.SIGKILL)
        d.proc.wait()
        wait_until(lambda: not os.path.exists(f"/proc/{d.proc.pid}"), what="fdsupd gone")
        client = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.addCleanup(client.close)
        client.sendall(b"GET / HTTP/1.0\r\nHost: test\r\n\r\n")

        # The manager starts fdsupd again with the stored socket (LISTEN_FDS, by name).
        again = self.restart_with(d, manager, manager.fds[0], "parked.http")
        answer = b""
        while chunk := client.recv(4096):
            answer += chunk
        self.assertRegex(answer.decode(), r"web\[0\] pid \d+\n$")  # the queued request, served
        self.assertEqual(listeners_on(port), 1)
        os.killpg(again.pid, signal.SIGTERM)
        output = again.communicate(timeout=30)[0]
        self.assertEqual(again.returncode, 0, output)
        self.assertIn("socket http: adopted fd 3 from the service manager (its fd store)", output)
        self.assertNotIn("parked in the service manager's fd store", output)  # it holds that one already

    def test_a_reload_parks_new_sockets_and_takes_closed_ones_out(self):
        d = self.fdsupd(WEB.format(port=0))
        manager = FakeManager(d.tmp)
        self.addCleanup(manager.close)
        d.env = dict(os.environ, NOTIFY_SOCKET=manager.path, FDSTORE="16")
        # fdsupd parks its sockets (FDSTORE=1) before it opens its control socket: a
        # reload sent as soon as the FDSTORE came could find no socket file yet
        # (ENOENT; CI saw it once, issue 18). The FDSTORE stays queued meanwhile.
        d.start(wait_control=True)
        self.assertEqual(manager.next_with("FDSTORE")[1]["FDNAME"], "parked.http")
        d.write_config(WEB.format(port=0) + '\n[sockets.admin]\nlisten = "tcp://127.0.0.1:0"\n')
        d.ctl_ok("reload")
        self.assertEqual(manager.next_with("FDSTORE")[1]["FDNAME"], "parked.admin")
        self.assertEqual(len(manager.fds), 2)
        d.write_config(WEB.format(port=0))
        d.ctl_ok("reload")
        self.assertEqual(manager.next_with("FDSTOREREMOVE")[1], {"FDSTOREREMOVE": "1", "FDNAME": "parked.admin"})

    def restart_with(self, d, manager, fd, name):
        """fdsupd started as systemd restarts it: `fd` passed at 3 as LISTEN_FDNAMES=`name`."""
        proc = subprocess.Popen(["/bin/sh", "-c", f'LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES={name} exec "$0" -c "$1"',
                                 FDSUPD, d.config_path],
                                env=dict(os.environ, NOTIFY_SOCKET=manager.path, FDSTORE="16"), pass_fds=(3,),
                                preexec_fn=lambda: os.dup2(fd, 3), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, text=True)
        self.addCleanup(lambda: (proc.poll() is None and os.killpg(proc.pid, signal.SIGKILL), proc.wait()))
        return proc

    def test_a_parked_socket_the_changed_configuration_no_longer_matches_is_replaced(self):
        port = free_port()
        d = self.fdsupd(WEB.format(port=0))
        manager = FakeManager(d.tmp)
        self.addCleanup(manager.close)
        with socket.socket() as old:
            old.bind(("127.0.0.1", 0))
            old.listen()
            d.write_config(WEB.format(port=port))
            proc = self.restart_with(d, manager, old.fileno(), "parked.http")
            # Not a crash loop: the old one leaves the store, a new one is bound and parked.
            self.assertEqual(manager.next_with("FDSTOREREMOVE")[1]["FDNAME"], "parked.http")
            self.assertEqual(manager.next_with("FDSTORE")[1]["FDNAME"], "parked.http")
        self.assertRegex(http_get("127.0.0.1", port), r"^web\[0\] pid \d+\n$")
        os.killpg(proc.pid, signal.SIGTERM)
        output = proc.communicate(timeout=30)[0]
        self.assertEqual(proc.returncode, 0, output)
        self.assertRegex(output, r"socket http: the inherited fd 3 is bound to 127\.0\.0\.1:\d+, not tcp://127\.0\.0\.1:"
                                 rf"{port} \(parked before the configuration changed\): taken out")

    def test_the_file_of_a_parked_unix_socket_stays_at_shutdown(self):
        d = self.fdsupd("""
[sockets.app]
listen = "unix:@TMP@/app.sock"
[workers.web]
command = ["/bin/sleep", "1000"]
sockets = ["app"]
""")
        manager = FakeManager(d.tmp)
        self.addCleanup(manager.close)
        d.env = dict(os.environ, NOTIFY_SOCKET=manager.path, FDSTORE="16")
        d.start()
        manager.next_with("FDSTORE")
        manager.next_with("READY")  # its signal handlers are in place
        self.assertEqual(d.stop(), 0)
        # The manager still holds the socket: its path must still reach it.
        self.assertTrue(os.path.exists(os.path.join(d.tmp, "app.sock")))
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(os.path.join(d.tmp, "app.sock"))


if __name__ == "__main__":
    unittest.main()
