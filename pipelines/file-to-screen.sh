#!/usr/bin/env bash
# A recorded file to the screen.   pipelines/file-to-screen.sh [video file]
source "$(dirname "$0")/common.sh"
IN="${1:-$DEMO_CLIP}"
need_input "$IN"
need filesrc decodebin faceemotion autovideosink
need_display
say "$IN -> faceemotion -> screen"
# videoconvert before faceemotion passes supported formats through untouched; it only acts on
# decoders that output a format faceemotion does not take (10-bit, for instance).
exec gst-launch-1.0 filesrc location="$IN" ! decodebin ! videoconvert ! faceemotion ! videoconvert ! autovideosink
