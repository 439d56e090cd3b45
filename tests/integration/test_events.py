"""`fdsupctl events` (issue 21): what happens to the workers and to fdsupd, from the
control socket, as it happens (-f) and for a late reader (the last 1,000 kept), with
the EVENT layout of control/protocol.h. A follower goes on across an in-place upgrade
with no event lost or shown twice; a follower that does not read is dropped; bad
requests get a clear error."""
import json
import os
import signal
import socket
import time
import unittest

from fdsup_harness import DEADLINE, Background, FdsupTestCase, ask, helper, wait_until

FAILING_RESTORE = helper("fdsupd_fail_restore")  # a test build whose restore fails

# Two instances of an HTTP worker on one socket; rolling restarts, a short backoff.
CONFIG = """
[sockets.http]
listen = "tcp://127.0.0.1:0"

[workers.web]
command = ["@HELPERS@/http_worker", "--notify"]
instances = 2
sockets = ["http"]
ready = "notify"
restart_strategy = "rolling"
backoff = "100ms"
stop_timeout = "5s"
"""

SIDE = """
[workers.side]
command = ["/bin/sleep", "600"]
"""

# Exits at once, restarted at once, for ever: four events a run (started, ready,
# exited, restart_scheduled).
FLAPPING = """
[workers.flap]
command = ["/bin/true"]
instances = {instances}
backoff = "0s"
start_limit_burst = 1000000
start_limit_interval = "1s"
"""

# Cannot be exec'd, tried again at once, for ever: each try two events (start_failed,
# restart_scheduled) whose texts name the PATH searched, about 1 KiB each (cut there).
UNSTARTABLE = """
[workers.broken]
command = ["no-such-program"]
env = { PATH = "PATHS" }
instances = 4
backoff = "1ms"
backoff_max = "1ms"
start_limit_burst = 1000000
start_limit_interval = "1s"
""".replace("PATHS", ":".join(f"/nonexistent/{i:04}" for i in range(150)))

# Its ready probe checks port 1 on loopback, where nobody listens: every check fails
# at once, and the instance is killed at its ready timeout.
NEVER_READY = """
[workers.slow]
command = ["/bin/sleep", "600"]
ready = "probe"
ready_timeout = "500ms"
backoff = "60s"
backoff_max = "60s"
[workers.slow.ready_probe]
tcp = "127.0.0.1:1"
interval = "50ms"
"""

COMMON_KEYS = ("seq", "time", "worker", "instance", "pid", "event")


class Follower(Background):
    """`fdsupctl --json events -f [NAME...]` in the background; each line of its stdout
    an event, parsed."""

    def __init__(self, test, d, *args):
        super().__init__(test, d, "--json", "events", "-f", *args)
        self.d = d

    def seen(self):
        return [json.loads(line) for line in self.lines()]  # one JSON object a line, or the test fails

    def wait_for(self, what, predicate, start=0):
        """The index of the first event at or after `start` that `predicate` accepts."""
        found = []

        def look():
            if self.proc.poll() is not None:
                raise AssertionError(f"fdsupctl events -f exited {self.proc.returncode}: {self.stderr()}")
            events = self.seen()
            for i in range(start, len(events)):
                if predicate(events[i]):
                    found.append(i)
                    return True
            return False
        try:
            wait_until(look, what=what)
        except AssertionError:
            raise AssertionError(f"{what}: not seen after #{start}; events:\n" +
                                 "\n".join(json.dumps(e) for e in self.seen()[start:]) +
                                 f"\n--- fdsupd log ---\n{self.d.log()}")
        return found[0]


def is_event(name, worker=None, instance=None, **fields):
    def match(e):
        if e["event"] != name:
            return False
        if worker is not None and e["worker"] != worker:
            return False
        if instance is not None and e["instance"] != instance:
            return False
        return all(e.get(k) == v for k, v in fields.items())
    return match


def kept_events(d, *names):
    """`fdsupctl --json events [NAME...]`: the kept events, one JSON object per line."""
    out = d.ctl_ok("--json", "events", *names)
    return [json.loads(line) for line in out.splitlines()]


class EventsTest(FdsupTestCase):
    def test_a_quiet_follower_outlasts_the_idle_timeout(self):
        # A follower waits for events however long none comes: it is not an idle client.
        d = self.fdsupd('[supervisor]\ncontrol_idle_timeout = "300ms"\n' + """
[workers.side]
command = ["/bin/sleep", "600"]
""").start(wait_control=True)
        f = Follower(self, d, "side")
        f.wait_for("side started", is_event("started", "side"))
        quiet_since = len(f.seen())
        # Five idle timeouts with nothing to say: a dropped follower would have exited
        # (fdsupctl ends when the stream closes), and fdsupd would have said why.
        time.sleep(1.5)
        self.assertIsNone(f.proc.poll(), f.stderr())
        self.assertNotIn("idle for 300ms", d.log())
        d.ctl_ok("restart", "side")
        f.wait_for("the restart after the quiet time", is_event("started", "side"), start=quiet_since)

    def test_follow_kill_restart_reload_upgrade_in_order(self):
        d = self.fdsupd(CONFIG)
        d.start(wait_control=True)
        wait_until(lambda: all(i["ready"] for i in d.ctl_json("status")["workers"][0]["instances"]),
                   what="web ready")
        f = Follower(self, d)
        # A late-comer first gets what is kept: both instances' starts.
        for index in (0, 1):
            f.wait_for(f"web[{index}] ready", is_event("ready", "web", index))

        # A crash: SIGKILL -> exited (signal 9, a crash) -> restart scheduled -> started -> ready.
        mark = len(f.seen())
        old = d.instance("web", 0)["pid"]
        os.kill(old, signal.SIGKILL)
        i = f.wait_for("web[0] exited", is_event("exited", "web", 0), mark)
        exited = f.seen()[i]
        self.assertEqual(exited["pid"], old)
        self.assertEqual(exited["signal"], 9)
        self.assertIsNone(exited["status"])
        self.assertEqual(exited["reason"], "crash")
        i = f.wait_for("restart scheduled", is_event("restart_scheduled", "web", 0), i + 1)
        scheduled = f.seen()[i]
        self.assertIsNone(scheduled["pid"])
        self.assertEqual(scheduled["restarts"], 1)
        self.assertGreaterEqual(scheduled["delay"], 0)
        i = f.wait_for("web[0] started again", is_event("started", "web", 0), i + 1)
        new_pid = f.seen()[i]["pid"]
        self.assertNotEqual(new_pid, old)
        i = f.wait_for("web[0] ready again", is_event("ready", "web", 0, pid=new_pid), i + 1)

        # A rolling restart: begun, one step per instance (each a new process in
        # service, the old one stopped), finished.
        mark = len(f.seen())
        before = d.instance_pids("web")
        d.ctl_ok("restart", "web")
        i = f.wait_for("rollout began", is_event("rollout_began", "web", total=2, reason="restart"), mark)
        self.assertIsNone(f.seen()[i]["instance"])
        steps = []
        for step in (1, 2):
            i = f.wait_for(f"rollout step {step}", is_event("rollout_step", "web", step=step, total=2), i + 1)
            steps.append(f.seen()[i])
        self.assertEqual(sorted(s["old_pid"] for s in steps), sorted(before.values()))
        self.assertEqual(sorted(s["instance"] for s in steps), [0, 1])
        end = f.wait_for("rollout finished", is_event("rollout_finished", "web", replaced=2, total=2), i + 1)
        stopped_old = [e for e in f.seen()[mark:end]
                       if e["event"] == "exited" and e["pid"] in before.values()]
        self.assertEqual(len(stopped_old), 2, f.seen()[mark:end])
        self.assertEqual([e["reason"] for e in stopped_old], ["stopped", "stopped"])

        # A reload that adds a worker: the change listed, then the new worker starting.
        mark = len(f.seen())
        d.write_config(CONFIG + SIDE)
        d.ctl_ok("reload")
        i = f.wait_for("reload", is_event("reload"), mark)
        reload = f.seen()[i]
        self.assertIsNone(reload["worker"])
        self.assertIsNone(reload["instance"])
        self.assertIsNone(reload["pid"])
        self.assertTrue(reload["ok"])
        self.assertEqual(reload["added"], ["side"])
        self.assertEqual(reload["changed"], [])
        self.assertEqual(reload["removed"], [])
        side_started = f.wait_for("side started", is_event("started", "side", 0), mark)
        self.assertLess(side_started, i)  # the reload is done once its workers have started

        # An in-place upgrade: begun in the old image, done in the new one; the follower
        # goes on (a note on its stderr) and sees what happens after it.
        mark = len(f.seen())
        d.ctl_ok("upgrade")
        i = f.wait_for("upgrade began", is_event("upgrade_began", upgrades=0), mark)
        i = f.wait_for("upgrade done", is_event("upgrade_done", upgrades=1), i + 1)
        self.assertEqual(f.seen()[i]["from"], f.seen()[i]["to"])
        victim = d.instance("web", 1)["pid"]
        os.kill(victim, signal.SIGKILL)
        f.wait_for("web[1] exited after the upgrade", is_event("exited", "web", 1, pid=victim, signal=9), i + 1)
        wait_until(lambda: "upgraded in place" in f.stderr(), what="the follower's note on the upgrade")

        # Every event once, in order: sequence numbers 1, 2, 3, ... with no gap across
        # the upgrade; each with the fields SPEC names.
        events = f.seen()
        self.assertEqual([e["seq"] for e in events], list(range(1, len(events) + 1)),
                         "\n".join(json.dumps(e) for e in events))
        for e in events:
            for key in COMMON_KEYS:
                self.assertIn(key, e)
            self.assertIsInstance(e["time"], float)
        times = [e["time"] for e in events]
        self.assertEqual(times, sorted(times))
        # A late reader after the upgrade gets the same history, field for field (the
        # ring was carried).
        self.assertEqual(kept_events(d)[:len(events)], events)

    def test_upgrades_that_do_not_happen_are_events_too(self):
        d = self.fdsupd(SIDE)
        d.start(wait_control=True)
        f = Follower(self, d)
        f.wait_for("side started", is_event("started", "side", 0))
        # Refused by the pre-flight: nothing execs.
        code, out, err = d.ctl("upgrade", "--binary", "/no/such/fdsupd")
        self.assertEqual(code, 1)
        i = f.wait_for("upgrade refused", is_event("upgrade_failed"))
        self.assertIn("upgrade refused", f.seen()[i]["error"])
        # The next image cannot restore: the previous one takes over again, and says so.
        code, out, err = d.ctl("upgrade", "--binary", FAILING_RESTORE)
        self.assertEqual(code, 1, out + err + d.log())
        i = f.wait_for("upgrade began", is_event("upgrade_began", binary=FAILING_RESTORE, upgrades=0), i + 1)
        i = f.wait_for("rolled back", is_event("upgrade_rolled_back", upgrades=0), i + 1)
        self.assertIn("restore failure injected", f.seen()[i]["error"])
        wait_until(lambda: "rolled back" in f.stderr(), what="the follower's note on the rollback")
        events = f.seen()
        self.assertEqual([e["seq"] for e in events], list(range(1, len(events) + 1)))

    def test_a_probe_that_fails_and_the_kill_for_a_ready_timeout(self):
        d = self.fdsupd(NEVER_READY)
        d.start(wait_control=True)
        f = Follower(self, d, "slow")
        i = f.wait_for("started", is_event("started", "slow", 0))
        pid = f.seen()[i]["pid"]
        j = f.wait_for("probe failed", is_event("probe_failed", "slow", 0, pid=pid, probe="ready"), i + 1)
        self.assertTrue(f.seen()[j]["detail"])
        j = f.wait_for("stopping", is_event("stopping", "slow", 0, pid=pid, reason="ready_timeout", signal="TERM"), j + 1)
        self.assertIn("not ready within ready_timeout", f.seen()[j]["error"])
        j = f.wait_for("exited", is_event("exited", "slow", 0, pid=pid, reason="ready_timeout", signal=15), j + 1)
        j = f.wait_for("restart scheduled", is_event("restart_scheduled", "slow", 0, delay=60.0), j + 1)
        # Many checks failed meanwhile (every 50 ms for 500 ms): the first one is told.
        self.assertEqual([e["event"] for e in f.seen()[i:j + 1]],
                         ["started", "probe_failed", "stopping", "exited", "restart_scheduled"])

    def test_late_reader_gets_at_most_1000_oldest_dropped(self):
        d = self.fdsupd(FLAPPING.format(instances=1))
        d.start(wait_control=True)
        wait_until(lambda: ask(d, {"cmd": "events", "after": 1100})["events"], what="more than 1,100 events")
        d.ctl_ok("stop", "flap")
        events = kept_events(d)
        self.assertEqual(len(events), 1000)
        seqs = [e["seq"] for e in events]
        self.assertEqual(seqs, list(range(seqs[0], seqs[0] + 1000)))
        self.assertGreater(seqs[0], 100)  # the oldest went
        self.assertEqual(events[-1]["event"], "stopped")  # the newest is the stop's
        kinds = {e["event"] for e in events}
        self.assertTrue({"started", "exited", "restart_scheduled"} <= kinds, kinds)
        # /bin/true's own exits (the last may be the stop's: any status, reason "stopped").
        exits = [e for e in events if e["event"] == "exited" and e["reason"] != "stopped"]
        self.assertGreater(len(exits), 200)
        odd = [e for e in exits if (e["status"], e["signal"], e["reason"]) != (0, None, "exit")]
        self.assertEqual(odd, [])
        # "after" picks the later ones only.
        later = ask(d, {"cmd": "events", "after": seqs[-3]})
        self.assertTrue(later["ok"])
        self.assertEqual([e["seq"] for e in later["events"]], seqs[-2:])
        self.assertFalse(later["follow"])
        # The readable form: one line per event.
        text = d.ctl_ok("events", "flap")
        self.assertEqual(len(text.splitlines()), 1000)
        self.assertRegex(text.splitlines()[-1], r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} flap\[0\] stopped$")

    def test_names_pick_workers_and_keep_fdsupds_own(self):
        d = self.fdsupd(CONFIG + SIDE)
        d.start(wait_control=True)
        wait_until(lambda: {e["worker"] for e in kept_events(d) if e["event"] == "started"} == {"web", "side"},
                   what="both workers started")
        d.write_config(CONFIG)  # side removed
        d.ctl_ok("reload")
        web = kept_events(d, "web")
        self.assertTrue(web)
        self.assertEqual({e["worker"] for e in web}, {"web", None})
        self.assertTrue(any(e["event"] == "reload" and e["removed"] == ["side"] for e in web))
        # A removed worker's kept events may still be asked for.
        side = [e for e in kept_events(d, "side") if e["worker"] == "side"]
        self.assertEqual([e["event"] for e in side][-3:], ["stopping", "exited", "stopped"])
        self.assertEqual(side[-3]["signal"], "TERM")
        self.assertEqual(side[-3]["reason"], "requested")
        self.assertEqual(side[-2]["reason"], "stopped")
        self.assertEqual(side[-2]["signal"], 15)
        code, out, err = d.ctl("events", "nosuch")
        self.assertEqual(code, 1)
        self.assertIn('unknown worker "nosuch"', err)
        # A follower of one worker sees only its events (and fdsupd's own).
        f = Follower(self, d, "side")
        mark = len(f.seen())
        d.write_config(CONFIG + SIDE)
        d.ctl_ok("reload")
        f.wait_for("side started again", is_event("started", "side", 0), mark)
        os.kill(d.instance("web", 0)["pid"], signal.SIGKILL)
        wait_until(lambda: any(e["event"] == "exited" and e["worker"] == "web" for e in kept_events(d)),
                   what="web's exit kept")
        d.ctl_ok("stop", "side")
        f.wait_for("side stopped", is_event("stopped", "side", 0), mark)
        self.assertEqual({e["worker"] for e in f.seen()}, {"side", None})

    def test_a_follower_that_does_not_read_is_dropped(self):
        d = self.fdsupd(UNSTARTABLE)
        d.start(wait_control=True)
        wait_until(lambda: ask(d, {"cmd": "events", "after": 1})["events"], what="the first failures")
        failure = kept_events(d)[0]
        self.assertEqual(failure["event"], "start_failed")
        self.assertTrue(failure["error"].endswith("..."), failure)  # cut at 1 KiB
        self.assertLess(len(failure["error"]), 1100)
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(conn.close)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        conn.connect(d.control_socket)
        conn.sendall(b'{"cmd": "events", "follow": true}\n')
        # Never read: once 8 MiB wait for it, fdsupd drops it; it goes on serving others.
        d.wait_log(r"control client \d+ \(pid \d+\): dropped: not reading its replies", timeout=120)
        d.ctl_ok("stop", "broken")
        self.assertEqual(len(kept_events(d)), 1000)
        self.assertEqual(d.ctl_json("version")["protocol"], 3)
        # The connection is gone: what is left to read ends.
        conn.settimeout(DEADLINE)
        received = 0
        while True:
            chunk = conn.recv(1 << 20)
            if not chunk:
                break
            received += len(chunk)
        self.assertGreater(received, 0)
        self.assertIsNone(d.proc.poll())

    def test_bad_requests_get_clear_errors(self):
        d = self.fdsupd(SIDE)
        d.start(wait_control=True)
        for request, words in (({"cmd": "events", "after": "5"}, 'field "after" must be an integer'),
                               ({"cmd": "events", "after": 1.5}, 'field "after" must be an integer'),
                               ({"cmd": "events", "after": -1}, 'field "after" must not be negative'),
                               ({"cmd": "events", "names": "side"}, '"names"'),
                               ({"cmd": "events", "names": [3]}, '"names"'),
                               ({"cmd": "events", "follow": 1}, 'field "follow" must be true or false')):
            reply = ask(d, request)
            self.assertFalse(reply["ok"], request)
            self.assertIn(words, reply["error"], request)
        # Nothing changed, and fdsupd goes on answering.
        self.assertTrue(ask(d, {"cmd": "events"})["ok"])
        code, out, err = d.ctl("events", "--bogus")
        self.assertEqual(code, 2)
        self.assertIn("--bogus", err)


if __name__ == "__main__":
    unittest.main()
