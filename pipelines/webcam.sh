#!/usr/bin/env bash
# Webcam to screen, with no videoconvert: faceemotion takes the camera's YUY2/I420 as it is.
#   pipelines/webcam.sh [/dev/videoN]
source "$(dirname "$0")/common.sh"
DEV="${1:-/dev/video0}"
[ -e "$DEV" ] || die "no camera at $DEV (plug one in, or pass its device); without a camera try pipelines/file-to-screen.sh"
need v4l2src faceemotion autovideosink
need_display
say "camera $DEV -> faceemotion -> screen (Ctrl-C to stop)"
exec gst-launch-1.0 -e v4l2src device="$DEV" ! faceemotion ! autovideosink
