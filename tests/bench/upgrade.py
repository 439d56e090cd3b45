"""Upgrade pause: `fdsupctl upgrade` with N sleeper instances, their output discarded or
captured (two pipes per instance, carried across the exec): the whole command, and from
fdsupd's log its pre-flight and the pause itself (exec of the new image -> state restored
and the control socket served again), and from the request to the new image answering a
raw `status`."""
import json
import re
import socket
import subprocess
import time
from datetime import datetime

import peers
from bench_lib import fdsup_harness, median

LOG_EVENT = re.compile(r"^(\S+ \S+) \w+ +(upgrade: trying out|upgrade: exec|upgrade done)", re.M)


def raw_status(control_socket):
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(60)
        s.connect(control_socket)
        s.sendall(b'{"cmd":"status"}\n')
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(1 << 20)
            if not chunk:
                raise RuntimeError("the control socket closed before the status reply ended")
            data += chunk


def log_phases(log):
    """[(pre-flight ms, exec -> restored ms)] of each upgrade in fdsupd's log."""
    events = [(datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f"), m.group(2)) for m in LOG_EVENT.finditer(log)]
    phases = []
    for i in range(len(events) - 2):
        if [e[1] for e in events[i:i + 3]] == ["upgrade: trying out", "upgrade: exec", "upgrade done"]:
            phases.append(((events[i + 1][0] - events[i][0]).total_seconds() * 1000,
                           (events[i + 2][0] - events[i + 1][0]).total_seconds() * 1000))
    return phases


def measure(build, count, output, rounds):
    supervisor = peers.Fdsupd(build, ["/bin/sleep", "100000"], count=count, output=output)
    supervisor.d.log_level = "info"  # the upgrade's phases are read off the log
    supervisor.start()
    try:
        d = supervisor.d

        def all_running():
            r = subprocess.run(supervisor.ctl("--json", "status"), capture_output=True, text=True)
            return r.returncode == 0 and all(i["state"] == "running"
                                             for i in json.loads(r.stdout)["workers"][0]["instances"])
        fdsup_harness.wait_until(all_running, timeout=300, interval=0.2, what="all instances running")
        whole, answered = [], []
        for _ in range(rounds):
            t0 = time.perf_counter()
            subprocess.run(supervisor.ctl("upgrade"), check=True, capture_output=True, timeout=300)
            t1 = time.perf_counter()
            raw_status(d.control_socket)
            whole.append((t1 - t0) * 1000)
            answered.append((time.perf_counter() - t0) * 1000)
        phases = log_phases(d.log())
    finally:
        supervisor.stop()
    return (median(whole), median([p[0] for p in phases]), median([p[1] for p in phases]), median(answered))


def run(build, report, cases, rounds):
    rows = []
    for count, output in cases:
        whole, preflight, pause, answered = measure(build, count, output, rounds)
        rows.append([f"{count}", "captured" if output == "log" else "discarded", f"{whole:.1f}", f"{preflight:.1f}",
                     f"{pause:.1f}", f"{answered:.1f}"])
    report.section("Upgrade pause (fdsupd replacing itself)",
                   ["instances", "output", "fdsupctl upgrade ms", "pre-flight ms", "exec -> restored ms",
                    "request -> status answered ms"], rows,
                   [f"Medians of {rounds} upgrades per row, one run. Listening sockets stay open throughout, so "
                    "clients only wait (the upgrade tests run upgrades under load with 0 failed requests)."])
