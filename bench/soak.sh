#!/bin/sh
# Soak laded: build bench/soak.c against liblade-client and run N clients x
# M requests for a bounded time; prints soak's JSON line. Not run in CI.
#
#   bench/soak.sh BUILD_DIR [soak options]        against $LADE_SOCKET (or the default)
#   bench/soak.sh BUILD_DIR --fake [soak options] starts `laded --fake-engine` in a temp dir
#
# soak options: --clients N --requests M --duration S --max-tokens T --prompt TEXT --no-stream
# Exit status: soak's (non-zero when any request failed).
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:?usage: soak.sh BUILD_DIR [--fake] [soak options]}
shift
build=$(cd "$build" && pwd)
fake=
if [ "${1:-}" = "--fake" ]; then fake=1; shift; fi

tmp=$(mktemp -d /tmp/lade-soak-XXXXXX)
pid=
cleanup() {
    if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

${CC:-cc} -O2 -std=c11 -D_GNU_SOURCE -I"$src" "$src/bench/soak.c" -o "$tmp/soak" \
    -L"$build/ipc" -llade-client -Wl,-rpath,"$build/ipc" -lpthread

if [ -n "$fake" ]; then
    : >"$tmp/laded.conf"
    "$build/daemon/laded" --fake-engine="${SOAK_FAKE_SPEC:-delay_ms=1}" -c "$tmp/laded.conf" \
        --socket "$tmp/laded.sock" --set daemon.socket_group= \
        --set daemon.queue_length=1024 --set limits.max_connections=1024 \
        --set daemon.log_level=warning 2>"$tmp/laded.log" &
    pid=$!
    i=0
    while [ ! -S "$tmp/laded.sock" ] && [ $i -lt 500 ]; do sleep 0.01; i=$((i + 1)); done
    export LADE_SOCKET="$tmp/laded.sock"
fi
set +e
"$tmp/soak" "$@"
rc=$?
set -e
if [ -n "$fake" ] && [ -s "$tmp/laded.log" ]; then echo "laded log:" >&2; cat "$tmp/laded.log" >&2; fi
exit $rc
