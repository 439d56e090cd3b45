"""fdsupctl clients across an in-place upgrade of fdsupd (issue 18): a `restart` whose
rolling restart goes on in the next image reports how it ended there, and `logs -f`
follows on with no line lost or shown twice. fdsupd tells them just before its exec
("upgrading", control/protocol.h); they connect again to the same socket. If nothing
comes back (fdsupd exited, or hangs), they say so and exit 3."""
import os
import re
import signal
import sys
import threading

from fdsup_harness import Background, FdsupTestCase, ask, helper, pid_alive, wait_until

FAILING_RESTORE = helper("fdsupd_fail_restore")  # a test build whose restore fails

# web's new processes wait while @TMP@/hold exists (not ready: ready = "notify"), and
# exit 7 if @TMP@/fail appears meanwhile; then they exec http_worker (same pid), which
# sends READY=1.
CONFIG = """
[sockets.http]
listen = "tcp://127.0.0.1:0"

[workers.web]
command = ["/bin/sh", "-c", "while [ -e @TMP@/hold ]; do [ -e @TMP@/fail ] && exit 7; sleep 0.02; done; exec @HELPERS@/http_worker --notify"]
instances = 2
sockets = ["http"]
ready = "notify"
ready_timeout = "60s"
stop_timeout = "5s"
"""

# Numbered lines, steadily.
COUNTER = """
[workers.counter]
command = ["@PYTHON@", "-u", "-c", "import time\\nn = 0\\nwhile True:\\n    print('line', n)\\n    n += 1\\n    time.sleep(0.002)"]
"""


def touch(d, name):
    open(os.path.join(d.tmp, name), "w").close()


def wrapper(d, name, on_restore):
    """A "new fdsupd binary": the real one, except that on --restore-state (the exec of
    an upgrade) it runs `on_restore` (Python) instead."""
    path = os.path.join(d.tmp, name)
    with open(path, "w") as f:
        f.write(f"""#!{sys.executable}
import os, sys, time
if "--restore-state" in sys.argv:
{on_restore}
os.execv({os.environ["FDSUPD"]!r}, [{os.environ["FDSUPD"]!r}] + sys.argv[1:])
""")
    os.chmod(path, 0o755)
    return path


class UpgradeClients(FdsupTestCase):
    def start(self, config=CONFIG):
        d = self.fdsupd(config).start()
        d.wait_control()
        if "workers.web" in config:
            wait_until(lambda: all(i["ready"] for i in d.ctl_json("status", "web")["workers"][0]["instances"]),
                       what="web ready")
        return d

    def held_restart(self, d, *names):
        """A `fdsupctl restart` whose rolling restart of web waits: web[0]'s replacement
        is held not ready. Returns (the client, web's pids before)."""
        before = d.instance_pids("web")
        touch(d, "hold")
        restart = Background(self, d, "restart", *(names or ("web",)))
        d.current_pid("web[0]", after=before[0])  # its replacement started
        return restart, before

    def upgrade(self, d, *args):
        code, out, err = d.ctl("upgrade", *args)
        return code, out + err

    def test_a_restart_goes_on_across_upgrades_and_reports_how_it_ended(self):
        d = self.start()
        restart, before = self.held_restart(d)
        for n in (1, 2):  # twice: the client follows it each time
            code, text = self.upgrade(d)
            self.assertEqual(code, 0, text + d.log())
            restart.wait_stderr("the restart goes on there", count=n)
            d.wait_log(r"upgrade: told 1 control client\(s\) to ask the next image", count=n)
        self.assertIsNotNone(d.ctl_json("status", "web")["workers"][0]["rollout"])
        os.remove(os.path.join(d.tmp, "hold"))
        code, out, err = restart.finish()
        self.assertEqual(code, 0, out + err + d.log())
        after = d.instance_pids("web")
        for index in (0, 1):
            self.assertIn(f"web[{index}]: pid {before[index]} replaced by pid {after[index]}", out)
        self.assertEqual(err.count("fdsupctl: fdsupd was upgraded in place (0.1.0 -> 0.1.0); "
                                   "the restart goes on there"), 2, err)

    def test_the_rollout_request_tells_where_a_rolling_restart_is_and_how_the_last_one_ended(self):
        d = self.start()
        none = ask(d, {"cmd": "rollout", "names": ["web"]})
        self.assertEqual((none["ok"], none["rollouts"][0]["state"], none["instances"]), (True, "none", []))
        waited = ask(d, {"cmd": "rollout", "names": ["web"], "wait": True})
        self.assertFalse(waited["ok"])
        self.assertIn("worker web: no rolling restart is known to this fdsupd", waited["error"])
        self.assertIn('unknown worker "nope"', ask(d, {"cmd": "rollout", "names": ["nope"]})["error"])

        restart, before = self.held_restart(d)
        running = ask(d, {"cmd": "rollout", "names": ["web"]})["rollouts"][0]
        self.assertEqual((running["state"], running["total"], running["replaced"], running["replacing"]),
                         ("running", 2, 0, 1))
        waited = []
        waiter = threading.Thread(target=lambda: waited.append(ask(d, {"cmd": "rollout", "names": ["web"],
                                                                       "wait": True})), daemon=True)
        waiter.start()
        d.wait_log(r"control: rollout", count=5)  # this one taken too
        self.assertEqual(waited, [])  # the rollout is held: no answer yet
        os.remove(os.path.join(d.tmp, "hold"))
        self.assertEqual(restart.finish()[0], 0)
        waiter.join(timeout=20)
        self.assertTrue(waited and waited[0]["ok"], waited)
        done = ask(d, {"cmd": "rollout", "names": ["web"], "wait": True})  # finished: at once
        self.assertEqual(done, waited[0])
        self.assertEqual(done["rollouts"][0]["state"], "done")
        after = d.instance_pids("web")
        self.assertEqual([i["message"] for i in done["instances"]],
                         [f"web[{n}]: pid {before[n]} replaced by pid {after[n]}" for n in (0, 1)])

    def test_a_rollout_that_fails_after_the_upgrade_exits_1_with_the_reason(self):
        d = self.start()
        restart, before = self.held_restart(d)
        code, text = self.upgrade(d)
        self.assertEqual(code, 0, text + d.log())
        restart.wait_stderr("the restart goes on there")
        touch(d, "fail")  # the held replacement exits 7
        code, out, err = restart.finish()
        self.assertEqual(code, 1, out + err + d.log())
        self.assertRegex(err, rf"fdsupctl: restart failed for 2 of 2 instances: web\[0\]: replacement failed: "
                              rf".*code 7.*; pid {before[0]} keeps serving")
        self.assertIn(f"web[1]: not replaced (web[0] failed); pid {before[1]} keeps serving", out)
        self.assertEqual(d.instance_pids("web"), before)

    def test_what_was_done_before_the_upgrade_is_reported_with_the_rest(self):
        # api restarts stop-start and is done before the upgrade (which waits for it);
        # web's rollout goes on in the next image.
        d = self.start(CONFIG + """
[workers.api]
command = ["/bin/sh", "-c", "exec sleep 1000"]
restart_strategy = "stop-start"
""")
        api_before = d.instance_pids("api")[0]
        restart, before = self.held_restart(d, "api", "web")
        wait_until(lambda: d.instance_pids("api")[0] not in (None, api_before), what="api restarted")
        wait_until(lambda: self.upgrade(d)[0] == 0, what="the upgrade, once api's restart is over")
        os.remove(os.path.join(d.tmp, "hold"))
        code, out, err = restart.finish()
        self.assertEqual(code, 0, out + err + d.log())
        api_after = d.instance_pids("api")[0]
        lines = out.splitlines()
        self.assertEqual(lines[0], f"api[0]: pid {api_before} replaced by pid {api_after}", out)
        self.assertTrue(lines[1].startswith(f"web[0]: pid {before[0]} replaced by pid"), out)
        self.assertTrue(lines[2].startswith(f"web[1]: pid {before[1]} replaced by pid"), out)

    def test_a_rolled_back_upgrade_is_followed_too(self):
        d = self.start()
        restart, before = self.held_restart(d)
        code, text = self.upgrade(d, "--binary", FAILING_RESTORE)
        self.assertEqual(code, 1, text + d.log())
        self.assertIn("rolled back", text)
        os.remove(os.path.join(d.tmp, "hold"))
        code, out, err = restart.finish()
        self.assertEqual(code, 0, out + err + d.log())
        self.assertIn("fdsupctl: fdsupd's in-place upgrade was rolled back (fdsupd 0.1.0 goes on); "
                      "the restart goes on there", err)
        self.assertIn(f"web[1]: pid {before[1]} replaced by pid", out)

    def test_an_exec_that_fails_after_the_notice_changes_nothing_for_the_clients(self):
        d = self.start(CONFIG + COUNTER)
        logs = Background(self, d, "logs", "counter", "-f")
        wait_until(lambda: len(logs.lines()) > 20, what="lines followed")
        restart, before = self.held_restart(d)
        # A binary that passes the pre-flight and then is gone: the exec fails.
        path = os.path.join(d.tmp, "vanishing")
        with open(path, "w") as f:
            f.write(f"""#!{sys.executable}
import os, subprocess, sys
result = subprocess.run([{os.environ["FDSUPD"]!r}] + sys.argv[1:])
os.remove({path!r})
sys.exit(result.returncode)
""")
        os.chmod(path, 0o755)
        code, text = self.upgrade(d, "--binary", path)
        self.assertEqual(code, 1, text + d.log())
        self.assertIn("upgrade refused: exec", text)
        self.assertEqual(d.ctl_json("version")["upgrades"], 0)
        seen = len(logs.lines())
        wait_until(lambda: len(logs.lines()) > seen + 100, what="more lines on the same connection")
        os.remove(os.path.join(d.tmp, "hold"))
        code, out, err = restart.finish()
        self.assertEqual(code, 0, out + err + d.log())
        self.assertNotIn("upgraded", err + logs.stderr())
        self.assertIsNone(logs.proc.poll())
        logs.proc.send_signal(signal.SIGINT)
        self.assertEqual(logs.finish()[0], 0)
        numbers = [int(m.group(1)) for m in re.finditer(r"counter\[0\]: line (\d+)$", "".join(logs.lines()), re.M)]
        self.assertEqual(numbers, list(range(numbers[0], numbers[0] + len(numbers))))

    def test_logs_f_follows_across_upgrades_without_losing_or_repeating_a_line(self):
        d = self.start(COUNTER)
        logs = Background(self, d, "logs", "counter", "-f")
        wait_until(lambda: len(logs.lines()) > 20, what="lines followed")
        for n in (1, 2, 3):
            code, text = self.upgrade(d)
            self.assertEqual(code, 0, text + d.log())
            logs.wait_stderr("following again", count=n)
            d.wait_log(r"upgrade: told 1 control client\(s\) to ask the next image", count=n)
            seen = len(logs.lines())
            wait_until(lambda: len(logs.lines()) > seen + 100, what="lines from the next image")
        self.assertIsNone(logs.proc.poll(), "logs -f still running")
        self.assertEqual(logs.stderr().count("fdsupctl: fdsupd was upgraded in place (0.1.0 -> 0.1.0); "
                                             "following again\n"), 3, logs.stderr())
        logs.proc.send_signal(signal.SIGINT)
        code, out, err = logs.finish()
        self.assertEqual(code, 0, err)
        numbers = [int(m.group(1)) for m in re.finditer(r"^\S+ \S+ counter\[0\]: line (\d+)$", out, re.M)]
        self.assertEqual(len(numbers), len(out.splitlines()), out[:2000])
        # Every line once, in order, from the first one shown (the last of the ring then).
        self.assertEqual(numbers, list(range(numbers[0], numbers[0] + len(numbers))),
                         [(a, b) for a, b in zip(numbers, numbers[1:]) if b != a + 1])

    def test_an_fdsupd_that_exits_during_its_upgrade_is_reported(self):
        d = self.start(CONFIG + COUNTER)
        logs = Background(self, d, "logs", "counter", "-f")
        wait_until(lambda: len(logs.lines()) > 20, what="lines followed")
        restart, before = self.held_restart(d)
        dying = wrapper(d, "fdsupd-dying", "    os._exit(1)")
        code, text = self.upgrade(d, "--binary", dying)
        self.assertEqual(code, 3, text)  # its answer would have come from the next image
        self.assertEqual(d.wait_exit(), 1)
        code, out, err = restart.finish(timeout=20)  # at once, not after the 30 s a hang gets
        self.assertEqual(code, 3, out + err)
        self.assertIn(f"fdsupctl: fdsupd (pid {d.pid}) at {d.control_socket} exited during its in-place upgrade; "
                      "the outcome of the restart is not known", err)
        code, out, err = logs.finish(timeout=20)
        self.assertEqual(code, 3, err)
        self.assertIn(f"exited during its in-place upgrade; following the logs ends here", err)

    def test_an_fdsupd_that_does_not_answer_after_its_upgrade_is_given_up_on(self):
        d = self.start(COUNTER)
        logs = Background(self, d, "logs", "counter", "-f")
        wait_until(lambda: len(logs.lines()) > 20, what="lines followed")
        hanging = wrapper(d, "fdsupd-hanging", "    time.sleep(1000)")
        upgrade = Background(self, d, "upgrade", "--binary", hanging)
        code, out, err = logs.finish(timeout=60)
        self.assertEqual(code, 3, err)
        self.assertRegex(err, rf"fdsupctl: fdsupd at {re.escape(d.control_socket)} did not answer within 30 s of "
                              r"its in-place upgrade \(.*\); following the logs ends here")
        self.assertIsNone(upgrade.proc.poll())  # it waits for an answer from the next image, too
        self.assertTrue(pid_alive(d.pid))


if __name__ == "__main__":
    import unittest
    unittest.main()
