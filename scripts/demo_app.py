"""A demo app for `make demo` and compose.yaml: startup lines, traffic, and — after
SIGTERM — shutdown lines, written to the file given as its argument. Standard library only."""

import signal
import sys
import time

out = open(sys.argv[1], "a", buffering=1)  # noqa: SIM115 - open for the process's life
stop: list[int] = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
for i in range(20):
    out.write(f"startup: loading module {i}\n")
i = 0
while not stop:
    out.write(f"GET /items/{i} 200 {3 + i % 7}ms\n")
    i += 1
    time.sleep(0.005)
for j in range(30):
    out.write(f"shutdown: closing connection {j}\n")
    time.sleep(0.01)
out.write("shutdown: bye\n")
