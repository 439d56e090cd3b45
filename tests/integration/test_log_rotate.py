#!/usr/bin/env python3
"""stdout/stderr = "rotate:PATH": fdsupd writes each line stamped into PATH, rotates it
at log_max_size into log_keep numbered files (gzip with log_compress, off the loop),
with {instance} in the path; `fdsupctl reopen-logs` and SIGUSR1 after an outside
rotation, Debian's logrotate with the installed snippet; the files carried across an
in-place upgrade; bad paths refused as for file:.

The worker is tests/helpers/numbered_lines.py: lines "<10 digits> ....", so that a
line lost, doubled, reordered or cut shows when the files are read back in order."""
import datetime
import gzip
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

from fdsup_harness import DEADLINE, FdsupTestCase, fd_links, plant_bad_outputs, wait_until

BUILD = os.environ.get("FDSUP_BUILD_DIR", "")
MIB = 1024 * 1024
STAMP_UTC = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z"
# numbered_lines.py's default width (with the newline)
WIDTH = 100


def numbered(command_args):
    return '["@PYTHON@", "@SCRIPTS@/numbered_lines.py", ' + ", ".join(f'"{a}"' for a in command_args) + "]"


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def read_lines(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        return f.read().decode().split("\n")


def rotated_in_order(directory, base):
    """The files of log `base` in `directory`, oldest first: base.N[.gz] by N descending,
    then base."""
    indexed = []
    for name in os.listdir(directory):
        m = re.fullmatch(re.escape(base) + r"\.(\d+)(\.gz)?", name)
        if m:
            indexed.append((int(m.group(1)), name))
    indexed.sort(reverse=True)
    return [os.path.join(directory, name) for _, name in indexed] + [os.path.join(directory, base)]


def numbers_in(paths, stamp=STAMP_UTC, width=WIDTH, live=False):
    """The numbers of the lines of `paths` in order; fails on a line that is not
    whole and well-formed (stamp, space, 10 digits, dots). `live`: the last path may
    still be written (a stopped worker's last lines drain after `stop` returns), so
    what follows its last newline is not read."""
    line_re = re.compile((stamp + " " if stamp else "") + r"(\d{10}) \.{" + str(width - 12) + "}")
    numbers = []
    for i, path in enumerate(paths):
        lines = read_lines(path)
        if live and i == len(paths) - 1:
            lines[-1] = ""
        if lines[-1] != "":
            raise AssertionError(f"{path} does not end with a newline: {lines[-1][-80:]!r}")
        for line in lines[:-1]:
            m = line_re.fullmatch(line)
            if not m:
                raise AssertionError(f"{path}: a line not whole or well-formed: {line[:200]!r}")
            numbers.append(int(m.group(1)))
    return numbers


def assert_contiguous(test, numbers, first=None, last=None):
    test.assertTrue(numbers, "no lines")
    if first is not None:
        test.assertEqual(numbers[0], first)
    if last is not None:
        test.assertEqual(numbers[-1], last)
    for previous, current in zip(numbers, numbers[1:]):
        if current != previous + 1:
            raise AssertionError(f"line {previous} is followed by {current}: a line lost, doubled or reordered")


def last_number(path):
    """The number of the last whole line of `path` (None if it has none yet)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 4096))
            tail = f.read().decode(errors="replace")
    except FileNotFoundError:
        return None
    lines = tail.split("\n")[:-1]
    for line in reversed(lines):
        m = re.search(r"(\d{10}) \.+$", line)
        if m:
            return int(m.group(1))
    return None


def whole_lines(path, count):
    """Waits until `path` holds at least `count` whole lines; returns them."""
    def read():
        try:
            with open(path) as f:
                lines = f.read().split("\n")[:-1]  # what follows the last newline is not whole
        except FileNotFoundError:
            return None
        return lines if len(lines) >= count else None
    return wait_until(read, what=f"{count} lines in {path}")


class LogRotate(FdsupTestCase):
    def logs_dir(self, d):
        path = os.path.join(d.tmp, "logs")
        os.makedirs(path, exist_ok=True)
        return path

    def test_200_mb_through_rotate_keeps_exactly_the_files_bounded_and_every_line_whole(self):
        count = 2_100_000  # 100-byte lines: 210 MB from the worker, 267 MB with the stamps
        d = self.fdsupd(f"""
[workers.flood]
command = {numbered(["--count", count, "--batch", 2000])}
restart = "never"
stdout = "rotate:@TMP@/logs/flood.log"
log_max_size = "10M"
log_keep = 5
""")
        logs = self.logs_dir(d)
        d.start(wait_control=True)
        path = os.path.join(logs, "flood.log")
        start_rss = rss_kib(d.pid)
        peak = [start_rss]
        done = threading.Event()

        def sample():
            while not done.is_set():
                try:
                    peak[0] = max(peak[0], rss_kib(d.pid))
                except FileNotFoundError:
                    return
                time.sleep(0.02)
        sampler = threading.Thread(target=sample, daemon=True)
        began = time.monotonic()
        sampler.start()
        try:
            wait_until(lambda: last_number(path) == count - 1, timeout=240, interval=0.05,
                       what="the last line in flood.log")
        finally:
            done.set()
            sampler.join()
        took = time.monotonic() - began
        d.wait_log(r"worker flood\[0\]: pid \d+ exited with code 0")
        names = sorted(os.listdir(logs))
        self.assertEqual(names, sorted(["flood.log"] + [f"flood.log.{k}" for k in range(1, 6)]))
        paths = rotated_in_order(logs, "flood.log")
        line_size = 27 + 1 + WIDTH
        for p in paths:
            # Never past the limit: a line that would take a file past it opens the next.
            self.assertLessEqual(os.path.getsize(p), 10 * MIB, p)
            self.assertEqual(os.path.getsize(p) % line_size, 0, p)
            if p != path:
                self.assertGreater(os.path.getsize(p), 10 * MIB - line_size, p)  # full, not rotated early
        numbers = numbers_in(paths)
        assert_contiguous(self, numbers, last=count - 1)
        self.assertEqual(len(numbers), sum(os.path.getsize(p) for p in paths) // line_size)
        # fdsupd buffers one read (64 KiB) and one batch (at most 256 KiB) per file; the
        # log book keeps 1 MiB per worker. 32 MiB over the start is a generous bound that a
        # leak proportional to the 267 MB written (or buffering ahead of the disk) breaks.
        if os.environ.get("FDSUP_SANITIZED") != "1":
            self.assertLess(peak[0], start_rss + 32 * 1024, "fdsupd's RSS grew with the output")
        megabytes = count * WIDTH / 1e6
        print(f"\n200 MB through rotate: {megabytes:.0f} MB from the worker in {took:.1f} s "
              f"({megabytes / took:.0f} MB/s, {count / took / 1e6:.2f} M lines/s), fdsupd RSS "
              f"{start_rss / 1024:.1f} MiB at start, {peak[0] / 1024:.1f} MiB at peak; "
              f"kept {len(numbers)} lines in {len(paths)} files")
        self.assertEqual(d.stop(), 0)

    def test_log_compress_gzips_rotated_files_off_the_loop_and_leaves_no_temp_file(self):
        count = 200_000
        d = self.fdsupd(f"""
[workers.packed]
command = {numbered(["--count", count])}
restart = "never"
stdout = "rotate:@TMP@/logs/packed.log"
log_max_size = "1M"
log_keep = 3
log_compress = true
""")
        logs = self.logs_dir(d)
        d.start(wait_control=True)
        path = os.path.join(logs, "packed.log")
        wait_until(lambda: last_number(path) == count - 1, timeout=120, what="the last line")
        expected = sorted(["packed.log", "packed.log.1.gz", "packed.log.2.gz", "packed.log.3.gz"])
        wait_until(lambda: sorted(os.listdir(logs)) == expected, what=f"only {expected} (compressions done)")
        paths = rotated_in_order(logs, "packed.log")
        for p in paths[:-1]:
            with open(p, "rb") as f:
                self.assertEqual(f.read(2), b"\x1f\x8b", p)  # gzip's magic
        numbers = numbers_in(paths)  # gzip.open reads each whole, checking its CRC
        assert_contiguous(self, numbers, last=count - 1)
        self.assertGreater(len(numbers), 3 * (MIB // 128) - 10)
        self.assertEqual(d.stop(), 0)

    def test_timestamps_utc_local_and_none(self):
        say = '["/bin/sh", "-c", "echo hello; exec sleep 1000"]'
        d = self.fdsupd(f"""
[workers.utc]
command = {say}
stdout = "rotate:@TMP@/logs/utc.log"
[workers.local]
command = {say}
stdout = "rotate:@TMP@/logs/local.log"
log_timestamps = "local"
[workers.none]
command = {say}
stdout = "rotate:@TMP@/logs/none.log"
log_timestamps = "none"
""", env=dict(os.environ, TZ="CET-1"))  # POSIX TZ: one hour east of UTC, no DST
        logs = self.logs_dir(d)
        before = datetime.datetime.now(datetime.timezone.utc)
        d.start(wait_control=True)

        utc, local, none = ("\n".join(whole_lines(os.path.join(logs, name), 1)) + "\n"
                            for name in ("utc.log", "local.log", "none.log"))
        after = datetime.datetime.now(datetime.timezone.utc)
        self.assertRegex(utc, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z hello\n$")
        self.assertRegex(local, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+01:00 hello\n$")
        self.assertEqual(none, "hello\n")
        for line in (utc, local):
            stamp = datetime.datetime.fromisoformat(line.split(" ")[0].replace("Z", "+00:00"))
            self.assertTrue(before - datetime.timedelta(seconds=1) <= stamp <= after + datetime.timedelta(seconds=1),
                            f"{stamp} not between {before} and {after}")
        self.assertEqual(d.stop(), 0)

    def test_instance_in_the_path_and_shared_files(self):
        both = '["/bin/sh", "-c", "echo out $FDSUP_INSTANCE; echo err $FDSUP_INSTANCE >&2; exec sleep 1000"]'
        d = self.fdsupd(f"""
[workers.apart]
command = {both}
instances = 2
stdout = "rotate:@TMP@/logs/apart-{{instance}}.log"
stderr = "rotate:@TMP@/logs/apart-{{instance}}.log"
[workers.together]
command = {both}
instances = 2
stdout = "rotate:@TMP@/logs/together.log"
stderr = "rotate:@TMP@/logs/together.log"
""")
        logs = self.logs_dir(d)
        d.start(wait_control=True)

        def lines(name, count):
            return sorted(re.sub("^" + STAMP_UTC + " ", "", line) for line in whole_lines(os.path.join(logs, name), count))
        self.assertEqual(lines("apart-0.log", 2), ["err 0", "out 0"])
        self.assertEqual(lines("apart-1.log", 2), ["err 1", "out 1"])
        self.assertEqual(lines("together.log", 4), ["err 0", "err 1", "out 0", "out 1"])
        # One open file per path, whoever writes it.
        opened = [link for link in fd_links(d.pid) if link.startswith(logs)]
        self.assertEqual(len(opened), 3)
        # The lines are in `fdsupctl logs` too, with their stream.
        logs_out = d.ctl_ok("logs", "together")
        self.assertIn("err 1", logs_out)
        self.assertEqual(d.stop(), 0)

    def steady(self, name, extra="", **kwargs):
        return self.fdsupd(f"""
[workers.{name}]
command = {numbered(["--count", 0, "--batch", 20, "--pause", 0.005])}
stdout = "rotate:@TMP@/logs/{name}.log"
{extra}
""", **kwargs)

    def wait_more_lines(self, path, more=200):
        """Until the worker has written `more` lines into `path` after now."""
        now = wait_until(lambda: last_number(path), what=f"lines in {path}")
        wait_until(lambda: (last_number(path) or -1) >= now + more, what=f"{more} more lines in {path}")

    def stop_and_check(self, d, name, paths):
        d.ctl_ok("stop", name)
        numbers = numbers_in(paths, live=True)
        assert_contiguous(self, numbers, first=0)
        return numbers

    def test_reopen_logs_and_sigusr1_after_an_outside_rename(self):
        d = self.steady("steady", 'log_max_size = "infinity"')
        logs = self.logs_dir(d)
        d.start(wait_control=True)
        path = os.path.join(logs, "steady.log")
        self.wait_more_lines(path)
        os.rename(path, path + ".a")
        self.wait_more_lines(path + ".a")  # still written: the same open file
        self.assertEqual(d.ctl_ok("reopen-logs"), "1 log file reopened\n")
        self.wait_more_lines(path)  # a new file at the path
        os.rename(path, path + ".b")
        d.signal(signal.SIGUSR1)
        d.wait_log(r"received SIGUSR1: reopening the log files")
        self.wait_more_lines(path)
        # A path that cannot be opened again: reported, exit 1, the old file goes on.
        os.rename(path, path + ".c")
        os.symlink(os.path.join(d.tmp, "victim"), path)
        code, out, err = d.ctl("reopen-logs")
        self.assertEqual(code, 1, out + err)
        self.assertEqual(out, "0 log files reopened\n")
        self.assertRegex(err, r"not reopened: open \S+/steady.log: Too many levels of symbolic links "
                              r"\(a symlink on the path\)")
        self.wait_more_lines(path + ".c")
        self.assertFalse(os.path.exists(os.path.join(d.tmp, "victim")))
        os.unlink(path)
        reply = d.ctl_json("reopen-logs")
        self.assertEqual((reply["reopened"], reply["failed"]), ([path], []))
        self.wait_more_lines(path)
        self.stop_and_check(d, "steady", [path + ".a", path + ".b", path + ".c", path])
        self.assertEqual(d.stop(), 0)

    def test_debian_logrotate_with_the_installed_snippet_rotates_a_live_worker(self):
        logrotate = shutil.which("logrotate") or "/usr/sbin/logrotate"
        if not os.path.exists(logrotate):
            self.skipTest("logrotate is not installed (Debian package logrotate; dev.sh installs it)")
        d = self.steady("app", 'log_max_size = "infinity"')
        logs = self.logs_dir(d)
        # The snippet as `cmake --install` writes it (its postrotate names the installed
        # fdsupctl), only its path pattern made this test's.
        prefix = os.path.join(d.tmp, "installed")
        subprocess.run(["cmake", "--install", BUILD, "--prefix", prefix], check=True, capture_output=True)
        with open(os.path.join(prefix, "etc", "logrotate.d", "fdsup")) as f:
            snippet = f.read()
        self.assertIn("/var/log/fdsup/*.log {", snippet)
        conf = os.path.join(d.tmp, "logrotate.conf")
        with open(conf, "w") as f:
            f.write(snippet.replace("/var/log/fdsup/*.log", os.path.join(logs, "*.log")))
        os.chmod(conf, 0o644)
        d.start(wait_control=True)
        path = os.path.join(logs, "app.log")
        self.wait_more_lines(path)
        r = subprocess.run([logrotate, "-v", "-f", "-s", os.path.join(d.tmp, "logrotate.state"), conf],
                           env=dict(os.environ, FDSUP_CONTROL=d.control_socket), capture_output=True, text=True,
                           timeout=DEADLINE)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        d.wait_log(r"reopen-logs: 1 file\(s\) reopened, 0 failed")
        # delaycompress: the file rotated last stays as it is until the next rotation.
        self.assertTrue(os.path.exists(path + ".1"), os.listdir(logs))
        rotated_last = last_number(path + ".1")
        self.wait_more_lines(path)  # the next lines land in the new live file
        numbers = self.stop_and_check(d, "app", [path + ".1", path])
        self.assertIn(rotated_last + 1, numbers)
        # A second run: the first rotated file is compressed now (compress), a new .1.
        r = subprocess.run([logrotate, "-f", "-s", os.path.join(d.tmp, "logrotate.state"), conf],
                           env=dict(os.environ, FDSUP_CONTROL=d.control_socket), capture_output=True, text=True,
                           timeout=DEADLINE)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertTrue(os.path.exists(path + ".2.gz"), os.listdir(logs))
        assert_contiguous(self, numbers_in([path + ".2.gz", path + ".1"]), first=0)
        self.assertEqual(d.stop(), 0)

    def test_the_upgrade_carries_the_open_files_no_line_lost_doubled_or_cut(self):
        d = self.steady("carried", 'log_max_size = "64K"\nlog_keep = 1000\nlog_compress = true')
        logs = self.logs_dir(d)
        d.start(wait_control=True)
        path = os.path.join(logs, "carried.log")
        wait_until(lambda: os.path.exists(path + ".3.gz"), what="three compressed rotations")
        # fd_links: a compression's fds open and close on the thread pool meanwhile.
        # Sampled until one is seen: mid-rotation the open file is briefly carried.log.1.
        def fds_at_path():
            found = [link for link in fd_links(d.pid) if link == path]
            return found or None
        fd_before = wait_until(fds_at_path, what=f"fdsupd's fd on {path}")
        out = d.ctl_ok("upgrade")
        self.assertIn("fdsupd upgraded in place", out)
        self.assertEqual(d.ctl_json("status")["supervisor"]["pid"], d.pid)
        fd_after = wait_until(fds_at_path, what=f"fdsupd's fd on {path} after the upgrade")
        rotations = len(os.listdir(logs))
        wait_until(lambda: len(os.listdir(logs)) >= rotations + 3, what="three more rotations after the upgrade")
        self.assertEqual(len(fd_before), 1)
        self.assertEqual(len(fd_after), 1)
        # The open file itself went across (not opened again by the new image).
        d.wait_log(r"log file " + re.escape(path) + r": carried across the upgrade \(\d+ bytes, fd \d+\)")
        d.ctl_ok("stop", "carried")
        # Every rotated file compressed, no temp file (a compression the exec cut short is
        # done again by the new image).
        wait_until(lambda: all(re.fullmatch(r"carried\.log(\.\d+\.gz)?", n) for n in os.listdir(logs)),
                   what="every rotated file compressed: " + " ".join(sorted(os.listdir(logs))))
        numbers = numbers_in(rotated_in_order(logs, "carried.log"), live=True)
        assert_contiguous(self, numbers, first=0)
        self.assertEqual(d.stop(), 0)

    def test_a_reload_changing_only_log_options_applies_them_to_the_open_file_without_a_restart(self):
        config = """
[workers.steady]
command = %s
stdout = "rotate:@TMP@/logs/steady.log"
log_max_size = "infinity"
""" % numbered(["--count", 0, "--batch", 20, "--pause", 0.005])
        d = self.fdsupd(config)
        logs = self.logs_dir(d)
        d.start(wait_control=True)
        path = os.path.join(logs, "steady.log")
        self.wait_more_lines(path)
        pid = d.instance("steady")["pid"]
        d.write_config(config.replace('log_max_size = "infinity"', 'log_max_size = "64K"\nlog_keep = 2\n'
                                                                   'log_timestamps = "none"'))
        reply = d.ctl_json("reload")
        self.assertIn("steady", reply["workers"]["unchanged"])
        self.assertEqual(d.instance("steady")["pid"], pid)
        wait_until(lambda: os.path.exists(path + ".2"), what="rotations by the new log_max_size")
        d.ctl_ok("stop", "steady")  # the files hold still from here (but the last lines)
        self.assertFalse(os.path.exists(path + ".3"))
        # path.1 was written whole after the reload (path.2 may be the file from before):
        # the new lines have no stamp.
        def first_line():
            try:  # a last rotation, by the drained last lines, may be renaming it
                with open(path + ".1") as f:
                    return f.readline()
            except FileNotFoundError:
                return None
        self.assertRegex(wait_until(first_line, what=f"{path}.1"), r"^\d{10} \.+\n$")
        self.assertEqual(d.stop(), 0)

    def test_a_bad_path_fails_the_start_as_file_does_and_changes_nothing_else(self):
        d = self.fdsupd("""
[workers.linked]
command = ["/bin/sh", "-c", "echo into the link; exec sleep 1000"]
stdout = "rotate:@TMP@/linked.log"
start_limit_burst = 1
[workers.piped]
command = ["/bin/sh", "-c", "echo into the pipe; exec sleep 1000"]
stderr = "rotate:@TMP@/piped.log"
start_limit_burst = 1
[workers.nowhere]
command = ["/bin/sh", "-c", "echo nowhere; exec sleep 1000"]
stdout = "rotate:@TMP@/missing/nowhere.log"
start_limit_burst = 1
[workers.fine]
command = ["/bin/sh", "-c", "echo fine; exec sleep 1000"]
stdout = "rotate:@TMP@/fine.log"
""")
        victim = plant_bad_outputs(d.tmp)
        d.start()
        d.wait_log(r"worker linked\[0\]: stdout: open \S+/linked.log: Too many levels of symbolic links "
                   r"\(a symlink on the path\)")
        d.wait_log(r"worker piped\[0\]: stderr: open \S+/piped.log: No such device or address")
        d.wait_log(r"worker nowhere\[0\]: stdout: open \S+/missing/nowhere.log: No such file or directory")
        status = {w["name"]: w["state"] for w in d.ctl_json("status")["workers"]}
        self.assertEqual(status["fine"], "running")
        self.assertRegex(whole_lines(os.path.join(d.tmp, "fine.log"), 1)[0], "^" + STAMP_UTC + " fine$")
        with open(victim) as f:
            self.assertEqual(f.read(), "untouched\n")
        self.assertFalse(os.path.exists(os.path.join(d.tmp, "missing")))
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    unittest.main()
