#!/usr/bin/env bash
# Installs the system programs the test suite starts for real: PostgreSQL (annotation
# store on a server) and Chromium (browser tests of the workbench). Debian packages only;
# no browser is ever downloaded by a test tool.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "system-deps: need ${need[*]}; run as root or install them: apt-get install ${need[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" fonts-dejavu-core >/dev/null
# Debian starts a cluster on install where it can; the tests run their own server.
if command -v pg_ctlcluster >/dev/null 2>&1; then
  pg_ctlcluster --force "$(ls /usr/lib/postgresql | sort -V | tail -1)" main stop >/dev/null 2>&1 || echo "system-deps: no default cluster running"
fi
