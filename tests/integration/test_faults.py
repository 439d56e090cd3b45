"""Fault injection (issue 9): fdsupd out of fds at run time (EMFILE); exec refused for
the worker's user (EAGAIN, RLIMIT_NPROC); a full disk under a worker's `file:` output and
under fdsupd's own log; a worker that closes its output; workers that read their stdin,
or never do, while fdsupd's own stdin is a pipe nobody writes to. Each fault is logged
and retried with backoff where a retry applies; once it passes everything runs again,
and nothing is lost or leaked (fdsupd's fd count back where it was, no process left)."""
import ctypes
import os
import pwd
import resource
import signal
import subprocess
import tempfile
import unittest

from fdsup_harness import (FdsupTestCase, children_of, fd_links, open_fd_count, pid_alive,
                           wait_for_connections_closed, wait_until)

SLEEPERS = """
[workers.sleeper]
command = ["/bin/sh", "-c", "echo up; exec sleep 1000"]
instances = 1
backoff = "50ms"
backoff_max = "200ms"
start_limit_burst = 100000
"""

# On SIGUSR1 the shell closes its stdout and stderr, and lives on.
CLOSES_OUTPUT = """
[workers.mute]
command = ["/bin/sh", "-c", "trap 'exec >&- 2>&-' USR1; echo before closing; while :; do sleep 0.05; done"]
healthy_after = "0ms"
"""


def pipes_of(pid):
    return {link for link in fd_links(pid) if link.startswith("pipe:")}


def limit_leaving_one_free_fd(pid):
    """The RLIMIT_NOFILE at which `pid` has exactly one free fd number (the limit caps fd
    numbers, not their count: gaps below the highest open fd are free too)."""
    open_fds = {int(n) for n in os.listdir(f"/proc/{pid}/fd")}
    free = 0
    for n in range(max(open_fds) + 3):
        if n not in open_fds:
            if free == 1:
                return n  # numbers 0..n-1 hold exactly one free one
            free += 1
    raise AssertionError("unreachable: max(open_fds) + 1 and + 2 are free")


# The worker's user may have NPROC processes, and the test's "hogs" (as that user) are
# more. Since Linux 3.1 setresuid lets the child past the limit (PF_NPROC_EXCEEDED) and
# the execve after it fails with EAGAIN, when the user's processes (the new one not
# counted) are more than the limit.
NPROC = 2

LIMITED = """
[workers.limited]
command = ["/bin/sh", "-c", "echo up; exec sleep 1000"]
user = "@UID@"
group = "@UID@"
rlimits = { nproc = @NPROC@ }
healthy_after = "0ms"
backoff = "50ms"
backoff_max = "400ms"
# Starts are 50 ms apart at least: never 3 within 10 ms, so the start limit stays out of
# the way, and more than 3 failed starts in a row show EAGAIN is not taken as a program
# that cannot be run (those fail the worker after start_limit_burst in a row).
start_limit_burst = 3
start_limit_interval = "10ms"
"""

# Its stdout is /dev/full, where every write fails with ENOSPC, as on a full disk. It says
# so on stderr (captured by fdsupd) and lives on.
FULL_DISK = """
[workers.diskfull]
command = ["@PYTHON@", "-c", '''
import os, signal, sys
try:
    os.write(1, b"a line for the full disk")
except OSError as e:
    print(f"stdout write failed: {e.strerror}", file=sys.stderr, flush=True)
signal.pause()
''']
stdout = "file:/dev/full"
healthy_after = "0ms"
"""

# The same, but it gives up (exit 1) and is restarted with backoff.
QUITTER = """
[workers.quitter]
command = ["@PYTHON@", "-c", '''
import os, sys
try:
    os.write(1, b"a line for the full disk")
except OSError as e:
    sys.exit(f"stdout write failed: {e.strerror}; giving up")
''']
stdout = "file:/dev/full"
backoff = "50ms"
backoff_max = "200ms"
start_limit_burst = 100000
"""

# Fills its `file:` stdout until the filesystem is full, and says how far it got.
FILLER = """
[workers.filler]
command = ["@PYTHON@", "-c", '''
import os, signal, sys
written = 0
try:
    while True:
        written += os.write(1, b"x" * 1000)
except OSError as e:
    print(f"wrote {written} bytes, then: {e.strerror}", file=sys.stderr, flush=True)
signal.pause()
''']
stdout = "file:@MNT@/out.log"
healthy_after = "0ms"
"""

CHATTY = """
[workers.chatty]
command = ["/bin/sh", "-c", "echo hello from chatty; echo and on stderr >&2; exec sleep 1000"]
healthy_after = "0ms"
"""

# `reader` reads its stdin once and says what it got; `idle` never touches it.
STDIN_WORKERS = """
[workers.reader]
command = ["/bin/sh", "-c", 'if read -r line; then echo "read: $line"; else echo "stdin: end of file"; fi; exec sleep 1000']

[workers.idle]
command = ["/bin/sh", "-c", "echo idle up; exec sleep 1000"]
"""


def real_uids():
    """{pid: real uid} of every process (zombies included: they count for NPROC too)."""
    uids = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/status") as f:
                    uids[int(entry)] = int(next(line for line in f if line.startswith("Uid:")).split()[1])
            except (FileNotFoundError, ProcessLookupError, StopIteration):
                pass  # gone meanwhile
    return uids


def processes_of(uid):
    return sorted(pid for pid, owner in real_uids().items() if owner == uid)


def unused_uid():
    """A uid with no passwd entry and no process: only this test's processes count
    against its NPROC. The search starts at a number from the pid, so that runs in
    parallel take different ones."""
    busy = set(real_uids().values())
    first = 40000 + os.getpid() % 20000
    for uid in range(first, first + 1000):
        try:
            pwd.getpwuid(uid)
        except KeyError:
            if uid not in busy:
                return uid
    raise AssertionError("no unused uid found")


def die_with_the_test():
    """preexec_fn: SIGKILL when the test process dies, whatever kills it (addCleanup
    covers the rest). Runs after the uid change, which clears it."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


def sanitizer_reports(directory):
    """What ASan and UBSan wrote to log_path=DIRECTORY/sanitizer (nothing without them)."""
    return "".join(open(os.path.join(directory, name)).read() for name in sorted(os.listdir(directory))
                   if name.startswith("sanitizer."))


def instance(d, worker):
    return d.ctl_json("status", worker)["workers"][0]["instances"][0]


class Faults(FdsupTestCase):
    # The sanitizers' runtime needs fds of its own (UBSan's vptr check probes memory
    # through a pipe): out of fds, an instrumented fdsupd reports a false error.
    @unittest.skipIf(os.environ.get("FDSUP_SANITIZED") == "1", "EMFILE cannot be injected under the sanitizers")
    def test_emfile_at_run_time_is_retried_until_fds_are_back(self):
        d = self.fdsupd(SLEEPERS).start()
        d.wait_log(r"sleeper\[0\]: up")
        d.wait_control()
        wait_for_connections_closed(d)
        baseline = open_fd_count(d.pid)
        limits = resource.prlimit(d.pid, resource.RLIMIT_NOFILE)
        # One free fd: the reload can read its config, but no spawn gets its pipe pair.
        resource.prlimit(d.pid, resource.RLIMIT_NOFILE, (limit_leaving_one_free_fd(d.pid), limits[1]))
        try:
            # Scaled up by a reload on SIGHUP (a control connection would need an fd too).
            d.write_config(SLEEPERS.replace("instances = 1", "instances = 3"))
            d.signal(signal.SIGHUP)
            d.wait_log(r"worker sleeper\[1\]: .*Too many open files.*; restart #2 in", timeout=20)
        finally:
            resource.prlimit(d.pid, resource.RLIMIT_NOFILE, limits)
        # Retried with backoff until the fds are back, then all three run.
        d.wait_log(r"sleeper\[1\]: up")
        d.wait_log(r"sleeper\[2\]: up")
        states = [i["state"] for i in d.ctl_json("status", "sleeper")["workers"][0]["instances"]]
        self.assertEqual(states, ["running"] * 3)
        # Back to one instance: the failed spawns left no fd behind.
        d.write_config(SLEEPERS)
        d.signal(signal.SIGHUP)
        wait_until(lambda: len(d.ctl_json("status", "sleeper")["workers"][0]["instances"]) == 1,
                   what="scaled back to 1")
        wait_for_connections_closed(d)
        wait_until(lambda: open_fd_count(d.pid) == baseline, what=f"fdsupd back to {baseline} fds")
        self.assertEqual(d.stop(), 0)

    def test_a_worker_that_closes_its_output_is_still_supervised(self):
        d = self.fdsupd(CLOSES_OUTPUT).start()
        d.wait_log(r"mute\[0\]: before closing")
        pid = d.current_pid("mute[0]")
        d.wait_control()
        # Its two capture pipes, as fdsupd holds them (the read ends).
        worker_pipes = {os.readlink(f"/proc/{pid}/fd/1"), os.readlink(f"/proc/{pid}/fd/2")}
        self.assertTrue(worker_pipes <= pipes_of(d.pid))
        os.kill(pid, signal.SIGUSR1)
        # The pipes end (EOF) while it runs: fdsupd lets go of them and keeps watching it.
        wait_until(lambda: not worker_pipes & pipes_of(d.pid), what="fdsupd to close the ended output pipes")
        self.assertEqual(d.ctl_json("status", "mute")["workers"][0]["instances"][0]["state"], "running")
        os.kill(pid, signal.SIGKILL)
        d.wait_log(rf"worker mute\[0\]: pid {pid} killed by signal KILL .*restart #1 now")
        new_pid = d.current_pid("mute[0]", after=pid)
        # The replacement's output is captured again.
        d.wait_log(r"mute\[0\]: before closing", count=2)
        self.assertNotEqual(new_pid, pid)
        self.assertEqual(d.stop(), 0)

    def start_hog(self, uid):
        """A process of `uid` that sleeps until the test kills it."""
        hog = subprocess.Popen(["/bin/sleep", "1000"], user=uid, group=uid, extra_groups=[],
                               stdin=subprocess.DEVNULL, preexec_fn=die_with_the_test)

        def kill():
            hog.kill()
            hog.wait()
        self.addCleanup(kill)
        return hog, kill

    def test_eagain_from_exec_over_nproc_is_retried_until_the_user_has_room(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to run workers and hogs as another user")
        uid = unused_uid()
        try:  # a user namespace (rootless container) may not map it
            subprocess.run(["/bin/true"], user=uid, group=uid, extra_groups=[], check=True)
        except (OSError, subprocess.CalledProcessError) as e:
            self.skipTest(f"cannot run a process as uid {uid} here: {e}")
        d = self.fdsupd(LIMITED.replace("@UID@", str(uid)).replace("@NPROC@", str(NPROC))).start()
        d.wait_log(r"limited\[0\]: up")
        pid = d.current_pid("limited[0]")
        self.assertEqual(processes_of(uid), [pid])
        d.wait_control()
        wait_for_connections_closed(d)
        baseline = open_fd_count(d.pid)

        # The worker's NPROC + 1 hogs: with it gone, its user has more than the limit.
        hogs = [self.start_hog(uid) for _ in range(NPROC + 1)]
        self.assertEqual(processes_of(uid), sorted([pid] + [hog.pid for hog, _ in hogs]))
        os.kill(pid, signal.SIGKILL)
        d.wait_log(rf"worker limited\[0\]: pid {pid} killed by signal KILL .*; restart #1 now")
        # Each respawn fails at execve; it is logged and retried with doubling delays.
        attempts = d.wait_log(r"worker limited\[0\]: exec /bin/sh: Resource temporarily unavailable "
                              r"\(stage: execve\); restart #(\d+) in (\d+)ms", count=5)
        self.assertEqual([(int(m.group(1)), int(m.group(2))) for m in attempts[:5]],
                         [(2, 50), (3, 100), (4, 200), (5, 400), (6, 400)])
        waiting = instance(d, "limited")
        self.assertEqual((waiting["state"], waiting["pid"]), ("backoff", None))  # not "failed"
        self.assertEqual(waiting["last_error"], "exec /bin/sh: Resource temporarily unavailable (stage: execve)")

        # Room again: the next retry runs it, as its user, and nothing was left behind.
        for _, kill in hogs:
            kill()
        new_pid = d.current_pid("limited[0]", after=pid)
        d.wait_log(r"limited\[0\]: up", count=2)
        wait_until(lambda: instance(d, "limited")["state"] == "running", what="limited[0] running")
        self.assertGreaterEqual(instance(d, "limited")["restarts"], 6)
        self.assertEqual(processes_of(uid), [new_pid])
        self.assertEqual(children_of(d.pid), [new_pid])  # every failed spawn was reaped
        wait_for_connections_closed(d)
        wait_until(lambda: open_fd_count(d.pid) == baseline, what=f"fdsupd back to {baseline} fds")
        self.assertEqual(d.stop(), 0)
        wait_until(lambda: not processes_of(uid), what=f"no process of uid {uid} left")

    def test_a_full_disk_under_a_file_output_fails_the_workers_writes_only(self):
        d = self.fdsupd(FULL_DISK).start()
        d.wait_log(r"diskfull\[0\] stderr: stdout write failed: No space left on device")
        pid = d.current_pid("diskfull[0]")
        # The worker holds the file itself; fdsupd keeps no copy (it never writes it).
        self.assertEqual(os.readlink(f"/proc/{pid}/fd/1"), "/dev/full")
        self.assertNotIn("/dev/full", fd_links(d.pid))
        d.wait_control()
        wait_for_connections_closed(d)
        baseline = open_fd_count(d.pid)
        self.assertEqual(instance(d, "diskfull")["state"], "running")

        # Still supervised: killed, it is restarted, and its successor meets the same disk.
        os.kill(pid, signal.SIGKILL)
        d.wait_log(rf"worker diskfull\[0\]: pid {pid} killed by signal KILL .*; restart #1 now")
        new_pid = d.current_pid("diskfull[0]", after=pid)
        d.wait_log(r"diskfull\[0\] stderr: stdout write failed: No space left on device", count=2)
        self.assertEqual(os.readlink(f"/proc/{new_pid}/fd/1"), "/dev/full")

        # One that gives up on the full disk is restarted with growing delays.
        d.write_config(FULL_DISK + QUITTER)
        d.ctl_ok("reload")
        d.wait_log(r"quitter\[0\] stderr: stdout write failed: No space left on device; giving up", count=4)
        restarts = d.wait_log(r"worker quitter\[0\]: pid \d+ exited with code 1 .*; restart #(\d+) in (\d+)ms",
                              count=4)
        self.assertEqual([(int(m.group(1)), int(m.group(2))) for m in restarts[:4]],
                         [(1, 50), (2, 100), (3, 200), (4, 200)])
        # Removed again: nothing of it is left in fdsupd, and diskfull was not touched.
        d.write_config(FULL_DISK)
        d.ctl_ok("reload")
        wait_until(lambda: [w["name"] for w in d.ctl_json("status")["workers"]] == ["diskfull"],
                   what="quitter removed")
        self.assertEqual(instance(d, "diskfull")["pid"], new_pid)
        self.assertEqual(children_of(d.pid), [new_pid])
        self.assertNotIn("/dev/full", fd_links(d.pid))
        wait_for_connections_closed(d)
        wait_until(lambda: open_fd_count(d.pid) == baseline, what=f"fdsupd back to {baseline} fds")
        self.assertEqual(d.stop(), 0)
        self.assertFalse(pid_alive(new_pid))

    def test_fdsupd_with_its_own_log_on_a_full_disk_keeps_supervising(self):
        d = self.fdsupd(CHATTY)
        # A sanitizer's report would be lost in /dev/full as well: it goes to files.
        for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
            d.env[var] = ":".join(filter(None, [d.env.get(var), f"log_path={d.tmp}/sanitizer"]))
        d.start(output="/dev/full")
        d.wait_control()  # every log line so far failed with ENOSPC
        self.assertEqual(os.readlink(f"/proc/{d.pid}/fd/1"), "/dev/full")
        self.assertEqual(os.readlink(f"/proc/{d.pid}/fd/2"), "/dev/full")
        wait_until(lambda: instance(d, "chatty")["state"] == "running", what="chatty running")
        pid = instance(d, "chatty")["pid"]
        # Its output is not lost with the log: fdsupctl logs has it.
        wait_until(lambda: d.ctl_ok("logs", "chatty").count("hello from chatty") == 1, what="chatty's line")
        wait_until(lambda: "and on stderr" in d.ctl_ok("logs", "chatty"), what="chatty's stderr line")
        wait_for_connections_closed(d)
        baseline = open_fd_count(d.pid)

        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: instance(d, "chatty")["pid"] not in (None, pid), what="chatty respawned")
        new = instance(d, "chatty")
        self.assertEqual(new["restarts"], 1)
        self.assertEqual(new["last_exit"]["signal"], "KILL")
        self.assertEqual(children_of(d.pid), [new["pid"]])
        wait_until(lambda: d.ctl_ok("logs", "chatty").count("hello from chatty") == 2, what="the new chatty's line")
        wait_for_connections_closed(d)
        wait_until(lambda: open_fd_count(d.pid) == baseline, what=f"fdsupd back to {baseline} fds")

        d.ctl_ok("shutdown")
        self.assertEqual(d.wait_exit(), 0, sanitizer_reports(d.tmp))
        self.assertFalse(pid_alive(new["pid"]))

    def test_a_file_output_on_a_filesystem_that_fills_up(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to mount a tmpfs")
        mnt = tempfile.mkdtemp(prefix="fdsup-test-tmpfs-")
        self.addCleanup(os.rmdir, mnt)
        try:
            mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "fdsup-test", mnt],
                                     capture_output=True, text=True)
        except FileNotFoundError:
            self.skipTest("no mount(8) here")
        if mounted.returncode != 0:  # a container without CAP_SYS_ADMIN
            self.skipTest(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
        # Lazily: it goes even if a process still has the file open.
        self.addCleanup(subprocess.run, ["umount", "--lazy", mnt], check=True)
        out = os.path.join(mnt, "out.log")
        d = self.fdsupd(FILLER.replace("@MNT@", mnt)).start()
        first = d.wait_log(r"filler\[0\] stderr: wrote (\d+) bytes, then: No space left on device")[0]
        written = int(first.group(1))
        # Everything the worker was told was written is in the file.
        self.assertGreater(written, 0)
        self.assertEqual(os.path.getsize(out), written)
        pid = d.current_pid("filler[0]")
        d.wait_control()
        wait_for_connections_closed(d)
        baseline = open_fd_count(d.pid)

        # Still full: its successor writes nothing and says so.
        os.kill(pid, signal.SIGKILL)
        pid = d.current_pid("filler[0]", after=pid)
        d.wait_log(r"filler\[0\] stderr: wrote 0 bytes, then: No space left on device")
        self.assertEqual(os.path.getsize(out), written)
        # Room again (the operator rotated the log): the next one writes again.
        os.truncate(out, 0)
        os.kill(pid, signal.SIGKILL)
        pid = d.current_pid("filler[0]", after=pid)
        third = d.wait_log(r"filler\[0\] stderr: wrote (\d+) bytes, then: No space left on device", count=3)[2]
        self.assertGreater(int(third.group(1)), 0)
        self.assertEqual(os.path.getsize(out), int(third.group(1)))
        self.assertEqual(instance(d, "filler")["state"], "running")
        wait_for_connections_closed(d)
        wait_until(lambda: open_fd_count(d.pid) == baseline, what=f"fdsupd back to {baseline} fds")
        self.assertEqual(d.stop(), 0)
        self.assertFalse(pid_alive(pid))

    def test_workers_stdin_is_dev_null_never_the_supervisors(self):
        # fdsupd's stdin: a pipe the test holds open and never writes to. Were it passed
        # on, `reader` would block in read for ever, and fd 0 would not be /dev/null.
        read_end, write_end = os.pipe()
        self.addCleanup(os.close, write_end)
        try:
            d = self.fdsupd(STDIN_WORKERS).start(stdin=read_end)
        finally:
            os.close(read_end)
        supervisor_stdin = f"pipe:[{os.fstat(write_end).st_ino}]"
        self.assertEqual(os.readlink(f"/proc/{d.pid}/fd/0"), supervisor_stdin)

        d.wait_log(r"reader\[0\]: stdin: end of file")
        d.wait_log(r"idle\[0\]: idle up")
        reader, idle = d.current_pid("reader[0]"), d.current_pid("idle[0]")
        for pid in (reader, idle):
            self.assertEqual(os.readlink(f"/proc/{pid}/fd/0"), "/dev/null")
            self.assertNotIn(supervisor_stdin, fd_links(pid))
        self.assertEqual(os.readlink(f"/proc/{d.pid}/fd/0"), supervisor_stdin)  # still fdsupd's own
        d.wait_control()
        wait_for_connections_closed(d)
        baseline = open_fd_count(d.pid)

        # The one that never read it stops and starts as any other.
        d.ctl_ok("stop", "idle")
        self.assertEqual(instance(d, "idle")["state"], "stopped")
        d.wait_log(rf"worker idle\[0\]: pid {idle} killed by signal TERM .*; stopped")
        self.assertFalse(pid_alive(idle))
        d.ctl_ok("start", "idle")
        idle = d.current_pid("idle[0]", after=idle)
        d.wait_log(r"idle\[0\]: idle up", count=2)
        self.assertEqual(os.readlink(f"/proc/{idle}/fd/0"), "/dev/null")
        self.assertEqual(instance(d, "reader")["pid"], reader)
        self.assertEqual(sorted(children_of(d.pid)), sorted([reader, idle]))
        wait_for_connections_closed(d)
        wait_until(lambda: open_fd_count(d.pid) == baseline, what=f"fdsupd back to {baseline} fds")
        self.assertEqual(d.stop(), 0)
        self.assertFalse(pid_alive(reader) or pid_alive(idle))


if __name__ == "__main__":
    unittest.main()
