"""stdout/stderr = "journal": each captured line is a journal entry sent over journald's
native protocol.

- A socket of the test's own (FDSUP_JOURNAL_SOCKET) stands in for journald: the test
  decodes the datagrams itself (both field forms) and reads their SCM_CREDENTIALS.
- A real systemd-journald, where the test can start one: in a private mount namespace
  (tmpfs over /run and /var/log, so nothing of the host's is touched), with fdsupd
  entered into that namespace (nsenter) and using the default socket path; the entries
  are read back with journalctl. Skipped, with the reason, where that cannot be done.
- No journal: fdsupd's log and `fdsupctl logs` get the lines, with one warning, and the
  journal is used again once it is there.
- An in-place upgrade: the restored capture sends on, with the instance's pid.
"""
import json
import os
import pwd
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import unittest

from fdsup_harness import DEADLINE, FdsupTestCase, wait_until

JOURNALD = "/lib/systemd/systemd-journald"
RETRY_INTERVAL = 5.0  # JournalConnection::kRetryInterval


def decode(datagram):
    """The fields of one native-protocol datagram, as journald reads them: KEY=value\\n,
    or KEY\\n<64-bit little-endian length><value>\\n."""
    fields = {}
    at = 0
    while at < len(datagram):
        newline = datagram.index(b"\n", at)
        equals = datagram.find(b"=", at, newline)
        if equals >= 0:
            fields[datagram[at:equals].decode()] = datagram[equals + 1:newline]
            at = newline + 1
        else:
            key = datagram[at:newline].decode()
            (length,) = struct.unpack_from("<Q", datagram, newline + 1)
            start = newline + 9
            fields[key] = datagram[start:start + length]
            if datagram[start + length:start + length + 1] != b"\n":
                raise AssertionError(f"field {key}: no newline after its {length} bytes")
            at = start + length + 1
    return fields


class Receiver:
    """A datagram socket bound at `path` with SO_PASSCRED: each datagram decoded, with the
    pid, uid and gid of its credentials. Read by a thread; closed when the test ends."""

    def __init__(self, test, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(path)
        self.entries = []
        self.lock = threading.Lock()
        self.closed = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        test.addCleanup(self.close)

    def _run(self):
        size = struct.calcsize("3i")
        while True:
            try:
                data, ancillary, _, _ = self.sock.recvmsg(1 << 20, socket.CMSG_SPACE(size))
            except OSError:
                return  # closed
            pid = uid = gid = None
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid, uid, gid = struct.unpack("3i", payload[:size])
            with self.lock:
                self.entries.append({"fields": decode(data), "pid": pid, "uid": uid, "gid": gid})

    def close(self):
        if not self.closed:
            self.closed = True
            self.sock.shutdown(socket.SHUT_RDWR)
            self.sock.close()
            self.thread.join(timeout=DEADLINE)

    def of(self, worker, index=None):
        with self.lock:
            return [e for e in self.entries if e["fields"].get("FDSUP_WORKER") == worker.encode()
                    and (index is None or e["fields"].get("FDSUP_INSTANCE") == str(index).encode())]

    def wait_messages(self, worker, index, count):
        return wait_until(lambda: len(self.of(worker, index)) >= count and self.of(worker, index),
                          what=f"{count} journal entries of {worker}[{index}]")


# Each instance prints a plain line, a <3> line, unicode, an empty line and a stderr line,
# then stays (exec: the pid that wrote them is the instance's).
TALKER = r"""
[workers.talker]
command = ["/bin/sh", "-c", "printf 'hello %s\n<3>bad %s\nünïcødé ✓ %s\n\nlast %s\n' $FDSUP_INSTANCE $FDSUP_INSTANCE $FDSUP_INSTANCE $FDSUP_INSTANCE; echo to stderr $FDSUP_INSTANCE >&2; exec sleep 1000"]
instances = 2
stdout = "journal"
stderr = "journal"
"""

NOBODY = r"""
[workers.nobody]
command = ["/bin/sh", "-c", "echo as nobody; exec sleep 1000"]
user = "nobody"
stdout = "journal"
"""


def expected_talker_lines(index):
    """(stream, MESSAGE, PRIORITY) in the order printed."""
    return [("stdout", f"hello {index}", 6), ("stdout", f"bad {index}", 3), ("stdout", f"ünïcødé ✓ {index}", 6),
            ("stdout", "", 6), ("stdout", f"last {index}", 6), ("stderr", f"to stderr {index}", 4)]


def check_talker(test, entries, index, pid, pid_field):
    """The entries of talker[index]: each line once, in order per stream, its fields
    right; `pid_field(entry)` is the pid the entry names as its sender."""
    got = [(e["fields"]["FDSUP_STREAM"].decode(), e["fields"]["MESSAGE"].decode(), int(e["fields"]["PRIORITY"]))
           for e in entries]
    expected = expected_talker_lines(index)
    for stream in ("stdout", "stderr"):
        test.assertEqual([g for g in got if g[0] == stream], [x for x in expected if x[0] == stream])
    for e in entries:
        f = e["fields"]
        test.assertEqual(f["SYSLOG_IDENTIFIER"], b"talker")
        test.assertEqual(f["FDSUP_INSTANCE"], str(index).encode())
        test.assertEqual(f["FDSUP_PID"], str(pid).encode())
        test.assertEqual(pid_field(e), pid)


class JournalTest(FdsupTestCase):
    def journal_env(self, path):
        return dict(os.environ, FDSUP_JOURNAL_SOCKET=path)

    def test_datagrams_carry_the_fields_and_the_instances_credentials(self):
        tmp = tempfile.mkdtemp(prefix="fdsup-journal-")
        self.addCleanup(shutil.rmtree, tmp, True)
        receiver = Receiver(self, os.path.join(tmp, "socket"))
        d = self.fdsupd(TALKER + NOBODY, env=self.journal_env(receiver.path)).start(wait_control=True)
        root = os.geteuid() == 0
        for index in (0, 1):
            entries = receiver.wait_messages("talker", index, 6)
            pid = d.instance("talker", index)["pid"]
            # As root, the datagram's credentials name the instance (journald's _PID);
            # otherwise they are fdsupd's own and OBJECT_PID= names it.
            if root:
                check_talker(self, entries, index, pid, lambda e: e["pid"])
                self.assertTrue(all("OBJECT_PID" not in e["fields"] for e in entries))
            else:
                check_talker(self, entries, index, pid, lambda e: int(e["fields"]["OBJECT_PID"]))
                self.assertTrue(all(e["pid"] == d.pid for e in entries))
        if root:  # the worker's user in the credentials too
            [entry] = receiver.wait_messages("nobody", 0, 1)
            nobody = pwd.getpwnam("nobody")
            self.assertEqual(entry["fields"]["MESSAGE"], b"as nobody")
            self.assertEqual((entry["pid"], entry["uid"], entry["gid"]),
                             (d.instance("nobody")["pid"], nobody.pw_uid, nobody.pw_gid))
        # `fdsupctl logs` has every line (the ring is fed whatever the target), fdsupd's
        # own log none of them, and no warning was needed.
        logs = d.ctl_ok("logs", "talker")
        for index in (0, 1):
            for _, message, _ in expected_talker_lines(index):
                if message:
                    self.assertIn(message.replace("bad", "<3>bad"), logs)
        self.assertNotIn("hello 0", d.log())
        self.assertNotIn("warning", d.log())

    def test_without_a_journal_lines_go_to_the_log_with_one_warning_until_it_is_there(self):
        tmp = tempfile.mkdtemp(prefix="fdsup-journal-")
        self.addCleanup(shutil.rmtree, tmp, True)
        path = os.path.join(tmp, "socket")
        config = r"""
[workers.talker]
command = ["/bin/sh", "-c", "echo one; echo '<3>two'; echo err-one >&2; while [ ! -e @TMP@/go ]; do sleep 0.05; done; echo after; exec sleep 1000"]
stdout = "journal"
stderr = "journal"
"""
        d = self.fdsupd(config, env=self.journal_env(path)).start(wait_control=True)
        d.wait_log(r"talker\[0\]: one")
        d.wait_log(r"talker\[0\]: <3>two")  # as "log" writes it
        d.wait_log(r"talker\[0\] stderr: err-one")
        warnings = [line for line in d.log().splitlines() if "warning" in line]
        self.assertEqual(len(warnings), 1, d.log())
        self.assertRegex(warnings[0], rf"journal {path}: No such file or directory; talker\[0\] std(out|err) goes to "
                                      r"fdsupd's log instead")
        warned_at = time.monotonic()
        logs = d.ctl_ok("logs", "talker")
        for text in ("one", "<3>two", "err-one"):
            self.assertIn(text, logs)

        # The journal appears. Past the retry interval, the next line finds it.
        receiver = Receiver(self, path)
        time.sleep(max(0.0, warned_at + RETRY_INTERVAL + 0.5 - time.monotonic()))  # the documented interval
        open(os.path.join(d.tmp, "go"), "w").close()
        [entry] = receiver.wait_messages("talker", 0, 1)
        self.assertEqual(entry["fields"]["MESSAGE"], b"after")
        d.wait_log(rf"journal {path}: back; 3 lines went to fdsupd's log meanwhile")
        self.assertNotIn("talker[0]: after", d.log())
        self.assertIn("after", d.ctl_ok("logs", "talker"))

        # It goes again (journald stopped): one new warning; an instance starting tries
        # it again at once, without waiting for the interval.
        receiver.close()
        os.unlink(path)
        d.ctl_ok("restart", "talker")  # its lines: one, <3>two, err-one, after (go is there)
        d.wait_log(r"talker\[0\]: after")
        d.wait_log(r"talker\[0\] stderr: err-one", count=2)
        self.assertEqual(len([line for line in d.log().splitlines() if "warning" in line]), 2, d.log())
        receiver = Receiver(self, path)
        d.ctl_ok("restart", "talker")
        entries = receiver.wait_messages("talker", 0, 4)
        self.assertEqual(sorted(e["fields"]["MESSAGE"] for e in entries), [b"after", b"err-one", b"one", b"two"])
        d.wait_log(rf"journal {path}: back; 4 lines went to fdsupd's log meanwhile")
        self.assertEqual(len([line for line in d.log().splitlines() if "warning" in line]), 2, d.log())

    def test_an_upgrade_goes_on_sending_with_the_instances_pid(self):
        tmp = tempfile.mkdtemp(prefix="fdsup-journal-")
        self.addCleanup(shutil.rmtree, tmp, True)
        receiver = Receiver(self, os.path.join(tmp, "socket"))
        config = r"""
[workers.talker]
command = ["/bin/sh", "-c", "echo before; printf half-; while [ ! -e @TMP@/go ]; do sleep 0.05; done; echo line; echo '<2>after' >&2; exec sleep 1000"]
stdout = "journal"
stderr = "journal"
"""
        d = self.fdsupd(config, env=self.journal_env(receiver.path)).start(wait_control=True)
        receiver.wait_messages("talker", 0, 1)
        pid = d.instance("talker")["pid"]
        code, out, err = d.ctl("upgrade")
        self.assertEqual(code, 0, out + err + d.log())
        open(os.path.join(d.tmp, "go"), "w").close()
        entries = receiver.wait_messages("talker", 0, 3)
        got = [(e["fields"]["FDSUP_STREAM"], e["fields"]["MESSAGE"], e["fields"]["PRIORITY"]) for e in entries]
        self.assertEqual(sorted(got), sorted([(b"stdout", b"before", b"6"), (b"stdout", b"half-line", b"6"),
                                              (b"stderr", b"after", b"2")]))
        for e in entries:
            self.assertEqual(e["fields"]["FDSUP_PID"], str(pid).encode())
            if os.geteuid() == 0:
                self.assertEqual(e["pid"], pid)
        self.assertEqual(d.ctl_json("version")["upgrades"], 1)
        self.assertNotIn("warning", d.log())


class RealJournaldTest(FdsupTestCase):
    """A real systemd-journald in a private mount namespace, read back with journalctl."""

    def start_journald(self):
        if os.geteuid() != 0:
            self.skipTest("a private mount namespace for systemd-journald needs root")
        for program in (JOURNALD, shutil.which("journalctl"), shutil.which("unshare"), shutil.which("nsenter")):
            if not program or not os.path.exists(program):
                self.skipTest(f"{program or 'journalctl/unshare/nsenter'} is not installed")
        out = tempfile.NamedTemporaryFile(prefix="fdsup-journald-", suffix=".log", delete=False)
        self.addCleanup(os.unlink, out.name)
        # exec all the way: the pid is journald's. tmpfs over /run and /var/log in its
        # namespace only: it binds /run/systemd/journal/socket itself (not socket-
        # activated) and writes /run/log/journal/MACHINE-ID/; the namespace, with its
        # mounts, ends with its last process.
        proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c",
             "mount -t tmpfs tmpfs /run && mount -t tmpfs tmpfs /var/log && "
             "mkdir -p /run/systemd/journal /run/log/journal && exec " + JOURNALD],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        out.close()

        def stop():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=DEADLINE)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.addCleanup(stop)
        root = f"/proc/{proc.pid}/root"
        socket_path = root + "/run/systemd/journal/socket"

        def up():
            if proc.poll() is not None:
                return "exited"
            return os.path.exists(socket_path) and "up"
        if wait_until(up, what="systemd-journald's socket") == "exited":
            with open(out.name, errors="replace") as f:
                self.skipTest(f"systemd-journald could not run here (exit {proc.returncode}): {f.read().strip()}")
        return proc, root

    def journal_entries(self, root, worker="talker"):
        result = subprocess.run(["journalctl", "-D", root + "/run/log/journal", "-o", "json", "--no-pager",
                                 "FDSUP_WORKER=" + worker], capture_output=True, text=True, timeout=DEADLINE)
        if result.returncode not in (0, 1):  # 1: no entries yet (journalctl 252 says -- No entries --)
            raise AssertionError(f"journalctl: {result.stderr}")
        return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]

    def test_entries_read_back_with_journalctl(self):
        journald, root = self.start_journald()
        env = dict(os.environ)
        env.pop("FDSUP_JOURNAL_SOCKET", None)  # the default path, in journald's namespace
        d = self.fdsupd(TALKER + NOBODY, env=env, wrapper=["nsenter", f"--mount=/proc/{journald.pid}/ns/mnt", "--"])
        d.start(wait_control=True)
        entries = wait_until(lambda: (lambda e: len(e) >= 12 and e)(self.journal_entries(root)),
                             what="12 entries in the journal")
        for index in (0, 1):
            pid = d.instance("talker", index)["pid"]
            mine = [{"fields": {k: (v.encode() if isinstance(v, str) else bytes(v)) for k, v in e.items()},
                     "pid": int(e["_PID"])}
                    for e in entries if e.get("FDSUP_INSTANCE") == str(index)]
            self.assertEqual(len(mine), 6)
            check_talker(self, mine, index, pid, lambda e: e["pid"])
        [entry] = wait_until(lambda: self.journal_entries(root, "nobody"), what="nobody's entry in the journal")
        nobody = pwd.getpwnam("nobody")
        self.assertEqual(entry["MESSAGE"], "as nobody")
        self.assertEqual((int(entry["_PID"]), int(entry["_UID"]), int(entry["_GID"])),
                         (d.instance("nobody")["pid"], nobody.pw_uid, nobody.pw_gid))
        self.assertNotIn("warning", d.log())


if __name__ == "__main__":
    unittest.main()
