#!/bin/sh
# The benchmark set as one bounded run on a GPU machine. Builds nothing: the
# build tree must already hold tools/lade-info, bench/lade-bench and the tests.
#
#   bench/gpu.sh BUILD_DIR MODELS_DIR OUT_DIR [PROMPTS_DIR]
#
# MODELS_DIR holds stories260K/ and kernelc-22m/ (../shared/models);
# PROMPTS_DIR defaults to MODELS_DIR/../prompts. The device is the one whose
# name contains $LADE_DEVICE (default "NVIDIA"); the tests get the same.
# Every step has its own timeout, so one slow step cannot eat the budget;
# the timeouts add up to 515 s (plus 5 s of grace each). The 7B-shaped models are written to
# $TMPDIR (13.5 GB for f16) and removed after use. Everything lands
# in OUT_DIR: logs/<step>.log, steps.tsv (step, exit status, seconds),
# device.json, and <device-slug>/*.json, the folder to copy into
# bench/results/ before running bench/mkdoc.py (a preview of the page is
# written to OUT_DIR/benchmarks.md when python3 is there).
# Exit status: 0 when every step exited 0, else 1 (steps.tsv says which).
set -u
if [ $# -lt 3 ]; then
    sed -n '2,17p' "$0" >&2
    exit 2
fi
build=$(cd "$1" && pwd) || exit 2
models=$(cd "$2" && pwd) || exit 2
mkdir -p "$3" || exit 2
out=$(cd "$3" && pwd)
prompts=${4:-$models/../prompts}
src=$(cd "$(dirname "$0")/.." && pwd)
export LADE_DEVICE="${LADE_DEVICE:-NVIDIA}"
bench=$build/bench/lade-bench
mkdir -p "$out/logs"
: >"$out/steps.tsv"
failed=0

# step NAME SECONDS command...: runs with a hard timeout, logs to logs/NAME.log.
step() {
    name=$1
    limit=$2
    shift 2
    start=$(date +%s)
    echo "== $name (at most ${limit}s): $*" | tee "$out/logs/$name.log" >&2
    timeout -k 5 "$limit" "$@" >>"$out/logs/$name.log" 2>&1
    rc=$?
    secs=$(($(date +%s) - start))
    printf '%s\t%s\t%s\n' "$name" "$rc" "$secs" >>"$out/steps.tsv"
    echo "== $name: exit $rc after ${secs}s$([ $rc -eq 124 ] && echo ' (TIMED OUT)')" >&2
    if [ $rc -ne 0 ]; then failed=1; fi
    return 0
}

step lade-info 20 "$build/tools/lade-info" --device "$LADE_DEVICE"
timeout 20 "$bench" device --device "$LADE_DEVICE" >"$out/device.json" 2>>"$out/logs/lade-info.log"
slug=$(sed -n 's/.*"slug": *"\([^"]*\)".*/\1/p' "$out/device.json")
if [ -z "$slug" ]; then
    echo "gpu.sh: no device matching '$LADE_DEVICE' (see $out/logs/lade-info.log)" >&2
    exit 1
fi
res=$out/$slug
mkdir -p "$res"
dev="--device $LADE_DEVICE"

step ctest-vulkan 90 ctest --test-dir "$build" -L vulkan --output-on-failure --timeout 80 -j 2

stories=$models/stories260K/stories260K.gguf
[ -f "$stories" ] || stories=$src/models/stories260K.gguf
k=$models/kernelc-22m
step greedy-stories260K 25 "$bench" greedy $dev --model "$stories" --prompts "$prompts/stories.jsonl" \
    --json "$res/greedy-stories260K.json"
step greedy-kernelc-22m 30 "$bench" greedy $dev --model "$k/kernelc-22m-f16.gguf" \
    --model "$k/kernelc-22m-q8_0.gguf" --model "$k/kernelc-22m-q4_0.gguf" --model "$k/kernelc-22m-q4_k_m.gguf" \
    --prompts "$prompts/code.jsonl" --max-tokens 256 --json "$res/greedy-kernelc-22m.json"
step lookahead-stories260K 20 "$bench" lookahead $dev --model "$stories" --prompts "$prompts/stories.jsonl" \
    --max-tokens 128 --temp 0.8 --json "$res/lookahead-stories260K.json"
step lookahead-kernelc-22m-f16 60 "$bench" lookahead $dev --model "$k/kernelc-22m-f16.gguf" \
    --prompts "$prompts/code.jsonl" --max-tokens 128 --temp 0.8 --json "$res/lookahead-kernelc-22m-f16.json"
step lookahead-kernelc-22m-q4_k_m 45 "$bench" lookahead $dev --model "$k/kernelc-22m-q4_k_m.gguf" \
    --prompts "$prompts/code.jsonl" --max-tokens 128 --temp 0.8 --json "$res/lookahead-kernelc-22m-q4_k_m.json"

# Many clients at once (issue #21): 1, 2, 4, 8 clients against the same
# requests one at a time, and a chat with and without the prefix cache.
if command -v python3 >/dev/null; then
    step parallel-kernelc-22m 60 python3 "$src/bench/parallel.py" "$build" "$k/kernelc-22m-f16.gguf" \
        --prompts "$prompts/code.jsonl" --max-tokens 64 --device "$LADE_DEVICE" \
        --out "$res/parallel-kernelc-22m-f16.json"
fi

# Llama-2-7B-shaped models with random weights (lade-synth): read bandwidth
# of a plain kernel, greedy decode and its fraction of that, the step-cost
# curve T = 1 .. 128, prefill at 512 (lade-steps).
tmp=${TMPDIR:-/tmp}
for fmt in f16 q4_0 q4_k; do
    step "synth-7b-$fmt" 25 "$build/tools/lade-synth" 7b "$fmt" "$tmp/lade-7b-$fmt.gguf"
    step "steps-7b-$fmt" 30 "$build/tools/lade-steps" "$tmp/lade-7b-$fmt.gguf" $dev --json "$res/steps-7b-$fmt.json"
    # the integer path (tuning idot, matmul_q8.comp), off by default until
    # these figures say whether it pays
    if [ "$fmt" = q4_0 ]; then
        step "steps-7b-$fmt-idot" 30 env LADE_IDOT=1 "$build/tools/lade-steps" "$tmp/lade-7b-$fmt.gguf" \
            $dev --json "$res/steps-7b-$fmt-idot.json"
    fi
    rm -f "$tmp/lade-7b-$fmt.gguf"
done

if command -v python3 >/dev/null; then
    python3 "$src/bench/mkdoc.py" --results "$out" --out "$out/benchmarks.md" \
        --reference "$prompts/README.md" >>"$out/logs/mkdoc.log" 2>&1 || failed=1
fi
echo "gpu.sh: results in $res; steps:" >&2
cat "$out/steps.tsv" >&2
exit $failed
