#!/usr/bin/env python3
"""Writes numbered lines to stdout, as fast as it can or steadily, for the rotated-log
tests (test_log_rotate): each line is the number in 10 digits, a space and dots, WIDTH
bytes with its newline, so that a line cut or lost shows.

  numbered_lines.py --count N [--width W] [--batch B] [--pause SECONDS]

--count 0: forever (until a signal). Lines go out B at a time, one write() each, with
--pause between batches (a steady writer; 0: as fast as the pipe takes them)."""
import argparse
import os
import sys
import time


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--width", type=int, default=100)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--pause", type=float, default=0.0)
    args = parser.parse_args()
    padding = "." * (args.width - 12)
    n = 0
    while args.count == 0 or n < args.count:
        end = n + args.batch if args.count == 0 else min(n + args.batch, args.count)
        data = "".join(f"{i:010d} {padding}\n" for i in range(n, end)).encode()
        view = memoryview(data)
        while view:
            written = os.write(1, view)
            view = view[written:]
        n = end
        if args.pause:
            time.sleep(args.pause)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
