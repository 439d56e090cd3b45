"""Runs the real fdsupd for integration tests: a temp dir, a config, its log, and
clean-up of every process it started.

Tests wait on events (a log line, a file appearing, a process exiting) with generous
deadlines; they never sleep and hope.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

FDSUPD = os.environ.get("FDSUPD", "")
FDSUPCTL = os.environ.get("FDSUPCTL", "")
HELPERS = os.environ.get("FDSUP_HELPERS", "")
SOURCE_DIR = os.environ.get("FDSUP_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

DEADLINE = 20.0  # seconds: generous, because a loaded CI machine is slow, not wrong


def helper(name):
    return os.path.join(HELPERS, name)


def wait_until(predicate, timeout=DEADLINE, interval=0.01, what="condition"):
    """Polls `predicate` until it returns a truthy value; fails the test after `timeout`."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def stat_fields(pid):
    """/proc/PID/stat's fields after the command name (which may hold spaces and ')':
    they follow its last ')'), from the state on (field 3); None if `pid` is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):  # gone (the second: between open and read)
        return None


def pid_alive(pid):
    """True if `pid` exists and is not a zombie."""
    return process_state(pid) not in (None, "Z")


def process_state(pid):
    fields = stat_fields(pid)
    return fields[0] if fields else None


def mentions(pid, text):
    """True if the command line or the environment of `pid` contains `text`."""
    needle = text.encode()
    try:
        for part in ("cmdline", "environ"):
            with open(f"/proc/{pid}/{part}", "rb") as f:
                if needle in f.read():
                    return True
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return False


def kill_if_still(pid, text):
    """SIGKILL to `pid` if it is still one of ours: its command line or environment
    mentions `text` (something only ours have, as a path in the test's temp dir). For
    pids learnt earlier: that process may be gone, and its pid handed on to another
    test's process since (pid_max is 32768 on the machines the tests share). Through a
    pidfd, so that the process checked is the one killed."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        if mentions(pid, text):
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    except ProcessLookupError:
        pass
    finally:
        os.close(pidfd)


def children_of(pid):
    """Direct children of `pid` (any state, zombies included)."""
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = stat_fields(entry)
        if fields and int(fields[1]) == pid:
            kids.append(int(entry))
    return kids


def open_fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def fd_links(pid):
    """What each fd of `pid` is ("socket:[123]", "pipe:[45]", a path), as /proc shows it."""
    links = []
    for n in os.listdir(f"/proc/{pid}/fd"):
        try:
            links.append(os.readlink(f"/proc/{pid}/fd/{n}"))
        except FileNotFoundError:
            pass  # closed meanwhile
    return links


def wait_for_connections_closed(d):
    """Until fdsupd has closed its ends of every connection to its control and fd sockets
    (fdsupctl's, a worker's): it does when it reads their EOF, a moment after the peer
    went. They are listed in /proc/net/unix under the socket's path, connected (St 03)."""
    paths = {os.path.join(d.tmp, "run", "fds.sock"), d.control_socket}

    def connections():
        with open("/proc/net/unix") as f:
            connected = {f"socket:[{fields[6]}]" for fields in (line.split() for line in f.readlines()[1:])
                         if len(fields) >= 8 and fields[5] == "03" and fields[7] in paths}
        return connected & set(fd_links(d.pid))
    wait_until(lambda: not connections(), what="fdsupd's control and fd-socket connections closed")


def plant_bad_outputs(directory):
    """For the tests that an output file is opened safely: in `directory`, "linked.log",
    a symlink to "victim" (a file that says "untouched\n"), and "piped.log", a FIFO
    nobody reads. Returns the victim's path (it must stay untouched)."""
    victim = os.path.join(directory, "victim")
    with open(victim, "w") as f:
        f.write("untouched\n")
    os.symlink(victim, os.path.join(directory, "linked.log"))
    os.mkfifo(os.path.join(directory, "piped.log"))
    return victim


def http_get(host, port, timeout=5.0):
    """One HTTP/1.0 request; returns the body text."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(b"GET / HTTP/1.0\r\nHost: test\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.0 200") and not head.startswith(b"HTTP/1.1 200"):
        raise AssertionError(f"bad response: {data[:200]!r}")
    return body.decode()


class Fdsupd:
    """One fdsupd process with its own temp dir, config file and log file."""

    def __init__(self, config_text, prefix="fdsup-test-", extra_args=(), env=None, wrapper=()):
        # Always a directory of its own, made here: cleanup() removes it with everything
        # in it, so it must never be one another Fdsupd (or anything else) also uses.
        self.tmp = tempfile.mkdtemp(prefix=prefix)
        self.config_path = os.path.join(self.tmp, "fdsup.toml")
        self.log_path = os.path.join(self.tmp, "fdsupd.log")
        self.write_config(config_text)
        self.extra_args = list(extra_args)
        self.wrapper = list(wrapper)  # a program that runs fdsupd (e.g. seccomp_wrap)
        self.log_level = "debug"
        self.env = dict(os.environ if env is None else env)
        self.proc = None
        self._log = None

    def write_config(self, config_text):
        """(Re)writes the config file; @TMP@, @HELPERS@ (built helpers), @SCRIPTS@ (helper
        scripts in the source tree) and @PYTHON@ (this interpreter) are replaced. Every
        test supervisor gets its own control socket, unless the config names one."""
        self.control_socket = os.path.join(self.tmp, "run", "control.sock")
        m = re.search(r'^control_socket\s*=\s*"([^"]*)"', config_text, re.M)
        if m:
            self.control_socket = m.group(1).replace("@TMP@", self.tmp)
        elif re.search(r"^\[supervisor\]", config_text, re.M):
            config_text = re.sub(r"^\[supervisor\]\n", '[supervisor]\ncontrol_socket = "@TMP@/run/control.sock"\n',
                                 config_text, count=1, flags=re.M)
        else:
            config_text = '[supervisor]\ncontrol_socket = "@TMP@/run/control.sock"\n' + config_text
        with open(self.config_path, "w") as f:
            f.write(config_text.replace("@TMP@", self.tmp).replace("@HELPERS@", HELPERS)
                    .replace("@SCRIPTS@", os.path.join(SOURCE_DIR, "tests", "helpers"))
                    .replace("@PYTHON@", sys.executable))

    def ctl(self, *args, timeout=DEADLINE, env=None, preexec_fn=None, stdin=subprocess.DEVNULL):
        """Runs fdsupctl against this supervisor: (exit code, stdout, stderr)."""
        proc = subprocess.run([FDSUPCTL, "-s", self.control_socket, *args], stdin=stdin,
                              capture_output=True, text=True, timeout=timeout, env=env, preexec_fn=preexec_fn)
        return proc.returncode, proc.stdout, proc.stderr

    def ctl_ok(self, *args, **kwargs):
        """fdsupctl that must succeed: its stdout (fails the test with everything otherwise)."""
        code, out, err = self.ctl(*args, **kwargs)
        if code != 0:
            raise AssertionError(f"fdsupctl {' '.join(args)} exited {code}\nstdout:\n{out}\nstderr:\n{err}"
                                 f"\n--- fdsupd log ---\n{self.log()}")
        return out

    def ctl_json(self, *args, **kwargs):
        """fdsupctl --json that must succeed: the reply object."""
        return json.loads(self.ctl_ok("--json", *args, **kwargs))

    def wait_control(self):
        """Waits until the control socket answers. Needed before the first fdsupctl
        unless the test already waited for something fdsupd does only once the control
        socket exists (a worker started, a worker's output, READY=1, the "control
        socket:" line): fdsupd binds its [sockets] (logging "listening on") and parks
        them with its manager (FDSTORE=1) before it opens the control socket, so right
        after those the socket file may not exist yet (fdsupctl: ENOENT, issue 18)."""
        def answers():
            if self.proc.poll() is not None:
                raise AssertionError(f"fdsupd exited ({self.proc.returncode}); log:\n{self.log()}")
            return self.ctl("version")[0] == 0
        wait_until(answers, what="the control socket")
        return self

    def instance(self, worker, index=0):
        """status --json of instance `index` of `worker` in service (not one a rollout is
        replacing or bringing in, nor one scaled away)."""
        for w in self.ctl_json("status")["workers"]:
            if w["name"] == worker:
                return [i for i in w["instances"] if i["index"] == index and not i.get("retiring")
                        and not i.get("replacement")][0]
        raise AssertionError(f"no worker {worker}")

    def metric(self, name, labels=""):
        """The value of one sample of `fdsupctl metrics` (`labels`: 'worker="web",...'),
        0 if it is not there."""
        wanted = name + ("{" + labels + "}" if labels else "") + " "
        for line in self.ctl_ok("metrics").splitlines():
            if line.startswith(wanted):
                return float(line.split()[-1])
        return 0.0

    def instance_pids(self, worker):
        """{index: pid} of a worker's instances, from status."""
        status = self.ctl_json("status", worker)
        return {i["index"]: i["pid"] for i in status["workers"][0]["instances"]}

    def start(self, wait_for_workers=(), preexec_fn=None, stdin=subprocess.DEVNULL, output=None,
              wait_control=False):
        """`stdin`: fdsupd's stdin (default /dev/null). `output`: a path its stdout and
        stderr go to instead of the log file (which then stays empty: wait_log cannot
        be used, only fdsupctl). `wait_control`: returns only once the control socket
        answers (see wait_control(); not the default, as some tests start an fdsupd
        that must fail)."""
        if output:
            open(self.log_path, "wb").close()  # log() reads it: empty
        self._log = open(output or self.log_path, "wb")
        self.proc = subprocess.Popen(
            [*self.wrapper, FDSUPD, "-c", self.config_path, "--log-level", self.log_level, *self.extra_args],
            stdin=stdin, stdout=self._log, stderr=subprocess.STDOUT,
            env=self.env, start_new_session=True, preexec_fn=preexec_fn)
        for name in wait_for_workers:
            self.wait_log(rf"worker {re.escape(name)}: started pid \d+")
        if wait_control:
            self.wait_control()
        return self

    @property
    def pid(self):
        return self.proc.pid

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def wait_log(self, pattern, count=1, timeout=DEADLINE):
        """Waits until `pattern` matches at least `count` times; returns the matches."""
        regex = re.compile(pattern)

        def found():
            matches = list(regex.finditer(self.log()))
            if len(matches) >= count:
                return matches
            if self.proc.poll() is not None:
                raise AssertionError(f"fdsupd exited ({self.proc.returncode}) while waiting for "
                                     f"{pattern!r}; log:\n{self.log()}")
            return None

        try:
            return wait_until(found, timeout=timeout, what=repr(pattern))
        except AssertionError as e:
            raise AssertionError(f"{e}\n--- fdsupd log ---\n{self.log()}") from None

    def address(self, socket_name):
        """(host, port) of a tcp socket, from its 'listening on' log line."""
        m = self.wait_log(rf"socket {re.escape(socket_name)}: listening on (\S+)")[0]
        host, _, port = m.group(1).rpartition(":")
        return host.strip("[]"), int(port)

    def worker_pids(self, label):
        """Pids ever started for `label` ("web[0]"), oldest first."""
        return [int(m.group(1)) for m in re.finditer(rf"worker {re.escape(label)}: started pid (\d+)", self.log())]

    def current_pid(self, label, after=None):
        """Waits for a pid for `label` different from `after`, and returns it."""
        def newest():
            pids = self.worker_pids(label)
            return pids[-1] if pids and pids[-1] != after else None
        return wait_until(newest, what=f"a new pid for {label}")

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=DEADLINE):
        """SIGTERM, then the exit code (fails the test if it does not exit in time)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"fdsupd did not exit within {timeout}s; log:\n{self.log()}") from None

    def wait_exit(self, timeout=DEADLINE):
        """The exit code of a supervisor that was asked to stop (fails the test if it hangs)."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"fdsupd did not exit within {timeout}s; log:\n{self.log()}") from None

    def cleanup(self):
        """Kills whatever is left: SIGKILL to each worker's process group, where their own
        children are (a shell's background `sleep` has no PDEATHSIG and would outlive the
        test), and to fdsupd.

        fdsupd is stopped (SIGSTOP) before its workers' groups are looked up, and killed
        only after they are: a stopped fdsupd reaps nothing (and respawns nothing), so
        each worker, alive or a zombie, keeps its pid and its process group's number
        taken until the killpg. Were fdsupd running, or killed first (its workers then
        die by PDEATHSIG and init reaps them at once), a group's number could be free by
        the time of the killpg, and (pid_max is 32768 on the machines the tests share, and
        other tests fork all the time) handed to a new process group: the killpg would
        then SIGKILL another test's fdsupd or workers (issue 18)."""
        if self.proc is not None and self.proc.poll() is None:
            pid = self.proc.pid
            os.kill(pid, signal.SIGSTOP)  # still ours: not reaped (poll() said so)
            # Signals are delivered asynchronously: wait until it is stopped (or gone; a
            # process stuck in the kernel stops late: then on without it, as before).
            deadline = time.monotonic() + 5
            while process_state(pid) not in ("T", "t", "Z", None) and time.monotonic() < deadline:
                time.sleep(0.001)
            groups = set()
            for child in children_of(pid):
                try:
                    groups.add(os.getpgid(child))
                except ProcessLookupError:
                    pass
            groups.discard(os.getpgid(0))
            for group in groups:
                try:
                    os.killpg(group, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            self.proc.kill()  # SIGKILL ends a stopped process too
            self.proc.wait()
        if self._log:
            self._log.close()
            self._log = None
        # Temp dirs go with the test; FDSUP_KEEP_TMP=1 keeps them (and their logs) to debug.
        if os.environ.get("FDSUP_KEEP_TMP") != "1":
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()
        return False


class FdsupTestCase(unittest.TestCase):
    """Tracks every Fdsupd a test creates and cleans them up even when it fails."""

    def setUp(self):
        if not FDSUPD or not os.path.exists(FDSUPD):
            self.fail("FDSUPD is not set to the fdsupd binary (run through ctest)")
        if not FDSUPCTL or not os.path.exists(FDSUPCTL):
            self.fail("FDSUPCTL is not set to the fdsupctl binary (run through ctest)")

    def fdsupd(self, config_text, **kwargs):
        d = Fdsupd(config_text, **kwargs)
        # addCleanup, not tearDown: it also runs when setUp fails halfway.
        self.addCleanup(d.cleanup)
        return d


class Background:
    """fdsupctl running in the background; its stdout and stderr read as they come
    (each line as it is printed). Killed when the test ends."""

    def __init__(self, test, d, *args):
        self.proc = subprocess.Popen([FDSUPCTL, "-s", d.control_socket, *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        test.addCleanup(self.kill)
        self.out, self.err = [], []
        self.lock = threading.Lock()
        self.readers = [threading.Thread(target=self._read, args=(self.proc.stdout, self.out), daemon=True),
                        threading.Thread(target=self._read, args=(self.proc.stderr, self.err), daemon=True)]
        for reader in self.readers:
            reader.start()

    def _read(self, stream, into):
        for line in stream:
            with self.lock:
                into.append(line)

    def lines(self):
        with self.lock:
            return list(self.out)

    def stderr(self):
        with self.lock:
            return "".join(self.err)

    def wait_stderr(self, text, count=1):
        """Until `text` is on its stderr `count` times; fails at once if it exits first."""
        def seen():
            if self.stderr().count(text) >= count:
                return True
            if self.proc.poll() is not None:
                code, out, err = self.finish()
                raise AssertionError(f"fdsupctl exited {code} before saying {text!r} ({count}x):\n{out}{err}")
            return False
        wait_until(seen, what=f"{text!r} ({count}x) on fdsupctl's stderr")

    def finish(self, timeout=60):
        """(exit code, stdout, stderr) once it has exited by itself."""
        code = self.proc.wait(timeout=timeout)
        for reader in self.readers:
            reader.join(timeout=10)
        return code, "".join(self.lines()), self.stderr()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for reader in self.readers:
            reader.join(timeout=10)
        self.proc.stdout.close()
        self.proc.stderr.close()


def ask(d, request):
    """One request over the control socket; the reply object."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(d.control_socket)
        conn.sendall(json.dumps(request).encode() + b"\n")
        with conn.makefile("rb") as lines:
            for line in lines:
                reply = json.loads(line)
                if "ok" in reply:
                    return reply
    raise AssertionError(f"no reply to {request}")


class FakeManager:
    """A service manager's notify socket (what systemd passes as NOTIFY_SOCKET): a
    datagram socket with SO_PASSCRED, so each message comes with its sender's pid."""

    def __init__(self, directory):
        import struct
        self._struct = struct
        self.path = os.path.join(directory, "manager.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.fds = []

    def close(self):
        self.sock.close()
        for fd in self.fds:
            os.close(fd)
        self.fds = []

    def receive(self, timeout=DEADLINE):
        """(sender pid, {KEY: value}) of the next message, or None after `timeout`. Fds
        sent with it (FDSTORE=1) are appended to self.fds (the caller closes them)."""
        self.sock.settimeout(timeout)
        try:
            data, ancillary, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12) + socket.CMSG_SPACE(4 * 16))
        except socket.timeout:
            return None
        pid = next(self._struct.unpack("iII", c[2])[0] for c in ancillary if c[1] == socket.SCM_CREDENTIALS)
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                self.fds.extend(self._struct.unpack(f"{len(payload) // 4}i", payload[:len(payload) // 4 * 4]))
        return pid, dict(line.split("=", 1) for line in data.decode().splitlines())

    def next_with(self, key, timeout=DEADLINE):
        """The next message that has `key` (STATUS-only updates and others in between
        are skipped), or an AssertionError."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = self.receive(deadline - time.monotonic())
            if message and key in message[1]:
                return message
        raise AssertionError(f"no {key}= from fdsupd within {timeout} s")

    def wait_status(self, text, timeout=DEADLINE):
        """Reads messages until one says STATUS=`text`; returns its sender's pid."""
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            message = self.receive(deadline - time.monotonic())
            if message and "STATUS" in message[1]:
                seen.append(message[1]["STATUS"])
                if message[1]["STATUS"] == text:
                    return message[0]
        raise AssertionError(f"no STATUS={text} from fdsupd within {timeout} s; heard {seen}")


class LoadClient:
    """helpers/load_client against HOST:PORT (4 threads, a new connection per request)
    until finish(), which returns its final counts. `extra_args`: more of its options
    (tests/helpers/README.md)."""

    def __init__(self, host, port, tmp, concurrency=4, extra_args=()):
        self.progress = os.path.join(tmp, "load.json")
        self.proc = subprocess.Popen([helper("load_client"), host, str(port), "--concurrency", str(concurrency),
                                      "--progress", self.progress, *extra_args], stdout=subprocess.PIPE)

    def ok_count(self):
        try:
            with open(self.progress) as f:
                return json.load(f)["ok"]
        except (FileNotFoundError, ValueError):
            return 0

    def wait_for_more(self, count, what):
        """Waits until `count` more requests have succeeded."""
        served = self.ok_count()
        wait_until(lambda: self.ok_count() > served + count, what=what)

    def kill(self):
        """For clean-ups: gone for sure, whatever happened before (finish() may not run)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()

    def finish(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            out, _ = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise AssertionError("load_client did not stop within 30 s of SIGTERM") from None
        return json.loads(out)


def read_json_file(path, timeout=DEADLINE):
    """Waits for `path` to exist and parse as JSON."""
    def load():
        try:
            with open(path) as f:
                return json.load(f)
        except (FileNotFoundError, json.JSONDecodeError):
            return None
    return wait_until(load, timeout=timeout, what=f"{path}")
