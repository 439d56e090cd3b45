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
from bench_lib import StampSink, median, monotonic_ns, percentile

UP_BEFORE_KILL = 1.1  # seconds
AT_ONCE = {"fdsupd": "fdsupd, killed at once", "bare respawner": "bare respawner, killed at once"}


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
    ]


def run(build, report, kills, rounds=2):
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
    finally:
        sink.close()
    fdsupd_median = median(results["fdsupd"])
    rows = []
    names = [name for name, factory in supervisors(build, sink) if factory is not None] + list(AT_ONCE.values())
    missing = [name for name, factory in supervisors(build, sink) if factory is None]
    for name in names:
        samples = results[name]
        rows.append([name, f"{median(samples):.0f}", f"{percentile(samples, 99):.0f}", f"{max(samples):.0f}",
                     f"{median(samples) / fdsupd_median:.2f}x"])
    notes = [f"SIGKILL -> replacement main(), {kills} kills each (interleaved rounds, one run); the "
             f"worker is killed once it has run {UP_BEFORE_KILL} s (runsv delays a restart to 1 s after the "
             "previous start; s6-supervise paused 1 s after every death whatever the uptime, and supervisord "
             "answers SIGCHLD only at its once-a-second poll timeout). The bare respawner (pidfd + posix_spawn, nothing else) is the floor. \"Killed at "
             "once\": each replacement is killed as soon as it reports, the cadence of a crash loop."]
    if missing:
        notes.append("Not installed, so not measured: " + ", ".join(missing) + " (`./dev.sh bench` installs them).")
    report.section("Respawn latency", ["supervisor", "median us", "p99 us", "max us", "median vs fdsupd"], rows,
                   notes)
    return results
