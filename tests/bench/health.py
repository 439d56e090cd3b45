"""Health checks (issue 19): what ready = "accepting" is for, and what the checks cost.
- Rolling restarts of a Node.js app that takes STARTUP_MS to start (2 instances, under
  load_client's continuous new-connection load): ready = "accepting" against "exec".
- The CPU fdsupd spends per start to see an instance accepting (off its own metrics, and
  off /proc against ready = "exec" with the same app).
- What N idle instances cost it with a 1 s liveness probe each (tcp, http), against none."""
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

import peers
from bench_lib import ProcessFigures, fdsup_harness, idle_figures


def metrics(supervisor):
    values = {}
    out = subprocess.run(supervisor.ctl("metrics"), check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def wait_all_ready(supervisor, count):
    def ready():
        r = subprocess.run(supervisor.ctl("--json", "status"), capture_output=True, text=True)
        if r.returncode != 0:
            return False
        instances = json.loads(r.stdout)["workers"][0]["instances"]
        return len(instances) == count and all(i["ready"] for i in instances)
    fdsup_harness.wait_until(ready, timeout=300, interval=0.05, what="every instance ready")


def start_cost(build, count, ready, startup_ms):
    """fdsupd's CPU ms from its start until `count` http_workers (start-up `startup_ms`)
    are ready, and the metrics then."""
    extra = f'sockets = ["http"]\nready = "{ready}"\nready_timeout = "120s"\n' \
            '[sockets.http]\nlisten = "tcp://127.0.0.1:0"\n'
    supervisor = peers.Fdsupd(build, [build.http_worker, "--startup-delay-ms", str(startup_ms)],
                              count=count, extra_config=extra)
    supervisor.start()
    try:
        supervisor.d.wait_control()
        wait_all_ready(supervisor, count)
        cpu_ms = ProcessFigures(supervisor.pid).cpu_ms
        return cpu_ms, metrics(supervisor)
    finally:
        supervisor.stop()


class Responder:
    """A loopback listener the probes aim at, answering in a thread of its own: `http`
    answers each connection 200, else it is just closed once accepted."""

    def __init__(self, http):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.port = self.sock.getsockname()[1]
        self.http = http
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                if self.http:
                    try:
                        conn.settimeout(2)
                        conn.recv(4096)
                        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                    except OSError:
                        pass

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(timeout=5)


def idle_cost(build, count, probe, idle_s):
    """(CPU ms, wakeups) of fdsupd over idle_s with `count` sleepers, each with `probe`."""
    responder = Responder(http=probe == "http") if probe else None
    extra = ""
    if probe == "tcp":
        extra = f'[workers.w.liveness_probe]\ntcp = "127.0.0.1:{responder.port}"\ninterval = "1s"\n'
    elif probe == "http":
        extra = f'[workers.w.liveness_probe]\nhttp = "http://127.0.0.1:{responder.port}/healthz"\ninterval = "1s"\n'
    supervisor = peers.Fdsupd(build, ["/bin/sleep", "100000"], count=count, extra_config=extra)
    supervisor.start()
    try:
        supervisor.d.wait_control()
        wait_all_ready(supervisor, count)
        cpu_ms, wakeups, _ = idle_figures(supervisor.pid, idle_s)
        checks = metrics(supervisor)
        passed = checks.get('fdsup_probe_checks_total{worker="w",probe="liveness",result="pass"}', 0)
        return cpu_ms, wakeups, passed
    finally:
        supervisor.stop()
        if responder:
            responder.close()


NODE_STARTUP_MS = 300
QUIET_S = 1.0
NODE_APP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "helpers", "slow_node_app.js")


def node_restarts(build, ready, restarts):
    """load_client's final counts over `restarts` rolling restarts of the Node.js app."""
    node = shutil.which("node") or shutil.which("nodejs")
    d = fdsup_harness.Fdsupd(f"""
[sockets.http]
listen = "tcp://127.0.0.1:0"
backlog = 4096
[workers.web]
command = ["{node}", "{NODE_APP}", "{NODE_STARTUP_MS}"]
instances = 2
sockets = ["http"]
ready = "{ready}"
stdout = "null"
""")
    d.log_level = "warn"
    load = None
    try:
        d.start()
        d.wait_control()
        fdsup_harness.wait_until(lambda: all(i["ready"] for i in d.ctl_json("status")["workers"][0]["instances"]),
                                 what="web ready")
        host, _, port = d.ctl_json("status")["sockets"][0]["bound"].rpartition(":")
        load = subprocess.Popen([build.load_client, host, port, "--concurrency", "4"], stdout=subprocess.PIPE)
        # A second of load before, between and after the restarts: the same steady load
        # whether a restart takes 0.7 s (accepting) or returns at once (exec).
        time.sleep(QUIET_S)
        for _ in range(restarts):
            subprocess.run([build.fdsupctl, "-s", d.control_socket, "restart", "web"], check=True,
                           capture_output=True, timeout=120)
            time.sleep(QUIET_S)
        load.send_signal(signal.SIGTERM)
        out, _ = load.communicate(timeout=30)
        return json.loads(out)
    finally:
        if load is not None and load.poll() is None:
            load.kill()
            load.communicate()
        try:
            if d.proc is not None:
                d.stop(timeout=60)
        finally:
            d.cleanup()


def run(build, report, count, idle_count, idle_s, restarts=5, startup_ms=200):
    rows = []
    for ready in ("accepting", "exec"):
        r = node_restarts(build, ready, restarts)
        failed = sum(r[k] for k in ("refused", "connect_other", "reset", "bad_response", "timeout"))
        rows.append([ready, str(r["requests"]), str(failed), f"{r['p50_us'] / 1000:.1f}", f"{r['p99_us'] / 1000:.1f}",
                     f"{r['max_us'] / 1000:.1f}"])
    report.section(
        f"Health: rolling restarts of a Node.js app that takes {NODE_STARTUP_MS} ms to start",
        ["ready", "requests", "failed", "p50 ms", "p99 ms", "max ms"], rows,
        [f"{restarts} `fdsupctl restart web` in a row, 2 instances of tests/helpers/slow_node_app.js (`server.listen"
         "({fd: 3})` after a busy start-up; no sd_notify), load_client with 4 connections, a new one per request, "
         f"from {QUIET_S:.0f} s before the first restart to {QUIET_S:.0f} s after each. "
         "With \"exec\" the old processes are stopped while the new ones still start: clients wait for the start-up."])

    accepting_cpu, accepting_metrics = start_cost(build, count, "accepting", startup_ms)
    exec_cpu, _ = start_cost(build, count, "exec", startup_ms)
    scans = accepting_metrics["fdsup_accept_scans_total"]
    scan_cpu_ms = accepting_metrics["fdsup_accept_scan_cpu_seconds_total"] * 1000
    report.section(
        "Health: ready = \"accepting\" per start",
        ["instances", "scans per start", "scan CPU us per start", "fdsupd CPU ms, accepting", "fdsupd CPU ms, exec",
         "difference per start us"],
        [[str(count), f"{scans / count:.1f}", f"{scan_cpu_ms * 1000 / count:.0f}", f"{accepting_cpu:.0f}",
          f"{exec_cpu:.0f}", f"{(accepting_cpu - exec_cpu) * 1000 / count:.0f}"]],
        [f"{count} instances of http_worker (waits in ppoll) that start listening {startup_ms} ms after exec. Scan "
         "CPU: fdsupd's own thread CPU time inside the looks (fdsup_accept_scan_cpu_seconds_total); fdsupd CPU: its "
         "utime+stime from /proc from its start to every instance ready (clock ticks), the same app with "
         "ready = \"exec\" beside it."])
    rows = []
    for probe in (None, "tcp", "http"):
        cpu_ms, wakeups, passed = idle_cost(build, idle_count, probe, idle_s)
        rows.append([probe or "none", f"{cpu_ms:.0f}", f"{cpu_ms / idle_s / 10:.2f}", f"{wakeups / idle_s:.0f}",
                     f"{passed:.0f}"])
    report.section(
        f"Health: idle cost of {idle_count} instances with a 1 s liveness probe each",
        ["probe", f"CPU ms in {idle_s:.0f} s", "CPU %", "wakeups/s", "checks passed"], rows,
        [f"{idle_count} sleepers; each probe aims at a loopback listener of the bench's own (a thread that accepts, "
         "and for http answers 200). CPU in clock ticks; wakeups = fdsupd's context switches."])
