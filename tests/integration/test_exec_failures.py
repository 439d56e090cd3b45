"""A worker that cannot be exec'd: a clear message naming the cause and the stage, a
retry with backoff per attempt, "failed" after start_limit_burst such failures in a row
(however slowly they come), and the supervisor (and its other workers) unaffected, with
no zombie left behind. A bare command name is searched in PATH as the worker's user."""
import os
import pwd
import re
import unittest

from fdsup_harness import FdsupTestCase, children_of, helper, http_get, process_state, wait_until

CONFIG = """
[sockets.http]
listen = "tcp://127.0.0.1:0"

[workers.web]
command = ["@HELPERS@/http_worker"]
sockets = ["http"]

[workers.missing]
command = ["/nonexistent/bin/app", "--flag"]
backoff = "10ms"
backoff_max = "40ms"
start_limit_burst = 5
start_limit_interval = "1h"

[workers.noexec]
command = ["@TMP@/not-executable"]
backoff = "10ms"
start_limit_burst = 2

[workers.baduser]
command = ["/bin/true"]
user = "no-such-user-fdsup"
backoff = "10ms"
start_limit_burst = 2

[workers.baddir]
command = ["/bin/true"]
working_dir = "/nonexistent/dir"
backoff = "10ms"
start_limit_burst = 2

[workers.notinpath]
command = ["fdsup-no-such-program"]
restart = "never"
"""


class ExecFailures(FdsupTestCase):
    def test_exec_failures(self):
        d = self.fdsupd(CONFIG)
        with open(os.path.join(d.tmp, "not-executable"), "w") as f:
            f.write("#!/bin/sh\n")
        os.chmod(os.path.join(d.tmp, "not-executable"), 0o644)
        d.start()

        d.wait_log(r"worker missing\[0\]: could not be started 5 times in a row: exec /nonexistent/bin/app: "
                   r"No such file or directory \(stage: execve\); state failed until `fdsupctl start missing`")
        log = d.log()
        attempts = re.findall(r"worker missing\[0\]: exec /nonexistent/bin/app: No such file or directory "
                              r"\(stage: execve\); restart #(\d) in (\d+)ms", log)
        # Exactly burst attempts, each reported once, with doubling delays up to
        # backoff_max; the last one fails the worker instead of scheduling another.
        self.assertEqual(attempts, [("1", "10"), ("2", "20"), ("3", "40"), ("4", "40")])
        self.assertEqual(len(re.findall(r"missing\[0\]: (could not be started 5 times in a row: )?"
                                        r"exec /nonexistent/bin/app", log)), 5)

        d.wait_log(rf"worker noexec\[0\]: could not be started 2 times in a row: exec {re.escape(d.tmp)}/"
                   r"not-executable: Permission denied \(stage: execve\)")
        # Named once, by the instance: not "worker baduser[0]: ... worker baduser: unknown user".
        d.wait_log(r'worker baduser\[0\]: could not be started 2 times in a row: unknown user '
                   r'"no-such-user-fdsup"')
        d.wait_log(r"worker baddir\[0\]: could not be started 2 times in a row: exec /bin/true: No such file or "
                   r"directory \(stage: chdir\)")
        d.wait_log(r"worker notinpath\[0\]: exec fdsup-no-such-program: No such file or directory "
                   r"\(stage: execve; searched PATH=\S+\); not retried \(restart = never\)")
        self.assertNotIn("start limit hit", d.log())

        # The supervisor is fine: the healthy worker serves, and the only child is that worker.
        host, port = d.address("http")
        web_pid = d.current_pid("web[0]")
        self.assertRegex(http_get(host, port), rf"web\[0\] pid {web_pid}")
        self.assertEqual(children_of(d.pid), [web_pid])
        self.assertEqual(d.stop(), 0)

    @unittest.skipUnless(os.geteuid() == 0, "a privilege drop needs root")
    def test_a_privilege_drop_that_did_not_happen_is_caught(self):
        # setresuid, or setgroups, answers "done" and changes nothing (a seccomp filter
        # that returns 0): the child reads its ids back and refuses to exec with root's.
        for rule in ("setresuid=0", "setgroups=0"):
            with self.subTest(rule=rule):
                d = self.fdsupd("""
[workers.dropped]
command = ["/bin/sh", "-c", "touch @TMP@/ran"]
user = "nobody"
backoff = "10ms"
start_limit_burst = 2
""", wrapper=[helper("seccomp_wrap"), rule, "--"])
                d.start()
                d.wait_log(r"worker dropped\[0\]: could not be started 2 times in a row")
                self.assertIn("exec /bin/sh: Operation not permitted (stage: verify ids); restart #1", d.log())
                self.assertFalse(os.path.exists(os.path.join(d.tmp, "ran")))
                self.assertEqual(d.stop(), 0)

    def test_never_execd_fails_however_slowly_its_retries_come(self):
        # Starts 30 ms apart never make 3 within 10 ms: the start limit alone would let
        # it retry for ever. Failures that cannot mend count in a row instead.
        d = self.fdsupd("""
[workers.later]
command = ["@TMP@/bin/later"]
backoff = "30ms"
backoff_max = "30ms"
start_limit_burst = 3
start_limit_interval = "10ms"
""").start()
        program = f"{d.tmp}/bin/later"
        outcome = d.wait_log(r"worker later\[0\]: (could not be started.*|.*restart #4 .*)")[0].group(1)
        self.assertEqual(outcome, f"could not be started 3 times in a row: exec {program}: No such file or "
                                  "directory (stage: execve); state failed until `fdsupctl start later`")
        d.wait_control()
        now = d.ctl_json("status", "later")["workers"][0]["instances"][0]
        self.assertEqual((now["state"], now["pid"]), ("failed", None))
        self.assertEqual(now["last_error"], f"could not be started 3 times in a row: exec {program}: "
                                            "No such file or directory (stage: execve)")
        attempts = r"later\[0\]: (could not be started 3 times in a row: )?exec "
        self.assertEqual(len(re.findall(attempts, d.log())), 3)  # and no timer left to try again

        # Once it can be run, the operator's start clears the count and runs it.
        os.makedirs(os.path.dirname(program))
        with open(program, "w") as f:
            f.write("#!/bin/sh\necho later is up\nexec sleep 1000\n")
        os.chmod(program, 0o755)
        out = d.ctl_ok("start", "later")
        self.assertRegex(out, r"later\[0\]: started pid \d+")
        d.wait_log(r"later\[0\]: later is up")
        wait_until(lambda: d.ctl_json("status", "later")["workers"][0]["instances"][0]["state"] == "running",
                   what="later[0] running")
        self.assertEqual(len(re.findall(attempts, d.log())), 3)
        self.assertEqual(d.stop(), 0)

    @unittest.skipUnless(os.geteuid() == 0, "running a worker as nobody needs root")
    def test_a_bare_command_name_is_searched_as_the_workers_user(self):
        # fdsupd's PATH (inherited by its workers) begins with a directory only root may
        # enter, as root's own ~/bin would: the worker, as nobody, runs the next one.
        d = self.fdsupd("""
[workers.tool]
command = ["fdsup-tool", "@TMP@/out/tool"]
user = "nobody"

[workers.hidden]
command = ["fdsup-rootonly-tool"]
user = "nobody"
backoff = "10ms"
start_limit_burst = 2

[workers.garbage]
command = ["fdsup-garbage", "@TMP@/out/garbage"]
user = "nobody"
restart = "never"
""")
        os.chmod(d.tmp, 0o755)
        dirs = {name: os.path.join(d.tmp, name) for name in ("rootonly", "public", "later", "out")}
        for name, path in dirs.items():
            os.mkdir(path)
            os.chmod(path, {"rootonly": 0o700, "out": 0o777}.get(name, 0o755))

        def program(directory, name, text):
            path = os.path.join(dirs[directory], name)
            with open(path, "w") as f:
                f.write(text)
            os.chmod(path, 0o755)
        writes = '#!/bin/sh\necho "{} $(id -u)" > "$1"\nexec sleep 1000\n'
        program("rootonly", "fdsup-tool", writes.format("rootonly"))
        program("public", "fdsup-tool", writes.format("public"))
        program("rootonly", "fdsup-rootonly-tool", writes.format("rootonly"))
        # Not a program (ENOEXEC): execvp's search stops there, it does not go on to the next.
        program("public", "fdsup-garbage", "garbage, not a program\n")
        program("later", "fdsup-garbage", writes.format("later"))
        path = ":".join([dirs["rootonly"], dirs["public"], dirs["later"], os.environ.get("PATH", "/usr/bin:/bin")])
        d.env["PATH"] = path
        d.start()

        started = d.wait_log(r"worker tool\[0\]: (started pid \d+|.*exec .*)")[0].group(1)
        self.assertRegex(started, r"started pid \d+")

        def report():
            try:
                with open(os.path.join(dirs["out"], "tool")) as f:
                    return f.read().strip()
            except FileNotFoundError:
                return None
        self.assertEqual(wait_until(report, what="tool's report"), f"public {pwd.getpwnam('nobody').pw_uid}")

        # Found only where nobody may not look: EACCES, naming the candidate and the PATH.
        d.wait_log(re.escape(f"worker hidden[0]: exec fdsup-rootonly-tool: Permission denied (stage: execve; "
                             f"{dirs['rootonly']}/fdsup-rootonly-tool; searched PATH={path});"))
        d.wait_log(re.escape(f"worker garbage[0]: exec fdsup-garbage: Exec format error (stage: execve; "
                             f"{dirs['public']}/fdsup-garbage; searched PATH={path}); not retried"))
        self.assertFalse(os.path.exists(os.path.join(dirs["out"], "garbage")))
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    unittest.main()
