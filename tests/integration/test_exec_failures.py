"""A worker that cannot be exec'd: a clear message naming the cause and the stage, a
retry with backoff per attempt, "failed" once the start limit is hit, and the supervisor
(and its other workers) unaffected, with no zombie left behind."""
import os
import re
import unittest

from fdsup_harness import FdsupTestCase, children_of, helper, http_get, process_state

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
start_limit_burst = 4
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

        d.wait_log(r"worker missing\[0\]: start limit hit \(4 starts within 3600\.0s\); state failed")
        log = d.log()
        attempts = re.findall(r"worker missing\[0\]: exec /nonexistent/bin/app: No such file or directory "
                              r"\(stage: execve\); restart #(\d) in (\d+)ms", log)
        # Exactly burst attempts, each reported once, with doubling delays up to backoff_max.
        self.assertEqual(attempts, [("1", "10"), ("2", "20"), ("3", "40"), ("4", "40")])

        d.wait_log(r"worker noexec\[0\]: start limit hit")
        self.assertIn(f"exec {d.tmp}/not-executable: Permission denied (stage: execve)", d.log())
        d.wait_log(r"worker baduser\[0\]: start limit hit")
        self.assertIn('worker baduser: unknown user "no-such-user-fdsup"', d.log())
        d.wait_log(r"worker baddir\[0\]: start limit hit")
        self.assertIn("exec /bin/true: No such file or directory (stage: chdir)", d.log())
        d.wait_log(r"worker notinpath\[0\]: exec fdsup-no-such-program: No such file or directory "
                   r"\(stage: execve\); not retried \(restart = never\)")

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
                d.wait_log(r"worker dropped\[0\]: start limit hit")
                self.assertIn("exec /bin/sh: Operation not permitted (stage: verify ids); restart #1", d.log())
                self.assertFalse(os.path.exists(os.path.join(d.tmp, "ran")))
                self.assertEqual(d.stop(), 0)

if __name__ == "__main__":
    unittest.main()
