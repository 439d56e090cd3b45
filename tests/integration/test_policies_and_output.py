"""Restart policies (always / on-failure with success_exit_codes / never), the
states they lead to, and output capture: lines logged with "name[i]:" prefixes, stderr
marked, a flood or a line without end bounded in memory and never stalling the loop."""
import os
import re
import signal
import unittest

from fdsup_harness import FdsupTestCase, plant_bad_outputs, wait_until

CONFIG = """
[workers.never]
command = ["/bin/sh", "-c", "echo hello from {name}; echo oops >&2; exit 3"]
restart = "never"

[workers.success]
command = ["/bin/sh", "-c", "exit 0"]
restart = "on-failure"

[workers.custom]
command = ["/bin/sh", "-c", "exit 7"]
restart = "on-failure"
success_exit_codes = [0, 7]

[workers.failing]
command = ["/bin/sh", "-c", "echo attempt; exit 2"]
restart = "on-failure"
backoff = "10ms"
backoff_max = "20ms"
start_limit_burst = 3

[workers.always]
command = ["/bin/sh", "-c", "exit 0"]
restart = "always"
backoff = "10ms"
start_limit_burst = 2

[workers.tofile]
command = ["/bin/sh", "-c", "echo to the file; echo dropped >&2; exec sleep 1000"]
stdout = "file:@TMP@/tofile.log"
stderr = "null"
"""

FLOOD = """
[workers.flood]
command = ["/bin/sh", "-c", "head -c 30000000 /dev/zero | tr '\\\\0' x; echo; echo flood done; exec sleep 1000"]

[workers.victim]
command = ["/bin/sleep", "1000"]
healthy_after = "0ms"
"""


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class PoliciesAndOutput(FdsupTestCase):
    def test_policies(self):
        d = self.fdsupd(CONFIG).start()
        d.wait_log(r"worker never\[0\]: pid \d+ exited with code 3 after .*; not restarted \(restart = never\)")
        d.wait_log(r"worker success\[0\]: pid \d+ exited with code 0 after .*; not restarted")
        d.wait_log(r"worker custom\[0\]: pid \d+ exited with code 7 after .*; not restarted")
        d.wait_log(r"worker failing\[0\]: start limit hit \(3 starts")
        d.wait_log(r"worker always\[0\]: start limit hit \(2 starts")
        log = d.log()
        self.assertEqual(len(re.findall(r"worker failing\[0\]: started pid", log)), 3)
        self.assertEqual(len(re.findall(r"failing\[0\]: attempt", log)), 3)
        self.assertRegex(log, r"worker failing\[0\]: pid \d+ exited with code 2 after .*; restart #1 in 10ms")
        self.assertRegex(log, r"worker failing\[0\]: pid \d+ exited with code 2 after .*; restart #2 in 20ms")
        self.assertRegex(log, r"worker always\[0\]: pid \d+ exited with code 0 after .*; restart #1 in 10ms")
        # Output capture: prefixes, stderr marked.
        self.assertRegex(log, r"never\[0\]: hello from never\n")
        self.assertRegex(log, r"never\[0\] stderr: oops\n")
        # stdout to a file, stderr discarded.
        path = os.path.join(d.tmp, "tofile.log")
        def file_text():
            try:
                with open(path) as f:
                    return f.read()
            except FileNotFoundError:
                return None
        wait_until(lambda: file_text() == "to the file\n", what="tofile.log")
        self.assertNotIn("dropped", d.log())
        self.assertEqual(d.stop(), 0)

    def test_file_output_refuses_symlinks_on_its_path_and_a_fifo_without_reader(self):
        d = self.fdsupd("""
[workers.linked]
command = ["/bin/sh", "-c", "echo into the link; exec sleep 1000"]
stdout = "file:@TMP@/linked.log"
start_limit_burst = 1
[workers.piped]
command = ["/bin/sh", "-c", "echo into the pipe; exec sleep 1000"]
stdout = "file:@TMP@/piped.log"
start_limit_burst = 1
[workers.through]
command = ["/bin/sh", "-c", "echo through a linked directory; exec sleep 1000"]
stdout = "file:@TMP@/logs/through.log"
start_limit_burst = 1
[workers.fine]
command = ["/bin/sleep", "1000"]
""")
        victim = plant_bad_outputs(d.tmp)
        # A directory on the way swapped for a symlink to another one (where root would
        # create a file of the worker's choosing).
        elsewhere = os.path.join(d.tmp, "elsewhere")
        os.mkdir(elsewhere)
        os.symlink(elsewhere, os.path.join(d.tmp, "logs"))
        d.start()
        d.wait_log(r"worker linked\[0\]: open stdout file \S+/linked.log: Too many levels of symbolic links")
        d.wait_log(r"worker piped\[0\]: open stdout file \S+/piped.log: No such device or address")
        d.wait_log(r"worker through\[0\]: open stdout file \S+/logs/through.log: Too many levels of symbolic links")
        # Neither start hung the loop or reached the file behind the link.
        fine = d.instance_pids("fine")[0]
        self.assertTrue(fine > 0)
        with open(victim) as f:
            self.assertEqual(f.read(), "untouched\n")
        self.assertEqual(os.listdir(elsewhere), [])
        self.assertEqual(d.stop(), 0)

    def test_flood_is_bounded_and_does_not_stall(self):
        d = self.fdsupd(FLOOD).start()
        victim = d.current_pid("victim[0]")
        d.wait_log(r"flood\[0\]: x{1000}")
        peak = 0
        # While 30 MB without a newline pour in, the loop still restarts a killed worker
        # promptly, and the supervisor's memory stays flat.
        for n in range(1, 4):
            os.kill(victim, signal.SIGKILL)
            d.wait_log(rf"worker victim\[0\]: pid {victim} killed by signal KILL .*restart #{n} now")
            victim = d.current_pid("victim[0]", after=victim)
            peak = max(peak, rss_kib(d.pid))
        d.wait_log(r"flood\[0\]: flood done", timeout=120)
        peak = max(peak, rss_kib(d.pid))
        if os.environ.get("FDSUP_SANITIZED") != "1":  # ASan's quarantine keeps freed memory
            self.assertLess(peak, 64 * 1024, "fdsupd's RSS grew with the flood")
        # Long lines are cut at 16 KiB, never held whole.
        longest = max(len(l) for l in d.log().splitlines())
        self.assertLess(longest, 17 * 1024)
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    unittest.main()
