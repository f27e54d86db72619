#!/usr/bin/env bash
# Installs the Debian packages the integration tests run for real: PostgreSQL, MariaDB,
# Redis, RabbitMQ; iproute2 and iptables for the network fault tests' test hosts (network
# namespaces, tests/netns.py); and debootstrap where a Docker engine runs, for the
# offline image build (`images/build.sh --offline`) that the container tests use. Only what is missing is installed; services are NOT started (the test
# fixtures start their own private instances on free loopback ports).
# Without root (and without passwordless sudo) it says what is missing and carries on:
# the tests that need a missing server skip with that reason.
set -euo pipefail

need=()
have_pg() { compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null; }
have_pg || need+=(postgresql)
command -v redis-server >/dev/null || need+=(redis-server)
command -v mariadbd >/dev/null || command -v mysqld >/dev/null || need+=(mariadb-server)
command -v rabbitmq-server >/dev/null || [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || need+=(rabbitmq-server)
PATH="$PATH:/usr/sbin:/sbin" command -v ip >/dev/null || need+=(iproute2)
PATH="$PATH:/usr/sbin:/sbin" command -v iptables >/dev/null || need+=(iptables)
if docker info >/dev/null 2>&1 && ! command -v debootstrap >/dev/null; then
    need+=(debootstrap)
fi

if [ ${#need[@]} -eq 0 ]; then
    echo "test servers: all present"
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    sudo=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
else
    echo "test servers: missing ${need[*]} and no root to install them; their tests will skip" >&2
    exit 0
fi

echo "test servers: installing ${need[*]}"
# Keep package scripts from starting system-wide daemons we would never use.
policy=/usr/sbin/policy-rc.d
restore_policy() { "${sudo[@]}" rm -f "$policy"; }
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod +x "$policy"
    trap restore_policy EXIT
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "test servers: installed ${need[*]}"
