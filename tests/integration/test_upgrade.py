"""In-place upgrade (`fdsupctl upgrade`, SIGUSR2): fdsupd re-execs itself with the same
pid, adopts its sockets, workers, timers, rollouts and fd stores, and no client sees an
error. A binary that fails its pre-flight is refused; one that cannot restore hands
back to the previous image."""
import grp
import os
import re
import shutil
import tempfile
import signal
import socket
import subprocess
import sys
import unittest

from fdsup_harness import (FakeManager, FdsupTestCase, LoadClient, helper, http_get, open_fd_count, pid_alive,
                           wait_for_connections_closed, wait_until)

FAILING_RESTORE = helper("fdsupd_fail_restore")  # a test build whose restore fails

TWO_BY_TWO = """
[sockets.http]
listen = "tcp://127.0.0.1:0"
backlog = 4096
[sockets.api]
listen = "tcp://127.0.0.1:0"

[workers.web]
command = ["@HELPERS@/http_worker", "--notify"]
sockets = ["http"]
instances = 2
ready = "notify"
backoff = "50ms"

[workers.api]
command = ["@HELPERS@/http_worker"]
sockets = ["api"]
instances = 2
backoff = "50ms"
"""


def has_group(name):
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def worker_pids(d):
    """{("web", 0): pid, ...} and {("web", 0): restarts, ...} from status."""
    status = d.ctl_json("status")
    pids = {(w["name"], i["index"]): i["pid"] for w in status["workers"] for i in w["instances"]}
    restarts = {(w["name"], i["index"]): i["restarts"] for w in status["workers"] for i in w["instances"]}
    return pids, restarts


class Upgrade(FdsupTestCase):
    def tmp_dir(self):
        path = tempfile.mkdtemp(prefix="fdsup-manager-")
        self.addCleanup(shutil.rmtree, path, True)
        return path

    def start(self, config=TWO_BY_TWO, ready=("web[0]", "web[1]", "api[0]", "api[1]")):
        d = self.fdsupd(config).start()
        d.wait_control()
        for label in ready:
            d.wait_log(rf"{label.replace('[', '.').replace(']', '.')}: http_worker: serving on fd 3")
        wait_until(lambda: all(i["ready"] for w in d.ctl_json("status", "web", "api")["workers"] for i in w["instances"]),
                   what="every web and api instance ready")
        return d

    def upgrade(self, d, *args):
        code, out, err = d.ctl("upgrade", *args)
        return code, out, err

    def test_twenty_upgrades_under_load_keep_every_pid_fd_and_counter(self):
        d = self.start()
        # One restart before, so there is a counter to carry.
        pids, _ = worker_pids(d)
        os.kill(pids[("api", 1)], signal.SIGKILL)
        d.current_pid("api[1]", after=pids[("api", 1)])
        wait_until(lambda: worker_pids(d)[1][("api", 1)] == 1 and worker_pids(d)[0][("api", 1)] is not None,
                   what="api[1] restarted once")
        pids_before, restarts_before = worker_pids(d)
        wait_for_connections_closed(d)  # fdsupctl's last connection
        fds_before = open_fd_count(d.pid)

        # "fdsupd 0.1.0 (state format N)"
        state_format = subprocess.run([os.environ["FDSUPD"], "--version"], capture_output=True, text=True,
                                      check=True).stdout.split()[-1].rstrip(")")
        load = LoadClient(*d.address("http"), d.tmp)
        try:
            load.wait_for_more(50, "load flowing")
            for n in range(1, 21):
                code, out, err = self.upgrade(d)
                self.assertEqual(code, 0, out + err + d.log())
                self.assertIn(f"fdsupd upgraded in place: 0.1.0 -> 0.1.0 (pid {d.pid}, state format {state_format}, upgrade #{n})",
                              out)
                load.wait_for_more(20, "requests served after the upgrade")
        finally:
            result = load.finish()
        self.assertGreater(result["ok"], 0)
        failed = {k: result[k] for k in ("refused", "connect_other", "reset", "bad_response", "timeout")}
        self.assertEqual(failed, {k: 0 for k in failed}, result)
        self.assertIsNone(d.proc.poll())  # the same fdsupd process, never gone
        self.assertEqual(d.ctl_json("version")["pid"], d.pid)
        self.assertEqual(worker_pids(d), (pids_before, restarts_before))
        wait_for_connections_closed(d)  # fdsupctl's last connection
        self.assertEqual(open_fd_count(d.pid), fds_before)
        self.assertEqual(len(d.wait_log(r"upgrade done: fdsupd 0\.1\.0 -> 0\.1\.0", count=20)), 20)
        self.assertEqual(d.stop(), 0, d.log())

    def test_sigusr2_upgrades_too(self):
        d = self.start()
        pids, _ = worker_pids(d)
        d.signal(signal.SIGUSR2)
        done = d.wait_log(r"upgrade done: fdsupd 0\.1\.0 -> 0\.1\.0 \(pid \d+, upgrade #1\).*")[0].group(0)
        # The new image's steps, timed from its main() (tests/bench/upgrade.py reads them).
        self.assertRegex(done, r"restored in [0-9.]+ ms from main\(\): warm heap [0-9.]+ ms, read [0-9.]+ ms, "
                               r"parse [0-9.]+ ms, .*"
                               r"instances [0-9.]+ ms, captures [0-9.]+ ms, servers [0-9.]+ ms, resume [0-9.]+ ms$")
        self.assertRegex(d.log(), r"upgrade: exec .* \(\d+ fds kept, state of \d+ KiB written in [0-9.]+ ms\)")
        self.assertEqual(d.ctl_json("version")["upgrades"], 1)
        self.assertEqual(worker_pids(d)[0], pids)

    def test_captured_output_goes_on_across_upgrades_with_its_partial_line(self):
        # Each talker prints a line, half a line, and a stderr line, then waits; the
        # rest comes after two upgrades (and a rollback), through the same pipes.
        config = """
[workers.talker]
command = ["/bin/sh", "-c", "echo before-$FDSUP_INSTANCE; printf half-; echo err-before >&2; while [ ! -e @TMP@/go ]; do sleep 0.05; done; echo line; echo after; echo err-after >&2; exec sleep 1000"]
instances = 2
"""
        d = self.fdsupd(config).start()
        d.wait_control()
        d.wait_log(r"talker.1.: before-1")
        d.wait_log(r"talker.1. stderr: err-before")
        wait_for_connections_closed(d)  # fdsupctl's last connection
        fds = open_fd_count(d.pid)
        for binary in (None, FAILING_RESTORE, None):
            code, out, err = self.upgrade(d, *(("--binary", binary) if binary else ()))
            self.assertEqual(code, 1 if binary else 0, out + err + d.log())
        with open(os.path.join(d.tmp, "go"), "w"):
            pass
        for i in (0, 1):
            d.wait_log(rf"talker.{i}.: half-line")  # the partial line, finished by the new image
            d.wait_log(rf"talker.{i}.: after")
            d.wait_log(rf"talker.{i}. stderr: err-after")
        wait_for_connections_closed(d)  # fdsupctl's last connection
        self.assertEqual(open_fd_count(d.pid), fds)
        self.assertEqual(d.ctl_json("version")["upgrades"], 2)

    def test_a_worker_killed_during_the_exec_is_reaped_and_restarted_by_the_new_image(self):
        d = self.start()
        pids, _ = worker_pids(d)
        victim = pids[("api", 0)]
        # The "new binary" kills api[0] once the old image has handed over, and waits
        # until it is a zombie before the real fdsupd starts: the exit happens in the gap.
        # (Python, not sh: a shell would reap the zombie, which is its child now.)
        wrapper = os.path.join(d.tmp, "fdsupd-wrapper")
        with open(wrapper, "w") as f:
            f.write(f"""#!{sys.executable}
import os, sys
if "--restore-state" in sys.argv:
    os.kill({victim}, 9)
    while open("/proc/{victim}/stat").read().rsplit(")", 1)[1].split()[0] != "Z":
        pass
os.execv({os.environ["FDSUPD"]!r}, [{os.environ["FDSUPD"]!r}] + sys.argv[1:])
""")
        os.chmod(wrapper, 0o755)
        code, out, err = self.upgrade(d, "--binary", wrapper)
        self.assertEqual(code, 0, out + err + d.log())
        d.wait_log(rf"worker api\[0\]: pid {victim} killed by signal KILL after .*; restart #1")
        new_pid = d.current_pid("api[0]", after=victim)
        self.assertFalse(pid_alive(victim))
        self.assertRegex(http_get(*d.address("api")), r"^api\[[01]\] pid \d+\n$")
        pids_after, restarts = worker_pids(d)
        self.assertEqual(pids_after[("api", 0)], new_pid)
        self.assertEqual(restarts[("api", 0)], 1)
        self.assertEqual({k: v for k, v in pids_after.items() if k != ("api", 0)},
                         {k: v for k, v in pids.items() if k != ("api", 0)})

    def test_bad_binaries_are_refused_and_a_failed_restore_rolls_back(self):
        d = self.start()
        pids, _ = worker_pids(d)
        wait_for_connections_closed(d)  # fdsupctl's last connection
        fds = open_fd_count(d.pid)
        not_executable = os.path.join(d.tmp, "not-executable")
        with open(not_executable, "w") as f:
            f.write("#!/bin/sh\nexit 0\n")
        os.chmod(not_executable, 0o644)
        for binary, why in (("/bin/false", r"pre-flight: `(/usr)?/bin/false --check-config -c .*` exited with code 1"),
                            # exits 0, but says nothing about the config or the formats
                            ("/bin/true", r"pre-flight: (/usr)?/bin/true did not confirm the configuration"),
                            (not_executable, r"pre-flight: cannot run .*not-executable: Permission denied"),
                            ("/nonexistent/fdsupd", r"pre-flight: cannot run /nonexistent/fdsupd: No such file")):
            code, out, err = self.upgrade(d, "--binary", binary)
            self.assertEqual(code, 1, out + err)
            self.assertRegex(err, "upgrade refused: " + why)
        self.assertEqual(d.ctl_json("version")["upgrades"], 0)
        # Refused pre-flights leave nothing behind (no pipe, no pidfd).
        wait_until(lambda: open_fd_count(d.pid) == fds, what="fdsupd's fds back after the refusals")

        # It passes the pre-flight, execs, adopts everything, then fails: the previous
        # image takes over again and says why.
        code, out, err = self.upgrade(d, "--binary", FAILING_RESTORE)
        self.assertEqual(code, 1, out + err + d.log())
        self.assertIn("the new image could not take over (restore failure injected by this test build", err)
        self.assertIn("rolled back: fdsupd 0.1.0 goes on", err)
        d.wait_log(r"upgrade rolled back: restore failure injected")
        self.assertIsNone(d.proc.poll())
        self.assertEqual(d.ctl_json("version")["upgrades"], 0)  # a rollback is no upgrade
        self.assertEqual(worker_pids(d)[0], pids)
        self.assertRegex(http_get(*d.address("http")), r"^web\[[01]\] pid \d+\n$")
        wait_for_connections_closed(d)  # fdsupctl's last connection
        self.assertEqual(open_fd_count(d.pid), fds)
        # And a good binary still upgrades afterwards.
        code, out, err = self.upgrade(d)
        self.assertEqual(code, 0, out + err + d.log())
        self.assertEqual(worker_pids(d)[0], pids)

    def test_the_pre_flight_gets_only_stdio_and_default_signals(self):
        # The pre-flight runs through the launcher (sharing fdsupd's fd table until it
        # keeps only its fd map): it must see /dev/null, its output pipe twice, and
        # none of fdsupd's sockets, pidfds or pipes; no signal blocked or ignored.
        d = self.start()
        wait_for_connections_closed(d)
        probe = os.path.join(d.tmp, "show-what-i-got")
        with open(probe, "w") as f:
            f.write("#!/bin/sh\ngrep -E '^Sig(Blk|Ign)' /proc/self/status\n"
                    "ls -l /proc/$$/fd\nexit 3\n")  # the shell's fds, as it got them
        os.chmod(probe, 0o755)
        code, out, err = self.upgrade(d, "--binary", probe)
        self.assertEqual(code, 1, out + err)
        self.assertRegex(err, r"pre-flight: `.*show-what-i-got --check-config .*` exited with code 3")
        self.assertRegex(err, r"SigBlk:\s+0+\b")
        self.assertRegex(err, r"SigIgn:\s+0+\b")
        fds = dict(re.findall(r" (\d+) -> (\S*)$", err, re.MULTILINE))
        self.assertEqual(fds.get("0"), "/dev/null", err)
        self.assertRegex(fds.get("1", ""), r"^pipe:\[\d+\]$", err)
        self.assertEqual(fds.get("1"), fds.get("2"), err)
        # Besides stdio, only the script the shell reads.
        others = {fd: target for fd, target in fds.items() if fd not in ("0", "1", "2")}
        self.assertTrue(all(target == probe for target in others.values()),
                        f"fdsupd's fds leaked into the pre-flight: {others}\n{err}")
        self.assertEqual(d.ctl_json("version")["upgrades"], 0)

    def test_backoff_and_a_rolling_restart_go_on_across_an_upgrade(self):
        config = TWO_BY_TWO.replace('command = ["@HELPERS@/http_worker", "--notify"]',
                                    'command = ["@HELPERS@/http_worker", "--notify", "--hold-ready-while", "@TMP@/hold"]')
        config += """
[workers.flaky]
command = ["/bin/sh", "-c", "exit 3"]
backoff = "1500ms"
backoff_max = "1500ms"
start_limit_burst = 100
"""
        d = self.start(config)
        # flaky is in backoff, its next start 1.5 s away.
        wait_until(lambda: d.ctl_json("status", "flaky")["workers"][0]["instances"][0]["state"] == "backoff",
                   what="flaky in backoff")

        # A rolling restart of web that waits: the replacements are held not ready.
        pids, _ = worker_pids(d)
        open(os.path.join(d.tmp, "hold"), "w").close()
        restart = subprocess.Popen([os.environ["FDSUPCTL"], "-s", d.control_socket, "restart", "web"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: restart.poll() is None and restart.kill())
        wait_until(lambda: d.ctl_json("status", "web")["workers"][0]["rollout"] is not None, what="rollout begun")

        restarts_before = d.ctl_json("status", "flaky")["workers"][0]["instances"][0]["restarts"]
        code, out, err = self.upgrade(d)
        self.assertEqual(code, 0, out + err + d.log())
        self.assertIsNotNone(d.ctl_json("status", "web")["workers"][0]["rollout"])  # carried over
        # flaky's count came across (not reset), and its backoff timer too: the new image
        # starts it again when the deadline comes.
        self.assertGreaterEqual(d.ctl_json("status", "flaky")["workers"][0]["instances"][0]["restarts"], restarts_before)

        os.remove(os.path.join(d.tmp, "hold"))
        d.wait_log(r"worker web: the rolling restart begun before the upgrade is done")
        # Its client followed it to the new image (test_upgrade_clients.py).
        out, err = restart.communicate(timeout=20)
        self.assertEqual(restart.returncode, 0, out + err)
        status = d.ctl_json("status", "web")["workers"][0]
        self.assertIsNone(status["rollout"])
        new = {i["index"]: i["pid"] for i in status["instances"]}
        self.assertEqual(len(new), 2)
        self.assertTrue(set(new.values()).isdisjoint({pids[("web", 0)], pids[("web", 1)]}))
        for old in (pids[("web", 0)], pids[("web", 1)]):
            wait_until(lambda: not pid_alive(old), what=f"old web pid {old} gone")

        # flaky was started by the new image (a start logged after the upgrade), and its
        # count went on from the old image's.
        def started_after_upgrade():
            log = d.log()
            return "worker flaky[0]: started pid" in log[log.index("upgrade done"):]
        wait_until(started_after_upgrade, what="flaky started by the new image")
        wait_until(lambda: d.ctl_json("status", "flaky")["workers"][0]["instances"][0]["restarts"] > restarts_before,
                   what="flaky's restart count going on from the old image's")

    def test_a_changed_config_is_applied_after_the_upgrade(self):
        d = self.start()
        pids, _ = worker_pids(d)
        with open(d.config_path) as f:
            text = f.read()
        with open(d.config_path, "w") as f:
            f.write(text + '\n[workers.extra]\ncommand = ["/bin/sh", "-c", "echo extra up; exec sleep 1000"]\n')
        code, out, err = self.upgrade(d)
        self.assertEqual(code, 0, out + err + d.log())
        d.wait_log(r"upgrade: the configuration file changed since it was loaded; reloading")
        d.wait_log(r"extra\[0\]: extra up")
        pids_after, _ = worker_pids(d)
        self.assertEqual({k: v for k, v in pids_after.items() if k[0] != "extra"}, pids)

    def test_a_service_manager_hears_reloading_then_ready_from_the_same_pid(self):
        manager = FakeManager(self.tmp_dir())
        self.addCleanup(manager.close)
        manager_path = manager.path
        d = self.fdsupd(TWO_BY_TWO, env=dict(os.environ, NOTIFY_SOCKET=manager_path)).start()
        pid, ready = manager.next_with("READY")
        self.assertEqual((pid, ready["READY"]), (d.pid, "1"))
        code, out, err = self.upgrade(d)
        self.assertEqual(code, 0, out + err + d.log())
        pid, reloading = manager.next_with("RELOADING")
        self.assertEqual((pid, reloading["RELOADING"]), (d.pid, "1"))
        self.assertGreater(int(reloading["MONOTONIC_USEC"]), 0)
        pid, ready = manager.next_with("READY")
        self.assertEqual((pid, ready["READY"]), (d.pid, "1"))
        self.assertIn("upgraded in place", ready["STATUS"])
        # Workers never see fdsupd's own NOTIFY_SOCKET (web's is fdsupd's notify.sock).
        for worker_pid in worker_pids(d)[0].values():
            with open(f"/proc/{worker_pid}/environ", "rb") as f:
                self.assertNotIn(manager_path.encode(), f.read())
        d.stop()
        pid, stopping = manager.next_with("STOPPING")
        self.assertEqual((pid, stopping["STOPPING"]), (d.pid, "1"))

    def test_the_fd_store_survives_an_upgrade(self):
        d = self.fdsupd("""
[sockets.http]
listen = "tcp://127.0.0.1:0"
[workers.sess]
command = ["@HELPERS@/session_worker"]
sockets = ["http"]
ready = "notify"
fd_store_max = 4
backoff = "50ms"
""").start()
        d.wait_control()
        d.wait_log(r"sess\[0\]: session_worker: pid \d+ resumed 0 connection")
        client = socket.create_connection(d.address("http"), timeout=20)
        self.addCleanup(client.close)
        reader = client.makefile("rb")
        client.sendall(b"one\n")
        first = int(reader.readline().split()[0])
        wait_until(lambda: (d.ctl_json("status", "sess")["workers"][0]["fd_store"] or {}).get("instances"),
                   what="the connection stored")
        code, out, err = self.upgrade(d)
        self.assertEqual(code, 0, out + err + d.log())
        store = d.ctl_json("status", "sess")["workers"][0]["fd_store"]["instances"]
        self.assertEqual([(s["index"], s["fds"]) for s in store], [(0, 1)])
        os.kill(first, signal.SIGKILL)
        second = d.current_pid("sess[0]", after=first)
        client.sendall(b"two\n")
        self.assertEqual(reader.readline().decode().split(" ")[0:2], [str(second), f"http:conn-{first}-1"])

    @unittest.skipUnless(os.geteuid() == 0 and has_group("nogroup"), "needs root and the group nogroup")
    def test_only_root_or_fdsupds_uid_choose_the_binary_and_it_must_be_trusted(self):
        nobody = 65534
        d = self.start('[supervisor]\ncontrol_group = "nogroup"\n' + TWO_BY_TWO)
        ctl = os.path.join(d.tmp, "fdsupctl")
        shutil.copy(os.environ["FDSUPCTL"], ctl)
        os.chmod(d.tmp, 0o755)
        os.chmod(ctl, 0o755)

        def as_nobody():
            os.setgroups([])
            os.setgid(nobody)
            os.setuid(nobody)
        r = subprocess.run([ctl, "-s", d.control_socket, "upgrade", "--binary", os.environ["FDSUPD"]],
                           capture_output=True, text=True, timeout=20, preexec_fn=as_nobody)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("upgrade refused: only root or fdsupd's own uid may name the binary", r.stderr)
        writable = os.path.join(d.tmp, "fdsupd-writable")
        shutil.copy(os.environ["FDSUPD"], writable)
        os.chmod(writable, 0o777)
        code, out, err = self.upgrade(d, "--binary", writable)
        self.assertEqual(code, 1)
        self.assertIn("is writable by its group or by others", err)
        # The group member may still upgrade to the binary fdsupd was started from.
        r = subprocess.run([ctl, "-s", d.control_socket, "upgrade"], capture_output=True, text=True, timeout=20,
                           preexec_fn=as_nobody)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + d.log())

    def test_a_sigterm_pending_across_the_exec_shuts_the_new_image_down(self):
        d = self.start()
        # The "new binary" finds SIGTERM sent to fdsupd while its signals were blocked:
        # it stays pending across the exec, and the new image handles it once restored.
        wrapper = os.path.join(d.tmp, "fdsupd-wrapper")
        with open(wrapper, "w") as f:
            f.write(f"""#!{sys.executable}
import os, signal, sys
if "--restore-state" in sys.argv:
    os.kill(os.getpid(), signal.SIGTERM)
os.execv({os.environ["FDSUPD"]!r}, [{os.environ["FDSUPD"]!r}] + sys.argv[1:])
""")
        os.chmod(wrapper, 0o755)
        pids, _ = worker_pids(d)
        code, out, err = self.upgrade(d, "--binary", wrapper)
        self.assertEqual(code, 0, out + err + d.log())
        self.assertEqual(d.wait_exit(), 0, d.log())
        self.assertIn("received SIGTERM: graceful shutdown", d.log())
        for pid in pids.values():
            self.assertFalse(pid_alive(pid))

    def test_an_upgrade_is_refused_while_a_command_waits(self):
        d = self.start(TWO_BY_TWO + '\n[workers.slow]\ncommand = ["/bin/sh", "-c", "trap \\"\\" TERM; exec sleep 1000"]\n'
                       'stop_timeout = "30s"\nkill_mode = "process"\n')
        stopping = subprocess.Popen([os.environ["FDSUPCTL"], "-s", d.control_socket, "stop", "slow"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: stopping.poll() is None and stopping.kill())
        wait_until(lambda: d.ctl_json("status", "slow")["workers"][0]["instances"][0]["state"] == "stopping",
                   what="slow stopping")
        code, out, err = self.upgrade(d)
        self.assertEqual(code, 1)
        self.assertIn("upgrade refused: a command is in progress", err)


if __name__ == "__main__":
    unittest.main()
