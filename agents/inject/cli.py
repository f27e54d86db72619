"""The `pod-agents` command: `pod-agents inject` turns flags into Options, reads the inputs,
writes the rewritten YAML to stdout and exits 0, or says what is wrong on one line and
exits 2."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TextIO

from agents import __version__
from agents.inject.errors import InjectError
from agents.inject.options import AUTH_MODES, DEFAULT_KUBE_VERSION, LOGSHIP_IMAGE, WAITFOR_IMAGE

PROG = "pod-agents inject"

DESCRIPTION = """\
Add pod-agents to the workloads in Kubernetes YAML: waitfor init containers that hold the
app until its dependencies are ready (--wait), and logship as a sidecar that ships the
app's log files to Elasticsearch (--ship). Reads files, directories (their *.yaml and
*.yml, sorted) or stdin (`-`, or no FILE); writes every document to stdout, in order. Pod,
Deployment, StatefulSet, DaemonSet, ReplicaSet, Job and CronJob are injected (also as the
items of a List); other documents pass through as they were. Comments, key order and
quotes of what inject does not change are kept.

  kubectl get deploy/shop -o yaml | pod-agents inject --ship '/var/log/shop/*.log' \\
      --es https://es:9200 --es-secret es-credentials --wait postgres://db:5432 \\
      | kubectl apply -f -
"""

EPILOG = f"""\
placement:
  The waitfor containers come first in initContainers, so that the app's own init
  containers wait too; a native logship (initContainers, restartPolicy: Always) comes
  after them and before the app's init containers, so that it ships their logs as well,
  with a startupProbe on /readyz that holds the app until logship watches its files. A
  co-located logship (--sidecar colocated, or --kube-version before 1.29) goes into
  containers beside the app (not for a Job or CronJob, which it would keep running).
  Both run with the restricted securityContext (uid 65532, read-only root filesystem,
  no capabilities, RuntimeDefault seccomp), requests and limits.

logs:
  Each --ship glob's directory (/var/log/shop for /var/log/shop/*.log) is shared with the
  app: when the app container already mounts a writable volume there (or above it),
  logship mounts the same volume at the same path; otherwise an emptyDir,
  pod-agents-logs, is mounted there in both. logship keeps its positions in
  --data-dir=<the first glob's mount>/.logship, and reads the pod's labels from a
  downwardAPI volume at /etc/podinfo. It needs the pod's shareProcessNamespace: true
  (set unless already set; with false, inject stops unless --no-share-process-namespace)
  and a terminationGracePeriodSeconds of at least --drain-timeout + 20 s (kept when
  larger). A volume the app mounts read-only there, or a configMap, secret, downwardAPI
  or projected one, is refused: the app cannot write its logs to it. logship's port is
  8081, or the first above it no container of the pod declares.

  A co-located logship goes after the app container in containers, or before it when
  the app is last (nothing is added at the end of a list or mapping, where it would
  take over the comments that follow); when the app was the only container, the
  kubectl.kubernetes.io/default-container annotation keeps `kubectl logs` on it.

credentials:
  Only by reference: --es-secret NAME mounts that Secret's key as a file under
  /etc/logship/elasticsearch, read-only. --es-auth basic (the default): keys `username`
  (as LOGSHIP_USERNAME, from the Secret) and `password` (LOGSHIP_PASSWORD_FILE);
  api-key: key `api-key` (LOGSHIP_API_KEY_FILE); bearer: key `token`
  (LOGSHIP_BEARER_TOKEN_FILE). A --wait target that logs in names its password as a
  file, #password-file=/etc/waitfor/SECRET/KEY, and --wait-secret SECRET mounts that
  Secret (only the keys the targets read) there, read-only, in the waitfor containers
  whose targets read it; a password in a target, or a file in no --wait-secret, is
  refused. No flag takes a credential's value.

again and --remove:
  inject lists what it added in the pod template's annotation pod-agents.io/injected
  (JSON: containers, volumes, mounts, the pod settings it changed and their values
  before). Injecting again replaces what an earlier run added: the same flags give the
  same output, byte for byte. --remove takes it all out and puts the settings back.

exit status:
  0 written; 2 bad flags or bad input, said on one line: `{PROG}: <input>: document #N
  <Kind/name>: <field>: <problem>` (nothing is written then).

images: pod-agents/waitfor:{__version__} and pod-agents/logship:{__version__} unless
--waitfor-image / --logship-image.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pod-agents", description="Companion programs for Kubernetes pods: tools."
    )
    parser.add_argument("--version", action="version", version=f"pod-agents {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    inject = commands.add_parser(
        "inject",
        help="add waitfor and logship to the workloads in Kubernetes YAML",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    inject.add_argument(
        "files",
        nargs="*",
        metavar="FILE",
        help="a YAML file, a directory of them, or - for stdin (the default)",
    )
    wait = inject.add_argument_group("waitfor (init containers)")
    wait.add_argument(
        "--wait",
        action="append",
        metavar="TARGET",
        dest="waits",
        help="a target as waitfor takes it (tcp://db:5432, postgres://db:5432, "
        "http://api:8080/healthz#status=200, dns://svc, ...): one init container "
        "each, wait-for-<host>; repeatable",
    )
    wait.add_argument(
        "--waitfor-arg",
        action="append",
        metavar="ARG",
        dest="waitfor_args",
        help="an option for every waitfor container, one per flag and with '=': "
        "--waitfor-arg=--timeout=5m; repeatable",
    )
    wait.add_argument(
        "--wait-secret",
        action="append",
        metavar="NAME",
        dest="wait_secrets",
        help="a Secret mounted read-only at /etc/waitfor/NAME in the waitfor containers "
        "whose target reads it: #password-file=/etc/waitfor/NAME/KEY; repeatable",
    )
    wait.add_argument("--waitfor-image", metavar="IMAGE", help=f"default {WAITFOR_IMAGE}")
    ship = inject.add_argument_group("logship (sidecar)")
    ship.add_argument(
        "--ship",
        action="append",
        metavar="GLOB",
        dest="ships",
        help="an absolute glob of the app's log files (/var/log/shop/*.log; ** "
        "matches directories); repeatable",
    )
    ship.add_argument(
        "--container",
        metavar="NAME",
        help="the app container whose logs are shipped (default: the "
        "kubectl.kubernetes.io/default-container annotation's, else the only "
        "or first container, said on stderr)",
    )
    ship.add_argument(
        "--es",
        action="append",
        metavar="URL",
        help="Elasticsearch/OpenSearch URL, no credentials in it; required with --ship; repeatable",
    )
    ship.add_argument(
        "--es-secret", metavar="NAME", help="the Secret with the credential, mounted as files"
    )
    ship.add_argument(
        "--es-auth",
        choices=AUTH_MODES,
        help="how the Secret is used (default basic: keys username and password)",
    )
    ship.add_argument(
        "--sidecar",
        choices=("native", "colocated"),
        help="native: an init container with restartPolicy: Always (the "
        "default, Kubernetes >= 1.29); colocated: in containers",
    )
    ship.add_argument(
        "--kube-version",
        metavar="VERSION",
        help=f"the cluster's Kubernetes version (default {DEFAULT_KUBE_VERSION}); "
        "before 1.29 logship is co-located",
    )
    ship.add_argument(
        "--drain-timeout",
        metavar="DURATION",
        help="logship's drain on SIGTERM (default 25s); the grace period is set to cover it",
    )
    ship.add_argument(
        "--logship-arg",
        action="append",
        metavar="ARG",
        dest="logship_args",
        help="a logship option, one per flag and with '=': "
        "--logship-arg=--batch-docs=500; repeatable",
    )
    ship.add_argument("--logship-image", metavar="IMAGE", help=f"default {LOGSHIP_IMAGE}")
    ship.add_argument(
        "--no-share-process-namespace",
        dest="share_process_namespace",
        action="store_false",
        help="leave shareProcessNamespace alone: logship's drain then cannot see "
        "the app exit, and stops once no file grew for --drain-quiet",
    )
    inject.add_argument(
        "--remove",
        action="store_true",
        help="take out what inject added, and put back the pod settings it changed",
    )
    return parser


def main(
    argv: Sequence[str] | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    stdin, stdout, stderr = stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr
    try:
        args = build_parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    except SystemExit as exc:  # --help, --version, or a usage error argparse has printed
        return exc.code if isinstance(exc.code, int) else 2

    def note(text: str) -> None:
        print(f"{PROG}: note: {text}", file=stderr)

    try:
        from agents.inject.options import build
        from agents.inject.run import read_inputs, rewrite

        options, notes = build(
            remove=args.remove,
            waits=args.waits,
            waitfor_args=args.waitfor_args,
            waitfor_image=args.waitfor_image,
            wait_secrets=args.wait_secrets,
            ships=args.ships,
            container=args.container,
            es=args.es,
            es_secret=args.es_secret,
            es_auth=args.es_auth,
            sidecar=args.sidecar,
            kube_version=args.kube_version,
            drain_timeout=args.drain_timeout,
            logship_args=args.logship_args,
            logship_image=args.logship_image,
            share_process_namespace=args.share_process_namespace,
        )
        for text in notes:
            note(text)
        output = rewrite(read_inputs(args.files, stdin), options, note)
    except InjectError as exc:
        print(f"{PROG}: {exc}", file=stderr)
        return 2
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("ruamel"):
            print(f"{PROG}: needs ruamel.yaml: pip install 'pod-agents[inject]'", file=stderr)
            return 2
        raise
    try:
        stdout.write(output)
        stdout.flush()
    except BrokenPipeError:  # `| head`: the reader has what it wanted
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
