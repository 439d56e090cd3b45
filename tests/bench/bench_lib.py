"""Plumbing shared by the benchmarks: the stamp sink, process figures from /proc,
summaries, and clean-up of the processes a benchmark started."""
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import fdsup_harness  # noqa: E402  (the integration tests' fdsupd runner)

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class Build:
    """Paths of the built binaries the benchmarks run."""

    def __init__(self, build_dir):
        self.dir = os.path.abspath(build_dir)
        self.fdsupd = os.path.join(self.dir, "supervisord", "fdsupd")
        self.fdsupctl = os.path.join(self.dir, "ctl", "fdsupctl")
        self.stamp_worker = os.path.join(self.dir, "tests", "bench", "stamp_worker")
        self.bare_respawner = os.path.join(self.dir, "tests", "bench", "bare_respawner")
        self.spawn_cost = os.path.join(self.dir, "tests", "bench", "spawn_cost")
        self.proc_floor = os.path.join(self.dir, "tests", "bench", "proc_floor")
        self.http_worker = os.path.join(self.dir, "tests", "http_worker")
        self.load_client = os.path.join(self.dir, "tests", "load_client")
        fdsup_harness.FDSUPD = self.fdsupd
        fdsup_harness.FDSUPCTL = self.fdsupctl


def monotonic_ns():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


class StampSink:
    """The datagram socket stamp_worker reports to: "MONOTONIC_NS PID" when its main()
    begins. Receiving blocks (no polling that would steal the CPU being measured)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="fdsup-bench-")
        self.path = os.path.join(self.dir, "stamps.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)

    def next(self, timeout=60):
        """(stamp_ns, pid) of the next worker that started."""
        self.sock.settimeout(timeout)
        stamp_ns, pid = self.sock.recv(64).split()
        return int(stamp_ns), int(pid)

    def drain(self):
        self.sock.setblocking(False)
        try:
            while True:
                self.sock.recv(64)
        except BlockingIOError:
            pass

    def close(self):
        self.sock.close()
        kill_processes_mentioning(self.path)
        shutil.rmtree(self.dir, ignore_errors=True)


def kill_processes_mentioning(text):
    """SIGKILLs every process whose command line or environment mentions `text` (the
    workers a benchmark started, whichever supervisor started them). Each through a
    pidfd: a process that exits between the look and the kill cannot hand its pid on to
    another test's process, which would get the SIGKILL."""
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            fdsup_harness.kill_if_still(int(entry), text)


class ProcessFigures:
    """What /proc says of one process: CPU time, context switches (each one a wakeup of
    an otherwise idle loop) and resident memory."""

    def __init__(self, pid):
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        self.cpu_ms = (int(fields[11]) + int(fields[12])) * 1000.0 / CLOCK_TICKS
        self.switches = 0
        self.rss_kib = 0
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if "ctxt_switches:" in line:  # voluntary and nonvoluntary
                    self.switches += int(line.split()[1])
                elif line.startswith("VmRSS:"):
                    self.rss_kib = int(line.split()[1])


def wait_quiet(pid, quiet_s=0.5, give_up_s=10.0):
    """Returns once `pid` has not been switched in for `quiet_s`, or after `give_up_s`
    (a process that never rests then shows its wakeups in what is measured next). What
    came just before is not idling: the last loop turn of a start-up (at 10,000
    instances fdsupd is still busy for some milliseconds after the last worker
    reported), or the client that asked whether it answers closing its connection."""
    deadline = time.monotonic() + give_up_s
    last = ProcessFigures(pid).switches
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = ProcessFigures(pid).switches
        if now != last:
            last, quiet_since = now, time.monotonic()
        elif time.monotonic() - quiet_since >= quiet_s:
            return


def idle_figures(pid, seconds):
    """(CPU ms, wakeups, RSS MiB) of `pid` over `seconds` of doing nothing."""
    before = ProcessFigures(pid)
    time.sleep(seconds)
    after = ProcessFigures(pid)
    return after.cpu_ms - before.cpu_ms, after.switches - before.switches, after.rss_kib / 1024.0


def percentile(samples, p):
    """The p-th percentile, interpolated between the samples around it (with 50 samples
    a nearest-rank p99 would just be the maximum)."""
    if len(samples) < 2:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[p - 1]


def median(samples):
    return statistics.median(samples)


def free_tcp_port():
    """An ephemeral loopback port for an app that binds its own socket (closed again: the
    kernel hands it out again only after a full cycle of the range)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_stamps(sink, count, timeout=120):
    """Waits until `count` distinct workers have started; returns {pid: stamp_ns}."""
    started = {}
    deadline = time.monotonic() + timeout
    while len(started) < count:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"only {len(started)} of {count} workers started within {timeout}s")
        stamp_ns, pid = sink.next(timeout=left)
        started[pid] = stamp_ns
    return started


def timed(command, **kwargs):
    """Runs `command` (must succeed); its wall time in ms."""
    t0 = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, **kwargs)
    return (time.perf_counter() - t0) * 1000.0
