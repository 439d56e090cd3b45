"""reload (fdsupctl reload and SIGHUP): the new config is validated whole first; then
added workers start, removed ones stop, changed ones restart, untouched ones keep their
pids; a replaced socket serves at its new address and the old one closes."""
import os
import re
import signal
import socket
import unittest

from fdsup_harness import FdsupTestCase, http_get, pid_alive, wait_until

SLEEPER = '["/bin/sh", "-c", "echo $NAME $COLOR; exec sleep 1000"]'

BEFORE = f"""
[sockets.http]
listen = "tcp://127.0.0.1:0"

[workers.web]
command = ["@HELPERS@/http_worker"]
sockets = ["http"]

[workers.db]
command = {SLEEPER}
env = {{ NAME = "db", COLOR = "blue" }}

[workers.old]
command = {SLEEPER}
env = {{ NAME = "old" }}
"""

# The same, but db's env changed, old removed and api added; web untouched.
AFTER = (BEFORE.replace('COLOR = "blue"', 'COLOR = "green"')
               .replace('[workers.old]', '[workers.api]')
               .replace('NAME = "old"', 'NAME = "api"'))


def pids(d):
    status = d.ctl_json("status")
    return {w["name"]: [i["pid"] for i in w["instances"]] for w in status["workers"]}


class Reload(FdsupTestCase):
    def start(self, text):
        d = self.fdsupd(text).start()
        d.wait_control()
        return d

    def test_add_remove_change_keep(self):
        d = self.start(BEFORE)
        d.wait_log(r"http_worker: serving on fd 3")
        before = pids(d)
        d.write_config(AFTER)
        out = d.ctl_ok("reload")
        self.assertIn(f"reloaded {d.config_path}: added api; removed old; changed db; unchanged web", out)
        after = pids(d)
        self.assertEqual(after["web"], before["web"])  # untouched: the same process
        self.assertNotEqual(after["db"], before["db"])
        self.assertNotIn("old", after)
        self.assertFalse(pid_alive(before["old"][0]))
        self.assertFalse(pid_alive(before["db"][0]))
        self.assertTrue(pid_alive(after["api"][0]))
        d.wait_log(r"db\[0\]: db green")  # the new env is in effect
        host, port = d.address("http")
        self.assertRegex(http_get(host, port), r"^web\[0\] pid \d+\n$")

        # nothing changed: nothing happens, --json shape
        reply = d.ctl_json("reload")
        self.assertEqual(reply["workers"], {"added": [], "removed": [], "changed": [], "scaled": [],
                                            "unchanged": ["api", "db", "web"], "retuned": []})
        self.assertEqual(pids(d), after)

    def test_invalid_config_changes_nothing_and_lists_every_error(self):
        d = self.start(BEFORE)
        before = pids(d)
        d.write_config(AFTER.replace('COLOR = "green"', 'COLOR = 3') + '\n[workers.bad]\ncommand = []\n')
        code, out, err = d.ctl("reload")
        self.assertEqual(code, 1)
        self.assertIn("nothing changed", err)
        errors = re.findall(rf"^{re.escape(d.config_path)}:(\d+):(\d+): (.*)$", err, re.M)
        self.assertEqual(len(errors), 2, err)
        self.assertIn("workers.db.env.COLOR", errors[0][2])
        self.assertIn("workers.bad.command", errors[1][2])
        self.assertEqual(pids(d), before)

        reply = d.ctl("--json", "reload")
        self.assertEqual(reply[0], 1)
        self.assertIn('"ok":false', reply[1])

        # a reload that cannot be done live (a bind-time option) also changes nothing
        d.write_config(BEFORE.replace('listen = "tcp://127.0.0.1:0"', 'listen = "tcp://127.0.0.1:0"\nreuse_port = true'))
        code, _, err = d.ctl("reload")
        self.assertEqual(code, 1)
        self.assertIn("reuse_port cannot change", err)
        self.assertEqual(pids(d), before)

    def test_sighup_reloads(self):
        d = self.start(BEFORE)
        before = pids(d)
        d.write_config(AFTER)
        d.signal(signal.SIGHUP)
        d.wait_log(r"reload: done")
        after = pids(d)
        self.assertEqual(after["web"], before["web"])
        self.assertIn("api", after)
        self.assertNotIn("old", after)

    def test_replaced_socket_serves_at_the_new_address_and_the_old_one_closes(self):
        d = self.start(BEFORE)
        d.wait_log(r"http_worker: serving on fd 3")
        old_host, old_port = d.address("http")
        before = pids(d)
        d.write_config(BEFORE.replace("tcp://127.0.0.1:0", "tcp://127.0.0.2:0"))
        out = d.ctl_ok("reload")
        self.assertIn("changed web", out)
        self.assertIn("sockets: replaced http", out)
        status = d.ctl_json("status")
        bound = status["sockets"][0]["bound"]
        host, _, port = bound.rpartition(":")
        self.assertEqual(host, "127.0.0.2")
        self.assertRegex(http_get(host, int(port)), r"^web\[0\] pid \d+\n$")
        self.assertEqual(pids(d)["db"], before["db"])
        d.wait_log(r"socket http: closed \(127\.0\.0\.1:\d+\)")
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection((old_host, old_port), timeout=5).close()


if __name__ == "__main__":
    unittest.main()
