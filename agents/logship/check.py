"""`logship check [options]`: what `filebeat test output` and `vector validate` do for
their users, before anything is shipped.

It validates the configuration, resolves the globs (files found, unreadable ones), probes
the data dir, then for every --es URL: connects (TLS included), asks `GET /` for the
product (Elasticsearch or OpenSearch) and version, authenticates, and asks Elasticsearch
whether these credentials may create documents in the target index or data stream
(`_security/user/_has_privileges`: a question, nothing is written; OpenSearch has no such
API, which the report says). It installs nothing. A short report on stdout, or JSON
with `--json`; the exit code says what failed first, by kind (see EXIT).
"""

from __future__ import annotations

import asyncio
import glob as globbing
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agents._options import OptionError
from agents.logship.discovery import path_problems

# Distinct exit codes, documented in the README; the first failure found decides.
EXIT = {"ok": 0, "config": 2, "unreachable": 3, "credentials": 4, "not-elasticsearch": 5,
        "privileges": 6}  # fmt: skip


@dataclass
class Report:
    checks: list[dict[str, Any]] = field(default_factory=list)
    failure: str | None = None  # the kind of the first failure

    def add(self, what: str, ok: bool, detail: str, kind: str = "ok", **extra: Any) -> None:
        self.checks.append({"check": what, "ok": ok, "detail": detail, **extra})
        if not ok and self.failure is None:
            self.failure = kind

    @property
    def code(self) -> int:
        return EXIT[self.failure or "ok"]


def files_report(report: Report, globs: Sequence[str]) -> None:
    said = {glob: (problem, hint) for glob, problem, hint in path_problems(globs)}
    for pattern in globs:
        problem, hint = said.get(pattern, (None, None))
        if hint is not None:  # a directory, not files
            report.add("files", True, f"{pattern} {problem}: did you mean {hint}?",
                       path=pattern, found=0)  # fmt: skip
            continue
        found = [p for p in globbing.glob(pattern, recursive=True) if os.path.isfile(p)]
        unreadable = [p for p in found if not os.access(p, os.R_OK)]
        detail = f"{len(found)} files" + (f", {len(unreadable)} unreadable" if unreadable else "")
        report.add("files", not unreadable, detail, "config", path=pattern, found=len(found),
                   unreadable=unreadable[:10])  # fmt: skip


def data_dir_report(report: Report, data_dir: Any) -> None:
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        probe = data_dir / f".check-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        report.add("data dir", False, f"cannot write to {data_dir}: {exc.strerror}", "config")
    else:
        report.add("data dir", True, f"{data_dir} is writable")


async def cluster_report(report: Report, config: Any) -> None:
    from agents.logship.output.credentials import Credentials
    from agents.logship.output.elasticsearch import (
        ElasticsearchSender,
        SendFailed,
        client_options,
    )

    credentials = Credentials(config)
    options = client_options(config, credentials)
    index = (f"logs-{config.data_stream.replace('.', '-')}" if config.data_stream
             else time.strftime(config.index, time.gmtime()))  # fmt: skip
    for url in config.es:
        from agents.logship.config import redact_url

        shown = redact_url(url)
        sender = ElasticsearchSender({**options, "hosts": [url]}, credentials)
        try:
            try:
                answer = await sender.meet()  # and the sender learns how to talk to it
            except SendFailed as exc:
                report.add("connect", False, str(exc), "unreachable", url=shown)
                continue
            assert answer is not None  # a new sender has met nobody
            tls = (
                "TLS verified"
                if url.startswith("https://") and not config.insecure
                else ("TLS NOT verified (--insecure)" if url.startswith("https://") else "no TLS")
            )
            if answer.status == 401:
                report.add("authenticate", False, f"credentials refused ({_reason(answer)}) "
                           f"for {credentials.describe()}", "credentials", url=shown)  # fmt: skip
                continue
            if answer.status == 403:
                assumed = ("as --flavor " + config.flavor if config.flavor != "auto" else
                           "so plain JSON, which every supported server takes")  # fmt: skip
                report.add("connect", True, f"answered; GET / not allowed (403): which server "
                           f"this is stays unknown, {assumed}; {tls}", url=shown)  # fmt: skip
            else:
                cluster = sender.cluster  # what meet() made of that answer
                if cluster is None:
                    report.add("connect", False, f"GET / answered {answer.status} "
                               f"{_reason(answer)}", "unreachable", url=shown)  # fmt: skip
                    continue
                if cluster.problem:
                    report.add("product", False, cluster.problem, "not-elasticsearch", url=shown)
                    continue
                report.add("connect", True, f"{cluster.product} {cluster.version} (cluster "
                           f"{cluster.name}), {tls}", url=shown, product=cluster.product,
                           flavor=cluster.flavor, version=cluster.version)  # fmt: skip
                if config.flavor != "auto" and cluster.dialect is not sender.dialect:
                    report.add("flavor", False, f"--flavor {config.flavor}, but the server "
                               f"is {cluster.product} {cluster.version}: leave --flavor at "
                               "auto, or name this server", "config", url=shown)  # fmt: skip
                    continue
            await privileges_report(report, sender, index, shown, credentials.describe())
        finally:
            await sender.close()


async def privileges_report(report: Report, sender: Any, index: str, shown: str,
                            who: str) -> None:  # fmt: skip
    from agents.logship.output.elasticsearch import SendFailed

    if not sender.dialect.has_privileges_api:
        report.add("privileges", True, f"not asked: {sender.dialect.name} has no "
                   "_has_privileges API; the first bulk request will tell", url=shown)  # fmt: skip
        return
    try:
        answer = await sender.has_privileges(index, ["create_doc"])
    except SendFailed as exc:
        report.add("privileges", False, str(exc), "unreachable", url=shown)
        return
    text = _reason(answer)
    if answer.status == 401:
        report.add("authenticate", False, f"credentials refused ({text}) for {who}",
                   "credentials", url=shown)  # fmt: skip
    elif any(sign in text for sign in SECURITY_OFF):
        report.add("privileges", True, "security is off on this cluster: anyone may write",
                   url=shown)  # fmt: skip
    elif answer.status == 200 and isinstance(answer.body, dict):
        may = bool(answer.body.get("has_all_requested"))
        user = answer.body.get("username", "")
        detail = (f"{user} may create documents in {index}" if may else
                  f"{user} may NOT create documents in {index}: grant create_doc (or write) "
                  "on it")  # fmt: skip
        report.add("authenticate", True, f"as {who}", url=shown)
        report.add("privileges", may, detail, "privileges", url=shown, index=index)
    else:
        report.add("privileges", True, f"could not be asked ({answer.status} {text}); "
                   "shipping will tell", url=shown)  # fmt: skip


# How a cluster without security answers _has_privileges: 500 "Security must be explicitly
# enabled ..." without a body; with one, some versions answer 400 "... does not support
# having a body" instead (elastic/elasticsearch#50288).
SECURITY_OFF = ("Security must be explicitly enabled", "does not support having a body")


def _reason(answer: Any) -> str:
    from agents.logship.output.answers import error_reason

    return error_reason(answer.body) or str(answer.status)


def run(argv: Sequence[str], env: Mapping[str, str]) -> int:
    """`logship check ...` → the exit code; the report on stdout."""
    as_json = "--json" in argv
    argv = [a for a in argv if a != "--json"]
    report = Report()
    from agents.logship.config import load_config

    try:
        config = load_config(argv, env)
    except OptionError as exc:
        report.add("configuration", False, str(exc), "config")
    else:
        report.add("configuration", True, "valid")
        files_report(report, config.paths)
        data_dir_report(report, config.data_dir)
        try:
            asyncio.run(cluster_report(report, config))
        except OptionError as exc:  # an unreadable secret or TLS file
            report.add("configuration", False, str(exc), "config")
    if as_json:
        print(json.dumps({"ok": report.failure is None, "exit_code": report.code,
                          "failure": report.failure, "checks": report.checks}))  # fmt: skip
    else:
        for check in report.checks:
            where = f" {check['url']}" if "url" in check else ""
            where += f" {check['path']}" if "path" in check else ""
            print(f"{'ok  ' if check['ok'] else 'FAIL'} {check['check']}{where}: "
                  f"{check['detail']}")  # fmt: skip
        print("ready to ship" if report.failure is None else
              f"not ready: {report.failure} (exit {report.code})")  # fmt: skip
    sys.stdout.flush()
    return report.code
