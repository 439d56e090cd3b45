#!/usr/bin/env python3
"""The layers of supervisord/ (README "Layout"): every #include "..." of a file must
point into its own folder or into a lower layer, never up or sideways. A new folder
must be given a layer here. Prints each offending include; exits 1 if there is any.

    usage: check_layers.py SUPERVISORD_DIR
"""
import os
import re
import sys

# Lowest first. Folders on one line are one layer: they may not include each other.
LAYERS = [
    ["sys"],
    ["json", "loop", "events"],
    ["logging"],  # its JSON format escapes with json/
    ["config"],
    ["sockets", "launcher"],
    ["table"],
    ["output", "fdstore", "cgroups", "rollout", "health"],
    ["supervisor"],
    ["state"],
    ["notify", "fdserver", "control"],
    ["upgrade"],
    ["daemon"],
    ["main.cpp"],
]
# Headers below their folder's layer: the parts of the control protocol library
# (fdsup_protocol) that fdsupctl and the fd socket share.
OWN_LAYER = {"control/protocol.h": "json", "sys/signal_names.h": "sys"}
# Generated, or for client apps: anyone may include them.
ANYONE = {"version.h", "fdsup_fds.h"}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def layer_of_folder(folder):
    for number, folders in enumerate(LAYERS):
        if folder in folders:
            return number
    return None


def main(root):
    problems = []
    for directory, _, files in os.walk(root):
        for name in files:
            if not name.endswith((".h", ".cpp")):
                continue
            path = os.path.join(directory, name)
            relative = os.path.relpath(path, root)
            folder = relative.split(os.sep)[0]
            if folder == "include":
                continue
            own = layer_of_folder(folder)
            if own is None:
                problems.append(f"{relative}: folder {folder}/ has no layer in {__file__}")
                continue
            with open(path) as f:
                text = f.read()
            for included in INCLUDE.findall(text):
                if included in ANYONE:
                    continue
                target_folder = included.split("/")[0]
                if target_folder == folder:
                    continue
                target = layer_of_folder(OWN_LAYER.get(included, target_folder).split("/")[0])
                if target is None:
                    problems.append(f"{relative}: includes {included}, in a folder with no layer")
                elif target >= own:
                    way = "sideways" if target == own else "up"
                    problems.append(f"{relative}: includes {included} ({way}: {target_folder}/ is not below {folder}/)")
    for problem in sorted(problems):
        print(problem)
    print(f"layers: {len(problems)} include(s) pointing up or sideways")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "supervisord")))
