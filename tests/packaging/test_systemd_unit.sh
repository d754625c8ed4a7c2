#!/bin/sh
# laded.service and laded.socket through `systemd-analyze verify` (no
# warning at all) and `systemd-analyze security --offline` (exposure at
# most THRESHOLD). The unit's ExecStart is pointed at the built laded,
# which verify wants to exist. Exit 77 (skipped) without systemd-analyze.
#   test_systemd_unit.sh PACKAGING_DIR LADED THRESHOLD (tenths: 6 is 0.6)
set -eu
pkg=$1 laded=$2 threshold=$3
if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "skipped: no systemd-analyze here (Debian: apt-get install systemd)"
    exit 77
fi
tmp=$(mktemp -d /tmp/lade-unit-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
sed "s|^ExecStart=/usr/bin/laded |ExecStart=$laded |" "$pkg/laded.service" >"$tmp/laded.service"
cp "$pkg/laded.socket" "$tmp/laded.socket"

if ! systemd-analyze verify --man=no "$tmp/laded.service" "$tmp/laded.socket" >"$tmp/verify" 2>&1 ||
    [ -s "$tmp/verify" ]; then
    echo "systemd-analyze verify:"
    cat "$tmp/verify"
    exit 1
fi
echo "verify: no warnings"
# The table, then the overall line; non-zero above the threshold.
systemd-analyze security --offline=yes --threshold="$threshold" "$tmp/laded.service" >"$tmp/security" 2>&1 ||
    { cat "$tmp/security"; echo "exposure above $threshold"; exit 1; }
grep -v '✓' "$tmp/security"
