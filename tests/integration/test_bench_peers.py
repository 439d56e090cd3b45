#!/usr/bin/env python3
"""The benchmarks' pm2 and Server::Starter peers (tests/bench/app_peers.py), the parts
that must hold whatever the network: pm2's install is skipped only when the npm registry
cannot be reached, and fails loudly when it answers but the install fails; and the one
Node.js app takes its socket the way each supervisor hands it over."""
import http.server
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import unittest

from fdsup_harness import http_get

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.join(HERE, "..", "bench")
sys.path.insert(0, BENCH)
import pm2_peer  # noqa: E402

NODE = shutil.which("node") or shutil.which("nodejs")
NODE_APP = os.path.join(HERE, "..", "helpers", "slow_node_app.js")
APP_MODE_VARIABLES = ("LISTEN_FDS", "LISTEN_PID", "SERVER_STARTER_PORT", "PORT", "APP_WORKERS")


class NotFound(http.server.BaseHTTPRequestHandler):
    """A registry that answers, and has nothing."""

    def do_GET(self):
        self.send_error(404)

    def log_message(self, *args):
        pass


@unittest.skipIf(shutil.which("npm") is None, "npm is not installed (./dev.sh installs it)")
class Pm2Install(unittest.TestCase):
    def setUp(self):
        self.build = tempfile.mkdtemp(prefix="fdsup-test-bench-peers-")
        self.addCleanup(shutil.rmtree, self.build, ignore_errors=True)

    def install(self, registry):
        # No proxy: a proxy would answer for the local registry (E502: "it answered").
        env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
        env.update(npm_config_registry=registry, npm_config_cache=os.path.join(self.build, "cache"),
                   npm_config_proxy="", npm_config_https_proxy="", npm_config_noproxy="127.0.0.1")
        return subprocess.run([sys.executable, os.path.join(BENCH, "pm2_peer.py"), self.build], env=env,
                              capture_output=True, text=True, timeout=120)

    def test_an_unreachable_registry_skips_pm2_without_failing(self):
        with socket.socket() as closed:  # bound, never listening: connections are refused
            closed.bind(("127.0.0.1", 0))
            r = self.install(f"http://127.0.0.1:{closed.getsockname()[1]}/")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("the npm registry could not be reached", r.stdout)
        self.assertIn("ECONNREFUSED", r.stdout)
        self.assertIn("skip", r.stdout)
        self.assertFalse(os.path.exists(pm2_peer.binary(self.build)))

    def test_a_registry_that_answers_but_fails_the_install_fails_loudly(self):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            r = self.install(f"http://127.0.0.1:{server.server_address[1]}/")
        finally:
            server.shutdown()
            server.server_close()
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertIn(f"npm install pm2@{pm2_peer.PM2_VERSION} failed", r.stderr)

    def test_only_network_error_codes_count_as_unreachable(self):
        refused = "npm error code ECONNREFUSED\nnpm error FetchError: request to x failed, reason: refused\n"
        self.assertEqual(pm2_peer.network_failure(refused), "FetchError: request to x failed, reason: refused")
        self.assertEqual(pm2_peer.network_failure("npm error code ENOTFOUND\n"), "ENOTFOUND")
        self.assertIsNone(pm2_peer.network_failure("npm error code E404\nnpm error 404 Not Found\n"))
        self.assertIsNone(pm2_peer.network_failure(""))
        # Older npm (Debian 12's 9.2) prefixes its lines with "npm ERR!".
        self.assertEqual(pm2_peer.network_failure("npm ERR! code ECONNREFUSED\nnpm ERR! errno ECONNREFUSED\n"),
                         "ECONNREFUSED")
        self.assertIsNone(pm2_peer.network_failure("npm ERR! code E404\nnpm ERR! 404 Not Found\n"))


@unittest.skipIf(NODE is None, "nodejs is not installed")
class NodeAppModes(unittest.TestCase):
    def setUp(self):
        self.stamps = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.stamps.bind(("127.0.0.1", 0))
        self.stamps.settimeout(60)
        self.addCleanup(self.stamps.close)

    def run_app(self, env, pass_fds=()):
        inherited = {k: v for k, v in os.environ.items() if k not in APP_MODE_VARIABLES}
        env = dict(inherited, BENCH_STAMP_UDP=str(self.stamps.getsockname()[1]), **env)
        app = subprocess.Popen([NODE, NODE_APP, "0"], env=env, pass_fds=pass_fds, stdout=subprocess.DEVNULL,
                               start_new_session=True)
        self.addCleanup(self.stop, app)
        return app

    def stop(self, app):
        try:
            os.killpg(app.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        app.wait()

    def stamped_pids(self, count):
        pids = set()
        while len(pids) < count:
            stamp_ns, pid = self.stamps.recv(64).split()
            self.assertGreater(int(stamp_ns), 0)
            pids.add(int(pid))
        return pids

    def test_server_starter_fd_shared_by_app_workers(self):
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        self.addCleanup(listener.close)
        port, fd = listener.getsockname()[1], listener.fileno()
        app = self.run_app({"SERVER_STARTER_PORT": f"127.0.0.1:{port}={fd}", "APP_WORKERS": "2"}, pass_fds=(fd,))
        workers = self.stamped_pids(2)
        self.assertNotIn(app.pid, workers)  # the primary only forks
        self.assertIn("pid", http_get("127.0.0.1", port, timeout=30))
        # SIGTERM to the primary stops its workers, then it exits 0.
        app.terminate()
        self.assertEqual(app.wait(timeout=30), 0)

    def test_port_binds_its_own_socket(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        app = self.run_app({"PORT": str(port)})
        self.assertEqual(self.stamped_pids(1), {app.pid})
        self.assertIn(f"pid {app.pid}", http_get("127.0.0.1", port, timeout=5))
        app.send_signal(signal.SIGINT)  # SIGINT, pm2's stop signal: a clean stop too
        self.assertEqual(app.wait(timeout=30), 0)


if __name__ == "__main__":
    unittest.main()
