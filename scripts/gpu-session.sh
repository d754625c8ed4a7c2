#!/bin/sh
# One prepared run on a bare GPU machine (see ../shared/gpu/README.md):
# nothing is built there. Expects, carried beside the working tree:
#   build-gpu/    a Release build tree made here (tests, tools, lade-bench)
#   .gpu-debs/    from ../shared/gpu/fetch-debs.sh, plus vulkan-validationlayers
#   .gpu-models/  prelude.sh and shared/{models,prompts} (the subset that fits)
# Writes everything under $OUT, step by step, so a run cut short still
# returns what it measured. Paths compiled into the tests (/work/main,
# /work/shared) are recreated as links when the copy lives elsewhere.
set -u
root=$(pwd)
out=${OUT:?set OUT}
mkdir -p "$out/logs"
. .gpu-models/prelude.sh .gpu-debs >"$out/logs/prelude.log" 2>&1
for f in .gpu-debs/vulkan-validationlayers_*.deb; do
    [ -f "$f" ] && dpkg -x "$f" /
done
# stories260K travels once, in models/ (the carry limit is 64 MiB).
cp models/stories260K.gguf .gpu-models/shared/models/stories260K/ 2>/dev/null
[ -e /work/main/build-gpu ] || { mkdir -p /work && ln -sfn "$root" /work/main; }
[ -e /work/shared/models ] || { mkdir -p /work && ln -sfn "$root/.gpu-models/shared" /work/shared; }
nvidia-smi >"$out/nvidia-smi.txt" 2>&1
B=/work/main/build-gpu
S=/work/shared
export LADE_DEVICE=NVIDIA
: >"$out/steps.tsv"

step() {
    name=$1 limit=$2
    shift 2
    start=$(date +%s)
    timeout -k 5 "$limit" "$@" >"$out/logs/$name.log" 2>&1
    rc=$?
    printf '%s\t%s\t%s\n' "$name" "$rc" "$(($(date +%s) - start))" >>"$out/steps.tsv"
}

if [ "${QUICK:-0}" = 1 ]; then
    # A short rerun after a kernel change: the lookahead benchmark and the
    # 7B f16 curve only.
    step lookahead-code 100 "$B/bench/lade-bench" lookahead --device NVIDIA \
        --model "$S/models/kernelc-22m/kernelc-22m-f16.gguf" --prompts "$S/prompts/code.jsonl" --max-tokens 128 \
        --temp 0.8 --json "$out/lookahead-code.json"
    step synth-7b-f16 75 "$B/tools/lade-synth" 7b f16 /tmp/7b.gguf
    step steps-7b-f16 75 "$B/tools/lade-steps" /tmp/7b.gguf --device NVIDIA --json "$out/steps-7b-f16.json"
    exit 0
fi
step lade-info 20 "$B/tools/lade-info" --device NVIDIA
# The suite on the GPU with the validation layer on (ctest sets
# LADE_VALIDATION=1); all 40 code prompts for lookahead exactness.
step ctest 120 env LADE_FULL_TESTS=1 ctest --test-dir "$B" -L vulkan --output-on-failure --timeout 110
step greedy 30 "$B/bench/lade-bench" greedy --device NVIDIA --model "$S/models/stories260K/stories260K.gguf" \
    --model "$S/models/kernelc-22m/kernelc-22m-f16.gguf" --prompts "$S/prompts/code.jsonl" --limit 10 \
    --json "$out/greedy.json"
step lookahead-code 100 "$B/bench/lade-bench" lookahead --device NVIDIA \
    --model "$S/models/kernelc-22m/kernelc-22m-f16.gguf" --prompts "$S/prompts/code.jsonl" --max-tokens 128 \
    --temp 0.8 --json "$out/lookahead-code.json"
step lookahead-stories 20 "$B/bench/lade-bench" lookahead --device NVIDIA \
    --model "$S/models/stories260K/stories260K.gguf" --prompts "$S/prompts/stories.jsonl" --max-tokens 128 \
    --temp 0.8 --json "$out/lookahead-stories.json"
# Llama-2-7B-shaped models with random weights: step cost curve, greedy
# speed and bandwidth, prefill.
for fmt in f16 q4_0 q4_k; do
    step "synth-7b-$fmt" 75 "$B/tools/lade-synth" 7b "$fmt" /tmp/7b.gguf
    step "steps-7b-$fmt" 75 "$B/tools/lade-steps" /tmp/7b.gguf --device NVIDIA --json "$out/steps-7b-$fmt.json"
    rm -f /tmp/7b.gguf
done
echo "gpu-session: done"
