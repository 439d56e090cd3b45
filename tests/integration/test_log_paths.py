#!/usr/bin/env python3
"""Whose log_* options a shared "rotate:" file has: the config's for its path, whichever
worker spawns last (a worker scaled beyond its configured instances onto another's file,
a reload removing one writer and retuning the other). Seen through the rotated files
LogFile::tidy() keeps: PATH.N past the file's log_keep is deleted when its options
change, so a file that took the wrong worker's smaller log_keep loses them. (A size
limit no line here reaches: with none, tidy() leaves numbered files to logrotate.)"""
import os
import unittest

from fdsup_harness import FdsupTestCase, wait_until

SAY = '["/bin/sh", "-c", "echo %s; exec sleep 1000"]'


def contains(path, text):
    try:
        with open(path) as f:
            return text in f.read()
    except FileNotFoundError:
        return False


class LogPathsTest(FdsupTestCase):
    def logs(self, d, base, rotated):
        """@TMP@/logs with `base`.N for each N in `rotated` (rotated files from before)."""
        logs = os.path.join(d.tmp, "logs")
        os.makedirs(logs, exist_ok=True)
        for n in rotated:
            with open(os.path.join(logs, f"{base}.{n}"), "w") as f:
                f.write(f"rotated {n}\n")
        return logs

    def present(self, logs, base):
        return sorted(int(name.rsplit(".", 1)[1]) for name in os.listdir(logs)
                      if name.startswith(base + ".") and name.rsplit(".", 1)[1].isdigit())

    def test_a_worker_scaled_onto_another_workers_file_writes_it_with_the_files_options(self):
        config = """
[workers.a]
command = %s
stdout = "rotate:@TMP@/logs/x1.log"
log_max_size = "1G"
[workers.b]
command = %s
stdout = "rotate:@TMP@/logs/x{instance}.log"
log_max_size = "1G"
log_keep = 1
""" % (SAY % "a-line", SAY % "b-line")
        d = self.fdsupd(config)
        logs = self.logs(d, "x1.log", [2, 3, 4])
        x1, x0 = os.path.join(logs, "x1.log"), os.path.join(logs, "x0.log")
        d.start(wait_control=True)
        wait_until(lambda: contains(x1, "a-line") and contains(x0, "b-line"), what="both workers' lines")
        # b's instance 1 writes x1.log, a's file (log_keep 5): the loader compared
        # configured instances only. The file keeps log_keep 5, with a warning.
        d.ctl_ok("scale", "b", "2")
        wait_until(lambda: contains(x1, "b-line"), what="b's instance 1 writing x1.log")
        d.wait_log(r"log file \S*/x1\.log: worker b's options \(.*log_keep 1.*\) are not the file's "
                   r"\(.*log_keep 5.*, worker a's\)")
        self.assertEqual(self.present(logs, "x1.log"), [2, 3, 4])
        # A reload retunes the file with a's options (the config's for the path), not b's.
        d.write_config(config.replace('x1.log"\n', 'x1.log"\nlog_keep = 3\n', 1))
        d.ctl_json("reload")
        wait_until(lambda: self.present(logs, "x1.log") == [2, 3], what="x1.log.4 past a's new log_keep 3")
        self.assertEqual(d.stop(), 0)

    def test_a_reload_removing_one_writer_retunes_the_file_with_the_others_options(self):
        config = """
[workers.b]
command = %s
stdout = "rotate:@TMP@/logs/shared.log"
log_max_size = "1G"
[workers.a]
command = %s
stdout = "rotate:@TMP@/logs//shared.log"
log_max_size = "1G"
""" % (SAY % "b-line", SAY % "a-line")
        d = self.fdsupd(config)
        logs = self.logs(d, "shared.log", [2, 3, 4])
        shared = os.path.join(logs, "shared.log")
        d.start(wait_control=True)
        # Two spellings of one path: one file, both lines in it.
        wait_until(lambda: contains(shared, "a-line") and contains(shared, "b-line"), what="both workers' lines")
        self.assertEqual(sorted(os.listdir(logs)), ["shared.log", "shared.log.2", "shared.log.3", "shared.log.4"])
        # a goes, b's log_keep becomes 2 in the same reload: at once, b being unchanged otherwise.
        b_pid = d.instance("b")["pid"]
        d.write_config(config.split("[workers.a]")[0].replace('log_max_size = "1G"\n',
                                                              'log_max_size = "1G"\nlog_keep = 2\n'))
        reply = d.ctl_json("reload")
        self.assertIn("a", reply["workers"]["removed"])
        wait_until(lambda: self.present(logs, "shared.log") == [2], what="shared.log.3 and .4 past log_keep 2")
        self.assertEqual(d.instance("b")["pid"], b_pid)
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    unittest.main()
