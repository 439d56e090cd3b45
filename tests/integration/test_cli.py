"""fdsupd's command line: --version, --check-config (every error as FILE:LINE:COL),
usage errors, and start-up failures that name their cause."""
import os
import re
import socket
import subprocess
import tempfile
import unittest

from fdsup_harness import FDSUPD, SOURCE_DIR, Fdsupd, FdsupTestCase, wait_until

BAD_CONFIG = """\
[supervisor]
log_level = "loud"

[sockets.http]
listen = "tcp://127.0.0.1:0"
nodelay = "yes"

[workers.web]
command = ["/bin/true"]
fds = { 3 = "htp" }
backoff = "10x"
"""


def run(*args, env=None):
    return subprocess.run([FDSUPD, *args], capture_output=True, text=True, timeout=30, env=env)


class Cli(FdsupTestCase):
    def test_version(self):
        r = run("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^fdsupd \d+\.\d+\.\d+ \(state format \d+\)\n$")

    def test_usage_error(self):
        r = run("--bogus")
        self.assertEqual(r.returncode, 2)
        self.assertIn("unknown argument: --bogus", r.stderr)

    def test_check_config_valid_and_via_env(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "ok.toml")
            with open(path, "w") as f:
                f.write('[workers.a]\ncommand = ["/bin/true"]\n')
            self.assertEqual(run("--check-config", "-c", path).returncode, 0)
            env = dict(os.environ, FDSUP_CONFIG=path)
            self.assertEqual(run("--check-config", env=env).returncode, 0)

    def test_check_config_warns_about_what_would_fail_every_start(self):
        # Valid (exit 0: the file may be checked on another machine), with one warning per
        # problem: the user, the program and the working directory this machine lacks, and a
        # socket on stdout while stdout is "log".
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "warn.toml")
            with open(path, "w") as f:
                f.write(f"""[sockets.http]
listen = "tcp://127.0.0.1:0"
[workers.a]
command = ["/nonexistent/fdsup-app"]
user = "no-such-user-fdsup"
working_dir = "{tmp}/no-such-dir"
[workers.b]
command = ["{tmp}/warn.toml"]
fds = {{ 1 = "http" }}
""")
            r = run("--check-config", "-c", path)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("configuration is valid", r.stdout)
            warnings = r.stderr.strip().splitlines()
            self.assertEqual(warnings, [
                f'{path}:9:7: warning: workers.b.fds: fd 1 is socket "http", so stdout = "log" captures nothing '
                '(the worker\'s stdout is the socket); set stdout = "null" to say so',
                f'{path}: warning: worker a: unknown user "no-such-user-fdsup" (every start would fail)',
                f"{path}: warning: worker a: /nonexistent/fdsup-app: No such file or directory (every start would fail)",
                f"{path}: warning: worker a: working_dir {tmp}/no-such-dir: No such file or directory "
                "(every start would fail)",
                f"{path}: warning: worker b: {tmp}/warn.toml: not an executable file (every start would fail)",
            ])

    def test_shipped_configs_are_valid(self):
        # The demo and every example stay in step with the config schema.
        examples = os.path.join(SOURCE_DIR, "conf", "examples")
        paths = [os.path.join(SOURCE_DIR, "conf", "fdsup.toml")] + \
            [os.path.join(examples, name) for name in sorted(os.listdir(examples)) if name.endswith(".toml")]
        self.assertGreater(len(paths), 1)
        for path in paths:
            r = run("--check-config", "-c", path)
            self.assertEqual(r.returncode, 0, f"{path}:\n{r.stderr}")

    def test_check_config_reports_every_error_with_position(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "bad.toml")
            with open(path, "w") as f:
                f.write(BAD_CONFIG)
            r = run("--check-config", "-c", path)
            self.assertEqual(r.returncode, 1)
            lines = r.stderr.strip().splitlines()
            self.assertEqual(len(lines), 4, r.stderr)
            positions = [re.match(rf"^{re.escape(path)}:(\d+):(\d+): ", l) for l in lines]
            self.assertTrue(all(positions), r.stderr)
            self.assertEqual(sorted((int(m.group(1)), int(m.group(2))) for m in positions),
                             [(2, 13), (6, 11), (10, 13), (11, 11)])
            self.assertIn('"htp"', r.stderr)
            self.assertIn('"10x"', r.stderr)

    def test_missing_config_file(self):
        r = run("--check-config", "-c", "/nonexistent/fdsup.toml")
        self.assertEqual(r.returncode, 1)
        self.assertIn("/nonexistent/fdsup.toml: cannot read: No such file or directory", r.stderr)

    def test_a_second_fdsupd_never_takes_over_a_live_runtime_dir(self):
        # Another control socket, but the same runtime_dir: the notify and fd sockets
        # there are served by the first fdsupd, so the second refuses to start.
        first = self.fdsupd('[supervisor]\nruntime_dir = "@TMP@/run"\n').start()
        first.wait_control()
        second = self.fdsupd(f'[supervisor]\ncontrol_socket = "@TMP@/other.sock"\nruntime_dir = "{first.tmp}/run"\n')
        second.start()
        self.assertEqual(second.wait_exit(), 1)
        self.assertRegex(second.log(), r"notify socket .*/run/notify.sock: another process \(another fdsupd\?\) is "
                                       r"serving there")
        self.assertEqual(first.ctl("version")[0], 0)  # the first one is untouched

    def test_invalid_config_does_not_start(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "bad.toml")
            with open(path, "w") as f:
                f.write(BAD_CONFIG)
            r = run("-c", path)
            self.assertEqual(r.returncode, 1)
            self.assertEqual(len(r.stderr.strip().splitlines()), 4)

    def test_bind_failure_names_socket_address_and_errno(self):
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = busy.getsockname()[1]
            d = self.fdsupd(f"""
[sockets.http]
listen = "tcp://127.0.0.1:{port}"
[workers.web]
command = ["/bin/sleep", "1000"]
sockets = ["http"]
""").start()
            self.assertEqual(d.proc.wait(timeout=30), 1)
            self.assertIn(f"socket http: bind tcp://127.0.0.1:{port}: Address already in use", d.log())
            self.assertNotIn("started pid", d.log())


if __name__ == "__main__":
    unittest.main()
