#!/bin/sh
# Fails (non-zero, naming each file and line) when a C or C++ source is not
# as clang-format makes it with the repository's .clang-format. Run
# `scripts/check-format.sh --fix` to format them in place. CI runs the check
# before building (scripts/test.sh). Shaders are not formatted: clang-format
# has no GLSL mode.
set -eu
cd "$(dirname "$0")/.."
mode="--dry-run --Werror"
[ "${1:-}" = "--fix" ] && mode="-i"
if [ -d .git ] || git rev-parse --git-dir >/dev/null 2>&1; then
    files=$(git ls-files '*.c' '*.h' '*.cc')
else
    files=$(find . -path ./build\* -prune -o \( -name '*.c' -o -name '*.h' -o -name '*.cc' \) -print)
fi
# shellcheck disable=SC2086
if ! clang-format $mode $files; then
    echo "check-format: the files above are not formatted; scripts/check-format.sh --fix formats them" >&2
    exit 1
fi
echo "check-format: $(echo "$files" | wc -l) files formatted as .clang-format says"
