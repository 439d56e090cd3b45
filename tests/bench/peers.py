"""The supervisors compared, each able to run N copies of one command and to stop
cleanly: fdsupd, supervisord (Debian `supervisor`), runit's runsv, s6's s6-supervise and
the bare respawner (the floor). Each runs in its own temp dir and session; stop() kills
whatever it started."""
import os
import resource
import shutil
import signal
import subprocess
import tempfile

from bench_lib import fdsup_harness, kill_processes_mentioning


def installed(program):
    return shutil.which(program) is not None


class Fdsupd:
    name = "fdsupd"

    def __init__(self, build, command, count=1, output="null", extra_config=""):
        toml_command = ", ".join(f'"{part}"' for part in command)
        self.d = fdsup_harness.Fdsupd(f"""
[workers.w]
command = [{toml_command}]
instances = {count}
healthy_after = "0ms"
start_limit_burst = 1000000
stdout = "{output}"
stderr = "{output}"
{extra_config}
""")
        self.d.log_level = "warn"  # the log is not what is measured; keep its writes off the path
        self.build = build

    def start(self):
        self.d.start()
        return self

    @property
    def pid(self):
        return self.d.pid

    def ctl(self, *args):
        return [self.build.fdsupctl, "-s", self.d.control_socket, *args]

    def wait_control(self):
        self.d.wait_control()

    def stop(self):
        try:
            if self.d.proc is not None:  # started (a failed start is only cleaned up)
                self.d.stop(timeout=120)
        finally:
            self.d.cleanup()


class Supervisord:
    """supervisord with one [program] of `count` processes (numprocs)."""
    name = "supervisord"

    def __init__(self, command, count=1, startsecs=0, extra_program=""):
        self.tmp = tempfile.mkdtemp(prefix="fdsup-bench-supervisord-")
        self.conf = os.path.join(self.tmp, "supervisord.conf")
        self.command = command
        with open(self.conf, "w") as f:
            f.write(f"""
[supervisord]
nodaemon = true
logfile = {self.tmp}/supervisord.log
pidfile = {self.tmp}/supervisord.pid
childlogdir = {self.tmp}
loglevel = warn
minfds = {min(max(1024, count * 4 + 256), resource.getrlimit(resource.RLIMIT_NOFILE)[1])}
minprocs = {max(200, count + 100)}

[unix_http_server]
file = {self.tmp}/supervisor.sock

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl = unix://{self.tmp}/supervisor.sock

[program:w]
command = {" ".join(command)}
numprocs = {count}
process_name = %(program_name)s_%(process_num)d
autorestart = true
startsecs = {startsecs}
startretries = 1000000
stopwaitsecs = 10
stdout_logfile = NONE
stderr_logfile = NONE
{extra_program}
""")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(["supervisord", "-c", self.conf], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def ctl(self, *args):
        return ["supervisorctl", "-c", self.conf, *args]

    def wait_control(self, timeout=60):
        fdsup_harness.wait_until(
            lambda: subprocess.run(self.ctl("pid"), capture_output=True).returncode == 0,
            timeout=timeout, interval=0.05, what="supervisorctl answering")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        kill_processes_mentioning("\0".join(self.command) + "\0")
        shutil.rmtree(self.tmp, ignore_errors=True)


class ServiceDirSupervisor:
    """runsv and s6-supervise: one service directory whose ./run is the worker binary
    itself (a symlink; neither passes arguments, so the worker reads $BENCH_STAMP_SINK)."""

    def __init__(self, program, run, env):
        self.program = program
        self.tmp = tempfile.mkdtemp(prefix=f"fdsup-bench-{program}-")
        self.service = os.path.join(self.tmp, "service")
        os.mkdir(self.service)
        os.symlink(run, os.path.join(self.service, "run"))
        self.worker_env = env
        self.env = dict(os.environ, **env)
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([self.program, self.service], env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for key, value in self.worker_env.items():
            kill_processes_mentioning(f"{key}={value}\0")
        shutil.rmtree(self.tmp, ignore_errors=True)


class Runsv(ServiceDirSupervisor):
    name = "runsv"

    def __init__(self, run, env):
        super().__init__("runsv", run, env)


class S6Supervise(ServiceDirSupervisor):
    name = "s6-supervise"

    def __init__(self, run, env):
        super().__init__("s6-supervise", run, env)


class BareRespawner:
    """tests/bench/bare_respawner.c: pidfd wait + posix_spawn, nothing else."""
    name = "bare respawner"

    def __init__(self, build, command):
        self.argv = [build.bare_respawner, *command]
        self.command = command
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(self.argv, start_new_session=True)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def stop(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
        kill_processes_mentioning("\0".join(self.command) + "\0")
