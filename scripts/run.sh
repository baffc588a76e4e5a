#!/usr/bin/env bash
# The main job: installs what is missing, builds the plugin, then
#  - with a camera and a display: camera -> faceemotion -> screen;
#  - otherwise: the bundled clip -> annotated MP4 + per-frame log in out/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
say() { printf '[run] %s\n' "$*"; }
"$ROOT/scripts/setup.sh"
say "building the plugin (cargo build --release)"
(cd "$ROOT" && cargo build --release --quiet)
if [ -e /dev/video0 ] && [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  say "camera found: showing it with faces, emotions and genders (Ctrl-C to stop)"
  exec "$ROOT/pipelines/webcam.sh" /dev/video0
fi
say "no camera or no display: analysing the bundled clip tests/data/astronaut-pan.mp4 instead"
"$ROOT/pipelines/file-to-mp4.sh" "$ROOT/tests/data/astronaut-pan.mp4" "$ROOT/out/astronaut-pan.annotated.mp4"
say "done: open out/astronaut-pan.annotated.mp4; the results per frame are in out/astronaut-pan.annotated.faces.log"
