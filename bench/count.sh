#!/bin/sh
# The counting build's figures (issue #22): weight bytes the matrix kernels
# load per step of 1, 2, 8, 64 and 128 rows, against a one-row step, and
# the dispatches a layer, for every weight format lade-synth and
# lade-quantize write, on the small synthetic "tiny" shape (256 dim, 2
# layers, 512 FFN, 1024 vocab). Counts, not times: the same on every
# device that runs the same geometry.
#
#   bench/count.sh BUILD_DIR OUT.json [LABEL]
#
# With GPU=1 the GPU default geometries are forced through LADE_MM,
# LADE_MM_WIDE and LADE_MM_ONE (llama/gpu_tuning.c), so that a CPU driver
# counts the GPU path's loads (GPU_WIDE overrides the wide one: 64,8,2,1
# was the default before issue #22).
set -eu
build=$1
out=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
for f in f32 f16 q8_0 q4_0 q4_k; do
    "$build/tools/lade-synth" tiny $f "$dir/tiny-$f.gguf" >/dev/null
done
for f in q5_0 q6_k q4_k_m; do
    "$build/tools/lade-quantize" "$dir/tiny-f32.gguf" "$dir/tiny-$f.gguf" $f >/dev/null
done
if [ "${GPU:-0}" = 1 ]; then
    export LADE_MM=128,8,1,1 LADE_MM_WIDE=${GPU_WIDE:-64,64,1,1} LADE_MM_ONE=256,1,1,2
fi
"$build/tools/lade-steps" --count "$dir"/tiny-f32.gguf "$dir"/tiny-f16.gguf "$dir"/tiny-q8_0.gguf \
    "$dir"/tiny-q4_0.gguf "$dir"/tiny-q5_0.gguf "$dir"/tiny-q4_k.gguf "$dir"/tiny-q6_k.gguf \
    "$dir"/tiny-q4_k_m.gguf --json "$out"
