#!/usr/bin/env python3
"""fdsup benchmarks (run by hand: ./dev.sh bench). Prints figures; asserts nothing.

1. Respawn latency: SIGKILL of a worker -> its replacement's main() running, measured
   with CLOCK_MONOTONIC on both sides (the kill here, the stamp in the new process),
   for fdsupd and for bare_respawner (the floor: pidfd wait + posix_spawn, nothing else)
   in interleaved rounds of one run.
2. Spawn cost vs supervisor RSS (spawn_cost): the launcher vs fork+exec vs posix_spawn.
3. Control round trip: `fdsupctl --json status` with N worker instances (default 1000),
   and the same request over a raw socket (without fdsupctl's own start-up).
4. Restarts under load: load_client (4 threads, a new connection per request) against
   2 http_worker instances that take 300 ms to send READY=1; failed requests, p99 and
   max latency with no restarts, during N rolling restarts, and during N stop-start
   restarts, in one run.
5. Upgrade pause: `fdsupctl upgrade` with 10 and 1,000 worker instances (output to
   /dev/null), and 1,000 with stdout and stderr captured: the command, its pre-flight,
   the pause from the exec to the new image serving again, and from the request to
   the new image answering `status`.

usage: run.py BUILD_DIR [--kills N] [--large-rss-mib M] [--restarts N] [--only WHAT]
"""
import argparse
import json
import os
import shutil
import socket
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

CONFIG = """
[workers.stamp]
command = ["{stamp}", "{sink}"]
healthy_after = "0ms"
start_limit_burst = 100000
"""


def measure_respawns(start_supervisor, sink, kills):
    """Kills the worker `kills` times; returns the kill -> replacement main() delays in us."""
    def next_stamp():
        stamp_ns, pid = sink.recv(64).split()
        return int(stamp_ns), int(pid)

    stop = start_supervisor()
    try:
        _, pid = next_stamp()
        samples = []
        for _ in range(kills):
            t_kill = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
            os.kill(pid, signal.SIGKILL)
            stamp_ns, pid = next_stamp()
            samples.append((stamp_ns - t_kill) / 1000.0)
    finally:
        stop()
    return sorted(samples)


def summary(samples):
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    return statistics.median(samples), p99, samples[-1]


def respawn_latency(build, kills):
    os.environ["FDSUPD"] = os.path.join(build, "supervisord", "fdsupd")
    import fdsup_harness
    stamp = os.path.join(build, "tests", "bench", "stamp_worker")
    tmp = tempfile.mkdtemp(prefix="fdsup-bench-")
    sink_path = os.path.join(tmp, "stamps.sock")
    sink = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sink.bind(sink_path)
    sink.settimeout(30)

    def start_fdsupd():
        d = fdsup_harness.Fdsupd(CONFIG.format(stamp=stamp, sink=sink_path))
        d.log_level = "warn"  # the log is not what is measured; keep its writes off the path
        d.start()
        return lambda: (d.stop(), d.cleanup())

    def start_bare():
        p = subprocess.Popen([os.path.join(build, "tests", "bench", "bare_respawner"), stamp, sink_path])

        def stop():
            p.kill()
            p.wait()
            for line in subprocess.run(["pgrep", "-f", f"{stamp} {sink_path}"], capture_output=True,
                                       text=True).stdout.split():
                os.kill(int(line), signal.SIGKILL)
        return stop

    try:
        results = {}
        # Interleaved rounds, so drift in the machine's load hits both alike.
        for _ in range(2):
            for name, start in (("fdsupd", start_fdsupd), ("bare", start_bare)):
                results.setdefault(name, []).extend(measure_respawns(start, sink, kills // 2))
    finally:
        sink.close()
        shutil.rmtree(tmp, ignore_errors=True)
    fd_med, fd_p99, fd_max = summary(sorted(results["fdsupd"]))
    bare_med, bare_p99, bare_max = summary(sorted(results["bare"]))
    print(f"respawn latency, SIGKILL -> replacement main(), {kills} kills each:")
    print(f"  fdsupd           median {fd_med:7.0f} us   p99 {fd_p99:7.0f} us   max {fd_max:7.0f} us")
    print(f"  bare respawner   median {bare_med:7.0f} us   p99 {bare_p99:7.0f} us   max {bare_max:7.0f} us")
    print(f"  fdsupd / bare (median): {fd_med / bare_med:.2f}x   fdsupd's own share: {fd_med - bare_med:.0f} us")


def status_round_trip(build, instances, rounds):
    os.environ["FDSUPD"] = os.path.join(build, "supervisord", "fdsupd")
    import fdsup_harness
    ctl = os.path.join(build, "ctl", "fdsupctl")
    d = fdsup_harness.Fdsupd(f'''
[workers.sleeper]
command = ["/bin/sleep", "100000"]
instances = {instances}
stdout = "null"
stderr = "null"
''')
    d.log_level = "warn"
    d.start()
    try:
        def all_running():
            r = subprocess.run([ctl, "-s", d.control_socket, "--json", "status"], capture_output=True, text=True)
            if r.returncode != 0:
                return False
            import json
            inst = json.loads(r.stdout)["workers"][0]["instances"]
            return all(i["state"] == "running" for i in inst)
        fdsup_harness.wait_until(all_running, timeout=120, interval=0.2, what="all instances running")
        ctl_ms, raw_ms, size = [], [], 0
        for _ in range(rounds):
            t0 = time.perf_counter()
            r = subprocess.run([ctl, "-s", d.control_socket, "--json", "status"], capture_output=True, text=True,
                               check=True)
            ctl_ms.append((time.perf_counter() - t0) * 1000)
            size = len(r.stdout)
            s = socket.socket(socket.AF_UNIX)
            s.connect(d.control_socket)
            t0 = time.perf_counter()
            s.sendall(b'{"cmd":"status"}\n')
            data = b""
            while not data.endswith(b"\n"):
                data += s.recv(1 << 20)
            raw_ms.append((time.perf_counter() - t0) * 1000)
            s.close()
    finally:
        d.stop(timeout=120)
        d.cleanup()
    print(f"control round trip, status --json with {instances} instances ({size} bytes), {rounds} rounds:")
    print(f"  fdsupctl --json status   median {statistics.median(ctl_ms):6.1f} ms   max {max(ctl_ms):6.1f} ms")
    print(f"  raw socket request       median {statistics.median(raw_ms):6.1f} ms   max {max(raw_ms):6.1f} ms")


RESTART_CONFIG = """
[sockets.http]
listen = "tcp://127.0.0.1:0"
backlog = 4096
[workers.web]
command = ["{http_worker}", "--notify", "--startup-delay-ms", "300"]
instances = 2
sockets = ["http"]
ready = "notify"
restart_strategy = "{strategy}"
stdout = "null"
"""


def restarts_under_load(build, restarts):
    os.environ["FDSUPD"] = os.path.join(build, "supervisord", "fdsupd")
    import fdsup_harness
    ctl = os.path.join(build, "ctl", "fdsupctl")
    fdsup_harness.FDSUPCTL = ctl
    load_client = os.path.join(build, "tests", "load_client")
    http_worker = os.path.join(build, "tests", "http_worker")

    def under_load(strategy, rounds):
        d = fdsup_harness.Fdsupd(RESTART_CONFIG.format(http_worker=http_worker, strategy=strategy))
        d.log_level = "warn"
        d.start()
        try:
            d.wait_control()
            host, port = fdsup_harness.wait_until(lambda: _bound(ctl, d.control_socket), what="bound socket")
            fdsup_harness.wait_until(lambda: _all_ready(ctl, d.control_socket), what="ready")
            load = subprocess.Popen([load_client, host, str(port), "--concurrency", "4"], stdout=subprocess.PIPE,
                                    text=True)
            try:
                t0 = time.monotonic()
                if rounds == 0:
                    time.sleep(10)
                for _ in range(rounds):
                    subprocess.run([ctl, "-s", d.control_socket, "restart", "web"], check=True, capture_output=True)
                elapsed = time.monotonic() - t0
            finally:
                load.send_signal(signal.SIGTERM)
                result = json.loads(load.communicate(timeout=60)[0])
        finally:
            d.stop(timeout=60)
            d.cleanup()
        failed = result["requests"] - result["ok"]
        return result, failed, elapsed

    rows = [("no restarts (10 s)", under_load("rolling", 0)),
            (f"{restarts} rolling restarts", under_load("rolling", restarts)),
            (f"{restarts} stop-start restarts", under_load("stop-start", restarts))]
    print(f"restarts under load: 2 instances ready 300 ms after exec, load_client -c 4, one run:")
    print(f"  {'':28} {'requests':>9} {'failed':>7} {'p50 us':>8} {'p99 us':>8} {'max us':>8} {'seconds':>8}")
    for label, (r, failed, elapsed) in rows:
        print(f"  {label:28} {r['requests']:9d} {failed:7d} {r['p50_us']:8d} {r['p99_us']:8d} {r['max_us']:8d} "
              f"{elapsed:8.1f}")
    base = rows[0][1][0]
    rolling = rows[1][1][0]
    print(f"  rolling vs no restarts: p99 {rolling['p99_us'] / max(base['p99_us'], 1):.2f}x, "
          f"max {rolling['max_us'] / max(base['max_us'], 1):.2f}x")


def upgrade_pause(build, counts, rounds):
    """`fdsupctl upgrade` with N sleeper instances: the whole command (pre-flight included)
    and, from fdsupd's log, the pause itself: exec of the new image -> state restored and
    the control socket served again."""
    os.environ["FDSUPD"] = os.path.join(build, "supervisord", "fdsupd")
    import fdsup_harness
    import re
    from datetime import datetime
    ctl = os.path.join(build, "ctl", "fdsupctl")
    stamp = re.compile(r"^(\S+ \S+) \w+ +(upgrade: trying out|upgrade: exec|upgrade done)", re.M)
    print(f"upgrade pause ({rounds} upgrades per row; medians):")
    print("  instances  output   fdsupctl upgrade   pre-flight   exec -> restored   then status answered")
    for count, output in counts:
        d = fdsup_harness.Fdsupd(SLEEPERS.format(count=count, output=output))
        d.log_level = "info"
        d.start()
        try:
            def all_running():
                status = _status(ctl, d.control_socket)
                return status and all(i["state"] == "running" for i in status["workers"][0]["instances"])
            fdsup_harness.wait_until(all_running, timeout=120, interval=0.2, what="all instances running")
            whole, status_after = [], []
            for _ in range(rounds):
                t0 = time.perf_counter()
                subprocess.run([ctl, "-s", d.control_socket, "upgrade"], check=True, capture_output=True)
                t1 = time.perf_counter()
                s = socket.socket(socket.AF_UNIX)
                s.connect(d.control_socket)
                s.sendall(b'{"cmd":"status"}\n')
                data = b""
                while not data.endswith(b"\n"):
                    data += s.recv(1 << 20)
                s.close()
                whole.append((t1 - t0) * 1000)
                status_after.append((time.perf_counter() - t0) * 1000)
            times = [(datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f"), m.group(2))
                     for m in stamp.finditer(d.log())]
            preflight, pause = [], []
            for i in range(len(times) - 2):
                if [t[1] for t in times[i:i + 3]] == ["upgrade: trying out", "upgrade: exec", "upgrade done"]:
                    preflight.append((times[i + 1][0] - times[i][0]).total_seconds() * 1000)
                    pause.append((times[i + 2][0] - times[i + 1][0]).total_seconds() * 1000)
        finally:
            d.stop(timeout=120)
            d.cleanup()
        print(f"  {count:9d}  {output:6s}   {statistics.median(whole):13.1f} ms   {statistics.median(preflight):7.1f} ms"
              f"   {statistics.median(pause):13.1f} ms   {statistics.median(status_after):17.1f} ms")


SLEEPERS = """
[workers.sleeper]
command = ["/bin/sleep", "100000"]
instances = {count}
stdout = "{output}"
stderr = "{output}"
"""


def _status(ctl, control_socket):
    r = subprocess.run([ctl, "-s", control_socket, "--json", "status"], capture_output=True, text=True)
    return json.loads(r.stdout) if r.returncode == 0 else None


def _bound(ctl, control_socket):
    status = _status(ctl, control_socket)
    if not status:
        return None
    host, _, port = status["sockets"][0]["bound"].rpartition(":")
    return host, int(port)


def _all_ready(ctl, control_socket):
    status = _status(ctl, control_socket)
    return status and all(i["ready"] for i in status["workers"][0]["instances"])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("build")
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--large-rss-mib", type=int, default=2048)
    parser.add_argument("--spawns", type=int, default=200)
    parser.add_argument("--status-instances", type=int, default=1000)
    parser.add_argument("--status-rounds", type=int, default=30)
    parser.add_argument("--restarts", type=int, default=20)
    parser.add_argument("--upgrade-rounds", type=int, default=5)
    parser.add_argument("--only", choices=["respawn", "spawn", "status", "restarts", "upgrade"])
    args = parser.parse_args()
    build = os.path.abspath(args.build)
    if args.only in (None, "respawn"):
        respawn_latency(build, args.kills)
    if args.only in (None, "spawn"):
        subprocess.run([os.path.join(build, "tests", "bench", "spawn_cost"), str(args.spawns),
                        str(args.large_rss_mib)], check=True)
    if args.only in (None, "status"):
        status_round_trip(build, args.status_instances, args.status_rounds)
    if args.only in (None, "restarts"):
        restarts_under_load(build, args.restarts)
    if args.only in (None, "upgrade"):
        # "log": two captured pipes per instance, also carried across the exec.
        upgrade_pause(build, ((10, "null"), (1000, "null"), (1000, "log")), args.upgrade_rounds)


if __name__ == "__main__":
    main()
