#!/usr/bin/env bash
# A recorded file to an annotated H.264 MP4, plus a log of the per-frame results.
#   pipelines/file-to-mp4.sh [input] [output.mp4]      (log: output with .faces.log)
source "$(dirname "$0")/common.sh"
IN="${1:-$DEMO_CLIP}"
OUT="${2:-$FE_ROOT/out/$(basename "${IN%.*}").annotated.mp4}"
LOG="${OUT%.mp4}.faces.log"
need_input "$IN"
need filesrc decodebin faceemotion x264enc mp4mux
[ ! -d "$OUT" ] || die "the output $OUT is a directory: give a file name ending in .mp4"
mkdir -p "$(dirname "$OUT")"
say "$IN -> $OUT (+ $LOG)"
if ! gst-launch-1.0 -m -e filesrc location="$IN" ! decodebin ! videoconvert ! faceemotion \
  ! videoconvert ! x264enc speed-preset=veryfast ! h264parse ! mp4mux ! filesink location="$OUT" \
  | grep --line-buffered '(element): faceemotion, ' | sed -u 's/^.*(element): //' > "$LOG"; then
  # Half-written files would pass for results: remove them.
  rm -f "$OUT" "$LOG"
  die "the pipeline failed (see the ERROR above); nothing was written"
fi
frames=$(wc -l < "$LOG")
faces=$(grep -o 'face\\,\\ x' "$LOG" | wc -l || true)
say "wrote $OUT: $frames frames analysed, $faces faces in all"
say "emotions seen: $(grep -o 'emotion\\=\\(string\\)[a-z]*' "$LOG" | sed 's/.*)//' | sort | uniq -c | sort -rn | awk '{printf "%s %s, ", $2, $1}')"
