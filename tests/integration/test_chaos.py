"""Chaos: 4 workers x 4 instances under continuous HTTP load on their 4 sockets, while
a killer SIGKILLs a random instance several times a second for 60 s (half of the kills
aimed at processes in transition: starting, a rollout's replacements, draining ones)
and, interleaved, `fdsupctl restart`, `reload` (a changed env, or nothing changed) and
`upgrade` run.

Commands may fail when they collide with a kill or with each other (a rollout stops
because its replacement was killed; a reload or restart finds a rollout in progress; an
upgrade is refused while a reload or a command is in flight; a command's connection is
cut by an upgrade's exec); each outcome is classified and counted, and one that is none
of these fails the test. fdsupd must never die and keeps its pid.

Afterwards every instance runs again, fdsupd has no other child and no zombie, its fd
count is back to its baseline and its RSS near it, a final restart of every worker
succeeds, and no connection was ever refused: the listening sockets stay open in
fdsupd throughout, so a refusal is a bug. The only failed requests allowed are the
connections a killed process had accepted (http_worker serves one at a time: at most
one per kill).

CHAOS_SEED=N makes the same random choices as a run that printed that seed (what they
hit still depends on timing); CHAOS_SECONDS=N runs the chaos for N s instead of 60 (for
a quick try; ctest runs the full 60 s).
"""
import collections
import json
import os
import random
import re
import signal
import subprocess
import threading
import time
import unittest

from fdsup_harness import (FdsupTestCase, LoadClient, children_of, fd_links, open_fd_count, pid_alive, process_state,
                           wait_for_connections_closed, wait_until)

SANITIZED = os.environ.get("FDSUP_SANITIZED") == "1"
WORKERS = ("w0", "w1", "w2", "w3")
INSTANCES = 4
CHAOS_SECONDS = float(os.environ.get("CHAOS_SECONDS", "60"))
# Upgrades only in the first two thirds: an exec starts the heap afresh and closes every
# CLOEXEC fd, so a leak from the kill, restart and reload paths would be wiped by one.
# The last third has none, so what those paths leak shows in the fd and RSS checks.
UPGRADES_UNTIL = CHAOS_SECONDS * 2 / 3
# Each load thread (2 per socket) pauses this long after each request: thousands of
# requests a second in all (a gap of a millisecond in the sockets' service would
# meet several), while most of the two cores stay with fdsupd and the other tests.
LOAD_PAUSE_US = 1000
KILL_INTERVAL = (0.15, 0.25)          # seconds between kills
COMMAND_INTERVAL = (0.2, 1.0)         # between restarts and reloads
UPGRADE_INTERVAL = (2.5, 4.5)         # between upgrades
COMMAND_TIMEOUT = 120.0 if SANITIZED else 60.0
SETTLE_TIMEOUT = 120.0 if SANITIZED else 60.0
# RSS after the chaos may exceed the baseline by this much. Both are taken of an image
# that took over by an upgrade (its heap starts afresh), after a rolling restart of every
# worker, with no fdsupctl connected. What legitimately differs: the output ring of
# `fdsupctl logs` (not carried by an upgrade; at most 1,000 lines per worker, and an
# http_worker's lines are ~40 bytes: a few hundred KiB for the four at most) and malloc's
# free lists. What the run did since its last upgrade is printed (hundreds of spawns,
# rollouts and status replies): a leak of a few KiB in each goes past this.
RSS_SLACK_KIB = 2 * 1024

SOCKET = """
[sockets.s{n}]
listen = "tcp://127.0.0.1:0"
backlog = 4096
"""

WORKER = """
[workers.w{n}]
command = ["@HELPERS@/http_worker", "--notify", "--startup-delay-ms", "100"]
sockets = ["s{n}"]
instances = {instances}
ready = "notify"
ready_timeout = "30s"
restart_strategy = "rolling"
max_surge = 1
stop_timeout = "10s"
backoff = "20ms"
backoff_max = "200ms"
healthy_after = "1s"
start_limit_burst = 100000
env = {{ CHAOS_GENERATION = "{generation}" }}
"""


def config(generations):
    return "".join(SOCKET.format(n=n) for n in range(len(WORKERS))) + "".join(
        WORKER.format(n=n, instances=INSTANCES, generation=generations[w]) for n, w in enumerate(WORKERS))


def write_config(d, text):
    """The harness's write_config, but atomic (a new file renamed over the old): an
    upgrade's pre-flight may read the file at any moment, and must never see half of it."""
    real = d.config_path
    d.config_path = real + ".new"
    try:
        d.write_config(text)
    finally:
        d.config_path = real
    os.replace(real + ".new", real)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def fd_kinds(pid):
    """fdsupd's fds by kind ("socket", "pipe", "anon_inode:[pidfd]", a path): what
    differs between two counts."""
    return collections.Counter(re.sub(r":\[\d+\]$", "", link) for link in fd_links(pid))


def log_tail(d, lines=400):
    """The end of fdsupd's log without its control-connection chatter (the polling of
    status would fill it), for a failure's message."""
    kept = [line for line in d.log().splitlines() if not re.search(r" debug control( client \d+|: status)", line)]
    return f"--- fdsupd log ({d.log_path}), last {lines} lines without control chatter ---\n" + "\n".join(kept[-lines:])


def environ_of(pid):
    with open(f"/proc/{pid}/environ", "rb") as f:
        return dict(e.split(b"=", 1) for e in f.read().split(b"\0") if b"=" in e)


def cut_by_upgrade(code, out):
    """fdsupctl's connection closed under it (exit 3) by an upgrade's exec: control
    connections are not carried to the next image (SPEC, "upgrade"; supervisord/state/state.h). A
    request fdsupd had begun is told first and followed to the next image (README,
    "Clients across an upgrade"); one sent just as the exec came was not begun."""
    return code == 3 and re.search(r"closed before the reply|Connection reset by peer|Broken pipe", out)


class Outcomes:
    """Thread-safe tallies of what each kind of command did, and anything unexpected."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts = collections.Counter()
        self.unexpected = []

    def count(self, key):
        with self.lock:
            self.counts[key] += 1

    def unexpected_outcome(self, text):
        with self.lock:
            self.unexpected.append(text)
            print(f"chaos: UNEXPECTED: {text}", flush=True)


class Chaos(FdsupTestCase):
    def setUp(self):
        super().setUp()
        seed = int(os.environ.get("CHAOS_SEED", random.SystemRandom().randrange(1 << 32)))
        print(f"chaos: seed {seed} (CHAOS_SEED={seed} replays its choices)", flush=True)
        self.seed = seed
        self.generations = {w: 0 for w in WORKERS}
        self.outcomes = Outcomes()
        self.errors = []        # exceptions in the chaos threads
        self.halt = threading.Event()  # set when the test ends early: the threads stop

    # ---- status --------------------------------------------------------------------

    def settled_pids(self, d):
        """{(worker, index): pid} once every worker is running with exactly its 4
        instances, each running and ready, no rollout, nothing retiring; else None."""
        status = d.ctl_json("status")
        pids = {}
        for w in status["workers"]:
            if w["state"] != "running" or w.get("rollout") is not None:
                return None
            if sorted(i["index"] for i in w["instances"]) != list(range(INSTANCES)):
                return None
            for i in w["instances"]:
                if (i["state"] != "running" or not i["ready"] or i.get("retiring") or i.get("replacement")
                        or not i["pid"] or not pid_alive(i["pid"])):
                    return None
                pids[(w["name"], i["index"])] = i["pid"]
        return pids if sorted({name for name, _ in pids}) == list(WORKERS) else None

    def wait_settled(self, d, timeout, what):
        try:
            return wait_until(lambda: self.settled_pids(d), timeout=timeout, interval=0.1, what=what)
        except AssertionError as e:
            raise AssertionError(f"{e}\nstatus:\n{d.ctl('status')[1]}\n{log_tail(d)}") from None

    # ---- the chaos threads ----------------------------------------------------------

    def run_thread(self, name, body):
        def guarded():
            try:
                body()
            except BaseException as e:  # noqa: B036 - reported by the main thread
                self.errors.append(f"{name}: {e!r}")
                print(f"chaos: thread {name} failed: {e!r}", flush=True)
        thread = threading.Thread(target=guarded, name=name, daemon=True)
        thread.start()
        return thread

    def ctl(self, d, *args, stdout_only=False):
        """fdsupctl, never raising: (code, stdout + stderr, or stdout alone, as for JSON to
        parse); a hang is code None."""
        try:
            code, out, err = d.ctl(*args, timeout=COMMAND_TIMEOUT)
            return code, out if stdout_only and code == 0 else out + err
        except subprocess.TimeoutExpired:
            return None, f"fdsupctl {' '.join(args)} did not return within {COMMAND_TIMEOUT} s"

    def killer(self, d, rng, stop_at):
        """SIGKILL to a random instance process every 150-250 ms. Half the time, when
        there are any, the victim is one in transition (starting, a rollout's
        replacement, a retiring one draining, one stopping): those are the paths where
        a kill meets a command. The pid comes from status; the signal goes through a
        pidfd, and only to a child of fdsupd that is not a zombie yet, so a pid that was
        reused meanwhile is never hit."""
        next_kill = time.monotonic()
        while not self.halt.is_set():
            next_kill = max(next_kill, time.monotonic()) + rng.uniform(*KILL_INTERVAL)
            if next_kill >= stop_at:
                return
            time.sleep(max(0.0, next_kill - time.monotonic()))
            code, out = self.ctl(d, "--json", "status", stdout_only=True)
            if cut_by_upgrade(code, out):
                self.outcomes.count("status: connection cut by an upgrade")
                continue
            if code != 0:
                self.outcomes.unexpected_outcome(f"status exited {code}: {out}")
                continue
            instances = [i for w in json.loads(out)["workers"] for i in w["instances"] if i["pid"]]
            moving = [i for i in instances if i.get("replacement") or i.get("retiring") or i["state"] != "running"]
            if not instances:
                continue
            victim = rng.choice(moving if moving and rng.random() < 0.5 else instances)
            kind = ("a replacement" if victim.get("replacement") else "retiring" if victim.get("retiring")
                    else victim["state"])
            pid = victim["pid"]
            try:
                pidfd = os.pidfd_open(pid)
            except ProcessLookupError:
                self.outcomes.count("kill: gone before it was hit")
                continue
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if fields[0] == "Z" or int(fields[1]) != d.pid:
                    self.outcomes.count("kill: gone before it was hit")
                    continue
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                self.outcomes.count("kill")
                self.outcomes.count(f"kill: {kind}")
            except (FileNotFoundError, ProcessLookupError):
                self.outcomes.count("kill: gone before it was hit")
            finally:
                os.close(pidfd)

    def restart(self, d, rng):
        worker = rng.choice(WORKERS)
        code, out = self.ctl(d, "restart", worker)
        if code == 0:
            self.outcomes.count("restart: done")
        elif code == 1 and "a rolling restart is in progress" in out:
            # the rollout of a reload, or one an upgrade carried over from an earlier restart
            self.outcomes.count("restart: refused, a rollout in progress")
        elif code == 1 and self.stopped_by_a_kill(out):
            self.outcomes.count("restart: rollout stopped, a replacement was killed")
        elif cut_by_upgrade(code, out):
            self.outcomes.count("restart: connection cut by an upgrade (the rollout goes on)")
        else:
            self.outcomes.unexpected_outcome(f"restart {worker} exited {code}: {out}")

    @staticmethod
    def stopped_by_a_kill(out):
        """A rollout's failure report in which every failed slot was killed (by us) and
        every other one was left alone because of that."""
        failed = re.findall(r"w\d\[\d\]: (?:replacement failed|did not start): (.*?)(?:; pid \d+ keeps serving)?$",
                            out, re.M)
        return bool(failed) and all("signal KILL" in why for why in failed)

    def reload(self, d, rng):
        # One, two or no workers get a new env value (none: an unchanged reload).
        changed = rng.sample(WORKERS, rng.choice((0, 1, 1, 2)))
        for w in changed:
            self.generations[w] += 1
        write_config(d, config(self.generations))
        code, out = self.ctl(d, "reload")
        if code == 0:
            self.outcomes.count("reload: done" + ("" if changed else " (unchanged)"))
        elif code == 1 and "cannot be applied live; nothing changed" in out and re.search(
                r"a rolling restart is in progress|still has instances stopping", out):
            # The config on disk stays: the next reload applies it (or its successor).
            self.outcomes.count("reload: refused, a rollout in progress")
        elif code == 1 and "a reload is already in progress" in out:
            # An upgrade that came between the write and this reload: its new image saw
            # the file changed and began a reload of its own (README, "upgrade").
            self.outcomes.count("reload: refused, the reload an upgrade began is in progress")
        elif code == 1 and "the new configuration is in effect, but not every instance runs it" in out \
                and self.stopped_by_a_kill(out):
            self.outcomes.count("reload: rollout stopped, a replacement was killed")
        elif cut_by_upgrade(code, out):
            # Sent as the exec began: never read. The next image reloads the changed file.
            self.outcomes.count("reload: connection cut by an upgrade")
        else:
            self.outcomes.unexpected_outcome(f"reload ({', '.join(changed) or 'unchanged'}) exited {code}: {out}")

    def commands(self, d, rng, stop_at):
        """restart and reload, one at a time, at random."""
        while time.monotonic() < stop_at and not self.halt.is_set():
            time.sleep(rng.uniform(*COMMAND_INTERVAL))
            if rng.random() < 0.55:
                self.restart(d, rng)
            else:
                self.reload(d, rng)

    def upgrades(self, d, rng, stop_at):
        while True:
            time.sleep(rng.uniform(*UPGRADE_INTERVAL))
            if time.monotonic() >= stop_at or self.halt.is_set():
                return
            code, out = self.ctl(d, "upgrade")
            if code == 0 and re.search(rf"fdsupd upgraded in place: \S+ -> \S+ \(pid {d.pid},", out):
                self.outcomes.count("upgrade: done")
            elif code == 1 and re.search(r"upgrade refused: (a reload is in progress|a command is in progress"
                                         r"|worker w\d is being restarted with a new configuration)", out):
                self.outcomes.count("upgrade: refused, a reload or command in flight")
            else:
                self.outcomes.unexpected_outcome(f"upgrade exited {code}: {out}")

    def stop_threads(self, d):
        """After a failure: the threads stop before the temp dir goes (fdsupd is killed
        first, so that a command in flight fails at once instead of at its timeout)."""
        self.halt.set()
        if any(t.is_alive() for t in self.threads) and d.proc is not None and d.proc.poll() is None:
            d.proc.kill()
        for t in self.threads:
            t.join(timeout=COMMAND_TIMEOUT + 5)

    # ---- the test -------------------------------------------------------------------

    def test_kills_restarts_reloads_and_upgrades_under_load(self):
        began = time.monotonic()
        # A prefix of its own, only to tell its directory apart (FDSUP_KEEP_TMP=1): the
        # suite removes no directory by name or prefix, each Fdsupd only its own.
        d = self.fdsupd(config(self.generations), prefix="fdsup-chaos-").start()
        self.threads = []
        self.addCleanup(self.stop_threads, d)  # cleanups run last-in first: before fdsupd is killed
        d.wait_control()
        self.wait_settled(d, SETTLE_TIMEOUT, "all 16 instances running at start")
        addresses = {w: d.address(f"s{n}") for n, w in enumerate(WORKERS)}

        loads = {}
        try:
            for w, (host, port) in addresses.items():
                os.makedirs(os.path.join(d.tmp, w), exist_ok=True)
                loads[w] = LoadClient(host, port, os.path.join(d.tmp, w), concurrency=2,
                                      extra_args=("--pause-us", str(LOAD_PAUSE_US)))
                self.addCleanup(loads[w].kill)  # also when a finish() below raises
            for w, load in loads.items():
                load.wait_for_more(20, f"load flowing on {w}'s socket")

            # Warm-up, then the baseline. The chaos's last third has no upgrade, and it
            # ends with a restart of every worker, so the baseline is taken the same
            # way: an image that took over by an upgrade (it starts its heap afresh;
            # one started from the command line also loaded and kept its first config),
            # then a rolling restart of every worker, no fdsupctl connected.
            code, out = self.ctl(d, "upgrade")
            self.assertEqual(code, 0, out)
            self.assertEqual(self.ctl(d, "reload")[0], 0)
            code, out = self.ctl(d, "restart", *WORKERS)
            self.assertEqual(code, 0, out)
            self.wait_settled(d, SETTLE_TIMEOUT, "all 16 instances running after the warm-up")
            wait_for_connections_closed(d)
            fds_before, kinds_before, rss_before = open_fd_count(d.pid), fd_kinds(d.pid), rss_kib(d.pid)
            print(f"chaos: baseline: {fds_before} fds {dict(kinds_before)}, RSS {rss_before} KiB", flush=True)
            ok_before = {w: load.ok_count() for w, load in loads.items()}

            # The chaos.
            master = random.Random(self.seed)
            start = time.monotonic()
            stop_at = start + CHAOS_SECONDS
            rngs = [random.Random(master.random()) for _ in range(3)]
            threads = self.threads = [self.run_thread("killer", lambda: self.killer(d, rngs[0], stop_at)),
                       self.run_thread("commands", lambda: self.commands(d, rngs[1], stop_at)),
                       self.run_thread("upgrades", lambda: self.upgrades(d, rngs[2], start + UPGRADES_UNTIL))]
            while any(t.is_alive() for t in threads):
                if d.proc.poll() is not None:
                    self.fail(f"fdsupd died during the chaos ({d.proc.returncode})\n{log_tail(d)}")
                time.sleep(0.1)
            chaos_took = time.monotonic() - start
            self.assertEqual(self.errors, [])
            self.assertIsNone(d.proc.poll(), "fdsupd died during the chaos")
            self.assertEqual(d.ctl_json("version")["pid"], d.pid)  # the same process throughout

            # Settled: every instance back, then a restart of everything goes through,
            # and each new process has its worker's last configuration.
            settled = self.wait_settled(d, SETTLE_TIMEOUT, "all 16 instances running after the chaos")
            write_config(d, config(self.generations))
            code, out = self.ctl(d, "reload")  # a refused one may have left the last config unapplied
            self.assertEqual(code, 0, out)
            code, out = self.ctl(d, "restart", *WORKERS)
            self.assertEqual(code, 0, out)
            final = self.wait_settled(d, SETTLE_TIMEOUT, "all 16 instances running after the final restart")
            for key, pid in final.items():
                self.assertNotEqual(pid, settled[key], f"{key} not replaced by the final restart")
                self.assertEqual(environ_of(pid).get(b"CHAOS_GENERATION"), str(self.generations[key[0]]).encode(),
                                 f"{key[0]}[{key[1]}] pid {pid} runs an old configuration")
            for w, load in loads.items():
                load.wait_for_more(20, f"load still flowing on {w}'s socket")
        finally:
            results = {w: load.finish() for w, load in loads.items()}

        # No other child, and no zombie: the old processes are reaped.
        def only_the_instances():
            kids = children_of(d.pid)
            return sorted(kids) == sorted(final.values()) and all(process_state(k) not in ("Z", None) for k in kids)
        try:
            wait_until(only_the_instances, timeout=SETTLE_TIMEOUT, interval=0.1, what="only the instances left")
        except AssertionError:
            kids = children_of(d.pid)
            self.fail(f"fdsupd's children: {[(k, process_state(k)) for k in kids]}; its instances: "
                      f"{sorted(final.values())}")

        # fds: exactly the baseline once fdsupctl's connections are closed (the same
        # sockets, the same 16 instances with their pidfds and output pipes).
        wait_for_connections_closed(d)
        try:
            wait_until(lambda: open_fd_count(d.pid) == fds_before and fd_kinds(d.pid) == kinds_before, timeout=10,
                       interval=0.1, what="fds at baseline, kind by kind")
        except AssertionError:
            self.fail(f"fdsupd's fds: {open_fd_count(d.pid)} after the chaos, {fds_before} before; by kind "
                      f"{dict(fd_kinds(d.pid))} vs {dict(kinds_before)}")
        rss_after = rss_kib(d.pid)

        total = collections.Counter()
        for w, r in results.items():
            print(f"chaos: load {w}: {r}", flush=True)
            total.update({k: r[k] for k in ("ok", "refused", "connect_other", "reset", "bad_response", "timeout",
                                            "requests")})
        kills = self.outcomes.counts["kill"]
        # fdsupd's own kills: a process still there stop_timeout (10 s) after SIGTERM, or
        # not ready ready_timeout (30 s) after its exec. An http_worker drains and gets
        # ready within milliseconds, so any of these means a process was lost track of.
        log = d.log()
        fdsupd_kills = re.findall(r".*(?:still running after stop_timeout|not ready within ready_timeout).*", log)
        killed_connections = total["reset"] + total["bad_response"]
        upgrade_execs = len(re.findall(r"upgrade: exec ", log))
        upgrade_reloads = log.count("upgrade: the configuration file changed since it was loaded; reloading")
        since_upgrade = log[log.rfind("upgrade done:"):]
        spawns_since_upgrade = len(re.findall(r"worker w\d\[\d\]: started pid", since_upgrade))
        cut = sum(n for k, n in self.outcomes.counts.items() if "connection cut by an upgrade" in k)
        print(f"chaos: {chaos_took:.1f} s of chaos; outcomes: {dict(sorted(self.outcomes.counts.items()))}", flush=True)
        print(f"chaos: requests {total['requests']}: ok {total['ok']}, refused {total['refused']}, "
              f"connect_other {total['connect_other']}, timeout {total['timeout']}, reset {total['reset']}, "
              f"bad_response {total['bad_response']} (failed by a kill: {killed_connections}, "
              f"kills {kills}, fdsupd's own kills {len(fdsupd_kills)})", flush=True)
        print(f"chaos: upgrade execs {upgrade_execs}, commands cut by them {cut}, reloads begun by them "
              f"{upgrade_reloads}", flush=True)
        print(f"chaos: fds {fds_before} -> {open_fd_count(d.pid)}; RSS {rss_before} -> {rss_after} KiB "
              f"({rss_after - rss_before:+d}; {spawns_since_upgrade} spawns since the last upgrade); "
              f"took {time.monotonic() - began:.1f} s in all", flush=True)

        self.assertEqual(self.outcomes.unexpected, [])
        # Enough chaos happened for the run to mean something.
        self.assertGreater(kills, CHAOS_SECONDS)
        self.assertGreater(self.outcomes.counts["upgrade: done"], 0)
        self.assertGreater(self.outcomes.counts["restart: done"] + self.outcomes.counts["reload: done"], 0)
        # The sockets never closed: not one connection refused, none stuck.
        self.assertEqual(total["refused"], 0, results)
        self.assertEqual(total["connect_other"], 0, results)
        self.assertEqual(total["timeout"], 0, results)
        # Only connections a killed process had accepted failed: one per kill at most.
        self.assertLessEqual(killed_connections, kills, results)
        self.assertEqual(fdsupd_kills, [])
        for w in WORKERS:
            self.assertGreater(results[w]["ok"], ok_before[w] + 100, f"{w}: load served during the chaos")
        # A command cut by an exec had its connection open then: the killer's status and
        # the restart or reload under way, at most two per exec.
        self.assertLessEqual(cut, 2 * upgrade_execs)
        # Only a reload begun by an upgrade (the file had changed) runs beside ours: without
        # one, no reload of ours is refused so. (One such reload may refuse several of
        # ours: the commands thread tries again while it runs.)
        if self.outcomes.counts["reload: refused, the reload an upgrade began is in progress"] > 0:
            self.assertGreater(upgrade_reloads, 0, "a reload refused as running beside one an upgrade began, "
                                                   "but no upgrade began one")
        if not SANITIZED:  # ASan's quarantine holds freed memory (256 MiB): RSS says nothing there
            self.assertLessEqual(rss_after, rss_before + RSS_SLACK_KIB,
                                 f"fdsupd's RSS grew from {rss_before} KiB to {rss_after} KiB")

        # And it still shuts down cleanly, taking every worker with it.
        self.assertEqual(d.stop(), 0, log_tail(d))
        for pid in final.values():
            wait_until(lambda: not pid_alive(pid), what=f"worker pid {pid} gone after the shutdown")


if __name__ == "__main__":
    unittest.main()
