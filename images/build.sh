#!/usr/bin/env bash
# Builds pod-agents/waitfor:VERSION and pod-agents/logship:VERSION.
#
#   images/build.sh             online: FROM python:3.12-slim, dependencies from PyPI
#   images/build.sh --offline   no registry needed: the base is made from Debian packages
#                               (debootstrap + docker import) and everything is installed
#                               from wheels built on this host
#   PIP_CERT=bundle             online: the CA bundle the build stage's pip trusts
#   --if-changed                skip the build when the three images already carry the
#                               hash of the sources they would be built from (make test)
# BASE=image overrides the base either way.
set -euo pipefail
python=${PYTHON:-python3}
# A relative path stays valid after the cd below (not realpath: a venv's python is a link).
case "$python" in /*) ;; */*) python="$PWD/$python" ;; esac
cd "$(dirname "$0")"
root=$(cd .. && pwd)
version=$("$python" -c 'import sys; sys.path.insert(0, sys.argv[1]); import agents; print(agents.__version__)' "$root")
offline=0 if_changed=0
for arg in "$@"; do
    case "$arg" in
        --offline) offline=1 ;;
        --if-changed) if_changed=1 ;;
        *) echo "usage: images/build.sh [--offline] [--if-changed]" >&2; exit 2 ;;
    esac
done
programs=(waitfor logship es-standin)

# What the images are made of: the package, the build files, the metadata and the mode.
source_hash=$(cd "$root" && {
    find agents images/Dockerfile images/build.sh pyproject.toml -type f \
        ! -path '*/__pycache__/*' -print0 | sort -z | xargs -0 sha256sum
    echo "offline=$offline base=${BASE:-}"
} | sha256sum | cut -c1-16)
if [ "$if_changed" = 1 ]; then
    current=1
    for program in "${programs[@]}"; do
        label=$(docker image inspect -f '{{index .Config.Labels "org.pod-agents.source-hash"}}' \
            "pod-agents/$program:$version" 2>/dev/null || true)
        [ "$label" = "$source_hash" ] || current=0
    done
    if [ "$current" = 1 ]; then
        names=$(IFS=,; echo "${programs[*]}")
        echo "images pod-agents/{$names}:$version are current ($source_hash)"
        exit 0
    fi
fi

rm -rf wheels && mkdir -p wheels
# pip's own CA-bundle variable: behind a TLS-intercepting proxy the build stage's pip
# needs the same bundle as the host's (it stays in the build stage, not in the image).
if [ -n "${PIP_CERT:-}" ] && [ -f "$PIP_CERT" ]; then
    cp "$PIP_CERT" wheels/pip-ca.crt
fi
if [ "$offline" = 1 ]; then
    base=${BASE:-pod-agents/base:bookworm}
    if ! docker image inspect "$base" >/dev/null 2>&1; then
        echo "building the offline base $base from Debian packages"
        rootfs=$(mktemp -d)
        trap 'rm -rf "$rootfs"' EXIT
        debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
            bookworm "$rootfs" http://deb.debian.org/debian >/dev/null
        rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
        tar -C "$rootfs" -c . | docker import \
            --change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/bash"]' - "$base" >/dev/null
    fi
    # The base's Python decides which wheels fit: build them with the same version.
    base_py=$(docker run --rm "$base" python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    host_py=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    if [ "$base_py" != "$host_py" ]; then
        echo "the base has Python $base_py but $python is $host_py: set PYTHON=python$base_py" >&2
        exit 2
    fi
    "$python" -m pip wheel -q -w wheels "$root[waitfor,logship,standin]"
else
    base=${BASE:-python:3.12-slim}
    "$python" -m pip wheel -q --no-deps -w wheels "$root"
fi

# target:extra
for pair in waitfor:waitfor logship:logship es-standin:standin; do
    program=${pair%%:*} extra=${pair#*:}
    docker build -q -f Dockerfile --target "$program" \
        --build-arg BASE="$base" --build-arg OFFLINE="$offline" --build-arg EXTRA="$extra" \
        --build-arg VERSION="$version" --build-arg SOURCE_HASH="$source_hash" -t "pod-agents/$program:$version" . >/dev/null
    size=$(docker image inspect -f '{{.Size}}' "pod-agents/$program:$version")
    base_size=$(docker image inspect -f '{{.Size}}' "$base")
    printf 'built pod-agents/%s:%s  %d MB (%d MB over %s)\n' "$program" "$version" \
        $((size / 1000000)) $(((size - base_size) / 1000000)) "$base"
done
rm -rf wheels
