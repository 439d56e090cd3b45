"""Fault injection (issue 9): fdsupd out of fds at run time, and a worker that closes
its output. Each fault is logged and retried with backoff; once it passes everything
runs again, and nothing is lost or leaked."""
import os
import resource
import signal
import unittest

from fdsup_harness import FdsupTestCase, fd_links, open_fd_count, wait_for_connections_closed, wait_until

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


if __name__ == "__main__":
    unittest.main()
