#!/usr/bin/env bash
# Benchmarks: the core's stages, real pipelines on real footage (with a 100,000-frame soak), the report.
# Prints Markdown tables; the README's figures come from here. Takes about 90 minutes (the soak is
# 100,000 frames; the small-face, visitor and 16-stream rows most of the rest). FACEEMOTION_BASELINE_PLUGIN=/path/libgstfaceemotion.so adds an A/B against it.
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
echo
echo "[bench] report benchmark (cargo bench --bench report)"
cargo bench --quiet --bench report 2>/dev/null
