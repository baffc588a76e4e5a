#!/usr/bin/env bash
# Installs what faceemotion needs on a Debian 12 machine, idempotently, and says what it does.
#   scripts/setup.sh            system packages + ONNX Runtime library
#   scripts/setup.sh --test     the same, plus what the tests use: mosquitto, the RTSP server
#                               library, chromium, and the test photos fetched from npm and PyPI
# Everything comes from Debian, PyPI or npm; nothing else is reachable on our machines.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ORT_VERSION="1.31.1"
ORT_DIR="$ROOT/onnxruntime"
ORT_LIB="$ORT_DIR/libonnxruntime.so.$ORT_VERSION"
FACEAPI_VERSION="1.7.15"
FACEAPI_DIR="$ROOT/tests/data/face-api"
# Photos of one person at different moments (Obama x 3) and another (Biden), for the visitor
# recognition tests: the test images of PyPI face_recognition 1.3.0's source package.
FACEREC_VERSION="1.3.0"
FACEREC_SHA256="5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec"
FACEREC_DIR="$ROOT/tests/data/face_recognition"

say() { printf '[setup] %s\n' "$*"; }

APT_PACKAGES=(
  pkg-config clang libclang-dev
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav
  gstreamer1.0-opencv libopencv-dev opencv-data
  python3-gi python3-gst-1.0 gir1.2-gst-plugins-base-1.0 unzip
  fonts-dejavu-core
)
# For the tests only: a real MQTT broker and client, the RTSP server library (the tests serve a
# camera stream on loopback), and a browser that renders the HTML report.
TEST_PACKAGES=(
  mosquitto mosquitto-clients
  gstreamer1.0-rtsp libgstrtspserver-1.0-dev
  chromium
)

install_apt() {
  local missing=()
  [ "${1:-}" != "--test" ] || APT_PACKAGES+=("${TEST_PACKAGES[@]}")
  # pip (for the ONNX Runtime wheel) and npm (for the test photos) come from Debian when the
  # machine has none of its own.
  python3 -m pip --version >/dev/null 2>&1 || APT_PACKAGES+=(python3-pip)
  command -v npm >/dev/null 2>&1 || APT_PACKAGES+=(npm)
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    say "system packages: all present"
    return
  fi
  say "system packages: installing ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  say "system packages: done"
}

install_ort() {
  if [ -f "$ORT_LIB" ]; then
    say "ONNX Runtime $ORT_VERSION: present at $ORT_LIB"
    return
  fi
  say "ONNX Runtime $ORT_VERSION: fetching the onnxruntime wheel from PyPI"
  local tmp
  tmp="$(mktemp -d)"
  # The shared library inside the wheel does not depend on the Python version; asking for one
  # explicit platform/version makes pip pick the same wheel whatever python3 this machine has.
  python3 -m pip download -q --no-deps --only-binary=:all: \
    --platform manylinux_2_28_x86_64 --python-version 3.11 \
    "onnxruntime==$ORT_VERSION" -d "$tmp"
  mkdir -p "$ORT_DIR"
  unzip -q -j -o "$tmp"/onnxruntime-*.whl "onnxruntime/capi/libonnxruntime.so.$ORT_VERSION" -d "$ORT_DIR"
  rm -rf "$tmp"
  say "ONNX Runtime $ORT_VERSION: installed $ORT_LIB"
}

install_rust() {
  if command -v cargo >/dev/null 2>&1; then
    say "Rust: $(cargo --version)"
  else
    say "Rust: cargo not found. Install a Rust toolchain (rustup, 1.85 or newer) and re-run." >&2
    exit 1
  fi
}

fetch_test_material() {
  if [ -f "$FACEAPI_DIR/sample6.jpg" ]; then
    say "test photos: present in $FACEAPI_DIR"
    return
  fi
  say "test photos: fetching @vladmandic/face-api@$FACEAPI_VERSION from npm (demo/sample*.jpg, not committed)"
  local tmp
  tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack -q "@vladmandic/face-api@$FACEAPI_VERSION" >/dev/null)
  mkdir -p "$FACEAPI_DIR"
  tar -xzf "$tmp"/vladmandic-face-api-*.tgz -C "$tmp"
  cp "$tmp"/package/demo/sample*.jpg "$FACEAPI_DIR/"
  cp "$tmp"/package/LICENSE "$FACEAPI_DIR/LICENSE" 2>/dev/null || true
  rm -rf "$tmp"
  say "test photos: $(ls "$FACEAPI_DIR"/sample*.jpg | wc -l) files in $FACEAPI_DIR"
}

fetch_identity_photos() {
  if [ -f "$FACEREC_DIR/obama3.jpg" ] && [ -f "$FACEREC_DIR/biden.jpg" ]; then
    say "identity photos: present in $FACEREC_DIR"
    return
  fi
  say "identity photos: fetching face_recognition $FACEREC_VERSION's source package from PyPI (tests/test_images, not committed)"
  local tmp
  tmp="$(mktemp -d)"
  # pip cannot download this sdist (its metadata step needs dlib), so the file is found in
  # PyPI's simple index, as pip would, and checked against the sha256 known here.
  python3 - "$FACEREC_VERSION" "$FACEREC_SHA256" "$tmp/sdist.tar.gz" <<'PY'
import hashlib, re, sys, urllib.request
version, want, out = sys.argv[1:4]
index = urllib.request.urlopen("https://pypi.org/simple/face-recognition/", timeout=60).read().decode()
name = f"face_recognition-{version}.tar.gz"
url = next(u for u in re.findall(r'href="([^"]+)"', index) if u.split("#")[0].endswith("/" + name))
data = urllib.request.urlopen(url.split("#")[0], timeout=120).read()
got = hashlib.sha256(data).hexdigest()
if got != want:
    sys.exit(f"face_recognition {version}: sha256 {got}, expected {want}")
open(out, "wb").write(data)
PY
  mkdir -p "$FACEREC_DIR"
  local d="face_recognition-$FACEREC_VERSION"
  tar -xzf "$tmp/sdist.tar.gz" -C "$tmp" "$d/LICENSE" "$d/tests/test_images/obama.jpg" \
    "$d/tests/test_images/obama2.jpg" "$d/tests/test_images/obama3.jpg" "$d/tests/test_images/biden.jpg"
  cp "$tmp/$d"/tests/test_images/*.jpg "$FACEREC_DIR/"
  cp "$tmp/$d/LICENSE" "$FACEREC_DIR/LICENSE"
  rm -rf "$tmp"
  say "identity photos: $(ls "$FACEREC_DIR"/*.jpg | wc -l) files in $FACEREC_DIR"
}

install_apt "${1:-}"
install_rust
install_ort
if [ "${1:-}" = "--test" ]; then
  fetch_test_material
  fetch_identity_photos
fi
