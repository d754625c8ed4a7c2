#!/bin/sh
# Install what lade needs, check the C sources' formatting
# (scripts/check-format.sh), build with warnings as errors, run every test
# (cmocka programs under ctest, the Vulkan validation layer on, lavapipe
# when there is no GPU), then build again with AddressSanitizer and
# UndefinedBehaviorSanitizer and run the tests that need no Vulkan device,
# the daemon's end-to-end tests and the Vulkan ones that run the most host
# code per second (kernels, the batch scheduler's threads, the daemon on
# the real model; not test_gpu_quant, whose time under the sanitizers is
# mostly the CPU reference forward, which test_ref and test_arch already
# run there).
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/check-format.sh
jobs=$(nproc)

cmake -S . -B build-test -DLADE_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build-test -j"$jobs"
# The official openai SDK for test_daemon_e2e_sdk (it skips without it).
if command -v npm >/dev/null 2>&1; then
    npm install --prefix build-test/npm --no-audit --no-fund openai@4 >/dev/null 2>&1 ||
        echo "test: the openai npm package did not install; test_daemon_e2e_sdk will skip"
fi
# One test at a time: lavapipe spreads a dispatch's workgroups over every
# core (two Vulkan tests side by side each ran about half as fast), and
# some of the daemon's end-to-end tests time what they serve.
(cd build-test && ctest --output-on-failure --timeout 1500)

cmake -S . -B build-asan -DLADE_WERROR=ON -DLADE_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build-asan -j"$jobs"
(cd build-asan && ctest --output-on-failure -L 'unit|e2e' &&
    ctest --output-on-failure -R '^(test_kernels|test_gpu_batch|test_daemon_e2e_real)$')
