"""Workers serve on sockets the supervisor owns: an app that reads LISTEN_FDS exactly as
sd_listen_fds() does (LISTEN_PID checked), and the demo config the README runs."""
import os
import re
import shutil
import unittest

from fdsup_harness import SOURCE_DIR, Fdsupd, FdsupTestCase, http_get, wait_until

CONFIG = """
[sockets.http]
listen = "tcp://127.0.0.1:0"

[workers.web]
command = ["@HELPERS@/http_worker"]
instances = 2
sockets = ["http"]
"""


class Serving(FdsupTestCase):
    def test_sd_listen_fds_app_serves_unmodified(self):
        d = self.fdsupd(CONFIG).start()
        d.wait_log(r"http_worker: serving on fd 3", count=2)
        host, port = d.address("http")
        pids = set(d.worker_pids("web[0]") + d.worker_pids("web[1]"))
        for _ in range(20):
            body = http_get(host, port)
            m = re.fullmatch(r"web\[(\d)\] pid (\d+)\n", body)
            self.assertIsNotNone(m, body)
            self.assertIn(int(m.group(2)), pids)
        self.assertEqual(d.stop(), 0)

    def test_demo_config_runs(self):
        # conf/fdsup.toml on an ephemeral port, run from the repository root as `make demo` does.
        with open(os.path.join(SOURCE_DIR, "conf", "fdsup.toml")) as f:
            text = f.read()
        text = text.replace("tcp://127.0.0.1:8080", "tcp://127.0.0.1:0")
        text = re.sub(r'control_socket = ".*"', 'control_socket = "@TMP@/control.sock"', text)
        d = self.fdsupd(text)
        cwd = os.getcwd()
        os.chdir(SOURCE_DIR)
        try:
            d.start()
        finally:
            os.chdir(cwd)
        d.wait_log(r"worker web\[[01]\]: pid \d+ ready after", count=2)  # READY=1 from demo_http.py
        host, port = d.address("http")
        body = http_get(host, port)
        self.assertRegex(body, r"^web\[[01]\] pid \d+\n$")
        # The rolling restart the demo's comments suggest: both replaced, and the old
        # processes drained (exit 0 on SIGTERM) rather than killed.
        before = d.instance_pids("web")
        out = d.ctl_ok("restart", "web")
        for index, pid in before.items():
            self.assertRegex(out, rf"web\[{index}\]: pid {pid} replaced by pid \d+")
            self.assertRegex(d.log(), rf"worker web\[{index}\]: pid {pid} exited with code 0 after .*; stopped")
        self.assertRegex(http_get(host, port), r"^web\[[01]\] pid \d+\n$")
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    unittest.main()
