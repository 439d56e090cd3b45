"""The launcher's child shares fdsupd's fd table (CLONE_FILES) and first unshares it
keeping only the fds below its highest fd-map source (close_range with
CLOSE_RANGE_UNSHARE). Where close_range is refused (a seccomp filter: EPERM, or ENOSYS
as on kernels before 5.9) fdsupd falls back to copying the whole table at clone, and a
worker still gets exactly its fds; any other failure of the unshare kills only that
child, with a spawn error naming the stage."""
import os
import signal
import stat
import unittest

from fdsup_harness import FdsupTestCase, children_of, helper, wait_until

CONFIG = """
[sockets.http]
listen = "tcp://127.0.0.1:0"

[workers.sleeper]
command = ["/bin/sleep", "1000"]
sockets = ["http"]
stdout = "log"
backoff = "10ms"
"""


def fds_of(pid):
    """{fd: what it points to} of a process."""
    fds = {}
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            fds[int(name)] = os.readlink(f"/proc/{pid}/fd/{name}")
        except FileNotFoundError:
            pass
    return fds


class LauncherFdTableTest(FdsupTestCase):
    def assert_exactly_its_fds(self, pid):
        # sleep's start-up may hold a locale file for a moment; a leaked fd would stay.
        fds = wait_until(lambda: (lambda f: f if len(f) <= 4 else None)(fds_of(pid)),
                         what=f"pid {pid} down to its 4 fds")
        self.assertEqual(sorted(fds), [0, 1, 2, 3])
        self.assertEqual(fds[0], "/dev/null")
        self.assertRegex(fds[1], r"^pipe:")  # stdout captured
        self.assertRegex(fds[3], r"^socket:")
        self.assertTrue(stat.S_ISSOCK(os.stat(f"/proc/{pid}/fd/3").st_mode))

    def assert_spawn_and_respawn_get_exactly_their_fds(self, d):
        pid = d.current_pid("sleeper[0]")
        self.assert_exactly_its_fds(pid)
        os.kill(pid, signal.SIGKILL)
        self.assert_exactly_its_fds(d.current_pid("sleeper[0]", after=pid))

    def test_a_worker_gets_exactly_its_fds(self):
        d = self.fdsupd(CONFIG)
        d.start(wait_for_workers=["sleeper[0]"])
        self.assert_spawn_and_respawn_get_exactly_their_fds(d)
        self.assertNotIn("CLOSE_RANGE_UNSHARE", d.log())
        self.assertEqual(d.stop(), 0)

    def test_close_range_refused_falls_back_to_copying_the_table(self):
        for rule, reason in (("close_range=1", "Operation not permitted"), ("close_range=38", "Function not implemented")):
            with self.subTest(rule=rule):
                d = self.fdsupd(CONFIG, wrapper=[helper("seccomp_wrap"), rule, "--"])
                d.start(wait_for_workers=["sleeper[0]"])
                d.wait_log(rf"close_range\(CLOSE_RANGE_UNSHARE\): {reason}; each spawn copies and closes the whole "
                           r"fd table instead")
                self.assert_spawn_and_respawn_get_exactly_their_fds(d)
                self.assertNotIn("stage: unshare fd table", d.log())
                self.assertEqual(d.stop(), 0)

    def test_the_unshare_failing_otherwise_kills_only_the_child(self):
        # EMFILE is no sign of an old kernel: no fallback, the spawn fails and says where.
        d = self.fdsupd(CONFIG, wrapper=[helper("seccomp_wrap"), "close_range=24", "--"])
        d.start()
        d.wait_log(r"exec /bin/sleep: Too many open files \(stage: unshare fd table\)", count=2)
        self.assertNotIn("worker sleeper[0]: started pid", d.log())
        self.assertIsNone(d.proc.poll())
        d.wait_control()
        wait_until(lambda: children_of(d.pid) == [], what="no child of fdsupd left (reaped)")
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    unittest.main()
