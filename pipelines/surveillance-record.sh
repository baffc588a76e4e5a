#!/usr/bin/env bash
# Surveillance-style recording: the original H.264 stream is kept untouched (no re-encode) and the
# annotated stream is written beside it, both cut in segments by splitmuxsink.
#   pipelines/surveillance-record.sh [source] [out dir] [segment seconds]
# source: an H.264 MP4 file (default: the bundled clip) or an rtsp:// URL.
source "$(dirname "$0")/common.sh"
SRC="${1:-$DEMO_CLIP}"
DIR="${2:-$FE_ROOT/out/recording}"
SEG="${3:-2}"
need faceemotion splitmuxsink x264enc h264parse tee
mkdir -p "$DIR"
case "$SRC" in
  rtsp://*)
    need rtspsrc rtph264depay
    INPUT="rtspsrc location=$SRC latency=200 ! rtph264depay ! h264parse config-interval=-1"
    ;;
  *)
    [ -f "$SRC" ] || die "no such file: $SRC"
    need qtdemux
    INPUT="filesrc location=$SRC ! qtdemux ! h264parse config-interval=-1"
    ;;
esac
NS=$((SEG * 1000000000))
say "$SRC -> $DIR/original_*.mp4 (stream copy) and $DIR/annotated_*.mp4, ${SEG}s segments (Ctrl-C ends cleanly)"
gst-launch-1.0 -q -e $INPUT ! tee name=t \
  t. ! queue ! splitmuxsink async-handling=true location="$DIR/original_%05d.mp4" max-size-time=$NS \
  t. ! queue ! avdec_h264 ! videoconvert ! faceemotion ! videoconvert \
     ! x264enc speed-preset=veryfast tune=zerolatency key-int-max=30 ! h264parse \
     ! splitmuxsink async-handling=true location="$DIR/annotated_%05d.mp4" max-size-time=$NS
say "segments: $(ls "$DIR" | tr '\n' ' ')"
