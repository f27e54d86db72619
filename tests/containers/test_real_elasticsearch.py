"""logship against the real Elasticsearch and OpenSearch images, through testcontainers.

Runs wherever a Docker engine runs and the image is present or can be pulled; elsewhere
each case skips and says which of the two is missing. Images: LOGSHIP_TEST_ES_IMAGES and
LOGSHIP_TEST_OPENSEARCH_IMAGES (comma-separated), default the 7.17, 8 and 9 lines of
Elasticsearch and the 1, 2 and 3 lines of OpenSearch (security plugin off).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import read_stderr_until

IMAGES = os.environ.get(
    "LOGSHIP_TEST_ES_IMAGES", "elasticsearch:7.17.25,elasticsearch:8.15.0,elasticsearch:9.0.0"
).split(",")
OPENSEARCH_IMAGES = os.environ.get(
    "LOGSHIP_TEST_OPENSEARCH_IMAGES",
    "opensearchproject/opensearch:1.3.19,opensearchproject/opensearch:2.17.0,"
    "opensearchproject/opensearch:3.0.0",
).split(",")


def image_available(image: str) -> str | None:
    """None when the image can be used, else why not."""
    if shutil.which("docker") is None:
        return "no docker client on this machine"
    info = subprocess.run(["docker", "info"], capture_output=True, text=True, check=False)
    if info.returncode != 0:
        return f"no Docker engine answers: {info.stderr.strip()[:200]}"
    present = subprocess.run(["docker", "image", "inspect", image], capture_output=True,
                             check=False)  # fmt: skip
    if present.returncode == 0:
        return None
    try:
        pulled = subprocess.run(["docker", "pull", image], capture_output=True, text=True,
                                timeout=300, check=False)  # fmt: skip
    except subprocess.TimeoutExpired:
        return f"image {image} not present, and pulling it timed out"
    if pulled.returncode != 0:
        return f"image {image} not present and cannot be pulled: {pulled.stderr.strip()[:200]}"
    return None


def ship_and_count(url: str, tmp_path: Path) -> None:
    """500 lines to the data stream logs-app-test through logship (SIGTERM once it has
    started), then every one of them counted there."""
    logs = tmp_path / "logs"
    logs.mkdir()
    lines = [f"line {i}" for i in range(500)]
    (logs / "app.log").write_text("".join(f"{line}\n" for line in lines))
    shipper = subprocess.Popen(
        [sys.executable, "-m", "agents.logship", "--path", str(logs / "*.log"), "--es", url,
         "--data-dir", str(tmp_path / "data"), "--data-stream", "app.test"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    # SIGTERM once it has started (its handler set), however slow the start.
    early = read_stderr_until(shipper, '"started"', timeout=120)
    shipper.send_signal(signal.SIGTERM)
    _, rest = shipper.communicate(timeout=60)
    stderr = early + rest
    assert shipper.returncode == 0, stderr
    urllib.request.urlopen(f"{url}/logs-app-test/_refresh", data=b"").close()  # noqa: S310
    with urllib.request.urlopen(f"{url}/logs-app-test/_count") as response:  # noqa: S310
        assert json.loads(response.read())["count"] == 500


@pytest.mark.timeout(600)
@pytest.mark.parametrize("image", IMAGES)
def test_logship_ships_to_real_elasticsearch(image: str, tmp_path: Path) -> None:
    why = image_available(image)
    if why is not None:
        pytest.skip(why)
    from testcontainers.community.elasticsearch import ElasticSearchContainer

    container = ElasticSearchContainer(image, mem_limit="1G").with_env(
        "ES_JAVA_OPTS", "-Xms512m -Xmx512m"
    )
    with container as es:
        ship_and_count(f"http://{es.get_container_host_ip()}:{es.get_exposed_port(es.port)}",
                       tmp_path)  # fmt: skip


@pytest.mark.timeout(600)
@pytest.mark.parametrize("image", OPENSEARCH_IMAGES)
def test_logship_ships_to_real_opensearch(image: str, tmp_path: Path) -> None:
    """OpenSearch has no logs-*-* template: logship installs the data stream's."""
    why = image_available(image)
    if why is not None:
        pytest.skip(why)
    from testcontainers.community.opensearch import OpenSearchContainer

    container = OpenSearchContainer(image, security_enabled=False).with_env(
        "OPENSEARCH_JAVA_OPTS", "-Xms512m -Xmx512m"
    )
    with container as os_:
        config = os_.get_config()
        ship_and_count(f"http://{config['host']}:{config['port']}", tmp_path)
