"""The latency-over-time picture: the restart phases' timelines laid one after another
on one time axis, drawn by gnuplot (latency.gp)."""
import os
import shutil
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
GAP = 1.0  # seconds of blank axis between phases


def draw(series, out_path, work_dir):
    """series: [(label, timeline file, restart offsets)]; writes the PNG to out_path.
    Returns False (and says why) if gnuplot is missing."""
    if shutil.which("gnuplot") is None:
        print("  gnuplot is not installed: no plot (`./dev.sh bench` installs gnuplot-nox)")
        return False
    data = os.path.join(work_dir, "latency.dat")
    events = os.path.join(work_dir, "restarts.dat")
    worst = 1.0
    with open(data, "w") as d, open(events, "w") as e:
        start = 0.0
        for label, timeline, offsets in series:
            end = start
            with open(timeline) as f:
                for line in f:
                    seconds, ok, failed, slowest_ms, _mean = line.split()
                    t = start + float(seconds)
                    end = max(end, t)
                    worst = max(worst, float(slowest_ms))
                    d.write(f"{t:.3f} {slowest_ms} {failed}\n")
            d.write("\n\n")
            for offset in offsets:
                e.write(f"{start + offset:.3f}\n")
            start = end + GAP
    variables = [f'OUT="{out_path}"', f'DATA="{data}"', f'EVENTS="{events}"', f"PHASES={len(series)}",
                 f"FAILED_AT={worst * 3:.1f}"]
    variables += [f'L{i + 1}="{label}"' for i, (label, _, _) in enumerate(series)]
    subprocess.run(["gnuplot", "-e", "; ".join(variables), os.path.join(HERE, "latency.gp")], check=True)
    return True
