#!/usr/bin/env bash
# Installs what ClusterSQL builds and tests against, idempotently:
# the C client libraries (libpq, MariaDB Connector/C, SQLite) and the real
# servers the integration tests start (PostgreSQL, MariaDB + Galera, Redis +
# Sentinel, memcached) with the peer benchmark tools, and docker-compose to
# validate docker-compose.yml (no Docker engine is needed for that).
# Nothing is started: a policy-rc.d guard keeps apt from launching services.
set -euo pipefail

packages=(
  pkg-config libpq-dev libmariadb-dev libsqlite3-dev
  postgresql mariadb-server galera-4 redis-server redis-sentinel memcached
  libmemcached-tools libmemcached-dev sysbench rsync openssl docker-compose
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all packages present"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

echo "setup: installing ${missing[*]}"
guard=/usr/sbin/policy-rc.d
placed_guard=0
if [ ! -e "$guard" ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$guard" >/dev/null
  $sudo chmod +x "$guard"
  placed_guard=1
fi
cleanup() { if [ "$placed_guard" = 1 ]; then $sudo rm -f "$guard"; fi; }
trap cleanup EXIT

$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
