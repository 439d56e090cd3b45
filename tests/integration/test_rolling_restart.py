"""Rolling restarts: every instance is replaced on the same listening socket, the old
process stopped only once its replacement is ready. Under continuous load from a real
HTTP client (ApacheBench, a new connection per request) no request fails; a
replacement that never becomes ready stops the rollout and the old processes keep
serving."""
import os
import re
import signal
import subprocess
import unittest

from fdsup_harness import FDSUPCTL, FdsupTestCase, http_get, pid_alive, wait_until

CONFIG = """
[sockets.http]
listen = "tcp://127.0.0.1:0"
backlog = 4096

[workers.web]
command = ["@HELPERS@/http_worker", "--notify", "--startup-delay-ms", "{delay}", "--never-ready-if", "@TMP@/broken",
           "--hold-ready-while", "@TMP@/hold"]
instances = {instances}
sockets = ["http"]
ready = "notify"
ready_timeout = "{ready_timeout}"
max_surge = {max_surge}
stop_timeout = "5s"
{extra}
"""


def config(delay=300, instances=2, ready_timeout="10s", max_surge=1, extra=""):
    return CONFIG.format(delay=delay, instances=instances, ready_timeout=ready_timeout, max_surge=max_surge,
                         extra=extra)


class Load:
    """ApacheBench hammering the socket until stopped: -r keeps it going past errors
    so that they are counted instead of ending the run. -n bounds the run (ab keeps a
    record per request: 2 million is ~100 MB, more than a test ever sends)."""

    def __init__(self, host, port):
        # -l: the body names the pid, so its length varies; that is no failure.
        self.proc = subprocess.Popen(["ab", "-r", "-l", "-q", "-t", "600", "-n", "2000000", "-c", "4",
                                      f"http://{host}:{port}/"],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        # Its report needs its SIGINT handler: a test that stops it sooner (one that
        # fails fast) would kill it mute.
        wait_until(lambda: self.catches(signal.SIGINT), what="ab handling SIGINT")

    def catches(self, sig):
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                mask = next(int(line.split()[1], 16) for line in f if line.startswith("SigCgt:"))
        except FileNotFoundError:
            raise AssertionError(f"ab exited at once ({self.proc.wait()}): {self.proc.stdout.read()}") from None
        return bool(mask & (1 << (sig - 1)))

    def stop(self):
        """Stops ab (it prints its report on SIGINT): {complete, failed, non_2xx, text}."""
        self.proc.send_signal(signal.SIGINT)
        out, _ = self.proc.communicate(timeout=60)

        def number(label):
            m = re.search(rf"^{label}:\s+(\d+)", out, re.M)
            return int(m.group(1)) if m else None
        complete = number("Complete requests")
        if complete is None:
            raise AssertionError(f"ab did not report (exit {self.proc.returncode}):\n{out}")
        return {"complete": complete, "failed": number("Failed requests"),
                "non_2xx": number("Non-2xx responses") or 0, "text": out}

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def load_on(test, d):
    """ApacheBench on socket http, once one request shows the workers serve; killed when
    `test` ends."""
    test.assertTrue(http_get(*d.address("http")).startswith("web["))
    load = Load(*d.address("http"))
    test.addCleanup(load.kill)
    return load


def ready_pids(d):
    """{index: pid}, checking that each index has exactly one instance, in service."""
    instances = d.ctl_json("status", "web")["workers"][0]["instances"]
    pids = {i["index"]: i["pid"] for i in instances}
    assert len(pids) == len(instances), f"leftover instances: {instances}"
    assert not any(i.get("retiring") or i.get("replacement") for i in instances), instances
    return pids


def hold(d):
    """New http_worker processes stay "starting" until release(d)."""
    open(os.path.join(d.tmp, "hold"), "w").close()


def release(d):
    os.unlink(os.path.join(d.tmp, "hold"))


class RollingRestart(FdsupTestCase):
    def start(self, cfg):
        d = self.fdsupd(cfg).start()
        d.wait_control()
        count = int(re.search(r"instances = (\d+)", cfg).group(1))
        d.wait_log(r"worker web\[\d+\]: pid \d+ ready", count=count)
        return d

    def with_load(self, d):
        return load_on(self, d)

    def test_ten_restarts_under_load_fail_no_request(self):
        d = self.start(config(delay=300, instances=2))
        load = self.with_load(d)
        pids = ready_pids(d)
        for round_number in range(10):
            out = d.ctl_ok("restart", "web")
            new = ready_pids(d)
            self.assertEqual(sorted(new), [0, 1])
            for index in (0, 1):
                self.assertNotEqual(new[index], pids[index], f"round {round_number}: web[{index}] kept its pid")
                self.assertIn(f"web[{index}]: pid {pids[index]} replaced by pid {new[index]}", out)
                self.assertFalse(pid_alive(pids[index]), "the old process has exited before restart returns")
            pids = new
        result = load.stop()
        self.assertGreater(result["complete"], 100, result["text"])
        self.assertEqual((result["failed"], result["non_2xx"]), (0, 0), result["text"])
        self.assertEqual(len(re.findall(r"SIGKILL", d.log())), 0, "every old process drained in time")

    def test_a_replacement_that_never_gets_ready_stops_the_rollout(self):
        d = self.start(config(delay=100, instances=2, ready_timeout="1s"))
        load = self.with_load(d)
        before = ready_pids(d)
        open(os.path.join(d.tmp, "broken"), "w").close()  # new processes never send READY=1
        code, out, err = d.ctl("restart", "web")
        self.assertEqual(code, 1, out + err)
        self.assertIn("web[0]: replacement failed: not ready within ready_timeout", err)
        self.assertIn(f"pid {before[0]} keeps serving", err)
        self.assertIn(f"web[1]: not replaced (web[0] failed); pid {before[1]} keeps serving", out + err)
        # The failed replacement goes; the old processes stay, untouched and serving.
        wait_until(lambda: len(d.ctl_json("status", "web")["workers"][0]["instances"]) == 2,
                   what="only the old instances left")
        self.assertEqual(ready_pids(d), before)
        for pid in before.values():
            self.assertTrue(pid_alive(pid))
        self.assertTrue(http_get(*d.address("http")).startswith("web["))
        result = load.stop()
        self.assertEqual((result["failed"], result["non_2xx"]), (0, 0), result["text"])
        worker = d.ctl_json("status", "web")["workers"][0]
        self.assertEqual((worker["state"], worker["rollout"]), ("running", None))
        # Fixed: the next restart goes through.
        os.unlink(os.path.join(d.tmp, "broken"))
        d.ctl_ok("restart", "web")
        self.assertNotEqual(ready_pids(d)[0], before[0])

    def restart_in_background(self, d):
        proc = subprocess.Popen([FDSUPCTL, "-s", d.control_socket, "restart", "web"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        d.wait_log(r"worker web: rolling restart of")
        return proc

    def held_rollout(self):
        """A 2-instance worker whose rolling restart is under way and held: web[0]'s
        replacement has started and stays "starting" until release(d).
        Returns (d, pids before, the restart command, the replacement's pid)."""
        d = self.start(config(delay=0, instances=2))
        before = ready_pids(d)
        hold(d)
        restart = self.restart_in_background(d)
        return d, before, restart, d.current_pid("web[0]", after=before[0])

    def test_a_second_restart_during_a_rollout_is_refused(self):
        d = self.start(config(delay=0, instances=1))
        hold(d)
        first = self.restart_in_background(d)
        code, out, err = d.ctl("restart", "web")
        self.assertEqual(code, 1, out + err)
        self.assertIn("worker web: a rolling restart is in progress (0 of 1 instances replaced)", err)
        code, out, err = d.ctl("scale", "web", "3")
        self.assertEqual(code, 1, out + err)
        self.assertIn("a rolling restart is in progress", err)
        self.assertEqual(d.ctl_json("status", "web")["workers"][0]["rollout"]["total"], 1)
        release(d)
        out, err = first.communicate(timeout=30)
        self.assertEqual(first.returncode, 0, out + err)
        ready_pids(d)

    def test_stop_during_a_rollout_wins(self):
        d, before, restart, replacement = self.held_rollout()
        d.ctl_ok("stop", "web")
        out, err = restart.communicate(timeout=30)
        self.assertEqual(restart.returncode, 1, out + err)
        self.assertIn("not replaced (a later command took over)", out + err)
        status = d.ctl_json("status", "web")["workers"][0]
        self.assertEqual(status["state"], "stopped")
        self.assertEqual(len(status["instances"]), 2)
        for pid in (*before.values(), replacement):
            wait_until(lambda: not pid_alive(pid), what=f"pid {pid} gone")

    def test_max_surge_replaces_that_many_at_once(self):
        d = self.start(config(delay=800, instances=4, max_surge=2))
        mark = len(d.log())
        d.ctl_ok("restart", "web")
        log = d.log()[mark:]
        starts = [m.start() for m in re.finditer(r"worker web\[\d\]: started pid", log)]
        readies = [m.start() for m in re.finditer(r"worker web\[\d\]: pid \d+ ready", log)]
        self.assertEqual(len(starts), 4)
        # Two replacements start together; the third only once one of them is ready.
        self.assertLess(starts[1], readies[0])
        self.assertGreater(starts[2], readies[0])

    def test_reload_rolls_a_changed_worker_under_load(self):
        d = self.start(config(delay=300, instances=2))
        load = self.with_load(d)
        before = ready_pids(d)
        d.write_config(config(delay=300, instances=3, extra='env = { APP_VERSION = "2" }'))
        out = d.ctl_ok("reload")
        self.assertIn("changed web", out)
        after = ready_pids(d)
        self.assertEqual(sorted(after), [0, 1, 2])
        for index, pid in after.items():
            self.assertNotIn(pid, before.values())
            with open(f"/proc/{pid}/environ", "rb") as f:
                self.assertIn(b"APP_VERSION=2", f.read().split(b"\0"))
        self.assertIn("worker web: configuration changed; rolling restart", d.log())
        result = load.stop()
        self.assertEqual((result["failed"], result["non_2xx"]), (0, 0), result["text"])

    # Found by test_chaos: a replacement whose process was already gone when the rollout
    # retired it (SIGKILLed before it was ready) was only marked retiring, and erased at
    # the next state change, which an idle fdsupd never has. Until then status listed it
    # ("failed (new)") and a reload changing the worker was refused.
    def test_a_replacement_killed_before_it_is_ready_is_let_go_at_once(self):
        d, before, restart, replacement = self.held_rollout()
        os.kill(replacement, signal.SIGKILL)
        out, err = restart.communicate(timeout=30)
        self.assertEqual(restart.returncode, 1, out + err)
        self.assertIn(f"web[0]: replacement failed: pid {replacement} killed by signal KILL", err)
        self.assertIn(f"pid {before[0]} keeps serving", err)
        # Nothing else happens from here on: the old processes serve and stay.
        wait_until(lambda: len(d.ctl_json("status", "web")["workers"][0]["instances"]) == 2, timeout=5,
                   what="the dead replacement gone")
        self.assertEqual(ready_pids(d), before)
        release(d)
        d.write_config(config(delay=0, instances=2, extra='env = { APP_VERSION = "2" }'))
        self.assertIn("changed web", d.ctl_ok("reload"))

    def test_an_old_process_that_crashes_mid_rollout_is_restarted_then_replaced(self):
        d, before, restart, _ = self.held_rollout()
        os.kill(before[1], signal.SIGKILL)        # web[1]'s old process dies meanwhile
        d.wait_log(rf"worker web\[1\]: pid {before[1]} killed by signal KILL .*restart #1")
        release(d)
        out, err = restart.communicate(timeout=30)
        self.assertEqual(restart.returncode, 0, out + err)
        after = ready_pids(d)
        self.assertEqual(sorted(after), [0, 1])
        self.assertFalse(set(after.values()) & set(before.values()))

    def test_shutdown_during_a_rollout(self):
        d, before, restart, replacement = self.held_rollout()
        d.signal(signal.SIGTERM)
        self.assertEqual(d.wait_exit(), 0)
        out, err = restart.communicate(timeout=30)
        self.assertNotEqual(restart.returncode, 0, out + err)
        for pid in (*before.values(), replacement):
            wait_until(lambda: not pid_alive(pid), what=f"pid {pid} gone")

    def test_a_reload_whose_new_command_cannot_run_keeps_the_old_processes(self):
        d = self.start(config(delay=0, instances=2))
        load = self.with_load(d)
        before = ready_pids(d)
        d.write_config(config(delay=0, instances=2).replace("@HELPERS@/http_worker", "@TMP@/no-such-binary"))
        code, out, err = d.ctl("reload")
        self.assertEqual(code, 1, out + err)
        self.assertIn("web[0]: replacement failed: exec", out + err)
        self.assertIn("No such file or directory", out + err)
        self.assertIn(f"web[1]: not replaced (web[0] failed); pid {before[1]} keeps serving", out + err)
        wait_until(lambda: len(d.ctl_json("status", "web")["workers"][0]["instances"]) == 2,
                   what="the failed replacement gone")
        self.assertEqual(ready_pids(d), before)
        result = load.stop()
        self.assertEqual((result["failed"], result["non_2xx"]), (0, 0), result["text"])


if __name__ == "__main__":
    unittest.main()
