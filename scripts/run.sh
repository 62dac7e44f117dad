#!/bin/sh
# scripts/run.sh: `make run`: start local redis-server and memcached backends matching
# conf/keymux.yml, then keymux in the foreground. Ctrl-C stops keymux and the backends.
set -eu

BIN=${1:-build/keymux}
CONF=${KEYMUX_CONF:-conf/keymux.yml}
DIR=$(mktemp -d /tmp/keymux-run.XXXXXX)
PIDS=""

cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null || true; done
    rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

# Backends of the example config: redis on 6380/6381, memcached on 11212/11213.
for port in 6380 6381; do
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
        --dir "$DIR" --logfile "$DIR/redis-$port.log" --daemonize no &
    PIDS="$PIDS $!"
done
# memcached refuses to run as root unless told which user to become
MCUSER=""
if [ "$(id -u)" -eq 0 ]; then
    MCUSER="-u nobody"
fi
for port in 11212 11213; do
    # shellcheck disable=SC2086
    memcached -l 127.0.0.1 -p "$port" -U 0 $MCUSER &
    PIDS="$PIDS $!"
done
sleep 0.5

printf '%s\n' "keymux: redis pool 'alpha' at 127.0.0.1:22121 (try: redis-cli -p 22121 set foo bar)"
printf '%s\n' "keymux: memcached pool 'beta' at 127.0.0.1:22122 (any memcached client)"
printf '%s\n' "keymux: stats at 127.0.0.1:22222 (JSON on connect); Ctrl-C stops everything"
"$BIN" -c "$CONF" -a 127.0.0.1 -v 5 &
KM=$!
PIDS="$PIDS $KM"
wait "$KM"
