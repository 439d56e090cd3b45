"""Scale: N instances of the stamp worker (a tiny static C sleeper that reports when its
main() starts) under fdsupd and under supervisord (one [program], numprocs = N):

- all running: supervisor exec'd -> the last of the N workers' main() running;
- idle: the supervisor's CPU time, wakeups (context switches) and RSS over IDLE_S seconds
  of nothing happening;
- status: `fdsupctl --json status` / `supervisorctl status` wall time, median;
- respawn: SIGKILL of a random instance -> its replacement's main(), median and p99;
- upgrade: `fdsupctl upgrade` (the new image adopts every worker) and, with no such
  thing in supervisord, `supervisorctl reload` until all N run again (it restarts them)."""
import os
import random
import signal
import subprocess
import time

import peers
from bench_lib import (CLOCK_TICKS, StampSink, idle_figures, median, monotonic_ns, percentile, timed,
                       wait_for_stamps)

IDLE_S = 10.0


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


def measure(supervisor, sink, count, kills, status_rounds, upgrade, upgrade_rounds, idle_s):
    figures = {}
    try:
        t0 = monotonic_ns()
        supervisor.start()
        started = wait_for_stamps(sink, count, timeout=600)
        figures["all running s"] = (max(started.values()) - t0) / 1e9
        if hasattr(supervisor, "wait_control"):
            supervisor.wait_control()
        cpu_ms, wakeups, rss_mib = idle_figures(supervisor.pid, idle_s)
        figures.update({"idle CPU ms": cpu_ms, "idle wakeups": wakeups, "RSS MiB": rss_mib})
        figures["status ms"] = median([timed(supervisor.ctl(*status_args(supervisor)), timeout=300)
                                       for _ in range(status_rounds)])
        if supervisor.name == "fdsupd":
            figures["usage ms"] = median([last_gathering_ms(supervisor, count) for _ in range(status_rounds)])
        samples = respawns(sink, set(started), kills)
        figures["respawn median us"] = median(samples)
        figures["respawn p99 us"] = percentile(samples, 99)
        figures["upgrade ms"] = median([upgrade(supervisor, sink, count) for _ in range(upgrade_rounds)])
    finally:
        supervisor.stop()
        sink.drain()
    return figures


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


def fdsupd_upgrade(supervisor, sink, count):
    return timed(supervisor.ctl("upgrade"), timeout=300)


def supervisord_reload(supervisor, sink, count):
    """`supervisorctl reload` until every program runs again (reload restarts them all)."""
    t0 = monotonic_ns()
    subprocess.run(supervisor.ctl("reload"), check=True, capture_output=True, timeout=300)
    restarted = wait_for_stamps(sink, count, timeout=600)
    supervisor.wait_control()
    return (max(restarted.values()) - t0) / 1e6


def run(build, report, count, kills=50, status_rounds=10, upgrade_rounds=3, idle_s=IDLE_S):
    sink = StampSink()
    command = [build.stamp_worker, sink.path]
    rows = []
    try:
        # Factories: each supervisor's temp dir is made when it runs, and goes with it.
        runs = [(lambda: peers.Fdsupd(build, command, count=count), fdsupd_upgrade)]
        if peers.installed("supervisord"):
            runs.append((lambda: peers.Supervisord(command, count=count), supervisord_reload))
        for make_supervisor, upgrade in runs:
            supervisor = make_supervisor()
            f = measure(supervisor, sink, count, kills, status_rounds if supervisor.name == "fdsupd" else 3,
                        upgrade, upgrade_rounds if supervisor.name == "fdsupd" else 1, idle_s)
            rows.append([supervisor.name, f"{f['all running s']:.2f}", f"{f['idle CPU ms']:.0f}",
                         f"{f['idle wakeups']}", f"{f['RSS MiB']:.1f}", f"{f['status ms']:.1f}",
                         f"{f['usage ms']:.1f}" if "usage ms" in f else "-",
                         f"{f['respawn median us']:.0f}", f"{f['respawn p99 us']:.0f}",
                         f"{f['upgrade ms']:.0f}" + ("" if supervisor.name == "fdsupd" else " (reload)")])
    finally:
        sink.close()
    notes = [f"{count} instances of the static stamp worker (stdout and stderr discarded), one run. Idle: over "
             f"{idle_s:.0f} s with nothing happening (CPU in clock ticks of {1000 // CLOCK_TICKS} ms; wakeups = the "
             "supervisor's context switches). Status: "
             "`fdsupctl --json status` vs `supervisorctl status`, wall time with the client's start-up; fdsupd's "
             "status gathers every instance's usage (CPU, memory, processes, fds: one pass over /proc), and "
             "usage ms is fdsupd's own CPU time for one such gathering, median (a scrape's, "
             "`fdsup_usage_gathering_last_cpu_seconds`). Respawn: "
             f"{kills} SIGKILLs of random instances. Upgrade: `fdsupctl upgrade`, the new image adopting every "
             "worker; supervisord cannot replace itself, and its `reload` restarts every program (the figure is "
             "until all run again)."]
    if len(rows) == 1:
        notes.append("supervisord is not installed, so its row is missing (`./dev.sh bench` installs it).")
    report.section(f"Scale: {count} worker instances",
                   ["supervisor", "all running s", "idle CPU ms", "idle wakeups", "RSS MiB", "status ms", "usage ms",
                    "respawn median us", "respawn p99 us", "upgrade ms"], rows, notes)
