"""syslog-ng from Debian's packages, unpacked into a cache, and its benchmark configuration.

Not installed system-wide: syslog-ng-core, syslog-ng-mod-http, syslog-ng-scl and any
library they need that this machine lacks are fetched with `apt-get download` and unpacked
with `dpkg -x` into a cache directory, then run from there with LD_LIBRARY_PATH and
--module-path. A system-wide syslog-ng with the elasticsearch-http() SCL is used as is.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from _common import HOST, sh

CACHE_DIR = Path.home() / ".cache" / "pod-agents-bench" / "syslog-ng"
PACKAGES = ("syslog-ng-core", "syslog-ng-mod-http", "syslog-ng-scl")
MODULES = ("affile", "http", "json-plugin")  # what the config loads
TIME_REOPEN_S = 10


class SyslogNg:
    def __init__(self, root: Path, system: bool = False) -> None:
        self.root = root
        self.system = system
        prefix = Path("/") if system else root
        self.binary = str(prefix / "usr/sbin/syslog-ng")
        mods = sorted(glob.glob(str(prefix / "usr/lib/syslog-ng/3.*")))
        self.module_dir = mods[-1] if mods else ""
        self.scl = str(prefix / "usr/share/syslog-ng/include/scl/elasticsearch/elastic-http.conf")
        libs = [str(root / "usr/lib/syslog-ng")]
        libs += glob.glob(str(root / "usr/lib/*-linux-gnu")) + glob.glob(
            str(root / "lib/*-linux-gnu")
        )
        self.lib_path = "" if system else ":".join(libs)
        self.version = ""
        self.config_version = ""
        self.compression = False
        self.compression_note = ""

    def env(self, base: dict[str, str]) -> dict[str, str]:
        env = dict(base)
        if self.lib_path:
            env["LD_LIBRARY_PATH"] = ":".join(
                p for p in (self.lib_path, env.get("LD_LIBRARY_PATH")) if p
            )
        return env

    def base_argv(self) -> list[str]:
        return [self.binary, f"--module-path={self.module_dir}"]

    def run(self, args: list[str], timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.base_argv() + args,
            env=self.env(dict(os.environ)),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def config(self, *, paths: list[str], port: int, compress: bool, index: str) -> str:
        comp = 'compression("gzip")' if compress else ""
        template = (
            "$(format-json --scope none @timestamp=${ISODATE} message=${MSG} "
            "log.file.path=${FILE_NAME} host.name=${HOST} agent.type=syslog-ng "
            f"agent.version={self.version} agent.name=${{HOST}} ecs.version=8.11.0)"
        )
        files = "\n".join(
            f'  file("{p}" follow-freq(0.1) flags(no-parse) log-iw-size(20000) '
            "log-fetch-limit(1000));"
            for p in paths
        )
        return f"""@version: {self.config_version}
@include "{self.scl}"
options {{ stats-freq(0); frac-digits(3); use-dns(no); dns-cache(no); use-fqdn(no);
          keep-hostname(yes); chain-hostnames(no); }};
source s_app {{
{files}
}};
destination d_es {{
  elasticsearch-http(
    url("http://{HOST}:{port}/_bulk") index("{index}") type("")
    workers(4) batch-lines(2000) batch-bytes(5MiB) timeout(30)
    log-fifo-size(20000) time-reopen({TIME_REOPEN_S}) {comp}
    template("{template}")
  );
}};
log {{ source(s_app); destination(d_es); flags(flow-control); }};
"""

    def argv(self, conf: str, state_dir: str) -> list[str]:
        return [
            *self.base_argv(),
            "-F",
            "-e",
            "--no-caps",
            "-f",
            conf,
            f"--persist-file={state_dir}/syslog-ng.persist",
            f"--pidfile={state_dir}/syslog-ng.pid",
            f"--control={state_dir}/syslog-ng.ctl",
        ]


def _missing_libs(sng: SyslogNg) -> list[str]:
    targets = [sng.binary] + [os.path.join(sng.module_dir, f"lib{m}.so") for m in MODULES]
    missing: set[str] = set()
    env = sng.env(dict(os.environ))
    for target in targets:
        if not os.path.exists(target):
            missing.add(f"{target} (file)")
            continue
        out = subprocess.run(["ldd", target], env=env, capture_output=True, text=True, check=False)
        missing.update(line.split()[0] for line in out.stdout.splitlines() if "not found" in line)
    return sorted(missing)


def _not_installed_deps(packages: tuple[str, ...]) -> list[str]:
    code, out = sh(["apt-cache", "depends", "--no-recommends", "--no-suggests", *packages])
    if code != 0:
        return []
    names = set()
    for line in out.splitlines():
        line = line.strip().lstrip("|")
        if line.startswith(("Depends:", "PreDepends:")):
            name = line.split(":", 1)[1].strip()
            if not name.startswith("<") and name not in PACKAGES:
                names.add(name)
    wanted = []
    for name in sorted(names):
        code, status = sh(["dpkg-query", "-W", "-f=${db:Status-Status}", name], timeout=30)
        if code != 0 or status.strip() != "installed":
            wanted.append(name)
    return wanted


def _fetch(packages: list[str], debs: Path, root: Path, log: list[str]) -> str | None:
    cmd = ["apt-get", "download", *packages]
    log.append(f"(cd {debs} && {' '.join(cmd)})")
    code, out = sh(cmd, cwd=str(debs))
    if code != 0:
        tail = " | ".join(out.splitlines()[-3:])
        return f"`{' '.join(cmd)}` failed ({code}): {tail} (try `apt-get update` first)"
    for name in packages:
        found = sorted(debs.glob(f"{name}_*.deb"))
        if not found:
            return f"apt-get download gave no .deb for {name}"
        log.append(f"dpkg -x {found[-1].name} {root}")
        code, out = sh(["dpkg", "-x", str(found[-1]), str(root)])
        if code != 0:
            return f"dpkg -x {found[-1].name} failed: {out[-300:]}"
    return None


def _finish_setup(sng: SyslogNg, log: list[str]) -> str | None:
    """Version, config version, a syntax check, and whether compression() exists."""
    try:
        out = sng.run(["--version"])
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{sng.binary} --version failed: {exc}"
    match = re.search(r"syslog-ng \d+ \((\d+)\.(\d+)\.(\d+)\)", out.stdout)
    if out.returncode != 0 or not match:
        return (
            f"{sng.binary} --version failed ({out.returncode}): {(out.stdout + out.stderr)[-300:]}"
        )
    sng.version = ".".join(match.groups())
    sng.config_version = f"{match.group(1)}.{match.group(2)}"
    if not os.path.exists(sng.scl):
        return f"the elasticsearch-http() SCL is missing: {sng.scl}"
    with tempfile.TemporaryDirectory(prefix="sng-check-") as tmp:
        for compress in (False, True):
            conf = os.path.join(tmp, "check.conf")
            with open(conf, "w") as fh:
                fh.write(
                    sng.config(
                        paths=[os.path.join(tmp, "x.log")], port=9, compress=compress, index="check"
                    )
                )
            out = sng.run(["-s", "-f", conf])
            text = " ".join((out.stdout + out.stderr).split())
            if not compress and out.returncode != 0:
                return f"syslog-ng refuses the benchmark's configuration: {text[:400]}"
            if compress:
                sng.compression = out.returncode == 0
                if not sng.compression:
                    where = re.search(r"syntax error[^\n]*?compression", text)
                    sng.compression_note = (
                        f"syslog-ng {sng.version}'s http() has no compression() option "
                        f'(`syslog-ng -s` on a config with compression("gzip"): '
                        f"{'syntax error at compression' if where else text[:160]})"
                    )
    log.append(f"syslog-ng {sng.version}: config syntax ok; compression(): "
               f"{'yes' if sng.compression else 'no'}")  # fmt: skip
    return None


def setup_syslog_ng(cache: Path, *, download: bool) -> tuple[SyslogNg | None, str, list[str]]:
    """→ (syslog-ng, '', steps) or (None, why not, steps)."""
    log: list[str] = []
    system = SyslogNg(Path("/"), system=True)
    if (
        os.path.exists(system.binary)
        and os.path.exists(system.scl)
        and not _missing_libs(system)
        and _finish_setup(system, log) is None
    ):
        log.insert(0, f"using the system's {system.binary}")
        return system, "", log
    root = cache / "root"
    sng = SyslogNg(root)
    if not (os.path.exists(sng.binary) and os.path.exists(cache / "complete")):
        if not download:
            return None, f"not in {cache} and --no-syslog-ng-download given", log
        if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
            return None, "no apt-get/dpkg here to fetch Debian's syslog-ng packages", log
        debs = cache / "debs"
        shutil.rmtree(cache, ignore_errors=True)
        debs.mkdir(parents=True)
        root.mkdir()
        why = _fetch(list(PACKAGES), debs, root, log)
        if why:
            return None, why, log
        sng = SyslogNg(root)
        missing = _missing_libs(sng)
        if missing:
            log.append(f"ldd: missing {', '.join(missing)}")
            deps = _not_installed_deps(PACKAGES)
            if deps:
                why = _fetch(deps, debs, root, log)
                if why:
                    return None, why, log
            sng = SyslogNg(root)
            missing = _missing_libs(sng)
            if missing:
                return None, f"libraries still missing after unpacking {deps}: {missing}", log
        (cache / "complete").write_text("ok\n")
    else:
        log.append(f"cached in {cache} (delete it to fetch again)")
    why = _finish_setup(sng, log)
    if why:
        return None, why, log
    return sng, "", log
