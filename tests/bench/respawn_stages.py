"""Where a respawn's time goes, stage by stage, for fdsupd and for the floor (the bare
respawner) alike: SIGKILL -> the worker's exit -> the supervisor woken -> reaped ->
clone -> the replacement exec'd -> its main().

The stages are timestamped from outside by the kernel's tracepoints (`perf record -a -k
CLOCK_MONOTONIC`, the clock of the kill and of stamp_worker's stamp), so neither
supervisor is changed or treated differently to be measured. Tracing costs each event a
little, so these runs are separate from the headline figures (respawn.py) and their
sum is a bit above them: read the stages against each other and against the floor's.

  exit       sched:sched_process_exit of the killed worker
  woken      the supervisor's first epoll_wait/poll returning after it
  reaped     its waitid(P_PIDFD) (fdsupd looks with poll() first; both reap there)
  clone      its clone/clone3 of the replacement
  exec'd     sched:sched_process_exec of the replacement
  main()     stamp_worker's own stamp"""
import ctypes
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time

from bench_lib import median, monotonic_ns

EVENTS = ["sched:sched_process_exit", "sched:sched_process_exec", "syscalls:sys_exit_epoll_wait",
          "syscalls:sys_exit_epoll_pwait", "syscalls:sys_exit_poll", "syscalls:sys_exit_ppoll",
          "syscalls:sys_enter_waitid", "syscalls:sys_enter_clone", "syscalls:sys_enter_clone3"]
STAGES = ["kill -> exit", "exit -> woken", "woken -> reaped", "reaped -> clone", "clone -> exec'd",
          "exec'd -> main()"]


def available():
    """None if perf can trace here, else why not."""
    if shutil.which("perf") is None:
        return "perf is not installed (Debian's linux-perf)"
    probe = subprocess.run(["perf", "record", "-q", "-a", "-k", "CLOCK_MONOTONIC", "-o", "/dev/null",
                            *sum((["-e", e] for e in EVENTS), []), "--", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return "perf cannot record these tracepoints: " + (probe.stderr.strip().splitlines() or ["?"])[-1]
    return None


class Recording:
    """perf record of EVENTS on every CPU while the kills run; events() parses them."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="fdsup-bench-perf-")
        self.data = os.path.join(self.dir, "perf.data")
        ready = os.path.join(self.dir, "ready")
        os.mkfifo(ready)
        # --control tells when recording has begun (the "ack" after "enable").
        self.ctl = os.path.join(self.dir, "ctl")
        os.mkfifo(self.ctl)
        # Bounded (--max-size), and gone with this process whatever ends it (a ctest
        # timeout included): a system-wide recording left behind would fill the disk.
        self.proc = subprocess.Popen(["perf", "record", "-q", "-a", "-k", "CLOCK_MONOTONIC", "-D", "-1",
                                      "--max-size", "512M", "--control", f"fifo:{self.ctl},{ready}", "-o", self.data,
                                      *sum((["-e", e] for e in EVENTS), [])],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     preexec_fn=die_with_parent)
        try:
            self.enable(ready)
        except BaseException:
            self.close()
            raise

    def enable(self, ready):
        """Asks perf to start and waits for its ack, giving up if perf exits or takes
        longer than a minute (O_RDWR and O_NONBLOCK: opening a FIFO never waits)."""
        ctl = os.open(self.ctl, os.O_RDWR)
        ack = os.open(ready, os.O_RDWR | os.O_NONBLOCK)
        try:
            os.write(ctl, b"enable\n")
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"perf record exited ({self.proc.returncode}) before it began recording")
                if select.select([ack], [], [], 0.1)[0] and os.read(ack, 64):
                    return
            raise RuntimeError("perf record did not begin recording within 60 s")
        finally:
            os.close(ctl)
            os.close(ack)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def events(self):
        """[(time_ns, pid, event name, tracepoint text)] in time order."""
        out = subprocess.run(["perf", "script", "-i", self.data, "--ns", "-F", "pid,time,event,trace"],
                             capture_output=True, text=True).stdout
        events = []
        for line in out.splitlines():
            # "  1234 5678.123456789: sched:sched_process_exit: comm=true pid=1235 prio=120"
            head, _, rest = line.partition(": ")
            parts = head.split()
            if len(parts) != 2 or not parts[0].isdigit():
                continue
            name, _, trace = rest.partition(": ")
            seconds, _, frac = parts[1].partition(".")
            events.append((int(seconds) * 1_000_000_000 + int(frac.ljust(9, "0")[:9]), int(parts[0]), name.strip(),
                           trace))
        events.sort()
        return events

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def die_with_parent():
    """In perf's child, before exec: SIGKILL when the bench process dies."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


PR_SET_PDEATHSIG = 1


def event_pid(trace):
    """The pid= field of a sched tracepoint's text."""
    for field in trace.split():
        if field.startswith("pid="):
            return int(field[4:])
    return -1


def stage_times(events, supervisor_pid, kill):
    """The stage boundaries of one kill (kill_ns, old pid, new pid, stamp_ns) in ns, or
    None if an event is missing (perf lost it)."""
    kill_ns, old_pid, new_pid, stamp_ns = kill
    window = [e for e in events if kill_ns <= e[0] <= stamp_ns]

    def first(after, match):
        return next((t for t, pid, name, trace in window if t >= after and match(pid, name, trace)), None)

    exit_ns = first(kill_ns, lambda pid, name, trace: name.endswith("sched_process_exit") and pid == old_pid)
    if exit_ns is None:
        return None
    woken = first(exit_ns, lambda pid, name, _: pid == supervisor_pid and "sys_exit_" in name and "poll" in name
                  or pid == supervisor_pid and name.endswith("sys_exit_epoll_wait"))
    reaped = woken and first(woken, lambda pid, name, _: pid == supervisor_pid and name.endswith("sys_enter_waitid"))
    clone = reaped and first(reaped, lambda pid, name, _: pid == supervisor_pid and "sys_enter_clone" in name)
    execd = clone and first(clone, lambda pid, name, trace: name.endswith("sched_process_exec") and
                            event_pid(trace) == new_pid)
    if None in (woken, reaped, clone, execd):
        return None
    return [kill_ns, exit_ns, woken, reaped, clone, execd, stamp_ns]


def measure(supervisor, sink, kills, up_before_kill, kill_and_wait):
    """{stage: [us]} over `kills` traced kills of `supervisor`'s worker (kills whose
    events perf lost are left out)."""
    recording = None
    kills_seen = []
    try:
        supervisor.start()
        supervisor_pid = supervisor.pid
        stamp_ns, pid = sink.next()
        recording = Recording()
        for _ in range(kills):
            new_pid, new_stamp, delay_us = kill_and_wait(sink, pid, stamp_ns, up_before_kill)
            kills_seen.append((new_stamp - round(delay_us * 1000), pid, new_pid, new_stamp))
            pid, stamp_ns = new_pid, new_stamp
        recording.stop()
        events = recording.events()
    finally:
        supervisor.stop()
        sink.drain()
        if recording is not None:
            recording.close()
    stages = {stage: [] for stage in STAGES}
    for kill in kills_seen:
        times = stage_times(events, supervisor_pid, kill)
        if times is not None:
            for stage, begin, end in zip(STAGES, times, times[1:]):
                stages[stage].append((end - begin) / 1000.0)
    return stages


def summary(stages):
    """[median us of each stage], "-" where no kill was seen whole."""
    return [f"{median(stages[s]):.0f}" if stages[s] else "-" for s in STAGES]
