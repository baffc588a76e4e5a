#!/usr/bin/env bash
# Several cameras in one process: one faceemotion per camera, all sharing one loaded copy of each
# model and one inference pool; each camera's records go to its own JSON-lines file.
#   pipelines/cameras.sh [--count N] [source ...] [--out DIR]
# A source is an rtsp:// URL or a video file. Without sources, N copies (4 by default) of the
# bundled clip stand in for the cameras. Cameras analyse every 3rd frame for faces, classify
# every 3rd and gender every 30th; live cameras that a small box cannot analyse in full have
# their late frames only tracked (README: "Live sources, and files played in time, never fall
# behind"); files are analysed in full, as fast as the box goes.
source "$(dirname "$0")/common.sh"
COUNT=4
OUT="out/cameras"
SOURCES=()
while [ $# -gt 0 ]; do
  case "$1" in
    --count) [[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || die "--count needs a number of cameras, not '${2:-}'"; COUNT="$2"; shift 2 ;;
    --out) [ -n "${2:-}" ] || die "--out needs a folder"; OUT="$2"; shift 2 ;;
    *) SOURCES+=("$1"); shift ;;
  esac
done
if [ ${#SOURCES[@]} -eq 0 ]; then
  for _ in $(seq "$COUNT"); do SOURCES+=("$DEMO_CLIP"); done
fi
need uridecodebin faceemotion faceemotionpublish
mkdir -p "$OUT" || die "cannot make $OUT"
LINE=()
i=0
for s in "${SOURCES[@]}"; do
  case "$s" in
    rtsp://*|rtsps://*) uri="$s" ;;
    *) need_input "$s"; uri="file://$(cd "$(dirname "$s")" && pwd)/$(basename "$s")" ;;
  esac
  LINE+=(uridecodebin uri="$uri" ! videoconvert
         ! faceemotion name=cam$i inference-interval=3 reclassify-interval=3 gender-interval=30 draw=false
         ! faceemotionpublish source="cam$i" file-path="$OUT/cam$i.jsonl" ! fakesink sync=false)
  i=$((i + 1))
done
say "${#SOURCES[@]} cameras in one process -> $OUT/cam*.jsonl (one loaded copy of each model for all)"
rm -f "$OUT"/cam*.jsonl
exec gst-launch-1.0 -e "${LINE[@]}"
