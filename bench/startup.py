"""Start-up time: whole-process runs of several shell commands, taking turns, with their medians and ratios.

Usage::

    python bench/startup.py [--runs N] [COMMAND ...]

Without commands it times the start-up goal's pair in the current environment: ``python -c "import numpy"``
(the baseline) and ``cecli bce`` reading the 3-row one-liner ``1,0.9 / 0,0.2 / 1,0.7`` from stdin. Every
command gets that input on stdin. The commands take turns run by run (after one warm-up run each), so drift in
the machine's speed touches them alike; the first command is the baseline of the ratios.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import subprocess
import sys
import time

ONE_LINER = b"1,0.9\n0,0.2\n1,0.7\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="startup.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=31, help="timed runs per command (default 31)")
    parser.add_argument("commands", nargs="*", help="shell commands; the first is the baseline")
    args = parser.parse_args(argv)
    python = shlex.quote(sys.executable)
    commands = args.commands or [f"exec {python} -c 'import numpy'", "exec cecli bce"]
    times: dict[str, list[float]] = {command: [] for command in commands}
    for run in range(args.runs + 1):
        for command in commands:
            started = time.perf_counter()
            done = subprocess.run(command, shell=True, input=ONE_LINER, capture_output=True)
            elapsed = time.perf_counter() - started
            if done.returncode != 0:
                sys.stderr.write(f"startup.py: error: {command!r} exited {done.returncode}: {done.stderr.decode()}\n")
                return 1
            if run:  # the first round warms the file cache
                times[command].append(elapsed)
    baseline = statistics.median(times[commands[0]])
    for command in commands:
        median = statistics.median(times[command])
        print(f"{median * 1000:8.1f} ms  {median / baseline:5.2f}x  {command}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
