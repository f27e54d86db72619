"""A demo app for `make demo`, compose.yaml and the pod lifecycle tests: startup lines,
traffic, and — after SIGTERM — shutdown lines, written to the file given as its argument
(`-`: standard output). With `--exit-after N` it is a batch job instead: N lines of
traffic, then the shutdown lines, then exit 0 without waiting for a signal.

Like real servers, it can be awkward: `--idle-after N` stops the traffic after N lines and
idles until the signal (the file goes quiet); `--in-pieces` writes each traffic line in
two calls; `--shutdown-delay S` logs "shutdown: waiting for in-flight requests" at once
and the rest S seconds later, as a server that waits for its requests before it says
"stopped". Like most servers, it makes the directory of its log file if it is missing.
Standard library only."""

import argparse
import os
import signal
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("file", help="where to write, or - for standard output")
parser.add_argument("--exit-after", type=int, metavar="N", help="stop after N traffic lines")
parser.add_argument("--idle-after", type=int, metavar="N",
                    help="write N traffic lines, then nothing until SIGTERM")  # fmt: skip
parser.add_argument("--in-pieces", action="store_true",
                    help="write each traffic line in two pieces, 20 ms apart")  # fmt: skip
parser.add_argument("--shutdown-delay", type=float, default=0.0, metavar="SECONDS",
                    help="between the first shutdown line and the rest")  # fmt: skip
args = parser.parse_args()

if args.file != "-":
    os.makedirs(os.path.dirname(os.path.abspath(args.file)), exist_ok=True)
out = sys.stdout if args.file == "-" else open(args.file, "a", buffering=1)  # noqa: SIM115
stop: list[int] = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
for i in range(20):
    out.write(f"startup: loading module {i}\n")
out.flush()
i = 0
while not stop and (args.exit_after is None or i < args.exit_after):
    if args.idle_after is not None and i >= args.idle_after:
        time.sleep(0.05)  # idle: the file stays quiet until the signal
        continue
    head, rest = f"GET /items/{i} ", f"200 {3 + i % 7}ms\n"
    if args.in_pieces:  # as a program that writes a line in several calls
        out.write(head)
        out.flush()
        time.sleep(0.02)
        head = ""
    out.write(head + rest)
    i += 1
    time.sleep(0.005)
if args.shutdown_delay:
    out.write("shutdown: waiting for in-flight requests\n")
    out.flush()
    time.sleep(args.shutdown_delay)
for j in range(30):
    out.write(f"shutdown: closing connection {j}\n")
    time.sleep(0.01)
out.write("shutdown: bye\n")
out.flush()
