#!/usr/bin/env python3
"""fdsup benchmarks (run by hand: ./dev.sh bench). Prints figures; asserts nothing.

1. Respawn latency: SIGKILL of a worker -> its replacement's main() running, measured
   with CLOCK_MONOTONIC on both sides (the kill here, the stamp in the new process).
2. Spawn cost vs supervisor RSS (spawn_cost): the launcher vs fork+exec vs posix_spawn.

usage: run.py BUILD_DIR [--kills N] [--large-rss-mib M]
"""
import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

CONFIG = """
[workers.stamp]
command = ["{stamp}"]
healthy_after = "0ms"
start_limit_burst = 100000
"""


def respawn_latency(build, kills):
    os.environ["FDSUPD"] = os.path.join(build, "supervisord", "fdsupd")
    import fdsup_harness
    stamp = os.path.join(build, "tests", "bench", "stamp_worker")
    d = fdsup_harness.Fdsupd(CONFIG.format(stamp=stamp))
    d.extra_args = []
    d.start()
    regex = re.compile(r"stamp\[0\]: stamp (\d+) (\d+)")
    try:
        def latest():
            m = regex.findall(d.log())
            return (int(m[-1][0]), int(m[-1][1])) if m else None
        _, pid = fdsup_harness.wait_until(latest, what="first stamp")
        samples = []
        for _ in range(kills):
            t_kill = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
            os.kill(pid, signal.SIGKILL)
            stamp_ns, new_pid = fdsup_harness.wait_until(
                lambda: (lambda s: s if s and s[1] != pid else None)(latest()), what="respawn", interval=0.001)
            samples.append((stamp_ns - t_kill) / 1000.0)
            pid = new_pid
        d.stop()
    finally:
        d.cleanup()
    samples.sort()
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    print(f"respawn latency over {kills} kills (SIGKILL -> replacement main()): "
          f"median {statistics.median(samples):.0f} us, p99 {p99:.0f} us, max {samples[-1]:.0f} us")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("build")
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--large-rss-mib", type=int, default=2048)
    parser.add_argument("--spawns", type=int, default=200)
    args = parser.parse_args()
    build = os.path.abspath(args.build)
    respawn_latency(build, args.kills)
    subprocess.run([os.path.join(build, "tests", "bench", "spawn_cost"), str(args.spawns),
                    str(args.large_rss_mib)], check=True)


if __name__ == "__main__":
    main()
