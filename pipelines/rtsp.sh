#!/usr/bin/env bash
# An RTSP camera to the screen (or, with a second argument, to an annotated MP4).
#   pipelines/rtsp.sh rtsp://camera/stream [output.mp4]
source "$(dirname "$0")/common.sh"
URL="${1:-}"
[ -n "$URL" ] || die "give the camera's URL: pipelines/rtsp.sh rtsp://host:554/stream (needs a reachable RTSP server)"
need rtspsrc decodebin faceemotion
if [ -n "${2:-}" ]; then
  need x264enc mp4mux
  say "$URL -> faceemotion -> $2 (Ctrl-C ends the file cleanly)"
  exec gst-launch-1.0 -e rtspsrc location="$URL" latency=200 ! decodebin ! videoconvert ! faceemotion \
    ! videoconvert ! x264enc speed-preset=veryfast tune=zerolatency ! h264parse ! mp4mux ! filesink location="$2"
fi
need_display
say "$URL -> faceemotion -> screen"
exec gst-launch-1.0 rtspsrc location="$URL" latency=200 ! decodebin ! videoconvert ! faceemotion ! videoconvert ! autovideosink
