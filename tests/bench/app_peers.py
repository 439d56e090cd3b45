"""What users pick instead for zero-downtime restarts of their apps: pm2 (cluster mode,
`pm2 reload`) and Server::Starter (`start_server`, hot deploy by SIGHUP), against
fdsupd, with one Node.js app under all three (tests/helpers/slow_node_app.js, which
takes its socket the way each supervisor hands it over).
- Restarts under load_client's continuous load, 2 instances each, the same restarts:
  failed requests, p99 and max latency; each phase's timeline goes to the plot.
- Respawn after SIGKILL of one instance (pm2 vs fdsupd): kill -> the replacement
  listening, stamped by the app itself the same way under both.
- The supervisor's own RSS with 2 and with N instances, and the time for all N to be
  listening from the start command."""
import os
import shutil
import signal
import socket
import tempfile
import time

import pm2_peer
import restarts
from bench_lib import ProcessFigures, StampSink, free_tcp_port, median, monotonic_ns, percentile, wait_for_stamps
from peers import Fdsupd
from starter_peer import INTERVAL_S, ServerStarter

NODE_APP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "helpers", "slow_node_app.js")
STARTUP_MS = 300  # the app's busy start-up in the restart phases (as in health.py)
RESTART_EVERY = 5.0  # seconds: a `pm2 reload` of 2 such instances alone takes ~3.5 s
FAILURE_KINDS = ("refused", "connect_other", "reset", "bad_response", "timeout")  # load_client's counts
MIN_UPTIME_S = 1.1  # an instance is killed once it has run this long (as respawn.py does)


def node():
    return shutil.which("node") or shutil.which("nodejs")


class UdpStampSink(StampSink):
    """The stamps of slow_node_app.js (BENCH_STAMP_UDP): "MONOTONIC_NS PID" as each
    instance starts listening. UDP on loopback because Node.js has no unix datagrams;
    next() and drain() are StampSink's."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="fdsup-bench-stamps-")
        self.path = self.dir  # what close() kills the apps by: their env names it
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.env = {"BENCH_STAMP_UDP": str(self.sock.getsockname()[1]), "FDSUP_BENCH_STAMPS": self.dir}


def pm2_or_reason(build):
    """pm2's path, or (None, why its rows are skipped): only an unreachable registry is a
    reason; any other failure to install it raises."""
    try:
        return pm2_peer.install(build.dir), None
    except pm2_peer.Unreachable as e:
        print(f"  pm2 rows skipped: {e}", flush=True)
        return None, f"pm2's rows are missing: {e} when this ran, so pm2 could not be installed."


# --- restarts under load ---------------------------------------------------------------

def fdsupd_restart_phase(build):
    """`fdsupctl restart web`, rolling, ready = "accepting": the app sends nothing, fdsupd
    sees each new instance accepting on the socket it keeps open."""
    return restarts.fdsupd_phase(build, "rolling", command=[node(), NODE_APP, str(STARTUP_MS)], ready="accepting")


def pm2_restart_phase(pm2):
    port = free_tcp_port()
    p = pm2_peer.Pm2(pm2, NODE_APP, str(STARTUP_MS), 2, {"PORT": str(port)})

    def start():
        p.start()
        restarts.wait_serving(port, timeout=120)
        return "127.0.0.1", port
    return start, p.reload_command(), p.stop


def starter_restart_phase():
    port = free_tcp_port()
    s = ServerStarter(port, [node(), NODE_APP, str(STARTUP_MS)], {"APP_WORKERS": "2"})

    def start():
        s.start()
        restarts.wait_serving(port, timeout=120)
        return "127.0.0.1", port
    return start, s.restart_command(), s.stop


def restart_rows(build, pm2, count, out_dir, every):
    phases = [("Node.js app: fdsupctl restart (accepting)", lambda: fdsupd_restart_phase(build))]
    if pm2:
        phases.append(("Node.js app: pm2 reload", lambda: pm2_restart_phase(pm2)))
    if shutil.which("start_server"):
        phases.append(("Node.js app: Server::Starter HUP", starter_restart_phase))
    rows, series = [], []
    for index, (label, make_phase) in enumerate(phases):
        timeline = os.path.join(out_dir, f"timeline-app-peers-{index}.dat")
        result, offsets = restarts.run_phase(build, make_phase(), count, timeline, every)
        failed = result["requests"] - result["ok"]
        kinds = ", ".join(f"{result[k]} {k.replace('_', ' ')}" for k in FAILURE_KINDS if result[k]) or "-"
        rows.append([label.split(": ", 1)[1], str(result["requests"]), str(failed), kinds,
                     f"{result['p50_us'] / 1000:.1f}", f"{result['p99_us'] / 1000:.1f}",
                     f"{result['max_us'] / 1000:.1f}"])
        series.append((label, timeline, offsets))
    return rows, series


# --- respawn, RSS, start of N ----------------------------------------------------------

class Supervised:
    """One supervisor running `count` instances of the app (start-up 0: what is timed is
    the supervisor's part), each stamping into a sink of its own."""

    def __init__(self, name, build, pm2, count):
        self.name = name
        self.sink = UdpStampSink()
        command = [node(), NODE_APP, "0"]
        if name == "pm2":
            env = dict(self.sink.env, PORT=str(free_tcp_port()))
            self.supervisor = pm2_peer.Pm2(pm2, NODE_APP, "0", count, env)
        else:
            env = ", ".join(f'{key} = "{value}"' for key, value in self.sink.env.items())
            self.supervisor = Fdsupd(build, command, count=count, extra_config=(
                f'sockets = ["http"]\nenv = {{ {env} }}\n[sockets.http]\nlisten = "tcp://127.0.0.1:0"\n'))
        self.count = count
        self.listening = {}  # pid -> stamp_ns of the instances up now

    def start(self):
        """Starts it; seconds from the start command until every instance listens."""
        began_ns = monotonic_ns()
        self.supervisor.start()
        self.listening = wait_for_stamps(self.sink, self.count, timeout=300)
        return (max(self.listening.values()) - began_ns) / 1e9

    def rss_mib(self):
        return ProcessFigures(self.supervisor.pid).rss_kib / 1024.0

    def respawn_us(self):
        """SIGKILLs the oldest instance once it has run MIN_UPTIME_S; microseconds until
        its replacement listens."""
        victim = min(self.listening, key=self.listening.get)
        wait = self.listening[victim] / 1e9 + MIN_UPTIME_S - monotonic_ns() / 1e9
        if wait > 0:
            time.sleep(wait)
        pidfd = os.pidfd_open(victim)
        try:
            killed_ns = monotonic_ns()
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        finally:
            os.close(pidfd)
        del self.listening[victim]
        while True:
            stamp_ns, pid = self.sink.next(timeout=120)
            if pid not in self.listening:
                self.listening[pid] = stamp_ns
                return (stamp_ns - killed_ns) / 1000.0

    def stop(self):
        try:
            self.supervisor.stop()
        finally:
            self.sink.close()


def respawn_and_rss(build, pm2, kills):
    """Both supervisors with 2 instances, up at once and idle but for the kill being
    measured, kills interleaved; {name: (up s, RSS MiB, respawn samples us)}."""
    names = ["fdsupd"] + (["pm2"] if pm2 else [])
    running = []
    try:
        figures = {}
        for name in names:
            running.append(Supervised(name, build, pm2, 2))
            figures[name] = [running[-1].start()]
        time.sleep(1.0)  # settled
        for s in running:
            figures[s.name].append(s.rss_mib())
            figures[s.name].append([])
        for _ in range(kills):
            for s in running:
                figures[s.name][2].append(s.respawn_us())
        return figures
    finally:
        for s in running:
            s.stop()


def many(build, pm2, name, count):
    """(seconds until all `count` listen, supervisor RSS MiB then)."""
    s = Supervised(name, build, pm2, count)
    try:
        up_s = s.start()
        time.sleep(1.0)
        return up_s, s.rss_mib()
    finally:
        s.stop()


def pid1_note():
    with open("/proc/1/comm") as f:
        pid1 = f.read().strip()
    if pid1 == "systemd":
        return ("systemd is not compared: it is PID 1 here, but benchmarking it would mean installing units into "
                "the machine's own manager.")
    return ("systemd itself is not compared: it supervises services only as PID 1 (a user manager needs a "
            f"system instance under it), and PID 1 where this ran is `{pid1}` (/proc/1/comm), the VM's or "
            "container's own init, not systemd.")


def run(build, report, restart_count, kills, count, out_dir, every=RESTART_EVERY):
    """Two tables; returns the restart phases' series for the plot."""
    pm2, skipped = pm2_or_reason(build)
    rows, series = restart_rows(build, pm2, restart_count, out_dir, every)
    notes = [f"One run: {restart_count} restarts per row, one every {every:.0f} s (or as soon as the previous "
             "returned), load_client -c 4 (a new connection per request, as in \"Restarts under load\") against 2 "
             f"instances of tests/helpers/slow_node_app.js, which listen {STARTUP_MS} ms (busy) after node starts. "
             "fdsupd: `fdsupctl restart web`, restart_strategy = \"rolling\", ready = \"accepting\" (the app sends no "
             "readiness: fdsupd sees it accepting on the socket it keeps open); pm2 "
             f"{pm2_peer.PM2_VERSION}: cluster mode, `pm2 reload web`, wait_ready (the app's process.send('ready') "
             "once listening; pm2's daemon accepts and hands connections round-robin to its workers); "
             f"Server::Starter: `start_server --interval={INTERVAL_S}` (its minimum: Perl's whole-second sleep, "
             "enough for the start-up), `start_server --restart` (SIGHUP: the next generation, a Node.js cluster "
             "primary forking 2 workers that accept on the inherited fd, then after the interval SIGTERM to the "
             "old). Failed: refused, reset, timed out (no answer in 5 s) or a bad response (of which: "
             "load_client's count of each)."]
    if skipped:
        notes.append(skipped)
    if not shutil.which("start_server"):
        notes.append("start_server is not installed, so Server::Starter's row is missing (`./dev.sh bench` "
                     "installs libserver-starter-perl).")
    report.section("Zero-downtime restarts of a Node.js app: fdsupd, pm2, Server::Starter",
                   ["restart", "requests", "failed", "of which", "p50 ms", "p99 ms", "max ms"], rows, notes)

    two = respawn_and_rss(build, pm2, kills)
    rows = []
    for name, (up2_s, rss2, samples) in two.items():
        # (The smoke run asks for 2: the figures above are those.)
        up_s, rss = many(build, pm2, name, count) if count != 2 else (up2_s, rss2)
        rows.append([name, f"{median(samples) / 1000:.1f}", f"{percentile(samples, 90) / 1000:.1f}",
                     f"{max(samples) / 1000:.1f}", f"{rss2:.1f}", f"{rss:.1f}", f"{up2_s:.2f}", f"{up_s:.2f}"])
    notes = [f"The same app with no start-up delay (what is timed is the supervisor's part), 2 instances each; fdsupd "
             "hands it its socket (fd 3), pm2 runs it in cluster mode on a port. Respawn: SIGKILL of the oldest "
             f"instance once it has run {MIN_UPTIME_S} s -> its replacement's listen callback (the app stamps "
             f"CLOCK_MONOTONIC to a loopback UDP socket, the same under both), {kills} kills each, interleaved "
             "between the two, running side by side. RSS: the supervisor's own (pm2: its God daemon, not the "
             f"workers), 1 s after all listen. Up: from the start command (`pm2 start`, which also starts the "
             f"daemon; fdsupd's exec) until the last instance listens; then again with {count} instances.",
             pid1_note()]
    if skipped:
        notes.append(skipped)
    report.section(f"Node.js app under fdsupd and pm2: respawn, memory, start of {count}",
                   ["supervisor", "respawn median ms", "p90 ms", "max ms", "RSS MiB, 2", f"RSS MiB, {count}",
                    "all 2 up s", f"all {count} up s"], rows, notes)
    return series
