"""Upgrade pause: `fdsupctl upgrade` with N sleeper instances, their output discarded or
captured (two pipes per instance, carried across the exec): the whole command, and from
fdsupd's log (JSON, for microsecond times) its phases: the pre-flight (the new binary's
--check-config run, then writing the state), the exec of the new image up to its main()
(the kernel's execve with every kept fd, the dynamic loader), the new image from main()
to serving again (each step timed by fdsupd itself: the "upgrade done" line ends with
them), and from the request to the new image answering a raw `status`."""
import json
import re
import resource
import socket
import subprocess
import time
from datetime import datetime, timezone

import peers
from bench_lib import fdsup_harness, median

EVENTS = ("upgrade: trying out", "upgrade: exec", "upgrade done")
WRITTEN = re.compile(r"written in ([0-9.]+) ms")
RESTORED = re.compile(r"restored in ([0-9.]+) ms from main\(\)(?:: (.*))?$")
STEP = re.compile(r"([a-z][a-z ]*) ([0-9.]+) ms")


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


def log_events(log):
    """[(time, which, message)] of the upgrade's lines in fdsupd's JSON log."""
    events = []
    for line in log.splitlines():
        if not line.startswith("{"):
            continue
        entry = json.loads(line)
        which = next((e for e in EVENTS if entry["message"].startswith(e)), None)
        if which:
            at = datetime.strptime(entry["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
            events.append((at, which, entry["message"]))
    return events


def log_phases(log):
    """One dict per upgrade in fdsupd's log: pre-flight, state written, exec -> main(),
    main() -> restored, exec -> restored (ms), and the new image's steps {name: ms}."""
    events = log_events(log)
    phases = []
    for i in range(len(events) - 2):
        if [e[1] for e in events[i:i + 3]] != list(EVENTS):
            continue
        (tried, _, _), (execed, _, exec_line), (done, _, done_line) = events[i:i + 3]
        restored = RESTORED.search(done_line)
        in_image = float(restored.group(1))
        exec_to_restored = (done - execed).total_seconds() * 1000
        phases.append({
            "preflight": (execed - tried).total_seconds() * 1000,
            "written": float(WRITTEN.search(exec_line).group(1)),
            "exec_to_main": exec_to_restored - in_image,
            "main_to_restored": in_image,
            "exec_to_restored": exec_to_restored,
            "steps": {name: float(ms) for name, ms in STEP.findall(restored.group(2) or "")},
        })
    return phases


def fds_needed(count, output):
    """fdsupd's fds with `count` instances: a pidfd each, and two pipes each whose output it
    captures, besides its own (sockets, epoll sets, the log)."""
    return count * (3 if output == "log" else 1) + 1024


def allow_fds(count, output):
    """The count of instances fdsupd can hold here, `count` if it may: it raises its soft
    fd limit to the hard one, inherited from here, which is raised if root may (a
    container without CAP_SYS_RESOURCE may not: then fewer instances, as many as fit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard >= fds_needed(count, output):
        return count
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, fds_needed(count, output)))
        return count
    except (ValueError, OSError):
        # Whole thousands where there is room for some, else what fits (at least 1).
        fits = (hard - 1024) // (3 if output == "log" else 1)
        return fits // 1000 * 1000 if fits >= 1000 else max(1, min(count, fits))


def measure(build, count, output, rounds):
    supervisor = peers.Fdsupd(build, ["/bin/sleep", "100000"], count=count, output=output,
                              extra_config='[supervisor]\nlog_format = "json"\n')
    supervisor.d.log_level = "info"  # the upgrade's phases are read off the log
    supervisor.start()
    try:
        d = supervisor.d

        def all_running():
            r = subprocess.run(supervisor.ctl("--json", "status"), capture_output=True, text=True)
            return r.returncode == 0 and all(i["state"] == "running"
                                             for i in json.loads(r.stdout)["workers"][0]["instances"])
        fdsup_harness.wait_until(all_running, timeout=600, interval=0.5, what="all instances running")
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
    if len(phases) != rounds:
        raise RuntimeError(f"{len(phases)} upgrades in fdsupd's log, {rounds} expected")
    steps = {name: median([p["steps"].get(name, 0.0) for p in phases]) for name in phases[0]["steps"]}
    return {"whole": median(whole), "answered": median(answered), "steps": steps,
            **{key: median([p[key] for p in phases]) for key in phases[0] if key != "steps"}}


def run(build, report, cases, rounds):
    rows, step_rows, step_names = [], [], []
    short = []
    for wanted, output in cases:
        count = allow_fds(wanted, output)
        if count < wanted:
            short.append(f"{wanted} instances with output {'captured' if output == 'log' else 'discarded'} need "
                         f"{fds_needed(wanted, output)} fds; the hard limit here is "
                         f"{resource.getrlimit(resource.RLIMIT_NOFILE)[1]} and may not be raised (no "
                         f"CAP_SYS_RESOURCE): measured at {count} instead")
        m = measure(build, count, output, rounds)
        label = [f"{count}", "captured" if output == "log" else "discarded"]
        rows.append(label + [f"{m[key]:.1f}" for key in ("whole", "preflight", "written", "exec_to_main",
                                                           "main_to_restored", "exec_to_restored", "answered")])
        step_names = step_names or list(m["steps"])
        step_rows.append(label + [f"{m['steps'].get(name, 0.0):.2f}" for name in step_names])
    report.section("Upgrade pause (fdsupd replacing itself)",
                   ["instances", "output", "fdsupctl upgrade ms", "pre-flight ms", "of which state written ms",
                    "exec -> main() ms", "main() -> restored ms", "exec -> restored ms",
                    "request -> status answered ms"], rows,
                   [*short, f"Medians of {rounds} upgrades per row, one run. Listening sockets stay open throughout, so "
                    "clients only wait (the upgrade tests run upgrades under load with 0 failed requests).",
                    "Captured: stdout and stderr to fdsupd's log, two pipes per instance, each carried across the "
                    "exec with the instance's pidfd. The phases come from fdsupd's JSON log (microsecond times): "
                    "pre-flight is `upgrade: trying out` to `upgrade: exec` (the new binary's --check-config run, "
                    "spawned through the launcher as workers are, so its cost does not grow with fdsupd's open fds; "
                    "then the state written into its memfd); exec -> main() is the kernel's execve and the dynamic "
                    "loader (exec -> restored less what the new image timed from its main()); main() -> restored "
                    "is timed by the new image itself, step by step in the next table."])
    report.section("Upgrade pause: the new image's steps from main() (ms)", ["instances", "output", *step_names],
                   step_rows,
                   ["read/parse: the state out of its memfd and parsed (json/json_reader.h: nlohmann's document, built "
                    "without nlohmann's parser); warm heap: the heap the restore "
                    "allocates from, populated at once; cloexec: every inherited fd close-on-exec again (one "
                    "close_range); config: the configuration the previous image ran; start: logging, limits, the "
                    "supervisor built without instances; check: the document walked for fractional numbers (refused), "
                    "only if the reader saw one; instances: sockets, workers and their instances (pidfds) taken over from the state; "
                    "captures: cgroups, the set of output pipes, log files and every capture; servers: control, notify and fd sockets opened on their inherited fds; resume: "
                    "timers, watches and the journal going again."])
