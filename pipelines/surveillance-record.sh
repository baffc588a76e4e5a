#!/usr/bin/env bash
# Surveillance-style recording: the camera's H.264 stream is kept untouched (no re-encode) and the
# analysed stream is written beside it, both cut in segments; a camera that drops is reconnected.
#   pipelines/surveillance-record.sh [source] [out dir] [segment seconds] [--anonymise]
# source: an rtsp:// URL, or an H.264 file (default: the bundled clip). It runs
# `faceemotion record`, which says what is wrong with the source if it is not H.264.
source "$(dirname "$0")/common.sh"
SRC="${1:-$DEMO_CLIP}"
DIR="${2:-$FE_ROOT/out/recording}"
SEG="${3:-2}"
EXTRA=()
[ "${4:-}" = "--anonymise" ] && EXTRA+=(--anonymise)
case "$SEG" in
  ''|*[!0-9]*) die "segment length must be a whole number of seconds, not '$SEG'" ;;
esac
case "$SRC" in
  rtsp://*|rtsps://*) ;;
  *) need_input "$SRC" ;;
esac
need_cli
say "$SRC -> $DIR/original_*.mp4 (stream copy) and $DIR/annotated_*.mp4, ${SEG}s segments (Ctrl-C ends cleanly)"
"$FE_CLI" record "$SRC" --out "$DIR" --segment "$SEG" "${EXTRA[@]}"
say "segments: $(cd "$DIR" && ls *.mp4 | tr '\n' ' ')"
