#!/usr/bin/env python3
"""Two builds of fdsupd compared on the respawn, against the floor, in one run:

  python3 tests/bench/ab_respawn.py BUILD_A BUILD_B [--rounds 20] [--kills 10] [--up SECONDS]

A change to the respawn path moves its median by a few percent, about as much as two runs
of one binary differ (the machine's state drifts over minutes). So the builds are not run
one after the other: each round kills --kills workers under the floor (BUILD_A's
bare_respawner: pidfd + posix_spawn), then under A and B, which go first in turns (A, B in
even rounds, B, A in odd ones), and each median is over all rounds. Read the ratios to
the floor; run again with A and B swapped to see how far they move by chance. Needs a quiet machine: anything else running shows as a long tail
(the p90 column). Run by hand, for a change to the respawn path; not part of run.py."""
import argparse
import os

import peers
import respawn
from bench_lib import Build, StampSink, median, percentile


def factory(name, build_dir, command):
    """A fresh supervisor of `name` ("floor", "A", "B") from `build_dir`. Build() points the
    shared fdsupd runner at its own binaries, so each start makes it anew."""
    build = Build(build_dir)
    if name == "floor":
        return peers.BareRespawner(build, command)
    return peers.Fdsupd(build, command)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("build_a")
    parser.add_argument("build_b")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--kills", type=int, default=10, help="per supervisor and round")
    parser.add_argument("--up", type=float, default=respawn.UP_BEFORE_KILL,
                        help="seconds each worker runs before it is killed")
    args = parser.parse_args()
    builds = {"floor": os.path.abspath(args.build_a), "A": os.path.abspath(args.build_a), "B": os.path.abspath(args.build_b)}
    for name, build_dir in builds.items():
        if not os.path.exists(Build(build_dir).fdsupd):
            parser.error(f"{name}: no fdsupd in {build_dir}/supervisord (build it first)")
    sink = StampSink()
    command = [Build(args.build_a).stamp_worker, sink.path]
    samples = {name: [] for name in builds}
    try:
        for round_number in range(args.rounds):
            order = ["floor", "A", "B"] if round_number % 2 == 0 else ["floor", "B", "A"]
            for name in order:
                samples[name] += respawn.measure(factory(name, builds[name], command), sink, args.kills, args.up)
            print(f"round {round_number + 1}/{args.rounds}: " +
                  ", ".join(f"{name} {median(xs):.0f} us" for name, xs in samples.items()), flush=True)
    finally:
        sink.close()
    floor = median(samples["floor"])
    print(f"\n{'':6} {'build':40} {'median us':>10} {'p90 us':>8} {'vs floor':>9}   ({len(samples['floor'])} kills each)")
    for name, build_dir in builds.items():
        xs = samples[name]
        print(f"{name:6} {build_dir[-40:]:40} {median(xs):10.0f} {percentile(xs, 90):8.0f} {median(xs) / floor:8.3f}x")
    print(f"\nB vs A: {median(samples['B']) / median(samples['A']):.3f}x")


if __name__ == "__main__":
    main()
