#!/usr/bin/env python3
"""fdsupctl top: on a real terminal (tmux, 80x24, a private server) the screen shows
every worker and its instances, is redrawn as uptimes change, sorts on a key, follows a
resize, and q or Ctrl-C ends it with status 0; piped, -n N plain frames, then exit 0,
riding out a restart of fdsupd in between; an unknown worker and an unreachable fdsupd
are clear errors with SPEC's exit statuses (1, 3)."""
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import threading
import unittest

from fdsup_harness import FDSUPCTL, FdsupTestCase, wait_until

CONFIG = """
[workers.web]
command = ["/bin/sleep", "1000"]
instances = 2

[workers.api]
command = ["/bin/sleep", "1000"]
"""

# "2026-11-23 10:00:00.123  fdsupd 0.1.0, pid 42, up 1s; 2 workers, ..." : a plain frame's first line.
FRAME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}  fdsupd \S+, pid \d+, up \S+; "
                   r"2 workers, 3 instances \(3 running\); sort: (\w+)$", re.M)


class Tmux:
    """A tmux server of the test's own (its socket in the test's temp dir, no config
    file read), for sessions that run one command each."""

    def __init__(self, directory):
        self.socket = os.path.join(directory, "tmux.sock")

    def run(self, *args):
        r = subprocess.run(["tmux", "-S", self.socket, "-f", "/dev/null", *args], capture_output=True, text=True,
                           timeout=30)
        if r.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)} exited {r.returncode}: {r.stderr}")
        return r.stdout

    def start(self, session, command, width=80, height=24):
        self.run("new-session", "-d", "-s", session, "-x", str(width), "-y", str(height),
                 "sh -c " + shlex.quote(command))

    # "=NAME:": the session NAME exactly (a bare name may be taken for a window, a
    # prefix, or a token such as "top", the top pane of the current window).
    def screen(self, session):
        """The pane as it shows now, one string a row."""
        return self.run("capture-pane", "-p", "-t", f"={session}:").splitlines()

    def keys(self, session, *keys):
        self.run("send-keys", "-t", f"={session}:", *keys)

    def resize(self, session, width, height):
        self.run("resize-window", "-t", f"={session}:", "-x", str(width), "-y", str(height))

    def kill_server(self):
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True, timeout=30)


class Top(FdsupTestCase):
    def setUp(self):
        super().setUp()
        self.d = self.fdsupd(CONFIG).start(wait_for_workers=["web[0]", "web[1]", "api[0]"], wait_control=True)
        self.top_args = [FDSUPCTL, "-s", self.d.control_socket, "top"]

    def run_in_tmux(self, tmux, session, *args):
        """fdsupctl top ARGS in a new session; returns the file its exit status goes to. (The
        shell ignores SIGINT: Ctrl-C goes to the whole foreground process group, and the
        shell must live on to write the status.)"""
        exit_file = os.path.join(self.d.tmp, session + ".exit")
        tmux.start(session, f"trap '' INT; {shlex.join(self.top_args + list(args))}; "
                            f"echo EXIT=$? > {shlex.quote(exit_file)}")
        return exit_file

    def exit_status(self, exit_file, what):
        def written():
            try:
                with open(exit_file) as f:
                    text = f.read()
            except FileNotFoundError:
                return None
            return text if text.endswith("\n") else None
        return wait_until(written, what=what).strip()

    @unittest.skipIf(shutil.which("tmux") is None, "no tmux")
    def test_the_screen_in_an_80x24_terminal(self):
        tmux = Tmux(self.d.tmp)
        self.addCleanup(tmux.kill_server)
        exit_file = self.run_in_tmux(tmux, "viewer")

        def shows(session, *patterns):
            screen = tmux.screen(session)
            text = "\n".join(screen)
            return screen if all(re.search(p, text, re.M) for p in patterns) else None

        web_pids = self.d.instance_pids("web")
        api_pid = self.d.instance_pids("api")[0]
        # (The summary gives way to the sort at the right edge: with a pid of 7 digits,
        # "(3 running)" may be cut. CPU%, MEM and PROCS: "-" until fdsupd reports usage.)
        rows = [r"^fdsupd \S+, pid \d+, up \S+; 2 workers, 3 instances.*; sort: name$",
                r"^NAME +PID +STATE +CPU% +MEM +PROCS +RESTARTS +UPTIME *$",
                rf"^api +running +\S+ +\S+ +\S+ +0 +\S+ *\n  \[0\] +{api_pid} +running +\S+ +\S+ +\S+ +0 +\S+ *\n"
                rf"web +running +\S+ +\S+ +\S+ +0 +\S+ *\n  \[0\] +{web_pids[0]} +running .*\n"
                rf"  \[1\] +{web_pids[1]} +running ",
                r"^q quit  sort: c cpu  m memory  n name  r restarts  u uptime"]
        try:
            first = wait_until(lambda: shows("viewer", *rows), what="the workers and their instances on the screen")
        except AssertionError:
            raise AssertionError("the screen:\n" + "\n".join(tmux.screen("viewer"))) from None
        self.assertEqual(len(first), 24)
        self.assertTrue(all(len(row) <= 80 for row in first))
        self.assertEqual(first[23].rstrip(),
                         "q quit  sort: c cpu  m memory  n name  r restarts  u uptime  arrows scroll")

        # Redrawn: the uptimes move on (the table, not only the time it was updated).
        wait_until(lambda: tmux.screen("viewer")[2:] != first[2:], what="the table redrawn with other uptimes")

        tmux.keys("viewer", "c")
        wait_until(lambda: shows("viewer", r"; sort: cpu$"), what="the sort by CPU in the header")
        tmux.keys("viewer", "u")
        wait_until(lambda: shows("viewer", r"; sort: uptime$"), what="the sort by uptime in the header")

        # A larger window: the key line moves to its last row.
        tmux.resize("viewer", 100, 30)

        def redrawn_larger():
            screen = tmux.screen("viewer")
            return len(screen) == 30 and screen[29].startswith("q quit")
        wait_until(redrawn_larger, what="the screen redrawn at 100x30")

        # A second one, to end with Ctrl-C, started first: the tmux server exits with its
        # last session.
        interrupted_exit_file = self.run_in_tmux(tmux, "interrupted", "--sort", "memory")
        wait_until(lambda: shows("interrupted", r"; sort: memory$", r"^web "), what="the second screen")

        tmux.keys("viewer", "q")
        self.assertEqual(self.exit_status(exit_file, "top to exit on q"), "EXIT=0")
        tmux.keys("interrupted", "C-c")
        self.assertEqual(self.exit_status(interrupted_exit_file, "top to exit on Ctrl-C"), "EXIT=0")

    def test_piped_plain_frames(self):
        r = subprocess.run(self.top_args + ["-n", "2", "-d", "0.2"], stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=30)
        self.assertEqual((r.returncode, r.stderr), (0, ""), r.stdout)
        self.assertEqual(FRAME.findall(r.stdout), ["name", "name"], r.stdout)
        self.assertEqual(len(re.findall(r"^NAME +PID +STATE +CPU% +MEM +PROCS +RESTARTS +UPTIME$", r.stdout, re.M)), 2)
        # Each frame: both workers, web's two instances and api's one.
        for pattern, count in ((r"^api +running +\S+ +\S+ +\S+ +0 +\S+$", 2),
                               (r"^web +running +\S+ +\S+ +\S+ +0 +\S+$", 2),
                               (r"^  \[0\] +\d+ +running ", 4), (r"^  \[1\] +\d+ +running ", 2)):
            self.assertEqual(len(re.findall(pattern, r.stdout, re.M)), count, pattern)

        # --json: fdsupd's status reply, a line a frame; only the NAMEs asked for.
        r = subprocess.run(self.top_args + ["--json", "-n", "1", "web"], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.count("\n"), 1)
        self.assertEqual([w["name"] for w in json.loads(r.stdout)["workers"]], ["web"])

    def test_piped_frames_ride_out_a_restart_of_fdsupd(self):
        proc = subprocess.Popen(self.top_args + ["-d", "0.2", "--sort", "restarts"], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = [], []
        readers = [threading.Thread(target=lambda s=stream, l=lines: l.extend(iter(s.readline, "")))
                   for stream, lines in ((proc.stdout, out), (proc.stderr, err))]
        for reader in readers:
            reader.start()

        def finish():
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for reader in readers:
                reader.join()
            proc.stdout.close()
            proc.stderr.close()
        self.addCleanup(finish)

        def frames():
            return FRAME.findall("".join(out))
        wait_until(lambda: frames(), what="a first frame")
        self.assertEqual(set(frames()), {"restarts"})
        self.assertEqual(self.d.stop(), 0)
        wait_until(lambda: any(f"cannot reach fdsupd at {self.d.control_socket}" in line and
                               line.rstrip().endswith("asking again every 0.2s") for line in err),
                   what="top saying fdsupd cannot be reached")
        self.assertIsNone(proc.poll())
        # Another fdsupd on the same control socket: its frames.
        again = self.fdsupd(f'[supervisor]\ncontrol_socket = "{self.d.control_socket}"\n' + CONFIG)
        again.start(wait_for_workers=["web[0]", "web[1]", "api[0]"])
        wait_until(lambda: any(FRAME.match(line) and f", pid {again.pid}, " in line for line in out),
                   what="frames from the new fdsupd")
        proc.send_signal(signal.SIGINT)  # its normal end
        self.assertEqual(proc.wait(timeout=30), 0)

    def test_an_unknown_worker_and_no_fdsupd_are_clear_errors(self):
        r = subprocess.run(self.top_args + ["nope", "-n", "1"], stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=30)
        self.assertEqual((r.returncode, r.stdout), (1, ""))
        self.assertEqual(r.stderr, 'fdsupctl: unknown worker "nope"\n')

        missing = os.path.join(self.d.tmp, "nothing.sock")
        r = subprocess.run([FDSUPCTL, "-s", missing, "top"], stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=30)
        self.assertEqual((r.returncode, r.stdout), (3, ""))
        self.assertEqual(r.stderr, f"fdsupctl: cannot reach fdsupd at {missing}: No such file or directory\n")

        r = subprocess.run(self.top_args + ["-d", "0"], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, 2)
        self.assertIn("the interval must be a number of seconds from 0.1 to 86400", r.stderr)


if __name__ == "__main__":
    unittest.main()
