#!/bin/bash
# One prepared run on a bare GPU machine (see ../shared/gpu/README.md):
# nothing is built there. Run it with bash (prelude.sh takes an argument
# when sourced, which dash does not pass). Expects, carried beside the
# working tree:
#   build-gpu/    a Release build tree made here (tests, tools, lade-bench)
#   .gpu-debs/    from ../shared/gpu/fetch-debs.sh, plus vulkan-validationlayers
#   .gpu-models/  prelude.sh and shared/{models,prompts} (the subset that fits)
# Writes everything to a work folder and, after every step, packs it into
# $OUT/results.tgz (the device tool returns only a few files), so a run
# cut short still returns what it measured. Paths compiled into the tests (/work/main,
# /work/shared) are recreated as links when the copy lives elsewhere.
#
# Modes (environment): the default runs the Vulkan tests, a matrix-kernel
# geometry sweep on 8-layer 7B shapes (SWEEP=0 skips it; SWEEP_CONFIGS
# replaces its list of "decode/wide" geometries), phase profiles, the
# lookahead benchmark and the 7B curves for FORMATS (default f16 q4_0 q4_k
# q8_0), with the sweep's best geometries. FULL_TESTS=1: all 40 code prompts
# in the lookahead test. QUICK=1: lookahead benchmark and the 7B f16 curve
# only. TRY="...": profiles under each of a list of knob settings (see
# below). MMBENCH=1: the geometries are picked by lade-mmbench (one matrix
# dispatch by format, shape, geometry and T, each warmed up, with the
# kernel's probes) instead of the model sweep, before the tests. TESTS=1
# with TRY: the Vulkan tests before the profiles. AB=1: one prepared
# round after a kernel change (see that branch). DRAW=1: the GPU draws'
# round (sampling with draws on the GPU and on the host, attention
# geometries on kernelc-22m). CM=1: the matrix-unit kernel's round
# (matmul_cm.comp; see that branch).
# About 5 minutes for the default on an H200; give it 8.
set -u
root=$(pwd)
dest=${OUT:?set OUT}
out=/tmp/lade-gpu-session
rm -rf "$out"
mkdir -p "$out/logs"
pack() { tar czf "$dest/results.tgz.part" -C "$out" . && mv "$dest/results.tgz.part" "$dest/results.tgz"; }
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
    pack
}

val() { # FILE PAST T -> total_ms of that profile row
    grep -o "\"past\":$2,\"T\":$3,\"total_ms\":[0-9.]*" "$1" 2>/dev/null | head -1 | sed 's/.*://'
}

K=$S/models/kernelc-22m/kernelc-22m-f16.gguf

# curves_7b LIMIT FMT...: per format, a Llama-2-7B-shaped model with random
# weights in /tmp, its step-cost curve, greedy speed, bandwidth and prefill
# (steps-7b-FMT.json), the phase profile for f16 and q4_0, then removed.
# NOCACHE=1: f16 once more with LADE_STEP_CACHE=0; CM1=1: and with the
# matrix units (LADE_COOPMAT=1).
curves_7b() {
    lim=$1
    shift
    for fmt in "$@"; do
        step "synth-7b-$fmt" "$lim" "$B/tools/lade-synth" 7b "$fmt" /tmp/7b.gguf
        step "steps-7b-$fmt" "$lim" "$B/tools/lade-steps" /tmp/7b.gguf --device NVIDIA --json "$out/steps-7b-$fmt.json"
        if [ "$fmt" = f16 ] && [ "${NOCACHE:-0}" = 1 ]; then
            step steps-7b-f16-nocache "$lim" env LADE_STEP_CACHE=0 "$B/tools/lade-steps" /tmp/7b.gguf \
                --device NVIDIA --json "$out/steps-7b-f16-nocache.json"
        fi
        if [ "$fmt" = f16 ] && [ "${CM1:-0}" = 1 ]; then
            step steps-7b-f16-cm "$lim" env LADE_COOPMAT=1 "$B/tools/lade-steps" /tmp/7b.gguf \
                --device NVIDIA --json "$out/steps-7b-f16-cm.json"
        fi
        case $fmt in f16 | q4_0)
            step "profile-7b-$fmt" 60 "$B/tools/lade-steps" /tmp/7b.gguf --device NVIDIA --profile 1 \
                --json "$out/profile-7b-$fmt.json" ;;
        esac
        rm -f /tmp/7b.gguf
    done
}

# lookahead_code [ARGS...]: the lookahead benchmark on kernelc-22m, all 40
# code prompts, greedy and sampled at 0.8.
lookahead_code() {
    step lookahead-code 100 "$B/bench/lade-bench" lookahead --device NVIDIA "$@" --model "$K" \
        --prompts "$S/prompts/code.jsonl" --max-tokens 128 --temp 0.8 --json "$out/lookahead-code.json"
}

greedy_bench() {
    step greedy 30 "$B/bench/lade-bench" greedy --device NVIDIA --model "$S/models/stories260K/stories260K.gguf" \
        --model "$K" --prompts "$S/prompts/code.jsonl" --limit 10 --json "$out/greedy.json"
}

# profile_item I ITEM MODEL...: phase profiles (try/I-<model>.json) under
# ITEM, "default" or assignments joined by '+'.
profile_item() {
    pi=$1 pitem=$2 envs=$(echo "$2" | tr '+' ' ')
    [ "$pitem" = default ] && envs=
    shift 2
    echo "$pi $pitem" >>"$out/try/items.txt"
    for m in "$@"; do
        tag=$(basename "$m" .gguf)
        step "try-$pi-$tag" 40 env $envs "$B/tools/lade-steps" "$m" --device NVIDIA --profile 1 \
            --json "$out/try/$pi-$tag.json"
    done
}

if [ "${QUICK:-0}" = 1 ]; then
    # A short rerun after a kernel change: the lookahead benchmark and the
    # 7B f16 curve only.
    lookahead_code
    step synth-7b-f16 75 "$B/tools/lade-synth" 7b f16 /tmp/7b.gguf
    step steps-7b-f16 75 "$B/tools/lade-steps" /tmp/7b.gguf --device NVIDIA --json "$out/steps-7b-f16.json"
    pack
    exit 0
fi
# nwg_sweep: the lookahead window sweep on 20 code prompts (NWG), its
# speedups in nwg/speedups.tsv; sets best_nwg.
nwg_sweep() {
    mkdir -p "$out/nwg"
    best_nwg="" best_sp=0
    for nwg in ${NWG:-7,5,5 7,1,5 8,1,5 8,3,5 7,1,3 8,7,7}; do
        step "nwg-$nwg" 40 "$B/bench/lade-bench" lookahead --device NVIDIA --nwg "$nwg" \
            --model "$K" --prompts "$S/prompts/code.jsonl" --limit 20 \
            --max-tokens 128 --no-reference --json "$out/nwg/$nwg.json"
        sp=$(sed -n 's/^lookahead  *\([0-9.]*\)x.*/\1/p' "$out/logs/nwg-$nwg.log" | head -1)
        printf '%s\t%s\n' "$nwg" "${sp:-?}" >>"$out/nwg/speedups.tsv"
        if [ -n "$sp" ] && awk -v x="$sp" -v y="$best_sp" 'BEGIN { exit !(x > y) }'; then best_nwg=$nwg best_sp=$sp; fi
    done
}

if [ "${CM:-0}" = 1 ]; then
    # After a change to the matrix-unit kernel (matmul_cm.comp, opt-in with
    # LADE_COOPMAT=1): its unit test alone, then the Vulkan suite (with its
    # _cm variants); profiles of 8-layer 7B f16 and kernelc-22m without it,
    # with it and with other splits of K (CM_ITEMS); the lookahead
    # benchmark with it; the 7B f16 curve without and with it.
    step lade-info 20 "$B/tools/lade-info" --device NVIDIA
    step test-kernels 60 env LADE_VALIDATION=1 CMOCKA_MESSAGE_OUTPUT=stdout "$B/tests/vk/test_kernels"
    step ctest 170 ctest --test-dir "$B" -L vulkan --output-on-failure --timeout 160
    mkdir -p "$out/try"
    step synth-try-f16 40 "$B/tools/lade-synth" 7b f16 /tmp/s-f16.gguf 8
    i=0
    for item in default LADE_COOPMAT=1 ${CM_ITEMS:-LADE_COOPMAT=1+LADE_CM=2,64}; do
        profile_item "$i" "$item" /tmp/s-f16.gguf "$K"
        i=$((i + 1))
    done
    rm -f /tmp/s-f16.gguf
    export LADE_COOPMAT=1
    lookahead_code --nwg "${CM_NWG:-10,10,10}"
    unset LADE_COOPMAT
    CM1=1 curves_7b 75 f16
    echo "gpu-session: done"
    pack
    exit 0
fi
if [ "${DRAW:-0}" = 1 ]; then
    # After the GPU draws (draw.comp): its unit test and the suite on the
    # GPU; sampled decoding with the draws on the GPU and on the host
    # (LADE_DRAW=0), kernelc-22m lookahead (40 code prompts, greedy and
    # sampled at 0.8) and plain sampling on a 7B-shaped q4_0 model (vocab
    # 32000); then attention geometries on kernelc-22m (4 KV heads give
    # few workgroups), whole-step profiles under ATT_ITEMS. Also top-k 40,
    # top-p 0.9, penalty 1.1 on the 7B shape (topk.comp, penalty.comp), and
    # top-p 0.9 alone (draw.comp's nucleus). The lookahead benchmark also
    # with LADE_STEP_CACHE=0: what submitting recorded steps again saves.
    step lade-info 20 "$B/tools/lade-info" --device NVIDIA
    step test-kernels 60 env LADE_VALIDATION=1 CMOCKA_MESSAGE_OUTPUT=stdout "$B/tests/vk/test_kernels"
    step ctest 170 ctest --test-dir "$B" -L vulkan --output-on-failure --timeout 160
    for d in 1 0; do
        step "lookahead-code-draw$d" 100 env LADE_DRAW=$d "$B/bench/lade-bench" lookahead --device NVIDIA \
            --nwg "${DRAW_NWG:-8,1,5}" --model "$K" --prompts "$S/prompts/code.jsonl" --max-tokens 128 \
            --temp 0.8 --json "$out/lookahead-code-draw$d.json"
    done
    step lookahead-code-nocache 100 env LADE_STEP_CACHE=0 "$B/bench/lade-bench" lookahead --device NVIDIA \
        --nwg "${DRAW_NWG:-8,1,5}" --model "$K" --prompts "$S/prompts/code.jsonl" --max-tokens 128 \
        --temp 0.8 --json "$out/lookahead-code-nocache.json"
    step synth-7b-q4_0 60 "$B/tools/lade-synth" 7b q4_0 /tmp/7b-q4_0.gguf
    for d in 1 0; do
        step "sampled-7b-q4_0-draw$d" 40 env LADE_DRAW=$d "$B/bench/lade-bench" greedy --device NVIDIA \
            --model /tmp/7b-q4_0.gguf --prompts "$S/prompts/code.jsonl" --limit 3 --max-tokens 96 --temp 0.8 \
            --json "$out/sampled-7b-q4_0-draw$d.json"
        # Top-k candidates and the penalty on the GPU (topk.comp,
        # penalty.comp) against the host's copy of 32000 logits a token.
        step "topk-7b-q4_0-draw$d" 40 env LADE_DRAW=$d "$B/bench/lade-bench" greedy --device NVIDIA \
            --model /tmp/7b-q4_0.gguf --prompts "$S/prompts/code.jsonl" --limit 3 --max-tokens 96 --temp 0.8 \
            --top-k 40 --top-p 0.9 --penalty 1.1 --json "$out/topk-7b-q4_0-draw$d.json"
        # Top-p alone: the nucleus by bisection in draw.comp against the
        # host's (32000 logits back a token).
        step "topp-7b-q4_0-draw$d" 40 env LADE_DRAW=$d "$B/bench/lade-bench" greedy --device NVIDIA \
            --model /tmp/7b-q4_0.gguf --prompts "$S/prompts/code.jsonl" --limit 3 --max-tokens 96 --temp 0.8 \
            --top-p 0.9 --json "$out/topp-7b-q4_0-draw$d.json"
    done
    # Its curve, and its load time with the batched upload (10.7 s before).
    step steps-7b-q4_0 75 "$B/tools/lade-steps" /tmp/7b-q4_0.gguf --device NVIDIA --json "$out/steps-7b-q4_0.json"
    rm -f /tmp/7b-q4_0.gguf
    mkdir -p "$out/try"
    i=0
    for item in default ${ATT_ITEMS:-LADE_ATT=4,64 LADE_ATT=8,64 LADE_ATT=16,64 LADE_ATT=16,256 LADE_ATT=4,32}; do
        profile_item "$i" "$item" "$K"
        i=$((i + 1))
    done
    echo "gpu-session: done"
    pack
    exit 0
fi
if [ "${AB:-0}" = 1 ]; then
    # One prepared round after a kernel change, most important first (each
    # step packs what it has, so a run cut short still reports): the Vulkan
    # tests; whole-step profiles on 8-layer 7B shapes (and kernelc-22m) for
    # the default and each knob in AB_ITEMS, the fastest on one-token steps
    # exported for the rest (chosen.txt; another must beat the default by
    # 2%); a lookahead window sweep on 20 code prompts (NWG), the best of
    # which the full lookahead benchmark then uses; the 7B curves (f16 also
    # with LADE_STEP_CACHE=0, to see what reusing recorded steps saves).
    step lade-info 20 "$B/tools/lade-info" --device NVIDIA
    step ctest 150 ctest --test-dir "$B" -L vulkan --output-on-failure --timeout 140
    mkdir -p "$out/try"
    step synth-try-q4_0 40 "$B/tools/lade-synth" 7b q4_0 /tmp/s-q4_0.gguf 8
    step synth-try-f16 40 "$B/tools/lade-synth" 7b f16 /tmp/s-f16.gguf 8
    i=0 best="" best_s=1e30
    for item in default ${AB_ITEMS:-LADE_FUSE=0 LADE_MM_XSH=4096 LADE_MM_ONE=128,1,1,2 LADE_MM_ONE=256,1,1,4}; do
        case $item in
        default | LADE_FUSE=0) profile_item "$i" "$item" /tmp/s-q4_0.gguf /tmp/s-f16.gguf "$K" ;;
        *) profile_item "$i" "$item" /tmp/s-q4_0.gguf /tmp/s-f16.gguf ;;
        esac
        if [ "$item" != LADE_FUSE=0 ]; then
            sc=$(awk -v a="$(val "$out/try/$i-s-q4_0.json" 64 1)" -v b="$(val "$out/try/$i-s-f16.json" 64 1)" \
                'BEGIN { print (a == "" || b == "") ? 1e30 : a + b }')
            printf '%s\t%s\t%s\n' "$i" "$item" "$sc" >>"$out/try/scores.tsv"
            if [ -z "$best" ] || awk -v x="$sc" -v y="$best_s" 'BEGIN { exit !(x < 0.98 * y) }'; then
                best=$item best_s=$sc
            fi
        fi
        i=$((i + 1))
    done
    rm -f /tmp/s-q4_0.gguf /tmp/s-f16.gguf
    [ "$best" != default ] && [ -n "$best" ] && export $(echo "$best" | tr '+' ' ')
    nwg_sweep
    echo "chosen: $best (LADE_MM_ONE=${LADE_MM_ONE:-unset} LADE_MM_XSH=${LADE_MM_XSH:-unset}), nwg ${best_nwg:-device}" \
        >"$out/chosen.txt"
    if [ -n "$best_nwg" ]; then lookahead_code --nwg "$best_nwg"; else lookahead_code; fi
    NOCACHE=1 curves_7b 75 f16
    curves_7b 60 q4_0 q4_k q8_0
    greedy_bench
    echo "gpu-session: done"
    pack
    exit 0
fi
if [ -n "${TRY:-}" ]; then
    # Knobs that change speed (and, for some, a result's bits, never its
    # dependence on T), each profiled on 8-layer 7B shapes and kernelc-22m:
    # TRY="default LADE_ATT=8,256 LADE_ATT=2,128+LADE_MM_SPLITK=2" (items
    # separated by spaces, assignments within an item by '+'). Reports only;
    # picking a default is a decision for a person, with the profiles.
    mkdir -p "$out/try"
    # TESTS=1: the Vulkan tests first (default knobs).
    if [ "${TESTS:-0}" = 1 ]; then
        step ctest 170 ctest --test-dir "$B" -L vulkan --output-on-failure --timeout 160
    fi
    step synth-try-q4_0 40 "$B/tools/lade-synth" 7b q4_0 /tmp/s-q4_0.gguf 8
    step synth-try-f16 40 "$B/tools/lade-synth" 7b f16 /tmp/s-f16.gguf 8
    # A throwaway profile first: the GPU's clocks ramp up on first use.
    step warmup 40 "$B/tools/lade-steps" /tmp/s-f16.gguf --device NVIDIA --profile 1 --json /tmp/warmup.json
    i=0
    for item in $TRY; do
        profile_item "$i" "$item" /tmp/s-q4_0.gguf /tmp/s-f16.gguf "$K"
        i=$((i + 1))
    done
    rm -f /tmp/s-q4_0.gguf /tmp/s-f16.gguf
    pack
    exit 0
fi
step lade-info 20 "$B/tools/lade-info" --device NVIDIA
if [ "${MMBENCH:-0}" = 1 ]; then
    # Decode-sized geometry from T=1 over every format and shape, wide from
    # T=16 and 64 on f16 and q4_0; each pick is the lowest total time.
    step mmbench-t1 120 "$B/tools/lade-mmbench" --device NVIDIA --json "$out/mmbench-t1.json"
    step mmbench-wide 120 "$B/tools/lade-mmbench" --device NVIDIA --formats "f16 q4_0" --T "16 64" \
        --configs "${MMBENCH_WIDE:-64,8,2,1,1 64,8,2,2,1 64,8,4,1,1 64,8,4,2,1 128,8,2,1,1 128,8,4,1,1 64,16,2,1,1 32,8,4,1,1}" \
        --json "$out/mmbench-wide.json"
    n=$(sed -n 's/^best: //p' "$out/logs/mmbench-t1.log")
    w=$(sed -n 's/^best: //p' "$out/logs/mmbench-wide.log")
    [ -n "$n" ] && export LADE_MM="$n"
    [ -n "$w" ] && export LADE_MM_WIDE="$w"
    SWEEP=0
fi
# The suite on the GPU with the validation layer on (ctest sets
# LADE_VALIDATION=1); LADE_FULL_TESTS=1 for all 40 code prompts.
step ctest 150 env LADE_FULL_TESTS="${FULL_TESTS:-0}" ctest --test-dir "$B" -L vulkan --output-on-failure --timeout 140

# Matrix-kernel geometry sweep (LADE_MM decode-sized steps, LADE_MM_WIDE
# wide steps; neither changes a result) on 8-layer 7B-shaped models: the
# phase profile of each, then the best of each kind for everything after.
# SWEEP=0 skips it (and keeps LADE_MM / LADE_MM_WIDE from the caller).
if [ "${SWEEP:-1}" = 1 ]; then
    mkdir -p "$out/sweep"
    step synth-sweep-q4_0 40 "$B/tools/lade-synth" 7b q4_0 /tmp/s-q4_0.gguf 8
    step synth-sweep-f16 40 "$B/tools/lade-synth" 7b f16 /tmp/s-f16.gguf 8
    i=0
    best_n="" best_ns=1e30 best_w="" best_ws=1e30
    for cfg in ${SWEEP_CONFIGS:-"128,8,1,1/64,8,4,1" "128,8,1,2/64,8,8,1" "128,8,2,1/32,8,4,1" \
               "256,8,1,1/64,16,4,1" "64,8,1,1/128,8,4,1" "128,8,1,4/64,8,2,1" \
               "128,8,1,1/64,64,1,1" "128,8,1,1/128,64,1,1" "128,8,1,1/64,64,2,1"}; do
        n=${cfg%/*} w=${cfg#*/}
        for fmt in q4_0 f16; do
            step "sweep-$i-$fmt" 40 env LADE_MM="$n" LADE_MM_WIDE="$w" "$B/tools/lade-steps" /tmp/s-$fmt.gguf \
                --device NVIDIA --profile 1 --json "$out/sweep/$i-$fmt.json"
        done
        ns=$(awk -v a="$(val "$out/sweep/$i-q4_0.json" 64 1)" -v b="$(val "$out/sweep/$i-f16.json" 64 1)" \
            'BEGIN { print (a == "" || b == "") ? 1e30 : a + b }')
        ws=$(awk -v a="$(val "$out/sweep/$i-q4_0.json" 64 64)" -v b="$(val "$out/sweep/$i-f16.json" 64 64)" \
            -v c="$(val "$out/sweep/$i-f16.json" 64 128)" 'BEGIN { print (a == "" || b == "" || c == "") ? 1e30 : a + b + c }')
        printf '%s\t%s\t%s\t%s\t%s\n' "$i" "$n" "$ns" "$w" "$ws" >>"$out/sweep/scores.tsv"
        if awk -v x="$ns" -v y="$best_ns" 'BEGIN { exit !(x < y) }'; then best_n=$n best_ns=$ns; fi
        if awk -v x="$ws" -v y="$best_ws" 'BEGIN { exit !(x < y) }'; then best_w=$w best_ws=$ws; fi
        i=$((i + 1))
    done
    rm -f /tmp/s-q4_0.gguf /tmp/s-f16.gguf
    [ -n "$best_n" ] && export LADE_MM="$best_n"
    [ -n "$best_w" ] && export LADE_MM_WIDE="$best_w"
fi
echo "LADE_MM=${LADE_MM:-default} LADE_MM_WIDE=${LADE_MM_WIDE:-default}" >"$out/chosen.txt"
step profile-kernelc 40 "$B/tools/lade-steps" "$K" --device NVIDIA \
    --profile 1 --json "$out/profile-kernelc-f16.json"

lookahead_code
# shellcheck disable=SC2086 # FORMATS is a list
curves_7b 75 ${FORMATS:-f16 q4_0 q4_k q8_0}
greedy_bench
echo "gpu-session: done"
pack
