#!/usr/bin/env python3
"""Time from spawning a command to the first byte it writes on stdout, and to its exit.

Usage: first_output.py RUNS COMMAND [ARGS...]
Prints one Markdown cell triple: "MEDIAN ms | MAX ms | WHOLE-RUN MEDIAN ms". The clock starts just before the
fork; the first byte is read from a pipe, as a runner reads a step's output. Every run must exit 0.
"""

import statistics
import subprocess
import sys
import time


def one(argv):
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    first = proc.stdout.read(1)
    first_at = time.perf_counter()
    proc.stdout.read()
    code = proc.wait()
    end = time.perf_counter()
    if code != 0 or not first:
        sys.exit(f"first_output: {' '.join(argv)} exited {code} (printed {'something' if first else 'nothing'})")
    return (first_at - start) * 1000, (end - start) * 1000


def main():
    runs, argv = int(sys.argv[1]), sys.argv[2:]
    one(argv)  # warm the page cache; not counted
    samples = [one(argv) for _ in range(runs)]
    firsts = [s[0] for s in samples]
    wholes = [s[1] for s in samples]
    print(f"{statistics.median(firsts):.1f} ms | {max(firsts):.1f} ms | {statistics.median(wholes):.1f} ms")


if __name__ == "__main__":
    main()
