"""Spawn cost vs the supervisor's RSS: tests/bench/spawn_cost (the launcher vs glibc's
posix_spawn doing the same work vs fork+exec, at 10 MiB and at a large RSS), its rows
turned into a table."""
import re
import subprocess

ROW = re.compile(r"^(\d+) MiB\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)$", re.M)


def run(build, report, spawns, large_rss_mib):
    out = subprocess.run([build.spawn_cost, str(spawns), str(large_rss_mib)], check=True, capture_output=True,
                         text=True).stdout
    found = [[float(x) for x in m.groups()] for m in ROW.finditer(out)]
    if len(found) != 2:
        raise RuntimeError(f"spawn_cost printed something unexpected:\n{out}")
    small, large = found
    rows = [[f"{row[0]:.0f} MiB", f"{row[1]:.1f}", f"{row[2]:.1f}", f"{row[3]:.1f}", f"{row[2] / row[3]:.2f}x",
             f"{row[4]:.1f}"] for row in found]
    report.section("Spawn cost vs supervisor RSS", ["supervisor RSS", "plan us", "launcher us", "posix_spawn us",
                                                    "launcher vs posix_spawn", "fork+exec us"], rows,
                   [f"Median time until the child has exec'd, {spawns} spawns each, one run. The launcher and "
                    "posix_spawn do the same work (stdio from /dev/null, closefrom(3), setsid, the signal mask, the "
                    "dispositions of fdsupd's handlers reset; the same argv and env) and take turns, sample by "
                    "sample; \"plan\" is the launcher's SpawnPlan being built, which the supervisor does before "
                    "the clone, timed apart (posix_spawn's file actions and attributes are built untimed alike). Each RSS "
                    "is measured a second after the ballast grew to it (not while the kernel still settles it). "
                    f"Large/small RSS: launcher {large[2] / small[2]:.2f}x, posix_spawn {large[3] / small[3]:.2f}x, "
                    f"plan {large[1] / small[1]:.2f}x, fork+exec {large[4] / small[4]:.2f}x."])
