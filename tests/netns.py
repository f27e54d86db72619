"""Two test hosts on this machine, joined by a link the tests shape: network namespaces
`pa-<pid>-es` and `pa-<pid>-ship`, a veth pair `data` between them on 10.231.<n>.0/30, and
from the root namespace one unshaped veth to each (`control`), by which the tests reach
the programs there (the stand-in's control API, logship's /metrics) without crossing the
shaped link.

    with TestNet() as net:                  # or the `net` fixture of a test module
        StandInProcess(..., prefix=net.es.prefix, host=net.es.control)
        net.partition(); ...; net.heal()    # every packet dropped silently, then not
        net.netem(loss=0.2, delay=0.5, jitter=0.2, rate="1mbit"); ...; net.clear()

The shaping asks only for what most kernels have: `sch_netem` is not everywhere (the
kernel these tests were written on lacks it, and `fq` and `cake`), so a partition and
loss are iptables DROP rules on each host's way in (`-m statistic` for loss), a rate is a
`tbf` qdisc on each end's way out, and a delay is NFQUEUE: a small process per host
(`python tests/netns.py delay`, below) holds each arriving packet for `delay` ± `jitter`
before letting it in, reordering as netem does. Both directions get each fault, as with
netem on both veth ends. The `data` veths send one-segment packets, as a wire would.

DNS: the ship host's resolver asks a nameserver at the es host's address that never
answers (a lookup waits out `resolver_timeout`), so a name resolves only through the ship
host's own hosts file, which `resolve()` writes (`ip netns exec` bind-mounts
/etc/netns/<name>/hosts and resolv.conf over /etc's).

`down()` (the context's exit) kills what still runs on the hosts and deletes them, which
takes the veths along; `up()` first deletes what an earlier run killed midway left (its
pid gone). `missing()` says why this machine cannot (not root, no iproute2/iptables).
"""

from __future__ import annotations

import contextlib
import fcntl
import heapq
import os
import random
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

NAME = re.compile(r"^pa-(\d+)-(es|ship)$")
NETNS_ETC = Path("/etc/netns")
LOCK = Path("/run/pod-agents-netns.lock")  # two runs at once do not pick one subnet
QUEUE = 7  # the NFQUEUE number the delay uses on each host
TAG = "pod-agents-test"  # iptables comment on every rule this module adds


def missing() -> str | None:
    """Why this machine cannot make test hosts, or None when it can."""
    if os.geteuid() != 0:
        return "network namespaces need root (CI runs the tests as root)"
    for tool, package in (("ip", "iproute2"), ("iptables", "iptables"), ("tc", "iproute2")):
        if shutil.which(tool) is None:
            return f"no `{tool}` here: install {package} (scripts/install-test-deps.sh)"
    return None


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {done.returncode}: {done.stderr.strip()}")
    return done


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _end(proc: subprocess.Popen[bytes], sig: int) -> None:
    """Signal `proc` unless it ended, reap it, close its pipe."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    if proc.stdout is not None:
        proc.stdout.close()


def _namespaces() -> list[str]:
    listed = _run("ip", "netns", "list", check=False).stdout.splitlines()
    return [line.split()[0] for line in listed if line.strip()]


def _delete_namespace(name: str) -> None:
    """Kill what runs in `name` (a test's own programs), then delete it and its files."""
    pids = [int(p) for p in _run("ip", "netns", "pids", name, check=False).stdout.split()]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.02)  # a killed parent of ours is reaped by its Popen, others by init
        for pid in pids:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
    _run("ip", "netns", "delete", name, check=False)
    shutil.rmtree(NETNS_ETC / name, ignore_errors=True)


def sweep() -> list[str]:
    """Delete the test hosts of runs whose process is gone (killed midway) → their names."""
    gone = []
    for name in _namespaces():
        found = NAME.match(name)
        if found and not _alive(int(found.group(1))):
            _delete_namespace(name)
            gone.append(name)
    if NETNS_ETC.is_dir():
        for folder in NETNS_ETC.iterdir():
            found = NAME.match(folder.name)
            if found and not _alive(int(found.group(1))):
                shutil.rmtree(folder, ignore_errors=True)
    return gone


@dataclass(frozen=True)
class Host:
    name: str  # the network namespace
    data: str  # its address on the shaped link
    control: str  # its address on its own unshaped link from the root namespace

    @property
    def prefix(self) -> list[str]:
        """Run a command on this host: `[*host.prefix, argv...]`."""
        return ["ip", "netns", "exec", self.name]

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return _run(*self.prefix, *argv, check=check)

    def iptables(self, *rule: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("iptables", "-w", "5", *rule, check=check)


class TestNet:
    """Two test hosts, `es` and `ship`, and the link between them (see the module)."""

    __test__ = False  # not a test class, whatever its name

    def __init__(self, *, resolver_timeout: int = 5) -> None:
        pid = os.getpid()
        self.resolver_timeout = resolver_timeout
        self.subnet = -1
        self.es = Host(f"pa-{pid}-es", "", "")
        self.ship = Host(f"pa-{pid}-ship", "", "")
        self._root_links = [f"pa{pid}c-es", f"pa{pid}c-sh"]
        self._partition: list[tuple[Host, list[str]]] = []
        self._shaping: list[tuple[Host, list[str]]] = []
        self._rated: list[Host] = []
        self._spawned: list[subprocess.Popen[bytes]] = []
        self._delays: list[subprocess.Popen[bytes]] = []
        self._up = False

    # --- the hosts ---------------------------------------------------------------------

    def up(self) -> TestNet:
        reason = missing()
        if reason:
            raise RuntimeError(reason)
        sweep()
        self._up = True  # from here on down() undoes whatever was made
        with LOCK.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self.subnet = self._free_subnet()
            net = f"10.231.{self.subnet}"
            self.es = Host(self.es.name, f"{net}.1", f"{net}.6")
            self.ship = Host(self.ship.name, f"{net}.2", f"{net}.10")
            for host in (self.es, self.ship):
                _run("ip", "netns", "add", host.name)
                host.run("ip", "link", "set", "lo", "up")
            _run("ip", "link", "add", "data", "netns", self.es.name, "type", "veth",
                 "peer", "name", "data", "netns", self.ship.name)  # fmt: skip
            for host, root_link, root_ip in (
                (self.es, self._root_links[0], f"{net}.5"),
                (self.ship, self._root_links[1], f"{net}.9"),
            ):
                host.run("ip", "addr", "add", f"{host.data}/30", "dev", "data")
                # Packets of one segment, as on a wire (a veth passes 64 KiB at once):
                # one packet lost is one segment lost, as netem would lose it.
                host.run("ip", "link", "set", "dev", "data", "gso_max_segs", "1")
                host.run("ip", "link", "set", "data", "up")
                _run("ip", "link", "add", root_link, "type", "veth", "peer", "name", "control",
                     "netns", host.name)  # fmt: skip
                _run("ip", "addr", "add", f"{root_ip}/30", "dev", root_link)
                _run("ip", "link", "set", root_link, "up")
                host.run("ip", "addr", "add", f"{host.control}/30", "dev", "control")
                host.run("ip", "link", "set", "control", "up")
        # The ship host's resolver: a nameserver that never answers, and its own hosts file.
        etc = NETNS_ETC / self.ship.name
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "resolv.conf").write_text(
            f"nameserver {self.es.data}\noptions timeout:{self.resolver_timeout} attempts:1\n"
        )
        (etc / "hosts").write_text("127.0.0.1 localhost\n")
        for proto in ("udp", "tcp"):
            self.es.iptables("-A", "INPUT", "-i", "data", "-p", proto, "--dport", "53",
                             "-m", "comment", "--comment", TAG, "-j", "DROP")  # fmt: skip
        self._wait_linked()
        return self

    def _free_subnet(self) -> int:
        used = _run("ip", "-4", "-o", "addr", "show").stdout
        start = os.getpid() % 250
        for i in range(250):
            n = (start + i) % 250 + 1
            if f" 10.231.{n}." not in used:
                return n
        raise RuntimeError("no 10.231.<n>.0/24 free for the test hosts")

    def _wait_linked(self) -> None:
        """Both links carry packets (a veth is up a moment after `link set up`)."""
        probe = (
            "import socket, sys\nfor _ in range(100):\n try:\n"
            "  socket.create_connection((sys.argv[1], 9), 0.1)\n"
            " except ConnectionRefusedError:\n  sys.exit(0)\n"  # port 9 refused: a link
            " except OSError:\n  pass\nsys.exit(1)"
        )
        for host, address in ((self.ship, self.es.data), (self.es, self.ship.data)):
            done = host.run(sys.executable, "-c", probe, address, check=False)
            assert done.returncode == 0, f"no link from {host.name} to {address}: {done.stderr}"
        for host in (self.es, self.ship):
            done = _run(sys.executable, "-c", probe, host.control, check=False)
            assert done.returncode == 0, f"no control link to {host.name}: {done.stderr}"

    def down(self) -> None:
        """Stop what was spawned, then delete the hosts (and with them the veths)."""
        while self._spawned:
            _end(self._spawned.pop(), signal.SIGKILL)
        if self._up:
            for host in (self.es, self.ship):
                _delete_namespace(host.name)
            for link in self._root_links:  # gone with their peers; should one stay, here
                _run("ip", "link", "delete", link, check=False)
        self._up = False

    def __enter__(self) -> TestNet:
        try:
            return self.up()
        except BaseException:
            self.down()
            raise

    def __exit__(self, *exc: object) -> None:
        self.down()

    def spawn(self, host: Host, *argv: str) -> subprocess.Popen[bytes]:
        """A program on `host`, its stdout a pipe; killed at `down()` if still running."""
        proc = subprocess.Popen([*host.prefix, *argv], stdout=subprocess.PIPE)
        self._spawned.append(proc)
        return proc

    def spawn_ready(self, host: Host, *argv: str, timeout: float = 10) -> subprocess.Popen[bytes]:
        """`spawn`, then wait for the program's first line on stdout (it says it is ready)."""
        proc = self.spawn(host, *argv)
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        first = proc.stdout.readline() if ready else b""
        if not first:
            _end(proc, signal.SIGKILL)
            raise RuntimeError(f"{argv} on {host.name} did not start (exit {proc.returncode})")
        return proc

    # --- the link ------------------------------------------------------------------------

    def partition(self) -> None:
        """Drop every packet on the link, both ways, silently (no RST, no ICMP)."""
        if self._partition:
            return
        for host in (self.es, self.ship):
            rule = ["INPUT", "-i", "data", "-m", "comment", "--comment", f"{TAG} partition",
                    "-j", "DROP"]  # fmt: skip
            host.iptables("-I", *rule)
            self._partition.append((host, rule))

    def heal(self) -> None:
        """End the partition: packets flow again (TCP retransmits what it still wants)."""
        while self._partition:
            host, rule = self._partition.pop()
            host.iptables("-D", *rule)

    def netem(
        self, *, loss: float = 0.0, delay: float = 0.0, jitter: float = 0.0,
        rate: str | None = None, seed: int = 0,
    ) -> None:  # fmt: skip
        """Shape the link both ways as netem would: lose `loss` of the packets (0..1), hold
        each `delay` ± `jitter` seconds, carry at most `rate` ("1mbit"). Replaces any
        shaping before it; a partition stays."""
        self._unshape()
        for i, host in enumerate((self.es, self.ship)):
            if loss:
                rule = ["INPUT", "-i", "data", "-m", "statistic", "--mode", "random",
                        "--probability", f"{loss:g}", "-m", "comment", "--comment",
                        f"{TAG} loss", "-j", "DROP"]  # fmt: skip
                host.iptables("-A", *rule)
                self._shaping.append((host, rule))
            if rate:
                done = host.run("tc", "qdisc", "replace", "dev", "data", "root", "tbf", "rate",
                                rate, "burst", "32kb", "latency", "2s", check=False)  # fmt: skip
                if done.returncode:
                    pytest.skip(f"no tbf qdisc on this kernel: {done.stderr.strip()}")
                self._rated.append(host)
            if delay:
                self._delays.append(self.spawn_ready(
                    host, sys.executable, __file__, "delay", str(QUEUE), f"{delay:g}",
                    f"{jitter:g}", str(seed + i),
                ))  # fmt: skip
                rule = ["INPUT", "-i", "data", "-m", "comment", "--comment", f"{TAG} delay",
                        "-j", "NFQUEUE", "--queue-num", str(QUEUE), "--queue-bypass"]  # fmt: skip
                host.iptables("-A", *rule)
                self._shaping.append((host, rule))

    @property
    def delaying(self) -> list[subprocess.Popen[bytes]]:
        """The processes holding packets for the delay shaping (one per host)."""
        return list(self._delays)

    def clear(self) -> None:
        """No partition and no shaping: the link as made."""
        self.heal()
        self._unshape()

    def _unshape(self) -> None:
        while self._shaping:
            host, rule = self._shaping.pop()
            host.iptables("-D", *rule)
        while self._rated:
            self._rated.pop().run("tc", "qdisc", "del", "dev", "data", "root", check=False)
        died = [proc for proc in self._delays if proc.poll() is not None]
        for proc in self._delays:  # once their rules are gone
            _end(proc, signal.SIGTERM)
            self._spawned.remove(proc)
        self._delays.clear()
        if died:  # with --queue-bypass its packets went on undelayed: say so
            codes = ", ".join(str(proc.returncode) for proc in died)
            raise RuntimeError(f"a delaying process ended early (exit {codes}): the link "
                               "lost its delay before it was unshaped")  # fmt: skip

    def dropped(self, what: str) -> int:
        """Packets the `what` rules ("partition", "loss") dropped on both hosts so far."""
        total = 0
        for host in (self.es, self.ship):
            listed = host.iptables("-L", "INPUT", "-n", "-v", "-x").stdout
            for line in listed.splitlines():
                if f"/* {TAG} {what} */" in line:
                    total += int(line.split()[0])
        return total

    def qdisc_bytes(self) -> int:
        """Bytes the rate limiters have sent so far, both ends."""
        total = 0
        for host in self._rated:
            shown = host.run("tc", "-s", "qdisc", "show", "dev", "data").stdout
            found = re.search(r"Sent (\d+) bytes", shown)
            total += int(found.group(1)) if found else 0
        return total

    def rtt(self) -> float:
        """One round trip on the link, from the ship host: how long a connection to a
        closed port of the es host takes to be refused (the best of three)."""
        probe = (
            "import socket, sys, time\nbest = 99.0\nfor _ in range(3):\n"
            " t = time.monotonic()\n try:\n  socket.create_connection((sys.argv[1], 9), 10)\n"
            " except ConnectionRefusedError:\n  best = min(best, time.monotonic() - t)\n"
            "print(best)"
        )
        return float(self.ship.run(sys.executable, "-c", probe, self.es.data).stdout)

    # --- names -----------------------------------------------------------------------------

    def resolve(self, name: str, address: str | None) -> None:
        """On the ship host `name` resolves to `address` from now on; None: it does not
        (the lookup waits for the silent nameserver). Written in place: the bind mounts of
        running programs see it."""
        hosts = NETNS_ETC / self.ship.name / "hosts"
        entry = f"{address} {name}\n" if address else ""
        with hosts.open("r+") as fh:
            fh.truncate(0)
            fh.write("127.0.0.1 localhost\n" + entry)


@contextlib.contextmanager
def test_net(**options: int) -> Iterator[TestNet]:
    """`TestNet` for a test: skipped, saying why, where the machine cannot."""
    reason = missing()
    if reason:
        pytest.skip(reason)
    with TestNet(**options) as net:
        yield net


test_net.__test__ = False  # type: ignore[attr-defined]


def peak_rss(pid: int) -> int:
    """The process's peak resident set (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for {pid}")


# --- the delay: NFQUEUE, packets let in late -------------------------------------------------

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT, NFQNL_MSG_CONFIG = 0, 1, 2
NFQA_CFG_CMD, NFQA_CFG_PARAMS, NFQA_CFG_QUEUE_MAXLEN, NFQA_CFG_MASK, NFQA_CFG_FLAGS = 1, 2, 3, 4, 5
NFQNL_CFG_CMD_BIND = 1
NFQNL_COPY_META = 1
NFQA_CFG_F_FAIL_OPEN, NFQA_CFG_F_GSO = 1, 4
NFQA_PACKET_HDR, NFQA_VERDICT_HDR = 1, 2
NF_ACCEPT = 1
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLMSG_ERROR = 2


def _attr(kind: int, payload: bytes) -> bytes:
    head = struct.pack("=HH", 4 + len(payload), kind)
    return head + payload + b"\0" * (-len(payload) % 4)


def _message(kind: int, queue: int, attrs: bytes, flags: int = NLM_F_REQUEST) -> bytes:
    body = struct.pack("=BBH", socket.AF_UNSPEC, 0, socket.htons(queue)) + attrs
    return (
        struct.pack("=IHHII", 16 + len(body), (NFNL_SUBSYS_QUEUE << 8) | kind, flags, 0, 0) + body
    )


def _packets(data: bytes, errors: list[int] | None = None) -> Iterator[int]:
    """The packet ids of the queued packets in one netlink read. An error the kernel
    answered raises OSError, or is noted in `errors` (and the read goes on) if given."""
    at = 0
    while at + 16 <= len(data):
        length, kind, _, _, _ = struct.unpack_from("=IHHII", data, at)
        if length < 16:
            return
        if kind == NLMSG_ERROR:
            (error,) = struct.unpack_from("=i", data, at + 16)
            if error and errors is not None:
                errors.append(-error)
            elif error:
                raise OSError(-error, os.strerror(-error))
        elif kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
            attr = at + 20
            while attr + 4 <= at + length:
                size, which = struct.unpack_from("=HH", data, attr)
                if size < 4:
                    break
                if which & 0x3FFF == NFQA_PACKET_HDR:
                    yield struct.unpack_from("!I", data, attr + 4)[0]
                attr += (size + 3) & ~3
        at += (length + 3) & ~3


def delay_packets(queue: int, delay: float, jitter: float, seed: int) -> None:
    """Hold each packet of NFQUEUE `queue` (this host's) for delay ± jitter s, then accept
    it; runs until SIGTERM. Prints "ready" once bound."""
    rng = random.Random(seed)
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    sock.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)  # SO_RCVBUFFORCE: no message lost
    sock.bind((0, 0))
    flags = struct.pack("!I", NFQA_CFG_F_FAIL_OPEN | NFQA_CFG_F_GSO)
    for attrs in (
        _attr(NFQA_CFG_CMD, struct.pack("=BxH", NFQNL_CFG_CMD_BIND, 0)),
        _attr(NFQA_CFG_PARAMS, struct.pack("!IB", 0, NFQNL_COPY_META))
        + _attr(NFQA_CFG_QUEUE_MAXLEN, struct.pack("!I", 65536))
        + _attr(NFQA_CFG_FLAGS, flags)
        + _attr(NFQA_CFG_MASK, flags),
    ):
        sock.send(_message(NFQNL_MSG_CONFIG, queue, attrs, NLM_F_REQUEST | NLM_F_ACK))
        list(_packets(sock.recv(65536)))  # the ack; an error raises
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("ready", flush=True)
    due: list[tuple[float, int]] = []
    while True:
        now = time.monotonic()
        while due and due[0][0] <= now:
            _, packet = heapq.heappop(due)
            verdict = _attr(NFQA_VERDICT_HDR, struct.pack("!II", NF_ACCEPT, packet))
            sock.send(_message(NFQNL_MSG_VERDICT, queue, verdict))
        wait = max(0.0, due[0][0] - now) if due else 1.0
        readable, _, _ = select.select([sock], [], [], wait)
        if readable:
            try:
                data = sock.recv(1 << 20)
            except OSError:  # ENOBUFS: the kernel says it lost a message; carry on
                continue
            arrived = time.monotonic()
            errors: list[int] = []  # a verdict refused (its packet gone): the rest held
            for packet in _packets(data, errors):
                hold = max(0.0, delay + rng.uniform(-jitter, jitter))
                heapq.heappush(due, (arrived + hold, packet))
            for error in errors:
                print(f"a verdict refused: {os.strerror(error)}", file=sys.stderr, flush=True)


def _main(argv: Sequence[str]) -> None:
    if argv[:1] == ["delay"]:
        queue, delay, jitter, seed = argv[1:5]
        delay_packets(int(queue), float(delay), float(jitter), int(seed))
    else:
        raise SystemExit(f"usage: {sys.argv[0]} delay QUEUE DELAY JITTER SEED")


if __name__ == "__main__":
    _main(sys.argv[1:])
