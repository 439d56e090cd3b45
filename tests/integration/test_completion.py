#!/usr/bin/env python3
"""Bash completion (ctl/fdsupctl.bash-completion), driven in bash against a running
fdsupd: worker names come from the fdsupctl typed (a path, or fdsupctl on PATH), for the
control socket the line names (-s SOCKET, -sSOCKET, --socket SOCKET, --socket=SOCKET,
before or after the verb, even after the cursor), for every verb that takes worker
names and every position where one goes (names already on the line not offered
again); top's sort keys; socket names and fd store entries are never offered as workers; nothing when
fdsupd cannot be reached."""
import json
import os
import shutil
import subprocess
import unittest

from fdsup_harness import FDSUPCTL, SOURCE_DIR, FdsupTestCase, wait_until

COMPLETION = os.path.join(SOURCE_DIR, "ctl", "fdsupctl.bash-completion")

# A socket, and an fd store entry named like no worker: both have "name"s in the status
# reply, and neither is a worker.
CONFIG = """
[sockets.http]
listen = "tcp://127.0.0.1:0"

[workers.web]
command = ["/bin/sleep", "1000"]
sockets = ["http"]

[workers.api]
command = ["/bin/sleep", "1000"]

[workers.db-main]
command = ["/bin/sleep", "1000"]

[workers.stash]
command = ["@PYTHON@", "@SCRIPTS@/notify_sender.py", "@TMP@/plan.json"]
fd_store_max = 2
"""

WORKERS = ["api", "db-main", "stash", "web"]

# Runs the completion function for COMP_WORDS = the arguments after CWORD, with the cursor
# on word CWORD, and prints COMPREPLY one per line.
DRIVER = """
source "$1" || exit 9
COMP_CWORD=$2
shift 2
COMP_WORDS=("$@")
COMP_LINE="$*"
COMP_POINT=${#COMP_LINE}
COMPREPLY=()
_fdsupctl
printf '%s\\n' "${COMPREPLY[@]}"
"""


@unittest.skipIf(shutil.which("bash") is None, "no bash")
class Completion(FdsupTestCase):
    def setUp(self):
        super().setUp()
        self.d = self.fdsupd(CONFIG)
        with open(os.path.join(self.d.tmp, "plan.json"), "w") as f:
            json.dump([{"send": "FDSTORE=1\nFDNAME=not-a-worker", "fds": 1}], f)
        self.d.start()
        self.d.wait_control()
        self.socket = self.d.control_socket
        wait_until(lambda: any(slot["names"] for slot in
                               (self.d.ctl_json("status", "stash")["workers"][0]["fd_store"] or {"instances": []})
                               ["instances"]),
                   what="stash's fd store entry")
        # fdsupctl is not on this PATH: only the path typed can find it.
        self.env = dict(os.environ, PATH="/usr/bin:/bin")
        self.env.pop("FDSUP_CONTROL", None)
        self.assertIsNone(shutil.which("fdsupctl", path=self.env["PATH"]))

    def complete(self, *words, cursor=None, cwd=None, env=None):
        """The completions bash offers for `words`, the cursor on the last word (or on
        word `cursor`)."""
        cword = len(words) - 1 if cursor is None else cursor
        r = subprocess.run(["bash", "-c", DRIVER, "bash", COMPLETION, str(cword), *words], capture_output=True,
                           text=True, timeout=30, cwd=cwd, env=env or self.env)
        self.assertEqual((r.returncode, r.stderr), (0, ""), words)
        return sorted(line for line in r.stdout.splitlines() if line)

    def test_worker_names_from_the_fdsupctl_typed_and_the_socket_the_line_names(self):
        ctl, s = FDSUPCTL, self.socket
        self.assertEqual(self.complete(ctl, "-s", s, "restart", ""), WORKERS)
        # The fdsupctl typed, relative to the current directory.
        self.assertEqual(self.complete("./fdsupctl", "-s", s, "restart", "", cwd=os.path.dirname(ctl)), WORKERS)
        # Every spelling of the socket, before or after the verb, or after the cursor.
        self.assertEqual(self.complete(ctl, "-s" + s, "stop", ""), WORKERS)
        self.assertEqual(self.complete(ctl, "--socket", s, "stop", "d"), ["db-main"])
        self.assertEqual(self.complete(ctl, "--socket", "=", s, "stop", "a"), ["api"])  # as bash splits --socket=S
        self.assertEqual(self.complete(ctl, "--socket=" + s, "stop", "w"), ["web"])
        self.assertEqual(self.complete(ctl, "status", "-s", s, "s"), ["stash"])
        self.assertEqual(self.complete(ctl, "start", "", "-s", s, cursor=2), WORKERS)
        # $FDSUP_CONTROL, as fdsupctl itself reads it.
        self.assertEqual(self.complete(ctl, "logs", "", env=dict(self.env, FDSUP_CONTROL=s)), WORKERS)
        # fdsupctl on PATH, for the bare name.
        on_path = dict(self.env, PATH=os.path.dirname(ctl) + ":" + self.env["PATH"])
        self.assertEqual(self.complete("fdsupctl", "-s", s, "status", "", env=on_path), WORKERS)
        # No fdsupd there: no names, no error.
        self.assertEqual(self.complete(ctl, "-s", os.path.join(self.d.tmp, "nothing.sock"), "restart", ""), [])

    def test_every_verb_and_position_that_takes_a_worker_name(self):
        ctl, s = FDSUPCTL, self.socket
        for verb in ("status", "top", "start", "stop", "restart", "events"):
            self.assertEqual(self.complete(ctl, "-s", s, verb, ""), WORKERS, verb)
            # Second and later names: those not yet on the line.
            self.assertEqual(self.complete(ctl, "-s", s, verb, "web", ""), ["api", "db-main", "stash"], verb)
            self.assertEqual(self.complete(ctl, "-s", s, verb, "web", "api", ""), ["db-main", "stash"], verb)
            self.assertEqual(self.complete(ctl, "-s", s, verb, "web", "api", "d"), ["db-main"], verb)
        for verb in ("signal", "scale", "logs"):
            self.assertEqual(self.complete(ctl, "-s", s, verb, ""), WORKERS, verb)
            self.assertEqual(self.complete(ctl, "-s", s, verb, "st"), ["stash"], verb)
        self.assertEqual(self.complete(ctl, "-s", s, "signal", "web", "US"), ["USR1", "USR2"])
        self.assertEqual(self.complete(ctl, "-s", s, "scale", "web", ""), [])
        self.assertEqual(self.complete(ctl, "-s", s, "logs", "-n", "5", ""), WORKERS)
        self.assertEqual(self.complete(ctl, "-s", s, "logs", "-n", ""), [])
        self.assertEqual(self.complete(ctl, "-s", s, "logs", "web", ""), [])
        self.assertEqual(self.complete(ctl, "-s", s, "reload", ""), [])
        self.assertEqual(self.complete(ctl, "-s", s, "events", "-f", "w"), ["web"])
        self.assertEqual(self.complete(ctl, "-s", s, "events", "--f"), ["--follow"])
        # top: names around its options, the sort keys after --sort, nothing for numbers.
        self.assertEqual(self.complete(ctl, "-s", s, "top", "-d", "0.5", "web", ""), ["api", "db-main", "stash"])
        self.assertEqual(self.complete(ctl, "-s", s, "top", "--sort", ""),
                         ["cpu", "memory", "name", "restarts", "uptime"])
        self.assertEqual(self.complete(ctl, "-s", s, "top", "--sort", "=", "m"), ["memory"])
        self.assertEqual(self.complete(ctl, "-s", s, "top", "-n", ""), [])
        self.assertEqual(self.complete(ctl, "-s", s, "top", "--i"), ["--interval", "--iterations"])
        # Canaries: no value offered for --canary/--pause, names around them; rollout's
        # actions first, then the names.
        self.assertEqual(self.complete(ctl, "-s", s, "restart", "--canary", ""), [])
        self.assertEqual(self.complete(ctl, "-s", s, "restart", "--canary", "1", "web", ""), ["api", "db-main", "stash"])
        self.assertEqual(self.complete(ctl, "-s", s, "restart", "--c"), ["--canary"])
        self.assertEqual(self.complete(ctl, "-s", s, "reload", "--"), ["--canary", "--help", "--json", "--pause"])
        self.assertEqual(self.complete(ctl, "-s", s, "rollout", "p"), ["promote"])
        self.assertEqual(self.complete(ctl, "-s", s, "rollout", "w"), ["web"])
        self.assertEqual(self.complete(ctl, "-s", s, "rollout", "abort", ""), WORKERS)
        self.assertEqual(self.complete(ctl, "-s", s, "rollout", "abort", "web", ""), ["api", "db-main", "stash"])
        self.assertEqual(self.complete(ctl, "-s", s, "help", "re"), ["reload", "reopen-logs", "restart"])
        self.assertEqual(self.complete(ctl, "re"), ["reload", "reopen-logs", "restart"])


if __name__ == "__main__":
    unittest.main()
