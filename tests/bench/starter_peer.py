"""Server::Starter (Debian's libserver-starter-perl) as a benchmark peer: `start_server`
binds the port, runs one generation of the app with the socket's fd in
SERVER_STARTER_PORT, and hot-deploys on SIGHUP: it starts the next generation, waits
--interval seconds, and if that is still alive sends the old one SIGTERM. Runs in its
own temp dir and session; stop() kills whatever it started."""
import os
import shutil
import signal
import subprocess
import tempfile

from bench_lib import kill_processes_mentioning

# Whole seconds only (start_server sleeps with Perl's integer sleep); 1 s covers the
# Node.js app's start-up (300 ms busy after node's own ~50 ms) with room to spare.
INTERVAL_S = 1


class ServerStarter:
    name = "Server::Starter"

    def __init__(self, port, command, env):
        self.tmp = tempfile.mkdtemp(prefix="fdsup-bench-starter-")
        self.pid_file = os.path.join(self.tmp, "start_server.pid")
        self.status_file = os.path.join(self.tmp, "start_server.status")
        self.argv = ["start_server", f"--port=127.0.0.1:{port}", f"--interval={INTERVAL_S}",
                     f"--pid-file={self.pid_file}", f"--status-file={self.status_file}", "--", *command]
        # The marker every process it starts inherits, for the clean-up.
        self.marker = f"FDSUP_BENCH_STARTER={self.tmp}"
        self.env = dict(os.environ, **env, FDSUP_BENCH_STARTER=self.tmp)
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(self.argv, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def restart_command(self):
        """start_server's own hot deploy: SIGHUP to the running one (its pid file), then
        waits (polling the status file once a second) until only the new generation is
        left."""
        return ["start_server", "--restart", f"--pid-file={self.pid_file}", f"--status-file={self.status_file}"]

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # TERMs the workers and waits for them
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        kill_processes_mentioning(self.marker + "\0")
        shutil.rmtree(self.tmp, ignore_errors=True)
