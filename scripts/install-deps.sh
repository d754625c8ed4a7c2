#!/bin/sh
# Install every Debian 12 package that lade needs to build, test and run.
# Idempotent: apt-get skips what is already there. Runs as root or via sudo.
#   scripts/install-deps.sh          build + test + runtime (lavapipe included;
#                                    systemd for systemd-analyze, which checks the unit)
#   scripts/install-deps.sh --fuzz   also clang for the libFuzzer targets
set -eu

pkgs="cmake gcc g++ make pkg-config clang-format curl
      libvulkan-dev glslc spirv-tools
      libsentencepiece-dev libpcre2-dev libunistring-dev libinih-dev libjansson-dev libsystemd-dev libcmocka-dev
      libhttp-parser-dev
      mesa-vulkan-drivers vulkan-validationlayers vulkan-tools
      systemd"

for arg in "$@"; do
    case "$arg" in
    --fuzz) pkgs="$pkgs clang libclang-rt-14-dev" ;;
    *) echo "install-deps: unknown option '$arg'" >&2; exit 2 ;;
    esac
done

if [ "$(id -u)" -eq 0 ]; then
    sudo=""
elif command -v sudo >/dev/null 2>&1; then
    sudo="sudo"
else
    echo "install-deps: run as root or install sudo" >&2
    exit 1
fi

missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
if [ -z "$missing" ]; then
    echo "install-deps: all packages present"
    exit 0
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing
