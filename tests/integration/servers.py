"""Private instances of real servers for the integration tests.

Every server here is started from its Debian package's binaries, in a fresh temporary
directory, on a free port bound to 127.0.0.1 -- never the system's own service, never a
fixed port -- and stopped at teardown together with everything it spawned. A missing
binary skips the tests that need it, naming the Debian package to install
(scripts/install-test-deps.sh installs them all).

A server object is *prepared* when built (data directory initialised, port chosen) and
only runs after `start()`, so a test can start waitfor first and the server later.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from tests.helpers import free_port

HOST = "127.0.0.1"
IS_ROOT = os.geteuid() == 0


def skip_missing(what: str, package: str) -> NoReturn:
    pytest.skip(
        f"{what} not found: install the Debian package {package} "
        "(scripts/install-test-deps.sh does)"
    )


def _which(name: str, *patterns: str) -> str | None:
    """`name` on PATH (sbin included: the daemons live there), else the first glob hit."""
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    found = shutil.which(name, path=path)
    if found:
        return found
    hits = sorted((hit for pattern in patterns for hit in glob.glob(pattern)), key=_version_key)
    return hits[-1] if hits else None


def _version_key(path: str) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", path)]


@contextlib.contextmanager
def private_dir(prefix: str, owner: str | None = None) -> Iterator[Path]:
    """A fresh directory under the system temp dir, removed afterwards.

    Not pytest's tmp_path: that lives under a 0700 directory of ours, which a server
    running as another user (postgres) could not enter.
    """
    path = Path(tempfile.mkdtemp(prefix=f"waitfor-test-{prefix}-"))
    try:
        if owner is not None:
            entry = pwd.getpwnam(owner)
            os.chown(path, entry.pw_uid, entry.pw_gid)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def tcp_accepts(port: int, host: str = HOST) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


class ServerProcess:
    """One private server process and everything it spawns (its own session)."""

    name = "server"
    stop_signal = signal.SIGTERM
    stop_timeout = 20.0
    start_timeout = 60.0

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.port = port if port is not None else free_port(HOST)
        self.log_path = workdir / f"{self.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    # What subclasses provide.
    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str] | None:
        return None

    def is_ready(self) -> bool:
        return tcp_accepts(self.port)

    # The lifecycle.
    def start(self, *, wait: bool = True) -> None:
        assert self.proc is None, f"{self.name} already started"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env=self.environment(),
                start_new_session=True,  # its own process group: stop() takes it all
            )
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float | None = None) -> None:
        assert self.proc is not None, f"{self.name} not started"
        timeout = timeout or self.start_timeout
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode} while starting:\n"
                    + self.log_tail()
                )
            if self.is_ready():
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not ready after {timeout}s:\n{self.log_tail()}")

    def stop(self) -> None:
        """Ask the server to stop, then make sure nothing of its process group survives."""
        proc, self.proc = self.proc, None
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, self.stop_signal)
        deadline = time.monotonic() + self.stop_timeout
        while not _has_exited(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        # The leader is a zombie now (or stuck): its pid, hence the group id, is still
        # ours, so this cannot hit anyone else's processes.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def __repr__(self) -> str:
        return f"<{self.name} on {HOST}:{self.port}>"


def _has_exited(pid: int) -> bool:
    """True once `pid` (our child) has exited; it is not reaped, so its pid stays ours."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _run_setup(argv: list[str], log: Path, what: str, timeout: float = 120) -> None:
    with open(log, "ab") as out:
        result = subprocess.run(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            timeout=timeout, check=False,
        )  # fmt: skip
    if result.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise RuntimeError(f"{what} failed with {result.returncode}:\n{tail}")


# --- PostgreSQL -------------------------------------------------------------------------


def postgres_bindir() -> Path:
    """Debian's versioned directory (newest), else wherever `postgres` on PATH really is."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=_version_key)
    postgres = found[-1] if found else shutil.which("postgres")
    if postgres is None:
        skip_missing("PostgreSQL (initdb, postgres)", "postgresql")
    return Path(postgres).resolve().parent


def as_postgres_user() -> list[str]:
    """PostgreSQL refuses to run as root: as root, drop to the `postgres` system user."""
    if not IS_ROOT:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root needs the `postgres` user (Debian package postgresql)")
    setpriv = _which("setpriv")
    if setpriv:
        return [setpriv, "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]
    runuser = _which("runuser")
    if runuser:
        return [runuser, "-u", "postgres", "--"]
    skip_missing("setpriv or runuser", "util-linux")


POSTGRES_REJECTED_USER = "turned_away"
# Roles that log in with a password, one per method the server can ask for:
# user → (pg_hba.conf method, how the password is stored, the password).
POSTGRES_LOGINS = {
    "clear_user": ("password", "scram-sha-256", "clear-pw-4Tq"),
    "md5_user": ("md5", "md5", "md5-pw-8Zr"),
    "scram_user": ("scram-sha-256", "scram-sha-256", "scram-pw-2Wx"),
}


class Postgres(ServerProcess):
    name = "postgres"
    stop_signal = signal.SIGINT  # fast shutdown: do not wait for clients

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.bindir = postgres_bindir()
        self.prefix = as_postgres_user()
        self.datadir = workdir / "data"
        _run_setup(
            [
                *self.prefix, str(self.bindir / "initdb"), "-D", str(self.datadir),
                "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync",
            ],
            workdir / "initdb.log",
            "initdb",
        )  # fmt: skip
        # One role that pg_hba.conf turns away before authentication even starts.
        hba = self.datadir / "pg_hba.conf"
        logins = "".join(f"host all {u} all {m}\n" for u, (m, _, _) in POSTGRES_LOGINS.items())
        hba.write_text(f"host all {POSTGRES_REJECTED_USER} all reject\n" + logins + hba.read_text())

    def sql(self, statement: str) -> str:
        """Run SQL as the superuser (psql over TCP, trust): → its output."""
        argv = [str(self.bindir / "psql"), "-h", HOST, "-p", str(self.port), "-U", "postgres",
                "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-qAt", "-c", statement]  # fmt: skip
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def create_logins(self) -> None:
        for user, (_, stored, password) in POSTGRES_LOGINS.items():
            self.sql(f"SET password_encryption = '{stored}'; "
                     f"CREATE ROLE {user} LOGIN PASSWORD '{password}'")  # fmt: skip

    def command(self) -> list[str]:
        return [
            *self.prefix, str(self.bindir / "postgres"), "-D", str(self.datadir),
            "-p", str(self.port), "-c", f"listen_addresses={HOST}",
            "-c", f"unix_socket_directories={self.workdir}", "-c", "fsync=off",
        ]  # fmt: skip

    def is_ready(self) -> bool:
        # A listening port is not enough: while starting, postgres answers 57P03.
        isready = self.bindir / "pg_isready"
        if not isready.exists():
            return tcp_accepts(self.port)
        argv = [str(isready), "-q", "-h", HOST, "-p", str(self.port), "-t", "1"]
        return subprocess.run(argv, check=False, timeout=10).returncode == 0

    def url(self, user: str = "postgres", database: str = "postgres") -> str:
        return f"postgres://{user}@{HOST}:{self.port}/{database}"


@contextlib.contextmanager
def _postgres_instances() -> Iterator[Callable[[], Postgres]]:
    servers: list[Postgres] = []
    with contextlib.ExitStack() as stack:

        def make() -> Postgres:
            owner = "postgres" if IS_ROOT else None
            workdir = stack.enter_context(private_dir("postgres", owner=owner))
            server = Postgres(workdir)
            servers.append(server)
            return server

        try:
            yield make
        finally:
            for server in servers:
                server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Postgres]:
    """A running PostgreSQL (trust authentication, superuser `postgres`; the roles of
    POSTGRES_LOGINS log in with their passwords)."""
    with _postgres_instances() as make:
        server = make()
        server.start()
        server.create_logins()
        yield server


@pytest.fixture
def postgres_factory() -> Iterator[Callable[[], Postgres]]:
    """Prepared, not yet started PostgreSQL instances; call `.start()` on them."""
    with _postgres_instances() as make:
        yield make


# --- MariaDB ----------------------------------------------------------------------------

MARIADB_MAX_CONNECT_ERRORS = 10
# An account whose authentication plugin is not mysql_native_password: logging in as it,
# the server asks the client to switch plugins in the middle of the handshake.
MARIADB_ED25519_USER = "ed"
MARIADB_ED25519_PASSWORD = "ed-pw-9f3k"
# An account with a password by mysql_native_password (MariaDB's default plugin).
MARIADB_APP_USER = "app"
MARIADB_APP_PASSWORD = "app-pw-3Kd"


def mariadb_plugin_dir(mariadbd: str) -> Path | None:
    result = subprocess.run(
        [mariadbd, "--no-defaults", "--verbose", "--help"],
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    found = re.search(r"^plugin-dir\s+(\S+)", result.stdout, re.MULTILINE)
    return Path(found.group(1)) if found else None


class MariaDB(ServerProcess):
    name = "mariadb"
    start_timeout = 90.0

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        mariadbd = _which("mariadbd", "/usr/sbin/mysqld")
        install_db = _which("mariadb-install-db") or _which("mysql_install_db")
        if mariadbd is None or install_db is None:
            skip_missing("MariaDB (mariadbd, mariadb-install-db)", "mariadb-server")
        self.mariadbd = mariadbd
        self.datadir = workdir / "data"
        self.socket = workdir / "mysqld.sock"
        user = ["--user=root"] if IS_ROOT else []
        _run_setup(
            [
                install_db, "--no-defaults", f"--datadir={self.datadir}", *user,
                "--auth-root-authentication-method=normal", "--skip-test-db",
            ],
            workdir / "install-db.log",
            "mariadb-install-db",
        )  # fmt: skip
        plugin_dir = mariadb_plugin_dir(mariadbd)
        self.has_ed25519 = bool(plugin_dir and (plugin_dir / "auth_ed25519.so").exists())
        sql = [
            "CREATE USER IF NOT EXISTS 'root'@'%';",
            "GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;",
            f"CREATE USER IF NOT EXISTS '{MARIADB_APP_USER}'@'%' "
            f"IDENTIFIED BY '{MARIADB_APP_PASSWORD}';",
            f"GRANT ALL PRIVILEGES ON *.* TO '{MARIADB_APP_USER}'@'%';",
        ]
        if self.has_ed25519:
            sql.append(
                f"CREATE USER IF NOT EXISTS '{MARIADB_ED25519_USER}'@'%' IDENTIFIED VIA "
                f"ed25519 USING PASSWORD('{MARIADB_ED25519_PASSWORD}');"
            )
        self.init_file = workdir / "init.sql"
        self.init_file.write_text("\n".join(sql) + "\n")

    def command(self) -> list[str]:
        argv = [
            self.mariadbd, "--no-defaults", f"--datadir={self.datadir}",
            f"--port={self.port}", f"--socket={self.socket}", f"--bind-address={HOST}",
            f"--pid-file={self.workdir / 'mariadbd.pid'}", f"--init-file={self.init_file}",
            # Block a host after this many abandoned handshakes. The host cache that does
            # the counting needs name resolution, so no --skip-name-resolve; and it never
            # counts 127.0.0.1 itself, hence SourceRelay.
            f"--max-connect-errors={MARIADB_MAX_CONNECT_ERRORS}",
            "--innodb-buffer-pool-size=32M", "--innodb-flush-log-at-trx-commit=0",
            "--skip-log-bin",
        ]  # fmt: skip
        if self.has_ed25519:
            argv.append("--plugin-load-add=auth_ed25519")
        if IS_ROOT:
            argv.append("--user=root")
        return argv

    def is_ready(self) -> bool:
        # The greeting, not just the port (a connection from 127.0.0.1 is never counted
        # against max_connect_errors, so hanging up here is harmless).
        try:
            with socket.create_connection((HOST, self.port), timeout=1) as conn:
                return conn.recv(5)[4:5] == b"\x0a"
        except OSError:
            return False

    def url(self, user: str | None = None, port: int | None = None) -> str:
        who = f"{user}@" if user else ""
        return f"mariadb://{who}{HOST}:{port or self.port}"

    def sql(self, statement: str) -> str:
        """Run SQL as root over the server's socket (the client from mariadb-client)."""
        client = mariadb_client()
        if client is None:
            skip_missing("the mariadb client", "mariadb-client")
        argv = [client, "--no-defaults", f"--socket={self.socket}", "-uroot", "-N", "-e",
                statement]  # fmt: skip
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout


@contextlib.contextmanager
def _mariadb_instances() -> Iterator[Callable[[], MariaDB]]:
    servers: list[MariaDB] = []
    with contextlib.ExitStack() as stack:

        def make() -> MariaDB:
            server = MariaDB(stack.enter_context(private_dir("mariadb")))
            servers.append(server)
            return server

        try:
            yield make
        finally:
            for server in servers:
                server.stop()


@pytest.fixture(scope="session")
def mariadb_server() -> Iterator[MariaDB]:
    """A running MariaDB: `root` without password from anywhere, max_connect_errors=10."""
    with _mariadb_instances() as make:
        server = make()
        server.start()
        yield server


@pytest.fixture
def mariadb_factory() -> Iterator[Callable[[], MariaDB]]:
    with _mariadb_instances() as make:
        yield make


def mariadb_client() -> str | None:
    return _which("mariadb") or _which("mysql")


# --- Redis ------------------------------------------------------------------------------

REDIS_PASSWORD = "s3cret-Xq7"
REDIS_ACL_USER, REDIS_ACL_PASSWORD = "app", "app-pw-Lm4"


class Redis(ServerProcess):
    name = "redis"

    def __init__(
        self, workdir: Path, *, password: str | None = None, tls: dict[str, Path] | None = None
    ) -> None:
        super().__init__(workdir)
        binary = _which("redis-server")
        if binary is None:
            skip_missing("redis-server", "redis-server")
        self.binary = binary
        self.password = password
        self.tls = tls  # {"cert", "key", "ca"} files: serve TLS only, on self.port

    def command(self) -> list[str]:
        argv = [
            self.binary, "--port", str(self.port), "--bind", HOST, "--save", "",
            "--appendonly", "no", "--dir", str(self.workdir), "--daemonize", "no",
            "--logfile", "",
        ]  # fmt: skip
        if self.tls is not None:
            argv[1:3] = ["--port", "0", "--tls-port", str(self.port)]
            argv += ["--tls-cert-file", str(self.tls["cert"]), "--tls-key-file",
                     str(self.tls["key"]), "--tls-ca-cert-file", str(self.tls["ca"]),
                     "--tls-auth-clients", "no"]  # fmt: skip
        if self.password is not None:
            argv += ["--requirepass", self.password]
            argv += ["--user", REDIS_ACL_USER, "on", f">{REDIS_ACL_PASSWORD}", "~*", "+@all"]
        return argv

    def is_ready(self) -> bool:
        try:
            with contextlib.ExitStack() as stack:
                conn = stack.enter_context(socket.create_connection((HOST, self.port), timeout=1))
                if self.tls is not None:
                    tls = ssl.create_default_context(cafile=str(self.tls["ca"]))
                    conn = stack.enter_context(tls.wrap_socket(conn, server_hostname="localhost"))
                conn.sendall(b"PING\r\n")
                answer = conn.recv(64)
        except OSError:
            return False
        # PONG, or NOAUTH when a password is set: either way it is serving.
        return answer.startswith((b"+PONG", b"-NOAUTH"))

    def cli(self, *args: str) -> str:
        """A command through redis-cli (plain servers only): → its output."""
        client = _which("redis-cli")
        if client is None:
            skip_missing("redis-cli", "redis-tools")
        auth = ["--no-auth-warning", "-a", self.password] if self.password else []
        argv = [client, "-h", HOST, "-p", str(self.port), *auth, *args]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout


@contextlib.contextmanager
def _redis_instances() -> Iterator[Callable[..., Redis]]:
    servers: list[Redis] = []
    with contextlib.ExitStack() as stack:

        def make(password: str | None = None, tls: dict[str, Path] | None = None) -> Redis:
            workdir = stack.enter_context(private_dir("redis"))
            server = Redis(workdir, password=password, tls=tls)
            servers.append(server)
            return server

        try:
            yield make
        finally:
            for server in servers:
                server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[Redis]:
    with _redis_instances() as make:
        server = make()
        server.start()
        yield server


@pytest.fixture(scope="session")
def redis_auth_server() -> Iterator[Redis]:
    """Redis with `requirepass REDIS_PASSWORD` and an ACL user REDIS_ACL_USER."""
    with _redis_instances() as make:
        server = make(password=REDIS_PASSWORD)
        server.start()
        yield server


@pytest.fixture
def redis_factory() -> Iterator[Callable[..., Redis]]:
    with _redis_instances() as make:
        yield make


# --- RabbitMQ ---------------------------------------------------------------------------


class Epmd(ServerProcess):
    """A private Erlang port mapper, so the broker neither uses nor leaves a system one."""

    name = "epmd"

    def __init__(self, workdir: Path, binary: str) -> None:
        super().__init__(workdir)
        self.binary = binary

    def command(self) -> list[str]:
        return [self.binary, "-port", str(self.port), "-address", HOST]


def rabbitmq_script() -> str:
    """The upstream start script, not Debian's /usr/sbin wrapper: as root, that one re-runs
    everything as the `rabbitmq` user with its own HOME and the system's directories."""
    for pattern in (
        "/usr/lib/rabbitmq/bin/rabbitmq-server",
        "/usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin/rabbitmq-server",
    ):
        hits = sorted(glob.glob(pattern), key=_version_key)
        if hits:
            return hits[-1]
    found = _which("rabbitmq-server")
    if found is None:
        skip_missing("rabbitmq-server", "rabbitmq-server")
    return found


class RabbitMQ(ServerProcess):
    name = "rabbitmq"
    start_timeout = 120.0
    stop_timeout = 30.0

    def __init__(self, workdir: Path, epmd_port: int) -> None:
        super().__init__(workdir)
        self.script = rabbitmq_script()
        self.epmd_port = epmd_port
        self.dist_port = free_port(HOST)
        for sub in ("home", "mnesia", "log"):
            (workdir / sub).mkdir()
        (workdir / "enabled_plugins").write_text("[].\n")
        (workdir / "rabbitmq-env.conf").write_text("")
        self.nodename = f"waitfor-test-{self.port}@localhost"

    def command(self) -> list[str]:
        return [self.script]

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        env.update(
            HOME=str(self.workdir / "home"),  # the Erlang cookie goes here
            RABBITMQ_CONF_ENV_FILE=str(self.workdir / "rabbitmq-env.conf"),
            RABBITMQ_CONFIG_FILE=str(self.workdir / "rabbitmq"),
            RABBITMQ_ADVANCED_CONFIG_FILE=str(self.workdir / "advanced.config"),
            RABBITMQ_NODENAME=self.nodename,
            RABBITMQ_NODE_IP_ADDRESS=HOST,
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(self.workdir / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.workdir / "log"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.workdir / "enabled_plugins"),
            RABBITMQ_PID_FILE=str(self.workdir / "rabbitmq.pid"),
            ERL_EPMD_PORT=str(self.epmd_port),
            ERL_EPMD_ADDRESS=HOST,
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=(
                "-start_epmd false -kernel inet_dist_use_interface {127,0,0,1}"
            ),
        )
        return env

    def is_ready(self) -> bool:
        # The AMQP listener opens last in the boot; check that it answers the header.
        try:
            with socket.create_connection((HOST, self.port), timeout=1) as conn:
                conn.settimeout(2)
                conn.sendall(b"AMQP\x00\x00\x09\x01")
                return conn.recv(1) == b"\x01"
        except OSError:
            return False

    def url(self) -> str:
        return f"amqp://{HOST}:{self.port}"


@pytest.fixture(scope="session")
def rabbitmq_server() -> Iterator[RabbitMQ]:
    """A running RabbitMQ broker (slow to start: once per session)."""
    epmd_binary = _which("epmd", "/usr/lib/erlang/erts-*/bin/epmd")
    if epmd_binary is None:
        skip_missing("epmd (Erlang)", "erlang-base")
    with private_dir("rabbitmq") as workdir:
        epmd = Epmd(workdir, epmd_binary)
        server = RabbitMQ(workdir, epmd.port)
        try:
            epmd.start()
            server.start()
            yield server
        finally:
            server.stop()
            epmd.stop()


# --- A relay that connects from another loopback address --------------------------------


class SourceRelay:
    """Forwards connections on HOST:port to HOST:upstream, connecting *from* `source`.

    MariaDB never counts connection errors against 127.0.0.1 (nor ::1), so a probe
    from there cannot get blocked however it behaves. Through this relay the server sees
    the client as `source` (another 127.x address, still loopback-only). The relay is
    faithful: when either side closes, it closes the other, so a client that abandons a
    handshake abandons it at the server too.
    """

    def __init__(self, upstream_port: int, source: str) -> None:
        self.upstream_port = upstream_port
        self.source = source
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        try:
            probe = socket.socket()
            with probe:
                probe.bind((source, 0))
        except OSError as exc:
            pytest.skip(f"cannot use {source} as a source address here: {exc}")
        self._listener = socket.create_server((HOST, 0))
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept, name="relay", daemon=True)

    def __enter__(self) -> SourceRelay:
        self._acceptor.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._acceptor.join(5)
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(5)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(client,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.socket()
        with client, upstream:
            with self._lock:
                self._sockets |= {client, upstream}
            try:
                client.settimeout(None)
                upstream.bind((self.source, 0))
                upstream.connect((HOST, self.upstream_port))
            except OSError:
                return
            back = threading.Thread(target=self._pump, args=(upstream, client), daemon=True)
            back.start()
            self._pump(client, upstream)
            back.join()
            with self._lock:
                self._sockets -= {client, upstream}

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            with contextlib.suppress(OSError):
                while data := src.recv(65536):
                    dst.sendall(data)
        finally:
            # One side is done: the connection is over for both (no half-open relay).
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
