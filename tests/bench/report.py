"""The benchmarks' output: each section printed as an aligned table as soon as it is
measured, and all of them written as Markdown (RESULTS.md) with the machine and date."""
import datetime
import os
import platform
import subprocess


class Section:
    def __init__(self, title, header, rows, notes):
        self.title, self.header, self.rows, self.notes = title, header, rows, notes


class Report:
    def __init__(self):
        self.sections = []
        self.images = []

    def section(self, title, header, rows, notes=()):
        """Prints and keeps one table; rows are lists of already formatted cells."""
        self.sections.append(Section(title, header, rows, list(notes)))
        widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
        print(f"\n{title}")
        for row in [header, *rows]:
            print("  " + "  ".join(str(cell).rjust(w) if i else str(cell).ljust(w)
                                   for i, (cell, w) in enumerate(zip(row, widths))))
        for note in notes:
            print(f"  {note}")

    def image(self, title, path):
        self.images.append((title, path))

    def write_markdown(self, path, command):
        lines = ["# fdsup benchmark results", "",
                 f"Measured {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')} with `{command}`.", "",
                 "## Machine", ""]
        lines += [f"- {item}" for item in machine_description()]
        for s in self.sections:
            lines += ["", f"## {s.title}", "",
                      "| " + " | ".join(s.header) + " |",
                      "|" + "|".join("---" if i == 0 else "---:" for i in range(len(s.header))) + "|"]
            lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in s.rows]
            if s.notes:
                lines.append("")
                lines += s.notes
        for title, image in self.images:
            lines += ["", f"## {title}", "", f"![{title}]({os.path.relpath(image, os.path.dirname(path))})"]
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")


def machine_description():
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_gib = int(f.readline().split()[1]) / (1024 * 1024)
    distro = "unknown distribution"
    if os.path.exists("/etc/os-release"):
        with open("/etc/os-release") as f:
            fields = dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)
        distro = fields.get("PRETTY_NAME", distro).strip('"')
    versions = []
    for package in ("supervisor", "runit", "s6", "libserver-starter-perl", "nodejs", "libuv1"):
        r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True)
        versions.append(f"{package} {r.stdout if r.returncode == 0 else 'not installed'}")
    return [f"{os.cpu_count()} x {cpu}, {mem_gib:.0f} GiB",
            f"{distro}, Linux {platform.release()}",
            "peers from Debian packages: " + ", ".join(versions)]
