#!/bin/sh
# The main job on a fresh Debian 12 machine: install what lade needs, build
# it, start laded with the bundled model on the best Vulkan device there is,
# and have `lade` stream a generation from it. Then stop the daemon.
#   scripts/run.sh ["PROMPT"] [lade generate options...]
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target laded lade lade-info lade-generate >/dev/null
build/tools/lade-info | tail -n 1

prompt=${1:-Once upon a time}
[ $# -gt 0 ] && shift
dir=$(mktemp -d)
sock="$dir/laded.sock"
# daemon.socket_group empty: the socket keeps the caller's group, as there
# is no 'lade' group outside a packaged install.
build/daemon/laded -c /dev/null --socket "$sock" --set daemon.socket_group= \
    --model "$PWD/models/stories260K.gguf" --set "device.pipeline_cache=$dir/pipeline.bin" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT INT TERM
for _ in $(seq 1 300); do
    build/client/lade --socket "$sock" health >/dev/null 2>&1 && break
    kill -0 $pid 2>/dev/null || { echo "run.sh: laded failed to start" >&2; exit 1; }
    sleep 0.1
done
printf '%s' "$prompt"
build/client/lade --socket "$sock" generate --debug -n 200 "$prompt" "$@"
