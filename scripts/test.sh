#!/usr/bin/env bash
# The tests: installs what is missing (system packages, ONNX Runtime, the npm test photos), builds
# the plugin library that the pipeline scripts load, and runs every test.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/setup.sh --test
echo "[test] building the plugin (cargo build) for the pipeline-script tests"
cargo build --quiet
echo "[test] cargo test"
log="$(mktemp)"
status=0
cargo test --no-fail-fast "$@" 2>&1 | tee "$log" || status=$?
# One closing line with the totals over all test binaries.
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
rm -f "$log"
exit "$status"
