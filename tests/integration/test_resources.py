"""Resources (issue 20): what each instance uses, in `status` and the metrics, agreeing
with /proc and the cgroup files; limits written into the instance's cgroup (on this
project's CI machines the hybrid layout: cgroup2 without controllers, memory and pids
as v1 hierarchies, which the instance joins before exec); an OOM kill reported as one
and restarted; a fork bomb held at pids_max; and recycling, by memory under load with
no failed request and by max_age, staggered.

The limit tests need kill_mode = "cgroup" with the memory and pids controllers, on
cgroup v2 or as v1 hierarchies (skipped without them)."""
import os
import re
import time
import unittest

from fdsup_harness import FdsupTestCase, LoadClient, pid_alive, wait_until
from test_kill_mode import CGROUP_BASE


def v1_hierarchy_dir(pid, controller):
    """The cgroup v1 directory of `pid` in the hierarchy holding `controller`, or None."""
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if controller in controllers.split(","):
                break
        else:
            return None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            dash = fields.index("-")
            if fields[dash + 1] == "cgroup" and controller in fields[dash + 3].split(",") and fields[3] == "/":
                return fields[4] + (path if path != "/" else "")
    return None


def controller_available(controller):
    """fdsupd could bound instances with it: cgroup v2 gives it, or a v1 hierarchy exists."""
    if CGROUP_BASE is None:
        return False
    with open(os.path.join(CGROUP_BASE, "cgroup.controllers")) as f:
        if controller in f.read().split():
            return True
    return v1_hierarchy_dir(os.getpid(), controller) is not None


def read(path):
    with open(path) as f:
        return f.read()


def group_rss_bytes(pgid):
    """The RSS of every process in process group `pgid`, from /proc/PID/status."""
    total = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = read(f"/proc/{name}/stat")
            if int(stat[stat.rindex(")") + 2:].split()[2]) != pgid:
                continue
            m = re.search(r"^VmRSS:\s+(\d+) kB", read(f"/proc/{name}/status"), re.M)
            total += int(m.group(1)) * 1024 if m else 0
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return total


def process_groups():
    """{pgid: [pid, ...]} of every process now."""
    groups = {}
    for name in os.listdir("/proc"):
        try:
            stat = read(f"/proc/{name}/stat") if name.isdigit() else ""
        except (FileNotFoundError, ProcessLookupError):
            continue
        if stat:
            groups.setdefault(int(stat[stat.rindex(")") + 2:].split()[2]), []).append(int(name))
    return groups


def stat_rss_bytes(pid):
    stat = read(f"/proc/{pid}/stat")
    return int(stat[stat.rindex(")") + 2:].split()[21]) * os.sysconf("SC_PAGE_SIZE")


def context_switches(pid):
    """Voluntary and involuntary context switches of `pid` so far: its wakeups."""
    status = read(f"/proc/{pid}/status")
    return sum(int(m) for m in re.findall(r"^(?:non)?voluntary_ctxt_switches:\s+(\d+)", status, re.M))


def cpu_seconds_of(pid):
    fields = read(f"/proc/{pid}/stat")
    fields = fields[fields.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


LIMITED = """
[workers.hog]
command = ["@PYTHON@", "-u", "@SCRIPTS@/resource_app.py", "alloc", "8"]
kill_mode = "cgroup"
memory_max = "{memory}"
pids_max = 50
"""


class Resources(FdsupTestCase):
    def instance_cgroup_file(self, d, instance, controller, name):
        """The file `name` of the instance's cgroup: in its v2 cgroup if there, else in
        the v1 hierarchy of `controller`."""
        v2 = os.path.join(CGROUP_BASE, f"fdsupd-{d.pid}", instance["cgroup"], name)
        if os.path.exists(v2):
            return v2
        return os.path.join(v1_hierarchy_dir(d.pid, controller), f"fdsupd-{d.pid}", instance["cgroup"], name)

    def test_usage_agrees_with_proc(self):
        d = self.fdsupd("""
[workers.burner]
command = ["@PYTHON@", "-u", "@SCRIPTS@/resource_app.py", "burn", "0.6"]
[workers.hoarder]
command = ["@PYTHON@", "-u", "@SCRIPTS@/resource_app.py", "alloc", "48"]
[workers.idle]
command = ["@PYTHON@", "@SCRIPTS@/resource_app.py", "sleep"]
""").start(wait_control=True)
        d.wait_log(r"burner\[0\]: burnt")
        d.wait_log(r"hoarder\[0\]: allocated 48\b")
        burner, hoarder, idle = (d.instance(w) for w in ("burner", "hoarder", "idle"))
        # Steady now: CPU time from /proc/PID/stat, memory from /proc/PID/status.
        self.assertAlmostEqual(burner["usage"]["cpu_seconds"], cpu_seconds_of(burner["pid"]),
                               delta=0.1 * cpu_seconds_of(burner["pid"]))
        self.assertGreaterEqual(burner["usage"]["cpu_seconds"], 0.55)
        rss = group_rss_bytes(hoarder["pid"])
        self.assertGreater(rss, 48 << 20)
        self.assertAlmostEqual(hoarder["usage"]["memory_bytes"], rss, delta=0.1 * rss)
        self.assertEqual(hoarder["usage"]["processes"], 1)
        self.assertEqual(idle["usage"]["open_fds"], len(os.listdir(f"/proc/{idle['pid']}/fd")))
        # The burner has stopped burning: over the span since the last look, ~0%.
        time.sleep(0.3)
        self.assertLess(d.instance("burner")["usage"]["cpu_percent"], 5.0)
        text = d.ctl_ok("status")
        self.assertRegex(text, r"WORKER\s+INSTANCE\s+STATE\s+PID\s+CPU%\s+MEM\s+UPTIME")
        self.assertRegex(text, rf"hoarder\s+0\s+running\s+{hoarder['pid']}\s+\d+\.\d\s+\d+(\.\d)?M\s")
        # The metrics carry the same figures, per instance.
        memory = d.metric("fdsup_instance_memory_bytes", 'worker="hoarder",instance="0"')
        self.assertAlmostEqual(memory, rss, delta=0.1 * rss)
        self.assertGreaterEqual(d.metric("fdsup_instance_cpu_seconds_total", 'worker="burner",instance="0"'), 0.55)
        self.assertEqual(d.metric("fdsup_instance_processes", 'worker="idle",instance="0"'), 1)

    def test_usage_of_hundreds_of_instances_each_with_a_child(self):
        """Enough processes for a gathering to share its /proc reads between two threads
        (sys/proc_stat.cpp): each instance's group still counts its own two processes, its
        main process's fds, and the RSS of both."""
        count = 300
        d = self.fdsupd(f"""
[workers.pair]
command = ["/bin/sh", "-c", "sleep 600 & exec sleep 601"]
instances = {count}
""").start(wait_control=True)

        def all_paired():
            workers = d.ctl_json("status")["workers"]
            instances = workers[0]["instances"]
            groups = process_groups()
            return len(instances) == count and all(len(groups.get(i["pid"], [])) == 2 for i in instances)
        instances = wait_until(all_paired, what=f"{count} instances, each with its child")
        time.sleep(0.25)  # past the last gathering's freshness: the next status gathers anew
        instances = d.ctl_json("status")["workers"][0]["instances"]
        groups = process_groups()
        for instance in instances:
            usage = instance["usage"]
            self.assertEqual(usage["processes"], 2, instance)
            self.assertEqual(usage["open_fds"], len(os.listdir(f"/proc/{instance['pid']}/fd")), instance)
            # The same source as fdsupd's (stat's rss; status's VmRSS is counted apart, and
            # differs by more than 10% for a process this small): the sum, exactly.
            self.assertEqual(usage["memory_bytes"], sum(stat_rss_bytes(pid) for pid in groups[instance["pid"]]))
            self.assertIsNotNone(usage["cpu_seconds"])
        self.assertEqual(d.metric("fdsup_usage_gathering_last_instances"), count)
        self.assertGreater(d.metric("fdsup_usage_gathering_last_cpu_seconds"), 0)

    @unittest.skipUnless(controller_available("memory"), "no memory controller for kill_mode = \"cgroup\"")
    def test_cgroup_usage_agrees_with_cgroup_files(self):
        d = self.fdsupd("""
[workers.hoarder]
command = ["@PYTHON@", "-u", "@SCRIPTS@/resource_app.py", "alloc", "40"]
kill_mode = "cgroup"
memory_max = "256M"
""").start(wait_control=True)
        d.wait_log(r"hoarder\[0\]: allocated 40\b")
        instance = d.instance("hoarder")
        usage_file = self.instance_cgroup_file(d, instance, "memory", "memory.current")
        if not os.path.exists(usage_file):
            usage_file = self.instance_cgroup_file(d, instance, "memory", "memory.usage_in_bytes")
        in_cgroup = int(read(usage_file))
        self.assertGreater(in_cgroup, 40 << 20)
        self.assertAlmostEqual(instance["usage"]["memory_bytes"], in_cgroup, delta=0.1 * in_cgroup)
        usec = int(re.search(r"^usage_usec (\d+)", read(os.path.join(
            CGROUP_BASE, f"fdsupd-{d.pid}", instance["cgroup"], "cpu.stat")), re.M).group(1))
        self.assertAlmostEqual(instance["usage"]["cpu_seconds"], usec / 1e6, delta=max(0.1 * usec / 1e6, 0.02))
        self.assertEqual(instance["usage"]["oom_kills"], 0)

    @unittest.skipUnless(controller_available("memory"), "no memory controller for kill_mode = \"cgroup\"")
    def test_oom_kill_reported_and_restarted(self):
        swap = len(read("/proc/swaps").splitlines()) > 1
        d = self.fdsupd(f"""
[workers.hog]
command = ["@PYTHON@", "-u", "@SCRIPTS@/resource_app.py", "alloc", "256"]
kill_mode = "cgroup"
memory_max = "64M"
{'memory_swap_max = "0"' if swap else ''}
backoff = "200ms"
[workers.sibling]
command = ["@PYTHON@", "@SCRIPTS@/resource_app.py", "sleep"]
kill_mode = "cgroup"
memory_max = "64M"
""").start(wait_control=True)
        d.wait_log(r"worker hog\[0\]: pid (\d+) killed by the OOM killer \(memory_max 64M\) after \S+; restart #1")
        d.wait_log(r"worker hog\[0\]: started pid \d+", count=2)
        hog = d.instance("hog")
        self.assertTrue(hog["last_exit"]["oom_kill"])
        self.assertEqual(hog["last_exit"]["text"], "killed by the OOM killer (memory_max 64M)")
        self.assertGreaterEqual(hog["restarts"], 1)
        self.assertIn("hog[0]: last exit: killed by the OOM killer (memory_max 64M)", d.ctl_ok("status"))
        self.assertGreaterEqual(d.metric("fdsup_oom_kills_total", 'worker="hog"'), 1)
        # The kernel took only the hog: fdsupd and the sibling run on, untouched.
        sibling = d.instance("sibling")
        self.assertEqual(sibling["restarts"], 0)
        self.assertTrue(pid_alive(sibling["pid"]))
        self.assertIsNone(d.proc.poll())
        self.assertEqual(d.metric("fdsup_oom_kills_total", 'worker="sibling"'), 0)

    @unittest.skipUnless(controller_available("pids"), "no pids controller for kill_mode = \"cgroup\"")
    def test_fork_bomb_held_at_pids_max(self):
        d = self.fdsupd("""
[workers.bomb]
command = ["@PYTHON@", "@SCRIPTS@/resource_app.py", "forkbomb"]
kill_mode = "cgroup"
pids_max = 20
[workers.calm]
command = ["@PYTHON@", "@SCRIPTS@/resource_app.py", "sleep"]
""").start(wait_control=True)
        wait_until(lambda: (d.instance("bomb")["usage"] or {}).get("processes") == 20,
                   what="the fork bomb at 20 processes")
        instance = d.instance("bomb")
        self.assertEqual(read(self.instance_cgroup_file(d, instance, "pids", "pids.max")).strip(), "20")
        # Held there, and fdsupd answers promptly meanwhile.
        for _ in range(10):
            began = time.monotonic()
            self.assertLessEqual(d.instance("bomb")["usage"]["processes"], 20)
            self.assertLess(time.monotonic() - began, 2.0)
        self.assertEqual(d.instance("calm")["restarts"], 0)
        d.ctl_ok("stop", "bomb")  # cgroup.kill takes all 20
        self.assertEqual(d.instance("bomb")["state"], "stopped")

    @unittest.skipUnless(controller_available("memory") and controller_available("pids"),
                         "no memory and pids controllers for kill_mode = \"cgroup\"")
    def test_limits_changed_live_carried_across_an_upgrade_and_removed(self):
        d = self.fdsupd(LIMITED.format(memory="64M")).start(wait_control=True)
        d.wait_log(r"hog\[0\]: allocated 8\b")
        before = d.instance("hog")
        files = {key: self.instance_cgroup_file(d, before, controller, name)
                 for key, controller, name in (("memory", "memory", "memory.max"), ("pids", "pids", "pids.max"))}
        if not os.path.exists(files["memory"]):
            files["memory"] = self.instance_cgroup_file(d, before, "memory", "memory.limit_in_bytes")
        self.assertEqual(int(read(files["memory"])), 64 << 20)
        self.assertEqual(read(files["pids"]).strip(), "50")
        # reload: the running instance gets the new limit, and keeps running.
        d.write_config(LIMITED.format(memory="128M"))
        reply = d.ctl_json("reload")
        self.assertEqual(reply["workers"]["retuned"], ["hog"])
        self.assertEqual(reply["workers"]["changed"], [])
        self.assertEqual(int(read(files["memory"])), 128 << 20)
        self.assertEqual(d.instance("hog")["pid"], before["pid"])
        # An in-place upgrade carries the instance and its cgroups (same names, same PID).
        d.ctl_ok("upgrade")
        after = d.instance("hog")
        self.assertEqual((after["pid"], after["cgroup"]), (before["pid"], before["cgroup"]))
        self.assertEqual(int(read(files["memory"])), 128 << 20)
        self.assertGreater(after["usage"]["memory_bytes"], 8 << 20)
        # Gone with the instance, and the supervisor's own directories with fdsupd.
        d.ctl_ok("stop", "hog")
        self.assertFalse(os.path.exists(os.path.dirname(files["memory"])))
        self.assertFalse(os.path.exists(os.path.dirname(files["pids"])))
        tops = [os.path.dirname(os.path.dirname(f)) for f in files.values()]
        d.ctl_ok("shutdown")
        self.assertEqual(d.wait_exit(), 0)
        for top in tops:
            self.assertFalse(os.path.exists(top), top)

    @unittest.skipUnless(CGROUP_BASE is not None, "no writable cgroup v2 hierarchy with cgroup.kill")
    def test_a_limit_that_cannot_be_had_is_refused_naming_the_file(self):
        with open(os.path.join(CGROUP_BASE, "cgroup.controllers")) as f:
            v2 = f.read().split()
        if "memory" in v2:
            self.skipTest("memory_high can be had here (cgroup v2 memory controller)")
        d = self.fdsupd("""
[workers.web]
command = ["sleep", "1000"]
kill_mode = "cgroup"
memory_high = "64M"
""").start()
        self.assertEqual(d.wait_exit(), 1)
        self.assertRegex(d.log(), r"memory_high: the cgroup v1 memory hierarchy has nothing like memory.high")
        blkio = v1_hierarchy_dir(os.getpid(), "blkio")
        if "io" not in v2 and blkio and not os.path.exists(os.path.join(blkio, "blkio.weight")):
            d = self.fdsupd("""
[workers.web]
command = ["sleep", "1000"]
kill_mode = "cgroup"
io_weight = 200
""").start()
            self.assertEqual(d.wait_exit(), 1)
            self.assertRegex(d.log(), r"worker web: io_weight: \S+/blkio.weight: No such file or directory")
        # At reload: refused, nothing changed.
        d = self.fdsupd("""
[workers.web]
command = ["sleep", "1000"]
kill_mode = "cgroup"
""").start(wait_control=True)
        pid = d.instance("web")["pid"]
        d.write_config("""
[workers.web]
command = ["sleep", "1000"]
kill_mode = "cgroup"
memory_high = "64M"
""")
        code, out, err = d.ctl("reload")
        self.assertNotEqual(code, 0)
        self.assertIn("memory_high: the cgroup v1 memory hierarchy has nothing like memory.high", out + err)
        self.assertEqual(d.instance("web")["pid"], pid)

    def test_limits_without_cgroup_mode_are_a_config_error(self):
        d = self.fdsupd("""
[workers.web]
command = ["sleep", "1000"]
memory_max = "64M"
""")
        d.start()
        self.assertEqual(d.wait_exit(), 1)
        self.assertRegex(d.log(), r"memory_max: limits need kill_mode = \"cgroup\"")

    def test_recycle_memory_under_load_fails_no_request(self):
        d = self.fdsupd("""
[sockets.http]
listen = "tcp://127.0.0.1:0"
[workers.web]
command = ["@PYTHON@", "@SCRIPTS@/resource_app.py", "leak", "64"]
sockets = ["http"]
instances = 2
recycle_memory = "40M"
recycle_after = "400ms"
""").start(wait_control=True)
        originals = d.instance_pids("web")
        load = LoadClient(*d.address("http"), d.tmp)
        self.addCleanup(load.kill)
        wait_until(lambda: d.metric("fdsup_recycles_total", 'worker="web",reason="memory"') >= 3,
                   timeout=60, what="three recycles by memory")
        load.wait_for_more(50, "requests served after the recycles")
        result = load.finish()
        recycles = d.metric("fdsup_recycles_total", 'worker="web",reason="memory"')
        print(f"\nrecycle_memory: {recycles:.0f} recycles; load {result}")
        self.assertEqual({k: result[k] for k in ("refused", "connect_other", "reset", "bad_response", "timeout")},
                         {"refused": 0, "connect_other": 0, "reset": 0, "bad_response": 0, "timeout": 0})
        self.assertGreater(result["ok"], 100)
        log = d.log()
        for pid in originals.values():
            self.assertRegex(log, rf"pid {pid} used \S+, over recycle_memory 40M for \S+; recycling it")
        # Replaced the graceful way: each replacement was ready before the old one was stopped.
        for m in re.finditer(r"worker (web\[\d\]): pid (\d+) used .*; recycling it", log):
            after = log[m.end():]
            ready = re.search(rf"worker {re.escape(m.group(1))}: pid \d+ ready", after)
            gone = re.search(rf"pid {m.group(2)} (exited|killed)", after)
            if gone:
                self.assertIsNotNone(ready)
                self.assertLess(ready.start(), gone.start())
        recycled = [i.get("recycled") for w in d.ctl_json("status")["workers"] for i in w["instances"]]
        self.assertTrue(any(r and "over recycle_memory 40M" in r for r in recycled), recycled)

    def test_max_age_recycles_each_instance_once_staggered(self):
        d = self.fdsupd("""
[workers.web]
command = ["@PYTHON@", "@SCRIPTS@/resource_app.py", "sleep"]
instances = 3
max_age = "1500ms"
max_age_jitter = "1s"
""").start(wait_control=True)
        originals = set(d.instance_pids("web").values())
        wait_until(lambda: not originals & set(d.instance_pids("web").values()),
                   timeout=30, what="every original instance recycled")
        log = d.log()
        recycles = [(int(m.group(1)), m.start()) for m in
                    re.finditer(r"worker web\[\d\]: pid (\d+) reached max_age 1.5s \(running \S+\); recycling it", log)]
        firsts = [pid for pid, _ in recycles if pid in originals]
        self.assertEqual(sorted(firsts), sorted(originals))  # each once
        # One at a time: each recycle began after the one before had stopped its old process.
        for (pid, at), (_, next_at) in zip(recycles, recycles[1:]):
            stopped = re.search(rf"pid {pid} (exited|killed)[^\n]*; stopped", log[at:])
            self.assertIsNotNone(stopped, f"pid {pid} stopped")
            self.assertLess(at + stopped.start(), next_at)
        self.assertGreaterEqual(d.metric("fdsup_recycles_total", 'worker="web",reason="max_age"'), 3)
        self.assertTrue(all(i["restarts"] == 0 for i in d.ctl_json("status")["workers"][0]["instances"]))

    def test_a_recycle_waiting_for_its_replacement_wakes_nothing(self):
        # The instance is past max_age for the whole 2 s its replacement takes to be
        # ready: the recycle timer must wait for the rollout, not fire again and again.
        d = self.fdsupd("""
[workers.web]
command = ["@PYTHON@", "@SCRIPTS@/resource_app.py", "sleep"]
ready = "delay"
ready_delay = "2s"
max_age = "500ms"
""").start(wait_control=True)
        d.wait_log(r"worker web\[0\]: pid \d+ reached max_age 500ms \(running \S+\); recycling it")
        began = context_switches(d.pid)
        d.wait_log(r"worker web\[0\]: pid \d+ ready after 2\.\d+s", count=2)
        wakeups = context_switches(d.pid) - began
        print(f"\nfdsupd wakeups while a recycle waited 2 s for its replacement: {wakeups}")
        # A few: the replacement's ready delay, its stop. A timer firing again and again
        # (even at 100 Hz) would make hundreds.
        self.assertLess(wakeups, 40)


if __name__ == "__main__":
    unittest.main()
