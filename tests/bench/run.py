#!/usr/bin/env python3
"""fdsup benchmarks: `./dev.sh bench` (or `python3 tests/bench/run.py BUILD_DIR`).

Runs every benchmark against the peers operators would otherwise use, prints one table per
benchmark, and writes them all as Markdown (with the machine and date) to RESULTS.md, and
the latency-over-time plot of the restart phases beside it. Asserts nothing about speed:
figures are medians and ratios measured in one run.

  respawn   SIGKILL -> replacement main(): fdsupd, supervisord, runsv, s6-supervise and a
            bare pidfd + posix_spawn loop (the floor), same static worker; the
            stages of fdsupd's and the floor's, traced by perf  (respawn.py, respawn_stages.py)
  restarts  errors and latency while restarting under load: fdsupd rolling, fdsupd
            stop-start, supervisord restart; the plot                        (restarts.py)
  spawn     the launcher vs fork+exec vs posix_spawn at 10 MiB and 2 GiB RSS (spawn.py)
  scale     10,000 instances (and fdsupd at 2,000 too, for the ratios): all running,
            idle CPU/wakeups/RSS, status, reload, respawn, upgrade; fdsupd and
            supervisord (given 5 minutes to have all running)                (scale.py)
  upgrade   fdsupd's upgrade pause and its phases at 10, 2,000 and 10,000 instances, output
            discarded/captured; the new image's steps                        (upgrade.py)
  health    rolling restarts of a slow-starting Node.js app, ready = "accepting" vs "exec";
            CPU per start of "accepting"; idle cost of 100 instances with a 1 s
            liveness probe each (tcp, http) against none                     (health.py)
  app_peers what users pick instead for zero-downtime restarts, the same Node.js app
            under each: fdsupctl restart vs `pm2 reload` (cluster mode) vs
            Server::Starter's SIGHUP under load; respawn, RSS with 2 and 100
            instances and the time for all 100 to listen, fdsupd vs pm2; the plot
            gains their phases. pm2 comes from the npm registry into
            BUILD_DIR/bench-peers (pm2_peer.py); if the registry cannot be reached
            its rows are skipped, saying so                                  (app_peers.py)

--smoke runs each with tiny counts into a temp dir (ctest's "bench: smoke", so none rots).
Only a full run writes tests/bench/RESULTS.md; with --only or --smoke, --results FILE
says where the Markdown (and the plot, beside it) should go.

usage: run.py BUILD_DIR [--only NAME] [--smoke] [--results FILE] [--kills N] [--restarts N]
              [--instances N] [--reference-instances N] [--large-rss-mib M] [--app-instances N]
"""
import argparse
import os
import shutil
import sys
import tempfile

import plot
import report as report_module
import app_peers
import health
import respawn
import restarts
import scale
import spawn
import upgrade
from bench_lib import HERE, Build

BENCHMARKS = ["respawn", "restarts", "spawn", "scale", "upgrade", "health", "app_peers"]
TABLES = {"health": 3, "app_peers": 2, "respawn": 2, "upgrade": 2}  # the tables a benchmark writes, if more than one


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("build")
    parser.add_argument("--only", choices=BENCHMARKS, action="append")
    parser.add_argument("--smoke", action="store_true", help="tiny counts, results in a temp dir")
    parser.add_argument("--results", help="where the Markdown goes (a full run: tests/bench/RESULTS.md)")
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--restarts", type=int, default=5)
    parser.add_argument("--instances", type=int, default=10000)
    parser.add_argument("--reference-instances", type=int, default=2000,
                        help="scale's smaller fdsupd run, which its ratios are against")
    parser.add_argument("--large-rss-mib", type=int, default=2048)
    parser.add_argument("--app-instances", type=int, default=100, help="app_peers: the Node.js instances started")
    args = parser.parse_args()
    build = Build(args.build)
    chosen = args.only or BENCHMARKS
    work = tempfile.mkdtemp(prefix="fdsup-bench-out-")
    if args.smoke:
        sizes = dict(kills=2, restarts=1, instances=20, scale_reference=10, scale_kills=3, status_rounds=2,
                     upgrade_rounds=1, idle_s=1.0, spawns=5, large_rss_mib=64, upgrade_cases=((10, "null"), (20, "log")),
                     health_starts=3, health_idle=5, app_kills=2, app_instances=2, app_every=2.0)
    else:
        sizes = dict(kills=args.kills, restarts=args.restarts, instances=args.instances,
                     # Scale's respawns take a millisecond each: 200 of them steady the
                     # 10,000-against-2,000 ratio (50 moved it by 0.4 between runs).
                     scale_reference=args.reference_instances, scale_kills=max(args.kills, 200),
                     status_rounds=10, upgrade_rounds=5, idle_s=scale.IDLE_S, spawns=200,
                     large_rss_mib=args.large_rss_mib,
                     # 10,000 with output captured needs ~30,000 fds: where the hard RLIMIT_NOFILE is
                     # lower and cannot be raised, upgrade.py runs as many as fit and says so.
                     upgrade_cases=((10, "null"), (args.reference_instances, "null"), (args.reference_instances, "log"),
                                    (args.instances, "null"), (args.instances, "log")),
                     health_starts=100, health_idle=100, app_kills=20, app_instances=args.app_instances,
                     app_every=app_peers.RESTART_EVERY)
    # Only a full run replaces the committed RESULTS.md; a partial or smoke run writes its
    # Markdown where --results says (smoke: into its temp dir, to check it).
    results = args.results
    if results is None:
        results = os.path.join(work, "RESULTS.md") if (args.only or args.smoke) else os.path.join(HERE, "RESULTS.md")
    plot_path = os.path.join(os.path.dirname(os.path.abspath(results)), "restart_latency.png")
    report = report_module.Report()
    series = []  # the restart phases' timelines, all in one plot
    try:
        if "respawn" in chosen:
            respawn.run(build, report, sizes["kills"], rounds=1 if args.smoke else 2,
                        **(dict(traced_kills=1, traced_up_before_kill=0.0) if args.smoke else {}))
        if "restarts" in chosen:
            series += restarts.run(build, report, sizes["restarts"], work)
        if "spawn" in chosen:
            spawn.run(build, report, sizes["spawns"], sizes["large_rss_mib"])
        if "scale" in chosen:
            scale.run(build, report, sizes["instances"], reference=sizes["scale_reference"], kills=sizes["scale_kills"],
                      status_rounds=sizes["status_rounds"], upgrade_rounds=sizes["upgrade_rounds"],
                      idle_s=sizes["idle_s"])
        if "upgrade" in chosen:
            upgrade.run(build, report, sizes["upgrade_cases"], sizes["upgrade_rounds"])
        if "health" in chosen:
            health.run(build, report, sizes["health_starts"], sizes["health_idle"], sizes["idle_s"],
                       restarts=sizes["restarts"])
        if "app_peers" in chosen:
            series += app_peers.run(build, report, sizes["restarts"], sizes["app_kills"], sizes["app_instances"],
                                    work, every=sizes["app_every"])
        if series and plot.draw(series, plot_path, work):
            report.image("Request latency across restarts", plot_path)
        command = "./dev.sh bench" if not (args.only or args.smoke) else " ".join(["run.py", *sys.argv[2:]])
        report.write_markdown(results, command)
        if not results.startswith(work):
            print(f"\nwritten: {results}" + (f", {plot_path}" if report.images else ""))
        if args.smoke:
            check_smoke_output(results, report, sum(TABLES.get(name, 1) for name in chosen))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def check_smoke_output(results, report, expected):
    """The smoke run's one check: every benchmark produced its table (rows and all), and
    the plot, if drawn, is a PNG."""
    with open(results) as f:
        text = f.read()
    missing = [s.title for s in report.sections if f"## {s.title}" not in text or not s.rows]
    if len(report.sections) != expected or missing:
        sys.exit(f"smoke: {len(report.sections)} of {expected} tables written; empty or missing: {missing}")
    for _, image in report.images:
        with open(image, "rb") as f:
            if f.read(8) != b"\x89PNG\r\n\x1a\n":
                sys.exit(f"smoke: {image} is not a PNG")


if __name__ == "__main__":
    main()
