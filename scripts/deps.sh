#!/bin/sh
# scripts/deps.sh: install every build and test dependency of keymux with apt-get.
# Idempotent: packages already present are not fetched again, so it is cheap to run
# before every build or test and works offline once everything is installed.
set -eu

PKGS="build-essential pkg-config libevent-dev libyaml-dev libcmocka-dev
redis-server redis-tools memcached libmemcached-tools nutcracker ruby-redis
python3 python3-redis python3-pymemcache python3-pytest python3-prometheus-client prometheus
clang libclang-rt-14-dev"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

[ -z "$missing" ] && exit 0

echo "deps: installing:$missing"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# The servers are only ever started by our own scripts and tests; keep the
# packages' own services from claiming the default ports where policy-rc.d allows.
$SUDO apt-get install -y -qq --no-install-recommends $missing
