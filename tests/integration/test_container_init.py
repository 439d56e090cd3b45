#!/usr/bin/env python3
"""fdsupd as a container's init: PID 1 of a new PID namespace (unshare --pid --fork
--mount-proc, as a container runtime starts its entrypoint), or a subreaper elsewhere
(--subreaper). A worker's double-forked child, orphaned when its parent exits, is
reparented to fdsupd, which reaps it (no zombie is left); SIGTERM shuts everything down
and fdsupd exits 0."""
import os
import re
import shutil
import signal
import subprocess
import unittest

from fdsup_harness import FDSUPD, FdsupTestCase, children_of, process_state, wait_until

# The worker starts a grandchild that outlives its parent by a moment (the double fork
# of a daemon), then keeps running itself.
ORPHANING = """
[workers.daemonizer]
command = ["/bin/sh", "-c", "(sleep 0.3 &); echo forked; exec sleep 1000"]
"""


def zombies_under(pid):
    return [child for child in children_of(pid) if process_state(child) == "Z"]


class ContainerInit(FdsupTestCase):
    def run_fdsupd(self, d, argv):
        log = open(d.log_path, "wb")
        self.addCleanup(log.close)
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        d.proc = proc  # for wait_log (the harness's cleanup kills it too)

        def stop():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.addCleanup(stop)
        return proc

    @unittest.skipIf(shutil.which("unshare") is None or os.geteuid() != 0, "needs unshare (util-linux) and root")
    def test_as_pid_1_it_reaps_orphans_and_stops_on_sigterm(self):
        d = self.fdsupd(ORPHANING)
        proc = self.run_fdsupd(d, ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc", FDSUPD, "-c", d.config_path])
        d.wait_log(r"reaping orphans \(PID 1\)")
        wait_until(lambda: children_of(proc.pid), what="fdsupd started under unshare")
        fdsupd = children_of(proc.pid)[0]  # unshare forks it: PID 1 inside, this pid outside
        self.assertEqual(d.ctl_json("status")["supervisor"]["pid"], 1)
        d.wait_log(r"daemonizer\[0\]: forked")
        # The orphan (pid N inside) exits 0.3 s later, a child of fdsupd by then.
        d.wait_log(r"reaped orphan pid \d+ \(exited with code 0\)")
        self.assertEqual(zombies_under(fdsupd), [])
        self.assertIsNotNone(d.instance_pids("daemonizer")[0])  # the worker itself runs on

        os.kill(fdsupd, signal.SIGTERM)
        self.assertEqual(proc.wait(timeout=60), 0, d.log())  # unshare exits with fdsupd's status
        self.assertRegex(d.log(), r"received SIGTERM: graceful shutdown")
        self.assertRegex(d.log(), r"fdsupd exiting with status 0")

    def test_a_subreaper_reaps_orphans_too(self):
        d = self.fdsupd(ORPHANING)
        proc = self.run_fdsupd(d, [FDSUPD, "-c", d.config_path, "--subreaper"])
        d.wait_log(r"reaping orphans \(subreaper\)")
        d.wait_log(r"reaped orphan pid (\d+) \(exited with code 0\)")
        self.assertEqual(zombies_under(proc.pid), [])
        # The worker, reaped through its pidfd as always, is never taken for an orphan.
        worker = d.instance_pids("daemonizer")[0]
        os.kill(worker, signal.SIGKILL)
        d.wait_log(rf"worker daemonizer\[0\]: pid {worker} killed by signal KILL")
        self.assertNotRegex(d.log(), rf"reaped orphan pid {worker}\b")
        # And it is still a subreaper after an upgrade (the next image is given --subreaper):
        # an orphan made after it is reaped by the new image.
        d.wait_log(r"worker daemonizer\[0\]: started pid \d+", count=2)
        d.wait_log(r"reaped orphan pid \d+ \(exited with code 0\)", count=2)  # the restarted worker's orphan
        self.assertEqual(d.ctl("upgrade")[0], 0, d.log())
        d.wait_log(r"reaping orphans \(subreaper\)", count=2)
        d.ctl_ok("restart", "daemonizer")
        d.wait_log(r"reaped orphan pid \d+ \(exited with code 0\)", count=3)
        log = d.log()
        self.assertGreater([m.start() for m in re.finditer(r"reaped orphan pid", log)][2], log.index("upgrade done"))
        self.assertEqual(zombies_under(proc.pid), [])
        os.kill(proc.pid, signal.SIGTERM)
        self.assertEqual(proc.wait(timeout=60), 0)


if __name__ == "__main__":
    unittest.main()
