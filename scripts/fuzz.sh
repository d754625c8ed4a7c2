#!/bin/sh
# Build the libFuzzer targets with clang (separate build tree) and run each
# for a while: the GGUF reader, the socket request parser, the
# configuration parser, the chat-template interpreter, the HTTP request path,
# the tool calls of a reply (OpenAI API).
#   scripts/fuzz.sh [SECONDS_EACH]     (default 60)
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps.sh --fuzz
secs=${1:-60}
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DLADE_FUZZ=ON -DLADE_TESTS=OFF >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzz_gguf fuzz_request fuzz_conf fuzz_jinja fuzz_http fuzz_reply
for t in gguf:llama request:ipc conf:conf jinja:llama http:daemon reply:ipc; do
    name=${t%%:*}
    dir=${t#*:}
    work=$(mktemp -d)
    echo "== fuzz_$name for ${secs}s"
    "build-fuzz/$dir/fuzz_$name" -max_total_time="$secs" -print_final_stats=1 "$work" "fuzz/corpus/$name" 2>&1 | tail -n 3
    rm -rf "$work"
done
