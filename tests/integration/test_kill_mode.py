"""kill_mode = "cgroup" (issue 9): every instance is spawned straight into a cgroup of
its own, a stop reaches every process in it, and the instance is gone only once the
cgroup is empty. So a child that daemonizes (double fork + setsid) or moves to a
process group of its own dies with its worker, also when the worker exits first; in
"group" mode the same child gets away. Without a usable cgroup tree the mode falls back
to "group" with the reason logged; where seccomp hides clone3 (as container runtimes'
default profiles do) the child joins its cgroup itself.

Needs a writable cgroup v2 hierarchy (skipped without one)."""
import os
import re
import unittest

from fdsup_harness import FdsupTestCase, helper, kill_if_still, pid_alive, wait_until


def own_cgroup_dir():
    """This process's cgroup v2 directory (as fdsupd finds its own), or None."""
    with open("/proc/self/cgroup") as f:
        path = next((line[3:].strip() for line in f if line.startswith("0::")), None)
    if path is None:
        return None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            dash = fields.index("-")
            if fields[dash + 1] == "cgroup2" and fields[3] == "/":
                return fields[4] + (path if path != "/" else "")
    return None


def cgroup_of(pid):
    with open(f"/proc/{pid}/cgroup") as f:
        return next(line[3:].strip() for line in f if line.startswith("0::"))


def usable_cgroup_tree():
    base = own_cgroup_dir()
    if base is None:
        return None
    probe = os.path.join(base, f"fdsup-test-probe-{os.getpid()}")
    try:
        os.mkdir(probe)
        ok = os.path.exists(os.path.join(probe, "cgroup.kill"))
        os.rmdir(probe)
        return base if ok else None
    except OSError:
        return None


CGROUP_BASE = usable_cgroup_tree()

WORKER = """
[workers.d]
command = ["@PYTHON@", "@SCRIPTS@/daemonizer.py", "@TMP@/runaways" {args}]
kill_mode = "{mode}"
stop_timeout = "60s"
backoff = "50ms"
backoff_max = "1s"
start_limit_burst = 1000
"""


def remove_when_empty(cgroup_dir):
    """rmdir, once the processes killed in it are gone (they leave asynchronously)."""
    def empty():
        with open(os.path.join(cgroup_dir, "cgroup.procs")) as f:
            return f.read() == ""
    wait_until(empty, what=f"{cgroup_dir} empty")
    os.rmdir(cgroup_dir)


def worker_config(mode, *args):
    return WORKER.format(mode=mode, args="".join(f', "{a}"' for a in args))


@unittest.skipIf(CGROUP_BASE is None, "no writable cgroup v2 hierarchy with cgroup.kill")
class KillMode(FdsupTestCase):
    def fdsupd(self, config_text, **kwargs):
        d = super().fdsupd(config_text, **kwargs)
        # Runaways outlive a test that failed; so do the cgroups of an fdsupd killed by
        # the harness's clean-up (registered after it, so run before it: fdsupd first).
        self.addCleanup(self.remove_cgroups, d)
        self.addCleanup(self.kill_runaways, d)
        return d

    def runaways(self, d):
        try:
            with open(os.path.join(d.tmp, "runaways")) as f:
                return [int(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def kill_runaways(self, d):
        # A runaway that is gone may have left its pid to another test's process: only
        # one whose command line still names this test's pidfile is killed.
        for pid in self.runaways(d):
            kill_if_still(pid, os.path.join(d.tmp, "runaways"))

    def remove_cgroups(self, d):
        if d.proc is None:
            return
        d.cleanup()  # fdsupd is dead before its cgroups are looked at
        top = os.path.join(CGROUP_BASE, f"fdsupd-{d.pid}")
        if os.path.isdir(top):
            for entry in os.scandir(top):
                if entry.is_dir():
                    remove_when_empty(entry.path)
            os.rmdir(top)

    def start_worker(self, d):
        d.start()
        d.wait_log(r"d\[0\]: worker \d+ up")
        main = d.current_pid("d[0]")
        runaway = self.runaways(d)[-1]
        return main, runaway

    def assert_in_instance_cgroup(self, d, *pids):
        # fdsupd-PID/d@0.ID below fdsupd's own cgroup: the runaway is still in it, and so
        # below the supervisor's own.
        for pid in pids:
            self.assertRegex(cgroup_of(pid), rf"/fdsupd-{d.pid}/d@0\.\d+$")

    def test_a_daemonized_child_is_stopped_with_its_worker(self):
        d = self.fdsupd(worker_config("cgroup"))
        main, daemon = self.start_worker(d)
        d.wait_log(r'instances with kill_mode = "cgroup" run in cgroups below .*/fdsupd-\d+')
        # Spawned by clone3 straight into it, not by the fallback (tested below).
        self.assertNotIn("joins its cgroup from the launcher's child", d.log())
        # The daemon left the worker's session and process group...
        self.assertNotEqual(os.getsid(daemon), os.getsid(main))
        self.assertNotEqual(os.getpgid(daemon), os.getpgid(main))
        # ...but not its cgroup, which it was never outside of (CLONE_INTO_CGROUP).
        self.assert_in_instance_cgroup(d, main, daemon)
        cgroup_dir = CGROUP_BASE + cgroup_of(main)
        status = d.ctl_json("status", "d")["workers"][0]["instances"][0]
        self.assertEqual(status["cgroup"], os.path.basename(cgroup_dir))

        # Carried across an in-place upgrade (same PID, the cgroup adopted).
        d.ctl_ok("upgrade")
        self.assertEqual(d.current_pid("d[0]"), main)

        # The stop signal goes to every process in the cgroup; the daemon ignores it, the
        # worker exits, and then the rest is killed. Nothing of it survives.
        d.ctl_ok("stop", "d")
        d.wait_log(r"worker d\[0\]: pid \d+ killed by signal TERM; killing what it left in its cgroup")
        self.assertFalse(pid_alive(daemon))
        self.assertFalse(pid_alive(main))
        self.assertFalse(os.path.exists(cgroup_dir))
        # Only once the cgroup was empty did the instance count as stopped.
        self.assertEqual(d.ctl_json("status", "d")["workers"][0]["instances"][0]["state"], "stopped")
        # Started again, in a cgroup of its own again.
        d.ctl_ok("start", "d")
        d.wait_log(r"d\[0\]: worker \d+ up", count=2)
        self.assert_in_instance_cgroup(d, d.current_pid("d[0]"), self.runaways(d)[-1])
        self.assertEqual(d.stop(), 0)
        self.assertFalse(any(pid_alive(pid) for pid in self.runaways(d)))
        # fdsupd removed its own directory on the way out.
        wait_until(lambda: not os.path.exists(os.path.join(CGROUP_BASE, f"fdsupd-{d.pid}")),
                   what="fdsupd's cgroup directory removed")

    def test_the_cgroups_a_killed_fdsupd_left_are_removed_at_the_next_start_and_only_then(self):
        # A live fdsupd's tree, which no other start may touch.
        live = self.fdsupd(worker_config("cgroup"))
        live_main, live_daemon = self.start_worker(live)
        # A SIGKILLed fdsupd cannot remove its fdsupd-PID tree, and its worker's daemon
        # lives on in its instance cgroup (PDEATHSIG reaches the worker, not the daemon).
        dead = self.fdsupd(worker_config("cgroup"))
        _, daemon = self.start_worker(dead)
        self.assertNotIn("cgroups: removed", dead.log())  # the live one's tree stays
        dead.proc.kill()
        dead.proc.wait()
        left = os.path.join(CGROUP_BASE, f"fdsupd-{dead.pid}")
        self.assertTrue(os.path.isdir(left))
        self.assertTrue(pid_alive(daemon))
        # The next fdsupd that runs a cgroup worker clears what the dead one left: the
        # daemon killed, the tree gone, and said so; the live one's tree is untouched.
        d = self.fdsupd(worker_config("cgroup"))
        self.start_worker(d)
        d.wait_log(rf"cgroups: removed {re.escape(left)} \(pid {dead.pid} is gone\): 1 cgroup, "
                   r"1 with processes killed")
        wait_until(lambda: not pid_alive(daemon), what="the dead fdsupd's daemon killed")
        self.assertFalse(os.path.exists(left))
        self.assertNotIn(f"fdsupd-{live.pid}", d.log())
        self.assert_in_instance_cgroup(live, live_main, live_daemon)
        self.assertTrue(pid_alive(live_daemon))
        self.assertEqual(d.stop(), 0)
        self.assertEqual(live.stop(), 0)

    def test_in_group_mode_the_same_daemon_gets_away(self):
        # What the cgroup mode is for: the test above would fail without it.
        d = self.fdsupd(worker_config("group"))
        main, daemon = self.start_worker(d)
        d.ctl_ok("stop", "d")
        self.assertFalse(pid_alive(main))
        self.assertTrue(pid_alive(daemon))
        self.assertEqual(d.stop(), 0)

    def test_a_worker_that_double_forks_and_exits_is_restarted_and_its_daemon_killed(self):
        d = self.fdsupd(worker_config("cgroup", "--exit"))
        d.start()
        # Each run leaves a daemon and exits 0: logged, the daemon killed, the worker
        # restarted with backoff, every time.
        d.wait_log(r"worker d\[0\]: pid \d+ exited with code 0; killing what it left in its cgroup", count=3)
        d.wait_log(r"worker d\[0\]: pid \d+ exited with code 0 after [^;]+; restart #3 in", count=1)
        d.ctl_ok("stop", "d")
        runaways = self.runaways(d)
        self.assertGreaterEqual(len(runaways), 3)
        wait_until(lambda: not any(pid_alive(pid) for pid in runaways), what="every daemon gone")
        self.assertEqual(d.stop(), 0)

    def test_a_child_in_a_process_group_of_its_own_is_stopped_too(self):
        d = self.fdsupd(worker_config("cgroup", "--mode", "setpgid"))
        main, runaway = self.start_worker(d)
        self.assertEqual(os.getsid(runaway), os.getsid(main))
        self.assertNotEqual(os.getpgid(runaway), os.getpgid(main))
        d.ctl_ok("stop", "d")
        self.assertFalse(pid_alive(runaway))
        # The same child under "group": the group signal misses it.
        d.write_config(worker_config("group", "--mode", "setpgid"))
        d.ctl_ok("reload")
        d.ctl_ok("start", "d")
        d.wait_log(r"d\[0\]: worker \d+ up", count=2)
        escaped = self.runaways(d)[-1]
        d.ctl_ok("stop", "d")
        self.assertTrue(pid_alive(escaped))
        self.assertEqual(d.stop(), 0)

    def test_without_a_usable_cgroup_tree_it_falls_back_to_group(self):
        # fdsupd runs in a cgroup that may have no descendants: it cannot make its own.
        jail = os.path.join(CGROUP_BASE, f"fdsup-test-jail-{os.getpid()}")
        os.mkdir(jail)
        self.addCleanup(remove_when_empty, jail)
        with open(os.path.join(jail, "cgroup.max.descendants"), "w") as f:
            f.write("0")

        def enter_jail():
            with open(os.path.join(jail, "cgroup.procs"), "w") as f:
                f.write("0")

        d = self.fdsupd(worker_config("cgroup", "--mode", "setpgid"))
        d.start(preexec_fn=enter_jail)
        d.wait_log(r"d\[0\]: worker \d+ up")
        d.wait_log(r'worker d: kill_mode = "cgroup" falls back to "group": mkdir .*/fdsupd-\d+: '
                   r"Resource temporarily unavailable")
        main = d.current_pid("d[0]")
        # As "group": the worker leads its own process group, in fdsupd's cgroup.
        self.assertEqual(os.getpgid(main), main)
        self.assertEqual(CGROUP_BASE + cgroup_of(main), jail)
        d.ctl_ok("stop", "d")
        self.assertFalse(pid_alive(main))
        self.assertEqual(d.stop(), 0)

    def test_where_seccomp_hides_clone3_the_child_joins_its_cgroup_itself(self):
        d = self.fdsupd(worker_config("cgroup"), wrapper=[helper("seccomp_wrap"), "clone3=38", "--"])
        main, daemon = self.start_worker(d)
        d.wait_log(r"clone3: Function not implemented; a process joins its cgroup from the launcher's child instead")
        self.assert_in_instance_cgroup(d, main, daemon)
        d.ctl_ok("stop", "d")
        self.assertFalse(pid_alive(daemon))
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    unittest.main()
