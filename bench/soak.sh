#!/bin/sh
# Soak laded: build bench/soak.c against liblade-client and run N clients x
# M requests for a bounded time; prints soak's JSON line. Not run in CI.
#
#   bench/soak.sh BUILD_DIR [soak options]         against $LADE_SOCKET (or the default)
#   bench/soak.sh BUILD_DIR --fake [soak options]  starts `laded --fake-engine` in a temp dir
#   bench/soak.sh BUILD_DIR --model MODEL [soak options]
#       starts laded on MODEL (the real engine, the device lade picks) in a
#       temp dir and soaks it with --mixed --pid (SIGHUP every --reload-ms,
#       RSS and fds before and after); the JSON also goes to
#       bench/results/<device-slug>/soak-<model>.json
#
# Generations at once: SOAK_PARALLEL (default 8, [daemon] max_parallel).
# The issue #20 soak: bench/soak.sh build --model models/stories260K.gguf \
#     --clients 8 --requests 500 --max-tokens 16 --reload-ms 500 --duration 600
# soak options: --clients N --requests M --duration S --max-tokens T --prompt TEXT --no-stream
#               --mixed --pid PID --reload-ms MS
# Exit status: soak's (non-zero when any request failed).
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:?usage: soak.sh BUILD_DIR [--fake | --model MODEL] [soak options]}
shift
build=$(cd "$build" && pwd)
fake= model=
if [ "${1:-}" = "--fake" ]; then fake=1; shift; fi
if [ "${1:-}" = "--model" ]; then model=$(cd "$(dirname "$2")" && pwd)/$(basename "$2"); shift 2; fi

tmp=$(mktemp -d /tmp/lade-soak-XXXXXX)
pid=
cleanup() {
    if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

${CC:-cc} -O2 -std=c11 -D_GNU_SOURCE -I"$src" "$src/bench/soak.c" -o "$tmp/soak" \
    -L"$build/ipc" -llade-client -Wl,-rpath,"$build/ipc" -lpthread

if [ -n "$fake" ] || [ -n "$model" ]; then
    : >"$tmp/laded.conf"
    if [ -n "$fake" ]; then
        engine="--fake-engine=${SOAK_FAKE_SPEC:-delay_ms=1}"
    else
        engine="--model=$model"
    fi
    "$build/daemon/laded" "$engine" -c "$tmp/laded.conf" \
        --socket "$tmp/laded.sock" --set daemon.socket_group= \
        --set daemon.queue_length=1024 --set limits.max_connections=1024 \
        --set daemon.max_parallel="${SOAK_PARALLEL:-8}" \
        --set daemon.log_level=warning 2>"$tmp/laded.log" &
    pid=$!
    i=0
    while [ ! -S "$tmp/laded.sock" ] && [ $i -lt 6000 ] && kill -0 "$pid" 2>/dev/null; do
        sleep 0.01; i=$((i + 1))
    done
    export LADE_SOCKET="$tmp/laded.sock"
fi
extra=
if [ -n "$model" ]; then extra="--mixed --pid $pid"; fi
set +e
# shellcheck disable=SC2086
"$tmp/soak" --socket "${LADE_SOCKET:-/run/lade/laded.sock}" $extra "$@" >"$tmp/out.json"
rc=$?
set -e
cat "$tmp/out.json"
if [ -n "$model" ]; then
    dev=$("$build/bench/lade-bench" device)
    slug=$(printf '%s' "$dev" | python3 -c 'import json,sys; print(json.load(sys.stdin)["slug"])')
    out=$src/bench/results/$slug/soak-$(basename "$model" .gguf).json
    mkdir -p "$(dirname "$out")"
    python3 - "$tmp/out.json" "$dev" "$out" <<'PY'
import json, sys, time
run = json.load(open(sys.argv[1]))
run["env"] = {"device": json.loads(sys.argv[2]), "date": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
json.dump(run, open(sys.argv[3], "w"), indent=1)
open(sys.argv[3], "a").write("\n")
d = run.get("daemon", {})
print(f"soak: {run['completed']} ok, {run['failed']} failed in {run['wall_s']:.1f} s; "
      f"RSS {d.get('rss_kb', {}).get('start')} -> {d.get('rss_kb', {}).get('end')} kB "
      f"(max {d.get('rss_kb', {}).get('max')}), fds {d.get('fds', {}).get('start')} -> {d.get('fds', {}).get('end')}, "
      f"{d.get('reloads')} reloads -> {sys.argv[3]}", file=sys.stderr)
PY
fi
if [ -s "$tmp/laded.log" ]; then echo "laded log:" >&2; cat "$tmp/laded.log" >&2; fi
exit $rc
