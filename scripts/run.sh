#!/usr/bin/env bash
# The main job: installs what is missing, builds the plugin and the faceemotion command, then
#  - with a camera and a display: camera -> faceemotion -> screen;
#  - otherwise: the bundled clip analysed with `faceemotion analyse` -> out/astronaut-pan/:
#    annotated.mp4, results.jsonl, people.csv, report.html (open it in a browser), emotions.png.
# Give a video file to analyse it instead: scripts/run.sh shop.mp4
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
say() { printf '[run] %s\n' "$*"; }
"$ROOT/scripts/setup.sh"
say "building the plugin and the faceemotion command (cargo build --release)"
(cd "$ROOT" && cargo build --release --quiet)
if [ -z "${1:-}" ] && [ -e /dev/video0 ] && [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  say "camera found: showing it with faces, emotions and genders (Ctrl-C to stop)"
  exec "$ROOT/pipelines/webcam.sh" /dev/video0
fi
IN="${1:-$ROOT/tests/data/astronaut-pan.mp4}"
[ -n "${1:-}" ] || say "no camera or no display: analysing the bundled clip tests/data/astronaut-pan.mp4 instead"
NAME="$(basename "${IN%.*}")"
OUT="$ROOT/out/$NAME"
"$ROOT/target/release/faceemotion" analyse "$IN" --out "$OUT"
say "done: open $OUT/report.html in a browser; the annotated video is $OUT/annotated.mp4"
