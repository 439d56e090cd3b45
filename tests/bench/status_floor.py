#!/usr/bin/env python3
"""`fdsupctl --json status` against its floor, in one run:

  python3 tests/bench/status_floor.py BUILD_DIR [--instances 10000] [--rounds 9]

A status gathers every instance's usage for its reply: the stat of every process in
/proc and the open fds of each instance, most of it the kernel's work. This VM's speed
moves by half from one minute to the next, so a status time alone says little: each
round times a status (the whole command, the client's start-up included) and then,
with the same instances running, proc_floor (the same /proc reads on two threads,
nothing else), 0.25 s apart (fdsupd reuses a sample younger than 200 ms). Read the
ratios (of the medians, and of the minimums: here a status took either about 117 ms or
about 167 ms, from one round to the next, for a cause not found); the floor is what no
way of reading /proc file by file gets under here.
Static sleepers, output discarded. Run by hand; not part of run.py."""
import argparse
import json
import subprocess
import time

from bench_lib import Build, median  # first: it puts the integration tests' harness on the path
import fdsup_harness
import peers
import upgrade


def instance_pids(supervisor, count):
    """The main pids of all `count` instances once every one runs."""
    pids = []

    def all_running():
        r = subprocess.run(supervisor.ctl("--json", "status"), capture_output=True, text=True)
        if r.returncode != 0:
            return False
        instances = json.loads(r.stdout)["workers"][0]["instances"]
        pids[:] = [i["pid"] for i in instances if i["state"] == "running"]
        return len(pids) == count
    fdsup_harness.wait_until(all_running, timeout=600, interval=0.5, what=f"all {count} instances running")
    return pids


def floor_ms(build, pids):
    out = subprocess.run([build.proc_floor, "1", *map(str, pids)], capture_output=True, text=True, check=True,
                         timeout=300).stdout
    return float(out.split()[0])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("build")
    parser.add_argument("--instances", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    build = Build(args.build)
    count = upgrade.allow_fds(args.instances, "null")
    supervisor = peers.Fdsupd(build, ["/bin/sleep", "100000"], count=count, output="null").start()
    status, floor = [], []
    try:
        pids = instance_pids(supervisor, count)
        for _ in range(args.rounds):
            time.sleep(0.25)
            t0 = time.perf_counter()
            subprocess.run(supervisor.ctl("--json", "status"), check=True, stdout=subprocess.DEVNULL, timeout=300)
            status.append((time.perf_counter() - t0) * 1000)
            time.sleep(0.25)
            floor.append(floor_ms(build, pids))
    finally:
        supervisor.stop()
    print(f"{count} instances, {args.rounds} rounds (status, then the floor, 0.25 s apart)")
    print(f"  fdsupctl --json status   median {median(status):7.1f} ms   min {min(status):7.1f}")
    print(f"  /proc floor (proc_floor) median {median(floor):7.1f} ms   min {min(floor):7.1f}")
    print(f"  status vs floor          {median(status) / median(floor):.2f}x (minimums {min(status) / min(floor):.2f}x)")


if __name__ == "__main__":
    main()
