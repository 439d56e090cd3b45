#!/usr/bin/env python3
"""pm2, the Node.js process manager, as a benchmark peer: installed from the npm registry
at a pinned version into the build dir (BUILD/bench-peers, never globally), and run with
its own PM2_HOME in a temp dir, its daemon and everything it started killed at the end.

The one place pm2 is installed from: `./dev.sh test` and `./dev.sh bench` run
`python3 tests/bench/pm2_peer.py BUILD_DIR`, and a benchmark that finds it missing calls
install() itself. If the registry cannot be reached, install() says so and returns None
(the pm2 rows are skipped with that message); any other failure raises.

usage: pm2_peer.py BUILD_DIR
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

from bench_lib import kill_processes_mentioning

# The newest release when the peer was added (7.0.4, engines node >= 18: Debian 12's
# nodejs is 18, nodesource's 20). Pinned so that every run measures the same pm2; move it on purpose.
PM2_VERSION = "7.0.4"
REGISTRY_TIMEOUT_S = 30
INSTALL_TIMEOUT_S = 600


def prefix(build_dir):
    return os.path.join(os.path.abspath(build_dir), "bench-peers")


def binary(build_dir):
    return os.path.join(prefix(build_dir), "node_modules", ".bin", "pm2")


def installed_version(build_dir):
    try:
        with open(os.path.join(prefix(build_dir), "node_modules", "pm2", "package.json")) as f:
            return json.load(f)["version"]
    except (OSError, ValueError, KeyError):
        return None


class Unreachable(Exception):
    """The npm registry did not answer: the pm2 rows are skipped, saying this."""


def install(build_dir):
    """pm2 PM2_VERSION under BUILD/bench-peers (a no-op when it is there); its path.
    Raises Unreachable if the registry cannot be reached, RuntimeError on anything else."""
    if installed_version(build_dir) == PM2_VERSION and os.access(binary(build_dir), os.X_OK):
        return binary(build_dir)
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not installed (`./dev.sh` installs it): cannot install pm2")
    # Reachability first, so that a network that is down is told apart from an install
    # that fails for any other reason (which must fail loudly).
    try:
        subprocess.run([npm, "ping", "--fetch-retries=0", "--fetch-timeout=15000"], check=True,
                       capture_output=True, text=True, timeout=REGISTRY_TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        raise Unreachable(f"the npm registry did not answer `npm ping` in {e.timeout:.0f} s") from e
    except subprocess.CalledProcessError as e:
        reason = network_failure(e.stderr)
        if reason:
            raise Unreachable(f"the npm registry could not be reached (`npm ping`: {reason})") from e
        # The registry answered, if not to the ping: the install says what is wrong.
    os.makedirs(prefix(build_dir), exist_ok=True)
    print(f"installing pm2 {PM2_VERSION} into {prefix(build_dir)}", flush=True)
    r = subprocess.run([npm, "install", "--prefix", prefix(build_dir), "--no-audit", "--no-fund",
                        "--no-save", "--loglevel=error", f"pm2@{PM2_VERSION}"],
                       capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
    if r.returncode != 0 and network_failure(r.stderr):
        # The ping got through, then the connection failed: still a registry out of reach.
        raise Unreachable(f"the npm registry could not be reached (`npm install`: {network_failure(r.stderr)})")
    if r.returncode != 0 or installed_version(build_dir) != PM2_VERSION:
        raise RuntimeError(f"npm install pm2@{PM2_VERSION} failed (exit {r.returncode}):\n{r.stdout}{r.stderr}")
    return binary(build_dir)


# npm's error codes for a registry it could not talk to at all.
NETWORK_ERRORS = ("ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "ECONNRESET", "ENETUNREACH", "EHOSTUNREACH",
                  "ESOCKETTIMEDOUT", "ERR_SOCKET_TIMEOUT")


def network_failure(stderr):
    """npm's own words for a connection that failed ("... failed, reason: ..."), if its
    error code says so; None for any other failure."""
    # npm 10.6 and later begin each line with "npm error", older ones (Debian 12's 9.2) with
    # "npm ERR!".
    lines = [re.sub(r"^npm (error|ERR!)", "", line).strip() for line in (stderr or "").splitlines()]
    codes = [line.split()[1] for line in lines if line.startswith("code ") and len(line.split()) > 1]
    if not any(code in NETWORK_ERRORS for code in codes):
        return None
    reasons = [line for line in lines if "reason:" in line]
    return reasons[0] if reasons else codes[0]


class Pm2:
    """One pm2 daemon (God) in its own PM2_HOME, running one app from an ecosystem file
    (cluster mode, `instances`, wait_ready). stop() runs `pm2 kill`, then SIGKILLs
    whatever still names this PM2_HOME (the daemon, its workers)."""
    name = "pm2"

    def __init__(self, pm2, script, args, count, env):
        self.pm2 = pm2
        self.home = tempfile.mkdtemp(prefix="fdsup-bench-pm2-")
        self.ecosystem = os.path.join(self.home, "ecosystem.config.js")
        app = {"name": "web", "script": script, "args": args, "exec_mode": "cluster", "instances": count,
               # Ready = the app's process.send('ready') once it listens; pm2 gives up on
               # it after listen_timeout (ms) and then treats the instance as ready.
               "wait_ready": True, "listen_timeout": 60000, "kill_timeout": 10000,
               "autorestart": True, "restart_delay": 0, "max_restarts": 1000000, "min_uptime": 0,
               "out_file": "/dev/null", "error_file": "/dev/null", "merge_logs": True,
               "env": env}
        with open(self.ecosystem, "w") as f:
            f.write("module.exports = " + json.dumps({"apps": [app]}, indent=2) + ";\n")
        self.env = dict(os.environ, PM2_HOME=self.home)
        self.started = False

    def command(self, *args):
        return [self.pm2, *args]

    def run(self, *args, timeout=300):
        r = subprocess.run(self.command(*args), env=self.env, capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"`pm2 {' '.join(args)}` failed (exit {r.returncode}):\n{r.stdout}{r.stderr}")
        return r.stdout

    def start(self):
        """`pm2 start ecosystem.config.js` (starts the daemon too); returns once pm2 says
        every instance started."""
        self.started = True
        self.run("start", self.ecosystem)
        return self

    @property
    def pid(self):
        """The God daemon's pid (PM2_HOME/pm2.pid)."""
        with open(os.path.join(self.home, "pm2.pid")) as f:
            return int(f.read().strip())

    def instance_pids(self):
        return [p["pid"] for p in json.loads(self.run("jlist")) if p.get("pid")]

    def reload_command(self):
        """`pm2 reload web` (one instance at a time: a new one, its 'ready', then the old
        one stopped), run by whoever has not got this PM2_HOME in its environment."""
        return ["env", f"PM2_HOME={self.home}", *self.command("reload", "web")]

    def stop(self):
        try:
            if self.started:
                subprocess.run(self.command("kill"), env=self.env, capture_output=True, timeout=120)
        finally:
            kill_processes_mentioning(f"PM2_HOME={self.home}\0")
            shutil.rmtree(self.home, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    try:
        print(f"pm2 {PM2_VERSION}: {install(sys.argv[1])}")
    except Unreachable as e:
        # Not a failure of dev.sh: the benchmarks skip the pm2 rows, saying the same.
        print(f"pm2 not installed: {e}; the benchmarks will skip its rows")
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        # Not the network: something that must be looked at.
        sys.exit(f"pm2_peer.py: {e}")
