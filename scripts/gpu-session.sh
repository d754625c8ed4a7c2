#!/bin/sh
# One prepared run on a bare GPU machine (see ../shared/gpu/README.md):
# nothing is built there. Expects, carried beside the working tree:
#   build-gpu/    a Release build tree made here (tests, tools, lade-bench)
#   .gpu-debs/    from ../shared/gpu/fetch-debs.sh, plus vulkan-validationlayers
#   .gpu-models/  prelude.sh and shared/{models,prompts} (the subset that fits)
# Writes everything under $OUT. Paths compiled into the tests
# (/work/main, /work/shared) are recreated as links when the copy lives
# elsewhere.
set -u
root=$(pwd)
out=${OUT:?set OUT}
. .gpu-models/prelude.sh .gpu-debs >"$out/prelude.log" 2>&1
for f in .gpu-debs/vulkan-validationlayers_*.deb; do
    [ -f "$f" ] && dpkg -x "$f" /
done
[ -e /work/main/build-gpu ] || { mkdir -p /work && ln -sfn "$root" /work/main; }
[ -e /work/shared/models ] || { mkdir -p /work && ln -sfn "$root/.gpu-models/shared" /work/shared; }
nvidia-smi >"$out/nvidia-smi.txt" 2>&1
# The suite on the GPU, validation layer on (ctest sets LADE_VALIDATION=1),
# all 40 code prompts for lookahead exactness.
export LADE_FULL_TESTS=1
sed -i 's/^step ctest-vulkan 90 /step ctest-vulkan 150 /' bench/gpu.sh
LADE_DEVICE=NVIDIA sh bench/gpu.sh /work/main/build-gpu /work/shared/models "$out/bench" /work/shared/prompts
echo "gpu-session: exit $?"
