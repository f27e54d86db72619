"""The process form, `python -m agents.testing.elasticsearch --port 9200`: serve the
stand-in until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from agents.testing.elasticsearch.defaults import DEFAULT_MAX_BODY_BYTES, DEFAULT_VERSION
from agents.testing.elasticsearch.endpoints.cluster import HEALTH_RANK
from agents.testing.elasticsearch.server import StandIn


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m agents.testing.elasticsearch",
        description="Serve the Elasticsearch stand-in until SIGTERM or SIGINT.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9200)
    parser.add_argument(
        "--flavor",
        default="elasticsearch",
        choices=["elasticsearch", "opensearch"],
        help="answer as Elasticsearch or as OpenSearch",
    )
    parser.add_argument(
        "--version",
        default=None,
        help=f"the version to claim: a release (7.17.25) or a major alone (2: the newest 2.x); "
        f"Elasticsearch 7.17, 8, 9 (default {DEFAULT_VERSION}), OpenSearch 1, 2, 3 (default 2)",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed ids and random faults")
    parser.add_argument("--health", default="green", choices=sorted(HEALTH_RANK))
    parser.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES)
    parser.add_argument(
        "--fill-missing-timestamp",
        action="store_true",
        help="set a missing @timestamp in data streams, like ES's logs@default-pipeline",
    )
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> int:
    """Run until SIGTERM/SIGINT; the handlers only set a flag, shutdown happens here."""
    from agents._log import Logger

    log = Logger("es-standin")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    standin = StandIn(
        args.version,
        flavor=args.flavor,
        seed=args.seed,
        health=args.health,
        max_body_bytes=args.max_body_bytes,
        fill_missing_timestamp=args.fill_missing_timestamp,
    )
    try:
        await standin.start(args.host, args.port)
    except OSError as e:
        log.error("cannot listen", host=args.host, port=args.port, error=str(e))
        return 1
    log.info("elasticsearch stand-in listening", url=standin.url, host=args.host,
             flavor=standin.profile.flavor, version=standin.version)  # fmt: skip
    try:
        await stop.wait()
    finally:
        await standin.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
        StandIn(args.version, flavor=args.flavor)  # validate before binding anything
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return asyncio.run(serve(args))
