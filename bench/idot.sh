#!/bin/sh
# The integer path (tuning idot, matmul_q8.comp) on kernelc-22m: greedy
# output and logits against the f32 CPU reference on the 40 code prompts
# at 64 tokens, for the Q8_0, Q4_0 and Q4_K_M fixtures (Q4_K_M: Q4_K,
# Q6_K for V and the head, Q8_0 for the FFN's down product), with the
# float path's figures beside them (lade-idot-accuracy); JSON into
# bench/results/<device>/idot/accuracy-<fixture>-<path>.json (a folder of
# its own: bench/mkdoc.py reads every JSON at the top of a device's). On lavapipe
# on 2 cores each run takes 10-20 minutes (the CPU reference is one
# thread); PATHS=idot skips the float path, FIXTURES=q4_0 one fixture.
#   bench/idot.sh [BUILD_DIR] [RESULTS_DIR] [N_PROMPTS] [N_TOKENS]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
out=${2:-$here/results/llvmpipe-llvm-15-0-6-256-bits/idot}
n=${3:-40}
tokens=${4:-64}
models=$here/../../shared/models/kernelc-22m
prompts=$here/../../shared/prompts/code.jsonl
[ -r "$models/kernelc-22m-q8_0.gguf" ] || { echo "idot.sh: $models not found" >&2; exit 1; }
mkdir -p "$out"
for fx in ${FIXTURES:-q8_0 q4_0 q4_k_m}; do
  for path in ${PATHS:-idot float}; do
    idot=0
    [ "$path" = idot ] && idot=1
    LADE_IDOT=$idot "$build/bench/lade-idot-accuracy" "$models/kernelc-22m-$fx.gguf" "$prompts" \
      "$n" "$tokens" "$out/accuracy-$fx-$path.json"
  done
done
