"""Scale: N instances of the stamp worker (a tiny static C sleeper that reports when its
main() starts) under fdsupd and under supervisord (one [program], numprocs = N). fdsupd
runs twice, at a reference size (2,000) and at N (10,000), so that what grows faster than
the instances shows as a ratio measured in the same run:

- all running: supervisor exec'd -> the last of the N workers' main() running;
- idle: the supervisor's CPU time, wakeups (context switches) and RSS over IDLE_S seconds
  of nothing happening;
- status: `fdsupctl --json status` / `supervisorctl status` wall time, median;
- reload: `fdsupctl reload` / `supervisorctl update` of the unchanged config, wall time,
  median (nothing may restart: a stamp arriving meanwhile fails the benchmark);
- respawn: SIGKILL of a random instance -> its replacement's main(), median and p99, and
  fdsupd's median against its median at the reference size;
- upgrade: `fdsupctl upgrade` (the new image adopts every worker) and, with no such
  thing in supervisord, `supervisorctl reload` until all N run again (it restarts them).

supervisord is given GIVE_UP_S to have all N running; if it has not by then, it is
stopped and its row says how many were running."""
import os
import random
import signal
import subprocess
import time

import peers
from bench_lib import (CLOCK_TICKS, StampSink, idle_figures, median, monotonic_ns, percentile, timed,
                       wait_for_stamps, wait_quiet)

IDLE_S = 10.0
GIVE_UP_S = 300.0


def respawns(sink, pids, kills):
    """Kills `kills` random workers one at a time; the kill -> replacement delays in us."""
    samples = []
    rng = random.Random(1)
    for _ in range(kills):
        victim = rng.choice(sorted(pids))
        pids.discard(victim)
        t_kill = monotonic_ns()
        os.kill(victim, signal.SIGKILL)
        stamp_ns, pid = sink.next()
        pids.add(pid)
        samples.append((stamp_ns - t_kill) / 1000.0)
    return samples


class GaveUp(Exception):
    """Not all running: `what` says where it stopped."""

    def __init__(self, what):
        super().__init__(what)
        self.what = what


def wait_all_running(supervisor, sink, count, give_up_s):
    """{pid: stamp_ns} once all `count` run; GaveUp(how many run) after `give_up_s`, or
    as soon as the supervisor itself is gone (supervisord exits when it runs out of fds)."""
    started = {}
    deadline = time.monotonic() + give_up_s
    while len(started) < count:
        if not alive(supervisor.pid):
            raise GaveUp(f"exited after {give_up_s - (deadline - time.monotonic()):.0f} s, {len(started)} of "
                         f"{count} started")
        if time.monotonic() >= deadline:
            raise GaveUp(f"stopped at {give_up_s:.0f} s: {len(children(supervisor.pid))} of {count} running")
        try:
            stamp_ns, pid = sink.next(timeout=1.0)
        except TimeoutError:
            continue
        started[pid] = stamp_ns
    return started


def alive(pid):
    """Running (not a zombie waiting for its parent, this script)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return f.read().split()
    except OSError:
        return []


def assert_nothing_started(sink):
    """An unchanged config's reload restarts nothing: no worker's main() ran meanwhile."""
    sink.sock.setblocking(False)
    try:
        stamp = sink.sock.recv(64)
    except BlockingIOError:
        return
    finally:
        sink.sock.setblocking(True)
    raise AssertionError(f"a worker started during the reload of an unchanged config: {stamp!r}")


def measure(supervisor, sink, count, kills, status_rounds, upgrade, upgrade_rounds, idle_s, give_up_s):
    figures = {}
    try:
        t0 = monotonic_ns()
        supervisor.start()
        started = wait_all_running(supervisor, sink, count, give_up_s)
        figures["all running s"] = (max(started.values()) - t0) / 1e9
        supervisor.wait_control()
        wait_quiet(supervisor.pid)
        cpu_ms, wakeups, rss_mib = idle_figures(supervisor.pid, idle_s)
        figures.update({"idle CPU ms": cpu_ms, "idle wakeups": wakeups, "RSS MiB": rss_mib})
        figures["status ms"] = median([fresh_status_ms(supervisor) for _ in range(status_rounds)])
        if supervisor.name == "fdsupd":
            figures["usage ms"] = median([last_gathering_ms(supervisor, count) for _ in range(status_rounds)])
        figures["reload ms"] = median([timed(supervisor.ctl(*reload_args(supervisor)), timeout=300)
                                       for _ in range(status_rounds)])
        assert_nothing_started(sink)
        samples = respawns(sink, set(started), kills)
        figures["respawn median us"] = median(samples)
        figures["respawn p99 us"] = percentile(samples, 99)
        figures["upgrade ms"] = median([upgrade(supervisor, sink, count, give_up_s) for _ in range(upgrade_rounds)])
    finally:
        supervisor.stop()
        sink.drain()
    return figures


def fresh_status_ms(supervisor):
    """One `status`'s wall time, with every instance's usage gathered for it: fdsupd
    reuses a sample younger than 200 ms (many clients at once cost one gathering), so
    back-to-back requests would time the reuse, not the gathering."""
    time.sleep(0.25)
    return timed(supervisor.ctl(*status_args(supervisor)), timeout=300)


def last_gathering_ms(supervisor, count):
    """fdsupd's own CPU time to gather every instance's usage once: a scrape gathers it
    (once the last gathering is over 200 ms old) and reports what that took."""
    time.sleep(0.25)
    text = subprocess.run(supervisor.ctl("metrics"), capture_output=True, text=True, check=True, timeout=300).stdout
    values = {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
              if line.startswith(("fdsup_usage_gathering_last_cpu_seconds ", "fdsup_usage_gathering_last_instances "))}
    assert values["fdsup_usage_gathering_last_instances"] == count, values
    return values["fdsup_usage_gathering_last_cpu_seconds"] * 1000


def status_args(supervisor):
    return ["--json", "status"] if supervisor.name == "fdsupd" else ["status"]


def reload_args(supervisor):
    """supervisord's counterpart of a reload that applies the difference is `update`
    (re-read, then apply); its `reload` restarts everything (the upgrade column)."""
    return ["reload"] if supervisor.name == "fdsupd" else ["update"]


def fdsupd_upgrade(supervisor, sink, count, give_up_s):
    return timed(supervisor.ctl("upgrade"), timeout=300)


def supervisord_reload(supervisor, sink, count, give_up_s):
    """`supervisorctl reload` until every program runs again (reload restarts them all)."""
    t0 = monotonic_ns()
    subprocess.run(supervisor.ctl("reload"), check=True, capture_output=True, timeout=300)
    restarted = wait_for_stamps(sink, count, timeout=give_up_s)
    supervisor.wait_control()
    return (max(restarted.values()) - t0) / 1e6


def row(name, count, f, reference_respawn_us):
    ratio = f"{f['respawn median us'] / reference_respawn_us:.2f}" if reference_respawn_us else "-"
    return [name, f"{count}", f"{f['all running s']:.2f}", f"{f['idle CPU ms']:.0f}", f"{f['idle wakeups']}",
            f"{f['RSS MiB']:.1f}", f"{f['status ms']:.1f}", f"{f['usage ms']:.1f}" if "usage ms" in f else "-",
            f"{f['reload ms']:.1f}" + ("" if name == "fdsupd" else " (update)"),
            f"{f['respawn median us']:.0f}", f"{f['respawn p99 us']:.0f}", ratio,
            f"{f['upgrade ms']:.0f}" + ("" if name == "fdsupd" else " (reload)")]


def run(build, report, count, reference=2000, kills=50, status_rounds=10, upgrade_rounds=3, idle_s=IDLE_S,
        give_up_s=GIVE_UP_S):
    sink = StampSink()
    command = [build.stamp_worker, sink.path]
    rows = []
    try:
        reference_respawn_us = None
        # fdsupd at the reference size first: the larger run's respawn is set against it.
        for size in sorted({min(reference, count), count}):
            supervisor = peers.Fdsupd(build, command, count=size)
            f = measure(supervisor, sink, size, kills, status_rounds, fdsupd_upgrade, upgrade_rounds, idle_s,
                        give_up_s)
            if reference_respawn_us is None:
                reference_respawn_us = f["respawn median us"]
            rows.append(row(supervisor.name, size, f, reference_respawn_us))
        if peers.installed("supervisord"):
            supervisor = peers.Supervisord(command, count=count)
            try:
                f = measure(supervisor, sink, count, kills, 3, supervisord_reload, 1, idle_s, give_up_s)
                rows.append(row(supervisor.name, count, f, None))
            except GaveUp as gave_up:
                rows.append([supervisor.name, f"{count}", gave_up.what, *["-"] * 10])
    finally:
        sink.close()
    notes = [f"{count} instances of the static stamp worker (stdout and stderr discarded), one run each; fdsupd "
             f"also at {min(reference, count)} instances in the same run, and \"respawn x\" is fdsupd's respawn "
             "median against that one's (what grows with the instances shows there). Idle: over "
             f"{idle_s:.0f} s with nothing happening, from when the supervisor has answered its control socket and "
             "then not run for 0.5 s (the tail of a start-up is not idling: at 10000 fdsupd's last loop turn ends "
             f"milliseconds after the last worker reported) (CPU in clock ticks of {1000 // CLOCK_TICKS} ms; wakeups = "
             "the supervisor's context switches). Status: "
             "`fdsupctl --json status` vs `supervisorctl status`, wall time with the client's start-up, each 0.25 s "
             "after the last (fdsupd reuses a usage sample for 200 ms: each status here gathers anew); fdsupd's "
             "status gathers every instance's usage (CPU, memory, processes, fds: one pass over /proc), and "
             "usage ms is fdsupd's own CPU time for one such gathering, median (a scrape's, "
             "`fdsup_usage_gathering_last_cpu_seconds`; from 256 instances on the /proc reads are shared "
             "between two threads, and this is both threads' CPU, the wall time about half of it). Reload: `fdsupctl reload` of the unchanged config "
             "(re-read, diffed, nothing to apply) vs supervisord's `supervisorctl update`, wall time, median; "
             "no worker may start meanwhile. Respawn: "
             f"{kills} SIGKILLs of random instances. Upgrade: `fdsupctl upgrade`, the new image adopting every "
             "worker; supervisord cannot replace itself, and its `reload` restarts every program (the figure is "
             f"until all run again). supervisord is given {give_up_s:.0f} s to have all running, or is stopped "
             "there and its row says how many ran (or, if it exits, how many had started)."]
    if not peers.installed("supervisord"):
        notes.append("supervisord is not installed, so its row is missing (`./dev.sh bench` installs it).")
    report.section(f"Scale: {count} worker instances",
                   ["supervisor", "instances", "all running s", "idle CPU ms", "idle wakeups", "RSS MiB", "status ms",
                    "usage ms", "reload ms", "respawn median us", "respawn p99 us", "respawn x", "upgrade ms"],
                   rows, notes)
