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
cargo test "$@"
