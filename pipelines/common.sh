# Sourced by the pipeline scripts: finds the plugin (building it if needed) and checks elements.
set -euo pipefail
FE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
say() { printf '[%s] %s\n' "$(basename "$0" .sh)" "$*"; }
die() { say "$*" >&2; exit 2; }

# FACEEMOTION_PLUGIN_DIR picks another build of the plugin (the tests use the debug one).
PLUGIN_DIR="${FACEEMOTION_PLUGIN_DIR:-$FE_ROOT/target/release}"
if [ ! -f "$PLUGIN_DIR/libgstfaceemotion.so" ]; then
  [ -z "${FACEEMOTION_PLUGIN_DIR:-}" ] || die "no plugin in $PLUGIN_DIR"
  say "building the plugin (cargo build --release), once"
  (cd "$FE_ROOT" && cargo build --release --quiet)
fi
export GST_PLUGIN_PATH="$PLUGIN_DIR${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
# The command-line program of the same build.
FE_CLI="$PLUGIN_DIR/faceemotion"
need_cli() {
  [ -x "$FE_CLI" ] || die "no $FE_CLI: build it with cargo build --release (scripts/run.sh does)"
}

need() {
  for e in "$@"; do
    gst-inspect-1.0 "$e" >/dev/null 2>&1 || die "GStreamer element '$e' is missing: run scripts/setup.sh (Debian gstreamer1.0-plugins-*)"
  done
}
# A readable input file, or a message that says what the path is instead.
need_input() {
  local f="$1"
  [ -e "$f" ] || die "no such file: $f"
  [ ! -d "$f" ] || die "$f is a directory: give a video file"
  [ -f "$f" ] || die "$f is not a regular file: give a video file"
  [ -r "$f" ] || die "cannot read $f (permissions)"
}
need_display() {
  [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] || die "no display (DISPLAY/WAYLAND_DISPLAY unset): use pipelines/file-to-mp4.sh to write an annotated file instead"
}
DEMO_CLIP="$FE_ROOT/tests/data/astronaut-pan.mp4"
