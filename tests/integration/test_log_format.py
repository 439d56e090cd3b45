"""[supervisor] log_format = "json" (logging/json_log_format.h): every line fdsupd logs is
one JSON object, whatever bytes a worker writes; a worker's captured lines and the
lines about an instance carry its worker, instance and pid; a reload switches the
format both ways."""
import json
import os
import re

from fdsup_harness import FdsupTestCase, wait_until

LINES = [
    b'plain text',
    b'a "quoted" word and a back\\slash',
    b'control \x01\x07\x1b[31m red \x7f and a tab\there',
    b'bad utf-8: \xff and \xc3( and \xe2\x82 cut',
    b'good utf-8: \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80',
    b'{"looks": "like json"}',
]

# Writes each of LINES to stdout, then "END", then the bad UTF-8 one to stderr too; then
# waits.
WORKER = f"""
import sys, time
for line in {LINES!r}:
    sys.stdout.buffer.write(line + b'\\n')
sys.stdout.buffer.write(b'END\\n')
sys.stdout.flush()
sys.stderr.buffer.write({LINES[-3]!r} + b'\\n')
sys.stderr.flush()
time.sleep(3600)
"""

CONFIG = """
[supervisor]
log_format = "json"

[workers.web]
command = ["@PYTHON@", "@TMP@/worker.py"]
instances = 2
stdout = "log"
stderr = "log"
stop_timeout = "5s"
"""


def raw_log(d):
    with open(d.log_path, "rb") as f:
        return f.read()


def json_lines(text):
    """Every complete line of `text` parsed (a line that is not JSON fails the test)."""
    parsed = []
    for line in text.split("\n")[:-1]:  # the last is empty or still being written
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise AssertionError(f"not JSON ({e}): {line!r}") from None
    return parsed


class LogFormat(FdsupTestCase):
    def fdsupd_with_worker(self, config):
        d = self.fdsupd(config)
        with open(os.path.join(d.tmp, "worker.py"), "w") as f:
            f.write(WORKER)
        return d

    def test_json_lines_parse_and_carry_the_instance(self):
        d = self.fdsupd_with_worker(CONFIG).start()
        # Both instances' "END" and their stderr line: everything they write is in.
        def all_in():
            captured = [l for l in json_lines(d.log()) if l.get("stream")]
            return (len([l for l in captured if l["stream"] == "stderr"]) == 2 and
                    len([l for l in captured if l["message"] == "END"]) == 2)
        wait_until(all_in, what="both instances' stdout and stderr lines")
        pids = {i["index"]: i["pid"] for i in d.ctl_json("status")["workers"][0]["instances"]}
        self.assertEqual(sorted(pids), [0, 1])

        d.ctl_ok("stop", "web")
        self.assertEqual(d.stop(), 0)
        raw = raw_log(d)
        self.assertTrue(raw.endswith(b"\n"))
        # One object per line, each with the fields, whatever the worker wrote.
        lines = json_lines(raw.decode("utf-8"))  # valid UTF-8 as a whole too
        self.assertGreater(len(lines), 20)
        time_pattern = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
        for line in lines:
            for key in ("time", "level", "worker", "instance", "pid", "message"):
                self.assertIn(key, line, line)
            self.assertRegex(line["time"], time_pattern)
            self.assertIn(line["level"], ("trace", "debug", "info", "warning", "error", "critical"))

        for index, pid in pids.items():
            captured = [l for l in lines if l.get("stream") and l["instance"] == index]
            stdout = [l["message"] for l in captured if l["stream"] == "stdout"]
            stderr = [l["message"] for l in captured if l["stream"] == "stderr"]
            # Exactly the bytes written, invalid UTF-8 as U+FFFD (as Python decodes it).
            self.assertEqual(stdout, [b.decode("utf-8", errors="replace") for b in LINES] + ["END"])
            self.assertEqual(stderr, [LINES[-3].decode("utf-8", errors="replace")])
            for l in captured:
                self.assertEqual((l["worker"], l["pid"], l["level"]), ("web", pid, "info"))
            # The lifecycle: started and stopped lines name the instance and its pid.
            about = [l for l in lines if not l.get("stream") and l["worker"] == "web" and l["instance"] == index]
            started = [l for l in about if re.search(rf"web\[{index}\]: started pid {pid}$", l["message"])]
            self.assertEqual(len(started), 1, about)
            self.assertEqual(started[0]["pid"], pid)
            stopping = [l for l in about if f"stopping pid {pid}" in l["message"]]
            self.assertEqual(len(stopping), 1, about)
            self.assertEqual(stopping[0]["pid"], pid)
            exited = [l for l in about if re.search(rf"pid {pid} .*; stopped$", l["message"])]
            self.assertEqual(len(exited), 1, about)
            self.assertEqual(exited[0]["pid"], pid)  # the process that exited (it has none now)
        # fdsupd's own lines are about no worker; the stop request about the worker only.
        own = [l for l in lines if "all workers stopped" in l["message"]]
        self.assertEqual(len(own), 1)
        self.assertEqual((own[0]["worker"], own[0]["instance"], own[0]["pid"]), (None, None, None))
        requested = [l for l in lines if l["message"] == "worker web: stop requested"]
        self.assertEqual(len(requested), 1)
        self.assertEqual((requested[0]["worker"], requested[0]["instance"], requested[0]["pid"]), ("web", None, None))

    def test_a_reload_switches_the_format_both_ways(self):
        text_config = CONFIG.replace('log_format = "json"\n', "")
        d = self.fdsupd_with_worker(text_config).start(wait_control=True)
        d.wait_log(r"web\[0\] stderr: bad utf-8")
        d.wait_log(r"web\[1\] stderr: bad utf-8")
        self.assertRegex(d.log().split("\n")[0], r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \w+ ")

        # text -> json: what is logged once the reload is done is JSON.
        d.write_config(CONFIG)
        d.ctl_ok("reload")
        switched = len(raw_log(d))
        d.ctl_ok("restart", "web")
        pids = {i["index"]: i["pid"] for i in d.ctl_json("status")["workers"][0]["instances"]}
        wait_until(lambda: len([l for l in json_lines(raw_log(d)[switched:].decode())
                                if l.get("stream") and l["message"] == "END"]) == 2,
                   what="the new processes' lines as JSON")
        after = json_lines(raw_log(d)[switched:].decode())
        for index, pid in pids.items():
            self.assertEqual(len([l for l in after if l["pid"] == pid and "started pid" in l["message"]]), 1)
        self.assertRegex(raw_log(d)[:switched].decode(errors="replace"),
                         r"\n\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} info  reload: reading ")  # before: text

        # json -> text.
        d.write_config(text_config)
        d.ctl_ok("reload")
        switched = len(raw_log(d))
        d.ctl_ok("restart", "web")
        pids = {i["index"]: i["pid"] for i in d.ctl_json("status")["workers"][0]["instances"]}
        for index, pid in pids.items():
            d.wait_log(rf"worker web\[{index}\]: started pid {pid}\n")
        d.wait_log(r"web\[0\] stderr: bad utf-8", count=2)
        d.wait_log(r"web\[1\] stderr: bad utf-8", count=2)
        tail = raw_log(d)[switched:].decode(errors="replace")
        for line in tail.split("\n")[:-1]:
            self.assertRegex(line, r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \w+ ", line)

    def test_an_unknown_format_is_refused_and_changes_nothing(self):
        d = self.fdsupd_with_worker(CONFIG).start(wait_control=True)
        d.write_config(CONFIG.replace('"json"', '"xml"'))
        code, out, err = d.ctl("reload")
        self.assertEqual(code, 1, out + err)
        self.assertIn('supervisor.log_format: invalid value "xml" (expected text or json)', out + err)
        d.ctl_ok("restart", "web")
        pids = {i["index"]: i["pid"] for i in d.ctl_json("status")["workers"][0]["instances"]}
        wait_until(lambda: any(l["pid"] == pids[0] and "started pid" in l["message"] for l in json_lines(d.log())),
                   what="the restart logged as JSON")


if __name__ == "__main__":
    import unittest
    unittest.main()
