"""Spawn cost vs the supervisor's RSS: tests/bench/spawn_cost (the launcher vs fork+exec
vs posix_spawn, at 10 MiB and at a large RSS), its rows turned into a table."""
import re
import subprocess

ROW = re.compile(r"^(\d+) MiB\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)$", re.M)


def run(build, report, spawns, large_rss_mib):
    out = subprocess.run([build.spawn_cost, str(spawns), str(large_rss_mib)], check=True, capture_output=True,
                         text=True).stdout
    rows = [[f"{m.group(1)} MiB", m.group(2), m.group(3), m.group(4)] for m in ROW.finditer(out)]
    if len(rows) != 2:
        raise RuntimeError(f"spawn_cost printed something unexpected:\n{out}")
    small, large = ([float(x) for x in row[1:]] for row in rows)
    report.section("Spawn cost vs supervisor RSS", ["supervisor RSS", "launcher us", "fork+exec us",
                                                    "posix_spawn us"], rows,
                   [f"Median time until the child has exec'd, {spawns} spawns each, one run. Large/small RSS: "
                    f"launcher {large[0] / small[0]:.2f}x, fork+exec {large[1] / small[1]:.2f}x, posix_spawn "
                    f"{large[2] / small[2]:.2f}x."])
