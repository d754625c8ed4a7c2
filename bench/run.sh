#!/bin/sh
# The benchmark set a new user runs on this machine: greedy speed on both
# models, lookahead against plain and reference mode on both prompt sets,
# JSON under bench/results/<device-slug>/, then docs/benchmarks.md
# regenerated from every device folder there.
#
#   bench/run.sh [--full] [--device DEV] [BUILD_DIR]
#
# BUILD_DIR defaults to build-bench, then build (it needs bench/lade-bench:
# cmake --build BUILD_DIR --target lade-bench). kernelc-22m runs only when
# ../shared (models and prompts) is there. On a CPU device (lavapipe) the
# kernelc-22m runs take the first $CODE_LIMIT prompts (default 3) to stay
# within about 10 minutes; on a GPU, or with --full, all 40.
# Exit status: 0, or 1 when a step failed or a lookahead run was not exact
# (every step runs regardless; the log says which).
set -u
src=$(cd "$(dirname "$0")/.." && pwd)
full=
device=
build=
while [ $# -gt 0 ]; do
    case "$1" in
    --full) full=1 ;;
    --device) device=$2; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) build=$1 ;;
    esac
    shift
done
if [ -z "$build" ]; then
    for b in "$src/build-bench" "$src/build"; do
        if [ -x "$b/bench/lade-bench" ]; then build=$b; break; fi
    done
fi
bench=${build:-$src/build-bench}/bench/lade-bench
if [ ! -x "$bench" ]; then
    echo "run.sh: no lade-bench in '${build:-$src/build-bench}': cmake --build BUILD_DIR --target lade-bench" >&2
    exit 1
fi
shared=$(cd "$src/.." && pwd)/shared
set -- ${device:+--device "$device"}

dev=$("$bench" device "$@") || { echo "run.sh: no usable Vulkan device" >&2; exit 1; }
slug=$(printf '%s' "$dev" | python3 -c 'import json,sys; print(json.load(sys.stdin)["slug"])')
is_cpu=$(printf '%s' "$dev" | python3 -c 'import json,sys; print(int(json.load(sys.stdin)["cpu"]))')
if [ "$is_cpu" = 0 ]; then full=1; fi
code_limit=${CODE_LIMIT:-3}
greedy_limit=2
greedy_tokens=64
if [ -n "$full" ]; then code_limit=40; greedy_limit=40; greedy_tokens=256; fi
out=$src/bench/results/$slug
mkdir -p "$out"
echo "run.sh: device $dev -> $out" >&2

failed=0
step() {
    name=$1
    shift
    echo "== $name: $*" >&2
    start=$(date +%s)
    "$bench" "$@"
    rc=$?
    echo "== $name: exit $rc after $(($(date +%s) - start)) s" >&2
    if [ $rc -ne 0 ]; then failed=1; fi
}

stories=$src/models/stories260K.gguf
[ -f "$shared/models/stories260K/stories260K.gguf" ] && stories=$shared/models/stories260K/stories260K.gguf
sp=$shared/prompts/stories.jsonl

if [ -d "$shared/prompts" ]; then
    step greedy-stories260K greedy "$@" --model "$stories" --prompts "$sp" --json "$out/greedy-stories260K.json"
    step lookahead-stories260K lookahead "$@" --model "$stories" --prompts "$sp" --max-tokens 128 --temp 0.8 \
        --json "$out/lookahead-stories260K.json"
    # At the reference table's own (N,W,G), so tokens/pass compare like for like.
    step lookahead-stories260K-5-15-15 lookahead "$@" --model "$stories" --prompts "$sp" --max-tokens 128 \
        --temp 0.8 --nwg 5,15,15 --json "$out/lookahead-stories260K-5-15-15.json"
    # As laded runs it: adaptive fallback to plain steps while lookahead does not pay.
    step lookahead-stories260K-adaptive lookahead "$@" --model "$stories" --prompts "$sp" --max-tokens 128 \
        --temp 0.8 --adaptive --json "$out/lookahead-stories260K-adaptive.json"
else
    echo "run.sh: no ../shared: greedy on the bundled stories260K from BOS only" >&2
    step greedy-stories260K greedy "$@" --model "$stories" --json "$out/greedy-stories260K.json"
fi

k=$shared/models/kernelc-22m
if [ -f "$k/kernelc-22m-f16.gguf" ]; then
    cp=$shared/prompts/code.jsonl
    # A variant that fails to load is reported as such.
    step greedy-kernelc-22m greedy "$@" --model "$k/kernelc-22m-f16.gguf" --model "$k/kernelc-22m-q8_0.gguf" \
        --model "$k/kernelc-22m-q4_0.gguf" --model "$k/kernelc-22m-q4_k_m.gguf" --prompts "$cp" \
        --limit "$greedy_limit" --max-tokens "$greedy_tokens" --json "$out/greedy-kernelc-22m.json"
    step lookahead-kernelc-22m-f16 lookahead "$@" --model "$k/kernelc-22m-f16.gguf" --prompts "$cp" \
        --limit "$code_limit" --max-tokens 128 --temp 0.8 --json "$out/lookahead-kernelc-22m-f16.json"
else
    echo "run.sh: no ../shared/models/kernelc-22m: kernelc-22m not measured" >&2
fi

python3 "$src/bench/mkdoc.py" || failed=1
exit $failed
