"""A demo app for `make demo`, compose.yaml and the pod lifecycle tests: startup lines,
traffic, and — after SIGTERM — shutdown lines, written to the file given as its argument
(`-`: standard output). With `--exit-after N` it is a batch job instead: N lines of
traffic, then the shutdown lines, then exit 0 without waiting for a signal. Standard
library only."""

import argparse
import signal
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("file", help="where to write, or - for standard output")
parser.add_argument("--exit-after", type=int, metavar="N", help="stop after N traffic lines")
args = parser.parse_args()

out = sys.stdout if args.file == "-" else open(args.file, "a", buffering=1)  # noqa: SIM115
stop: list[int] = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
for i in range(20):
    out.write(f"startup: loading module {i}\n")
out.flush()
i = 0
while not stop and (args.exit_after is None or i < args.exit_after):
    out.write(f"GET /items/{i} 200 {3 + i % 7}ms\n")
    i += 1
    time.sleep(0.005)
for j in range(30):
    out.write(f"shutdown: closing connection {j}\n")
    time.sleep(0.01)
out.write("shutdown: bye\n")
out.flush()
