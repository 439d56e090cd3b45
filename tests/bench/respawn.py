"""Respawn latency: SIGKILL of a worker -> its replacement's main() running, measured
with CLOCK_MONOTONIC on both sides (the kill here, the stamp in the new process), for
every supervisor compared, with the same static stamp_worker, in one run.

runsv holds a restart back until 1 s after the previous start (so a crashing service does
not spin; s6-supervise keeps a 1 s pause too, and here took it after every death,
whatever the uptime); every worker is therefore killed only once it has run
UP_BEFORE_KILL, under every supervisor alike, so no figure includes that pause. fdsupd
and the bare respawner are also measured killing each replacement at once (steady churn:
caches warm, the CPUs never idle long enough to sleep deeply), the cadence of a crash loop."""
import os
import signal
import time

import peers
import respawn_stages
from bench_lib import StampSink, median, monotonic_ns, percentile

UP_BEFORE_KILL = 1.1  # seconds
AT_ONCE = {"fdsupd": "fdsupd, killed at once", "bare respawner": "bare respawner, killed at once"}
TRACED = ["fdsupd", "bare respawner", "bare respawner, own session"]


def kill_and_wait(sink, pid, started_ns, up_before_kill):
    """Kills `pid` once it has run `up_before_kill` seconds; returns (replacement pid, its
    stamp, kill -> stamp in us)."""
    wait = started_ns / 1e9 + up_before_kill - monotonic_ns() / 1e9
    if wait > 0:
        time.sleep(wait)
    t_kill = monotonic_ns()
    os.kill(pid, signal.SIGKILL)
    stamp_ns, new_pid = sink.next()
    return new_pid, stamp_ns, (stamp_ns - t_kill) / 1000.0


def measure(supervisor, sink, kills, up_before_kill=UP_BEFORE_KILL):
    samples = []
    try:
        supervisor.start()
        stamp_ns, pid = sink.next()
        for _ in range(kills):
            pid, stamp_ns, delay_us = kill_and_wait(sink, pid, stamp_ns, up_before_kill)
            samples.append(delay_us)
    finally:
        supervisor.stop()
        sink.drain()
    return samples


def supervisors(build, sink):
    """(name, factory) of each supervisor compared; None as factory if not installed."""
    command = [build.stamp_worker, sink.path]
    env = {"BENCH_STAMP_SINK": sink.path}
    return [
        ("fdsupd", lambda: peers.Fdsupd(build, command)),
        ("supervisord", (lambda: peers.Supervisord(command)) if peers.installed("supervisord") else None),
        ("runsv", (lambda: peers.Runsv(build.stamp_worker, env)) if peers.installed("runsv") else None),
        ("s6-supervise", (lambda: peers.S6Supervise(build.stamp_worker, env))
         if peers.installed("s6-supervise") else None),
        ("bare respawner", lambda: peers.BareRespawner(build, command)),
        ("bare respawner, own session", lambda: own_session(peers.BareRespawner(build, command))),
    ]


def own_session(respawner):
    """The floor doing one more thing fdsupd must: each worker in its own session."""
    respawner.argv.insert(1, "--setsid")
    return respawner


def stage_breakdown(build, sink, kills, up_before_kill):
    """{name: {stage: [us]}} for fdsupd and the floor, traced kills in interleaved rounds;
    or the reason perf cannot trace here."""
    why_not = respawn_stages.available()
    if why_not is not None:
        return why_not
    traced = {}
    factories = [(name, factory) for name, factory in supervisors(build, sink) if name in TRACED]
    rounds = min(2, kills)
    for round_index in range(rounds):
        for name, factory in factories:
            share = kills // rounds + (1 if round_index < kills % rounds else 0)
            stages = respawn_stages.measure(factory(), sink, share, up_before_kill, kill_and_wait)
            for stage, samples in stages.items():
                traced.setdefault(name, {}).setdefault(stage, []).extend(samples)
    return traced


def report_stages(report, traced, kills, up_before_kill):
    if isinstance(traced, str):
        report.section("Respawn stages", ["supervisor", *respawn_stages.STAGES], [["-"] * 7],
                       [f"Not measured: {traced}."])
        return
    rows = [[name, *respawn_stages.summary(stages)] for name, stages in traced.items()]
    seen = {name: len(stages[respawn_stages.STAGES[0]]) for name, stages in traced.items()}
    report.section("Respawn stages", ["supervisor", *(s + " us" for s in respawn_stages.STAGES)], rows,
                   [f"Median of each stage over {kills} traced kills per supervisor (seen whole: "
                    + ", ".join(f"{name} {n}" for name, n in seen.items()) + "), killed once the worker has "
                    f"run {up_before_kill} s, interleaved rounds, separate from the figures above: the stages are "
                    "timestamped by the kernel's tracepoints from outside (`perf record -a -k CLOCK_MONOTONIC`: "
                    "the worker's sched_process_exit, the supervisor's first epoll_wait/poll return after it, "
                    "its waitid, its clone/clone3, the replacement's sched_process_exec, then its own stamp in "
                    "main()), the same for both, changing neither; tracing adds a little to each."])


def run(build, report, kills, rounds=2, traced_kills=None, traced_up_before_kill=UP_BEFORE_KILL):
    sink = StampSink()
    try:
        results = {}
        # Interleaved rounds, so drift in the machine's load hits every supervisor alike.
        for round_index in range(rounds):
            share = kills // rounds + (1 if round_index < kills % rounds else 0)
            for name, factory in supervisors(build, sink):
                if factory is not None:
                    results.setdefault(name, []).extend(measure(factory(), sink, share))
                if name in AT_ONCE:
                    results.setdefault(AT_ONCE[name], []).extend(measure(factory(), sink, share, 0.0))
        traced = stage_breakdown(build, sink, traced_kills if traced_kills is not None else min(kills, 20),
                                 traced_up_before_kill)
    finally:
        sink.close()
    fdsupd_median = median(results["fdsupd"])
    rows = []
    names = [name for name, factory in supervisors(build, sink) if factory is not None] + list(AT_ONCE.values())
    missing = [name for name, factory in supervisors(build, sink) if factory is None]
    for name in names:
        samples = results[name]
        floor = median(results["bare respawner, killed at once" if name in AT_ONCE.values() else "bare respawner"])
        rows.append([name, f"{median(samples):.0f}", f"{percentile(samples, 99):.0f}", f"{max(samples):.0f}",
                     f"{median(samples) / fdsupd_median:.2f}x", f"{median(samples) / floor:.2f}x"])
    notes = [f"SIGKILL -> replacement main(), {kills} kills each (interleaved rounds, one run); the "
             f"worker is killed once it has run {UP_BEFORE_KILL} s (runsv delays a restart to 1 s after the "
             "previous start; s6-supervise paused 1 s after every death whatever the uptime, and supervisord "
             "answers SIGCHLD only at its once-a-second poll timeout). The bare respawner (pidfd + posix_spawn, nothing else) is the floor; "
             "\"own session\": the same with POSIX_SPAWN_SETSID, as fdsupd starts every worker (a session is a "
             "scheduler autogroup here, made at the spawn and freed at the exit; a new group also waits its turn "
             "behind busy ones). \"Killed at once\": each replacement is killed as soon as it reports, the cadence "
             "of a crash loop."]
    if missing:
        notes.append("Not installed, so not measured: " + ", ".join(missing) + " (`./dev.sh bench` installs them).")
    report.section("Respawn latency", ["supervisor", "median us", "p99 us", "max us", "median vs fdsupd",
                                       "median vs floor"], rows, notes)
    report_stages(report, traced, traced_kills if traced_kills is not None else min(kills, 20),
                  traced_up_before_kill)
    return results
