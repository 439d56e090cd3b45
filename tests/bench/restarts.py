"""Restarts under load: load_client (a new connection per request) against 2 http_worker
instances that take STARTUP_MS to initialise, while the worker is restarted every
RESTART_EVERY seconds: fdsupd rolling (the socket stays open, one instance at a time,
gated on READY=1), fdsupd stop-start (the socket stays open, both instances at once),
and supervisord `restart` (each app binds its own socket with SO_REUSEPORT, as apps
under supervisord do; stop, then start). Each phase keeps load_client's timeline (10 ms
slots) for the plot; the restart requests are placed on the same clock."""
import json
import os
import signal
import subprocess
import time

import peers
from bench_lib import fdsup_harness, free_tcp_port, monotonic_ns

STARTUP_MS = 300
RESTART_EVERY = 3.0  # seconds between restart requests
QUIET = 1.0  # seconds of load before the first restart and after the last


def fdsupd_phase(build, strategy, command=None, ready="notify", env=""):
    """fdsupd with 2 instances of `command` (default: http_worker, saying READY=1 after
    STARTUP_MS) on one socket it keeps open; `env`: a TOML inline table's contents."""
    if command is None:
        command = [build.http_worker, "--notify", "--startup-delay-ms", str(STARTUP_MS)]
    toml_command = ", ".join(f'"{part}"' for part in command)
    env_line = f"env = {{ {env} }}" if env else ""
    toml = f"""
[sockets.http]
listen = "tcp://127.0.0.1:0"
backlog = 4096
[workers.web]
command = [{toml_command}]
instances = 2
sockets = ["http"]
ready = "{ready}"
{env_line}
restart_strategy = "{strategy}"
stdout = "null"
"""
    d = fdsup_harness.Fdsupd(toml)
    d.log_level = "warn"

    def start():
        d.start()
        d.wait_control()
        fdsup_harness.wait_until(lambda: all(i["ready"] for i in d.ctl_json("status")["workers"][0]["instances"]),
                                 what="web ready")
        host, _, port = d.ctl_json("status")["sockets"][0]["bound"].rpartition(":")
        return host, int(port)

    def stop():
        try:
            if d.proc is not None:  # started (a failed start is only cleaned up)
                d.stop(timeout=60)
        finally:
            d.cleanup()
    restart = [build.fdsupctl, "-s", d.control_socket, "restart", "web"]
    return start, restart, stop


def supervisord_phase(build):
    port = free_tcp_port()
    command = [build.http_worker, "--startup-delay-ms", str(STARTUP_MS), "--listen", str(port)]
    # startsecs = 1 (supervisord's default): `restart` returns once the new processes
    # have stayed up a second.
    s = peers.Supervisord(command, count=2, startsecs=1)

    def start():
        s.start()
        s.wait_control()
        wait_serving(port, timeout=60)
        return "127.0.0.1", port
    return start, s.ctl("restart", "w:*"), s.stop


def wait_serving(port, timeout):
    """Until an app that binds its own socket answers on 127.0.0.1:port."""
    def serving():
        try:
            return fdsup_harness.http_get("127.0.0.1", port, timeout=1)
        except OSError:
            return None
    fdsup_harness.wait_until(serving, timeout=timeout, interval=0.05, what=f"127.0.0.1:{port} serving")


def run_phase(build, phase, restarts, timeline_path, every=RESTART_EVERY):
    """Runs one phase, a restart requested every `every` seconds (or as soon as the
    previous one returned, if it took longer); returns (load_client's result, restart
    offsets in seconds)."""
    start, restart_command, stop = phase
    restart_times = []
    try:
        host, port = start()
        load = subprocess.Popen([build.load_client, host, str(port), "--concurrency", "4", "--timeline",
                                 timeline_path], stdout=subprocess.PIPE, text=True)
        try:
            began_ns = monotonic_ns()
            for k in range(restarts):
                wait = began_ns / 1e9 + QUIET + k * every - monotonic_ns() / 1e9
                if wait > 0:
                    time.sleep(wait)
                restart_times.append(monotonic_ns())
                subprocess.run(restart_command, check=True, capture_output=True, timeout=120)
            wait = began_ns / 1e9 + QUIET + restarts * every - monotonic_ns() / 1e9
            if wait > 0:
                time.sleep(wait)
        finally:
            output = stop_load_client(load)
    finally:
        stop()
    result = json.loads(output)
    offsets = [(t - result["start_monotonic_ns"]) / 1e9 for t in restart_times]
    return result, offsets


def stop_load_client(load):
    """SIGTERM (it prints its results and writes the timeline), SIGKILL if it hangs."""
    load.send_signal(signal.SIGTERM)
    try:
        return load.communicate(timeout=60)[0]
    except subprocess.TimeoutExpired:
        load.kill()
        load.communicate()
        raise


def run(build, report, restarts, out_dir):
    """Measures the three phases; returns [(label, timeline file, restart offsets)] for
    the plot."""
    # Factories: each phase's temp dir is made when it runs, and goes with it.
    phases = [("fdsupd rolling restart", lambda: fdsupd_phase(build, "rolling")),
              ("fdsupd stop-start restart", lambda: fdsupd_phase(build, "stop-start"))]
    if peers.installed("supervisord"):
        phases.append(("supervisord restart", lambda: supervisord_phase(build)))
    rows, series = [], []
    for index, (label, make_phase) in enumerate(phases):
        timeline = os.path.join(out_dir, f"timeline-{index}.dat")
        result, offsets = run_phase(build, make_phase(), restarts, timeline)
        failed = result["requests"] - result["ok"]
        refusing = refusing_seconds(timeline)
        rows.append([label, f"{result['requests']}", f"{failed}", f"{result['refused']}", f"{refusing:.2f}",
                     f"{result['p50_us']}",
                     f"{result['p99_us']}", f"{result['max_us'] / 1000:.1f}"])
        series.append((label, timeline, offsets))
    notes = [f"One run: {restarts} restarts per row, one every {RESTART_EVERY:.0f} s, load_client -c 4 (a new "
             f"connection per request) against 2 http_worker instances that take {STARTUP_MS} ms to start. "
             "Failed: refused, reset or timed out (refused: of those, connection refused). Failing slots: the 10 ms "
             "slots in which a request that failed began, in seconds."]
    if not peers.installed("supervisord"):
        notes.append("supervisord is not installed, so its row is missing (`./dev.sh bench` installs it).")
    report.section("Restarts under load",
                   ["restart", "requests", "failed", "refused", "failing slots s", "p50 us", "p99 us", "max ms"],
                   rows, notes)
    return series


def refusing_seconds(timeline_path):
    with open(timeline_path) as f:
        return sum(0.01 for line in f if int(line.split()[2]) > 0)
