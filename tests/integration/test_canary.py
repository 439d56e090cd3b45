"""Canary rollouts and stop_delay: `restart --canary N --pause D` replaces N instances,
holds, then goes on; a canary that fails while it holds aborts the rollout and is put
back on the previous spec while the other instances never change; `rollout promote`
and `rollout abort` steer it; `reload --canary` does the same for a changed config; the
hold goes on across an in-place upgrade. stop_delay drains an old process (out of
readiness, still serving) before its stop_signal."""
import json
import os
import re
import subprocess
import urllib.error
import unittest
import urllib.request

from fdsup_harness import FDSUPCTL, FdsupTestCase, ask, pid_alive, wait_until
from test_rolling_restart import load_on

CONFIG = """
[sockets.http]
listen = "tcp://127.0.0.1:0"
backlog = 4096

[workers.web]
command = ["@HELPERS@/http_worker", "--notify", "--startup-delay-ms", "100", "--crash-if", "@TMP@/crash"]
instances = {instances}
sockets = ["http"]
ready = "notify"
ready_timeout = "10s"
stop_timeout = "5s"
env = {{ VERSION = "{version}" }}
{extra}
"""


def config(instances=4, version="1", extra=""):
    return CONFIG.format(instances=instances, version=version, extra=extra)


def events_of(d):
    """The kept events of worker web, oldest first (fdsupctl --json events web)."""
    return [json.loads(line) for line in d.ctl_ok("--json", "events", "web").splitlines()]


def names_of(events, prefix):
    return [e["event"] for e in events if e["event"].startswith(prefix)]


def environ_of(pid):
    with open(f"/proc/{pid}/environ", "rb") as f:
        return dict(item.split(b"=", 1) for item in f.read().split(b"\0") if b"=" in item)


def version_of(pid):
    return environ_of(pid)[b"VERSION"].decode()


class RolloutCase(FdsupTestCase):
    def start(self, cfg, instances=4):
        d = self.fdsupd(cfg).start()
        d.wait_control()
        d.wait_log(r"worker web\[\d+\]: pid \d+ ready", count=instances)
        return d

    def with_load(self, d):
        return load_on(self, d)

    def in_service(self, d):
        """{index: instance} of the instances in service (not old, not new)."""
        instances = d.ctl_json("status", "web")["workers"][0]["instances"]
        return {i["index"]: i for i in instances if not i.get("retiring") and not i.get("replacement")}

    def rollout(self, d):
        return d.ctl_json("rollout", "web")["rollouts"][0]

    def background(self, d, *args):
        """fdsupctl running on its own (a restart that waits through a pause)."""
        proc = subprocess.Popen([FDSUPCTL, "-s", d.control_socket, *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        return proc

    def finish(self, proc):
        out, err = proc.communicate(timeout=60)
        return proc.returncode, out, err

    def wait_paused(self, d):
        return wait_until(lambda: (r := self.rollout(d))["state"] == "running" and r["phase"] == "paused" and r,
                          what="the canary holding")

    def assert_no_failures(self, result):
        print(f"{self.id().rsplit('.', 1)[-1]}: {result['complete']} requests, {result['failed']} failed, "
              f"{result['non_2xx']} non-2xx")
        self.assertEqual(result["failed"], 0, result["text"])
        self.assertEqual(result["non_2xx"], 0, result["text"])
        self.assertGreater(result["complete"], 0)


class Canary(RolloutCase):
    def test_a_canary_holds_for_its_pause_then_the_rest_is_replaced_under_load(self):
        d = self.start(config())
        load = self.with_load(d)
        before = {i: x["pid"] for i, x in self.in_service(d).items()}
        restart = self.background(d, "restart", "web", "--canary", "1", "--pause", "2s")
        paused = self.wait_paused(d)
        self.assertEqual((paused["canary"], paused["replaced"], paused["total"]), (1, 1, 4))
        self.assertIsNotNone(paused["pause_left"])
        self.assertLessEqual(paused["pause_left"], 2.0)
        # Held: one new process, the other three untouched.
        now = {i: x["pid"] for i, x in self.in_service(d).items()}
        self.assertNotEqual(now[0], before[0])
        self.assertEqual([now[i] for i in (1, 2, 3)], [before[i] for i in (1, 2, 3)])
        status_text = d.ctl_ok("status", "web")
        self.assertIn("canary holding", status_text)
        code, out, err = self.finish(restart)
        self.assertEqual(code, 0, out + err + d.log())
        after = {i: x["pid"] for i, x in self.in_service(d).items()}
        self.assertTrue(all(after[i] != before[i] for i in range(4)), (before, after))
        self.assert_no_failures(load.stop())
        # The log has the order: the canary ready, the hold, then the rest started.
        log = d.log()
        hold = re.search(r"canary of 1 instance\(s\) in service; holding for 2", log).start()
        over = log.index("the canary's pause is over")
        for index in (1, 2, 3):
            started = [m.start() for m in re.finditer(rf"worker web\[{index}\]: started pid (\d+)", log)]
            self.assertGreater(started[-1], over, f"web[{index}] replaced before the pause ended")
        self.assertLess(hold, over)
        self.assertEqual(self.rollout(d)["state"], "done")
        events = events_of(d)
        self.assertEqual(names_of(events, "rollout_")[:1] + names_of(events, "rollout_p"),
                         ["rollout_began", "rollout_paused", "rollout_promoted"])
        paused = next(e for e in events if e["event"] == "rollout_paused")
        self.assertEqual((paused["canary"], paused["pause"]), (1, 2.0))
        self.assertEqual(next(e for e in events if e["event"] == "rollout_promoted")["by"], "pause")
        self.assertEqual(next(e for e in events if e["event"] == "rollout_began")["reason"], "canary")

    def test_a_canary_that_crashes_during_the_pause_aborts_and_is_rolled_back_with_no_failed_request(self):
        d = self.start(config())
        load = self.with_load(d)
        before = {i: x["pid"] for i, x in self.in_service(d).items()}
        # The next process to start (the canary) exits 1 after 200 requests; any later
        # one is healthy.
        open(os.path.join(d.tmp, "crash"), "w").close()
        restart = self.background(d, "restart", "web", "--canary", "1", "--pause", "60s")
        code, out, err = self.finish(restart)
        self.assertEqual(code, 1, out + err)
        self.assertRegex(err, r"canary failed: web\[0\] exited with code 1")
        canary = int(re.search(r"pid (\d+) will crash", d.log()).group(1))
        # The rollback puts web[0] back on a new process; the other three never changed.
        d.wait_log(r"worker web: rolled back to the previous spec")
        instances = self.in_service(d)
        self.assertNotIn(instances[0]["pid"], (before[0], canary))
        self.assertTrue(instances[0]["ready"])
        for index in (1, 2, 3):
            self.assertEqual(instances[index]["pid"], before[index])
            self.assertEqual(instances[index]["restarts"], 0)
        self.assert_no_failures(load.stop())
        rollout = self.rollout(d)
        self.assertEqual(rollout["state"], "stopped")
        self.assertEqual(rollout["phase"], "aborted")
        self.assertIn("canary failed", rollout["stop_reason"])
        self.assertNotIn("rolling restart", d.ctl_ok("status", "web"))
        # As events, in order: the canary, its hold, the abort, the end, the rollback.
        events = events_of(d)
        rollout = [e for e in events if e["event"].startswith("rollout_")]
        self.assertEqual([e["event"] for e in rollout],
                         ["rollout_began", "rollout_step", "rollout_paused", "rollout_aborted", "rollout_stopped",
                          "rollout_began", "rollout_step", "rollout_finished"], rollout)
        self.assertEqual(rollout[0]["reason"], "canary")
        self.assertRegex(rollout[3]["reason"], r"canary failed: web\[0\] exited with code 1")
        self.assertEqual(rollout[5]["reason"], "rollback")
        crash = [e for e in events if e["event"] == "exited" and e["pid"] == canary]
        self.assertEqual([(e["status"], e["reason"]) for e in crash], [(1, "crash")])

    def test_promote_lets_a_held_canary_go_on_and_abort_is_refused_after(self):
        d = self.start(config())
        load = self.with_load(d)
        before = {i: x["pid"] for i, x in self.in_service(d).items()}
        restart = self.background(d, "restart", "web", "--canary", "1")  # no pause: until promoted
        paused = self.wait_paused(d)
        self.assertIsNone(paused["pause_left"])
        self.assertIn("holding until promoted", d.ctl_ok("rollout", "web"))
        out = d.ctl_ok("rollout", "promote", "web")
        self.assertIn("web:", out)
        wait_until(lambda: [e for e in events_of(d) if e["event"] == "rollout_promoted" and e["by"] == "operator"],
                   what="the promote as an event")
        code, out, err = self.finish(restart)
        self.assertEqual(code, 0, out + err)
        after = {i: x["pid"] for i, x in self.in_service(d).items()}
        self.assertTrue(all(after[i] != before[i] for i in range(4)))
        self.assert_no_failures(load.stop())
        code, _, err = d.ctl("rollout", "abort", "web")
        self.assertEqual(code, 1)
        self.assertIn("no rolling restart in progress", err)
        code, _, err = d.ctl("rollout", "promote", "web")
        self.assertEqual(code, 1)

    def test_abort_puts_a_reload_canary_back_on_the_old_spec_and_the_next_reload_tries_again(self):
        d = self.start(config(version="1"))
        load = self.with_load(d)
        before = {i: x["pid"] for i, x in self.in_service(d).items()}
        d.write_config(config(version="2"))
        reload = self.background(d, "reload", "--canary", "1")
        self.wait_paused(d)
        instances = self.in_service(d)
        self.assertEqual(version_of(instances[0]["pid"]), "2")  # the canary runs the new spec
        for index in (1, 2, 3):
            self.assertEqual(instances[index]["pid"], before[index])
            self.assertEqual(version_of(before[index]), "1")
        # The operator aborts (a rise in restarts or a failing canary would do the same).
        d.ctl_ok("rollout", "abort", "web")
        code, out, err = self.finish(reload)
        self.assertEqual(code, 1, out + err)
        self.assertIn("aborted by the operator", err)
        d.wait_log(r"worker web: rolled back to the previous spec")
        wait_until(lambda: not d.ctl_json("status", "web")["workers"][0]["rollout"], what="the rollback to end")
        instances = self.in_service(d)
        self.assertEqual(sorted(instances), [0, 1, 2, 3])
        for index in range(4):
            self.assertEqual(version_of(instances[index]["pid"]), "1")
        # The file still says 2: the next reload sees the change and makes it.
        reply = d.ctl_json("reload")
        self.assertEqual(reply["workers"]["changed"], ["web"])
        instances = self.in_service(d)
        for index in range(4):
            self.assertEqual(version_of(instances[index]["pid"]), "2")
        self.assert_no_failures(load.stop())

    def test_a_reload_canary_that_cannot_start_leaves_the_old_spec_and_the_next_reload_retries(self):
        d = self.start(config(instances=2), instances=2)
        before = d.instance_pids("web")
        d.write_config(config(instances=2).replace("@HELPERS@/http_worker", "@TMP@/no-such-binary"))
        code, out, err = d.ctl("reload", "--canary", "1", "--pause", "1m")
        self.assertEqual(code, 1, out + err)
        self.assertIn("no-such-binary", err)
        d.wait_log(r"worker web: back on the spec it ran before the reload")
        self.assertEqual(d.instance_pids("web"), before)
        # Restarted now, the worker still runs the old command.
        d.ctl_ok("restart", "web")
        self.assertTrue(all(pid_alive(p) for p in d.instance_pids("web").values()))
        # The file's change is seen again (and fails again, changing nothing).
        code, out, err = d.ctl("--json", "reload")
        reply = json.loads(out)
        self.assertEqual(reply["workers"]["changed"], ["web"], out + err)
        self.assertFalse(reply["ok"])

    def test_a_reload_canary_is_refused_for_a_change_beyond_what_a_process_starts_with(self):
        d = self.start(config(instances=2), instances=2)
        before = d.instance_pids("web")
        d.write_config(config(instances=2, version="2").replace('ready_timeout = "10s"', 'ready_timeout = "9s"'))
        code, out, err = d.ctl("reload", "--canary", "1")
        self.assertEqual(code, 1)
        self.assertIn("a canary can try a new command, env", err)
        self.assertEqual(d.instance_pids("web"), before)
        self.assertEqual(d.ctl_json("reload")["workers"]["changed"], ["web"])  # nothing had changed

    def test_a_held_canary_goes_on_across_an_upgrade_and_is_promoted_there(self):
        d = self.start(config(instances=3), instances=3)
        load = self.with_load(d)
        before = {i: x["pid"] for i, x in self.in_service(d).items()}
        restart = self.background(d, "restart", "web", "--canary", "1")
        self.wait_paused(d)
        d.ctl_ok("upgrade")
        paused = self.wait_paused(d)
        self.assertEqual((paused["canary"], paused["replaced"]), (1, 1))
        d.ctl_ok("rollout", "promote", "web")
        code, out, err = self.finish(restart)
        self.assertEqual(code, 0, out + err + d.log())
        after = {i: x["pid"] for i, x in self.in_service(d).items()}
        self.assertTrue(all(after[i] != before[i] for i in range(3)))
        self.assert_no_failures(load.stop())

    def test_refusals_change_nothing(self):
        d = self.start(config(instances=2), instances=2)
        before = d.instance_pids("web")
        for args, message in [
            (("restart", "web", "--canary", "2"), "would replace them all"),
            (("restart", "web", "--pause", "1s"), "--pause needs --canary"),
            (("restart", "web", "--canary", "0"), "positive"),
            (("restart", "web", "--canary", "1", "--pause", "soon"), "duration"),
            (("restart", "web", "--canary", "1", "--pause", "0s"), "above 0"),
            (("rollout", "promote", "web"), "no rolling restart in progress"),
            (("rollout", "abort", "nope"), "unknown worker"),
            (("reload", "--canary", "1"), "no changed worker"),
        ]:
            code, out, err = d.ctl(*args)
            self.assertIn(code, (1, 2), args)
            self.assertIn(message, err, args)
        self.assertEqual(d.instance_pids("web"), before)
        # The wire refuses what fdsupctl would not send.
        for request in ['{"cmd": "restart", "names": ["web"], "canary": "x"}',
                        '{"cmd": "restart", "names": ["web"], "pause": "1s"}',
                        '{"cmd": "restart", "names": ["web"], "canary": 1, "pause": "0ms"}',
                        '{"cmd": "rollout", "names": ["web"], "action": "explode"}',
                        '{"cmd": "rollout", "names": ["web"], "action": "promote", "wait": true}']:
            reply = ask(d, json.loads(request))
            self.assertFalse(reply["ok"], request)
        self.assertEqual(d.instance_pids("web"), before)


class StopDelay(RolloutCase):
    def test_scale_down_drains_out_of_readiness_before_stop_signal(self):
        d = self.fdsupd(config(instances=2, extra='stop_delay = "1500ms"') + """
[supervisor]
metrics_listen = "127.0.0.1:0"
""").start()
        d.wait_control()
        d.wait_log(r"worker web\[\d+\]: pid \d+ ready", count=2)
        bound = d.wait_log(r"metrics: http://([\d.]+:\d+)/metrics")[0].group(1)
        leaving = d.instance("web", 1)["pid"]
        scale = self.background(d, "scale", "web", "1")
        draining = wait_until(lambda: [i for i in d.ctl_json("status", "web")["workers"][0]["instances"]
                                       if i.get("draining")], what="web[1] draining")
        self.assertEqual(draining[0]["pid"], leaving)
        self.assertEqual(draining[0]["state"], "running")
        self.assertFalse(draining[0]["ready"])  # out of readiness, still serving
        self.assertIn("draining", d.ctl_ok("status", "web"))
        with urllib.request.urlopen(f"http://{bound}/readyz", timeout=5) as r:
            self.assertEqual((r.status, r.read().decode()), (200, "ready\n"))
        self.assertTrue(pid_alive(leaving))
        code, out, err = self.finish(scale)
        self.assertEqual(code, 0, out + err)
        self.assertFalse(pid_alive(leaving))
        log = d.log()
        draining_events = [e for e in events_of(d) if e["event"] == "draining"]
        self.assertEqual([(e["pid"], e["delay"]) for e in draining_events], [(leaving, 1.5)])
        drained = log.index(f"draining pid {leaving}")
        stopped = log.index(f"stopping pid {leaving}")
        self.assertLess(drained, stopped)

    def test_a_rolling_restart_drains_each_old_process_and_loses_no_request(self):
        d = self.start(config(instances=2, extra='stop_delay = "300ms"'), instances=2)
        load = self.with_load(d)
        before = d.instance_pids("web")
        d.ctl_ok("restart", "web")
        for pid in before.values():
            d.wait_log(rf"draining pid {pid}: out of readiness, SIGTERM in 300ms")
        self.assert_no_failures(load.stop())


if __name__ == "__main__":
    unittest.main()
