#!/usr/bin/env bash
# Benchmarks: the core's stages, then real pipelines on real footage (with a 10,000-frame soak).
# Prints Markdown tables; the README's figures come from here. Takes about 10 minutes.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/setup.sh --test
echo "[bench] building (release)"
cargo build --release --quiet
echo "[bench] stage benchmark (cargo bench --bench stages)"
cargo bench --quiet --bench stages 2>/dev/null
echo
echo "[bench] pipeline benchmark (cargo bench --bench pipeline -- --soak)"
cargo bench --quiet --bench pipeline -- --soak 2>/dev/null
