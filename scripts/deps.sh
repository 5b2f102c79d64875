#!/usr/bin/env bash
# Installs what panelcam needs, only what is missing, so a warm machine spends well under 2 s here.
# Usage: scripts/deps.sh [run|test|cross|image|boot|armv7|x86_64]...   (no argument = test)
#   run    - what `scripts/run.sh` needs (FFmpeg)
#   cross  - aarch64 toolchain for scripts/size-check.sh (Debian cross gcc, qemu, Rust targets)
#   image  - what `scripts/build-image` needs for any board: hls.js for the tarball and
#            systemd-analyze for checking its units (plus the board's target group)
#   boot   - what the emulated panel needs (scripts/image/rootfs.sh, scripts/image-test.sh):
#            debootstrap, qemu-user (the arm64 chroot), qemu-system-arm, mke2fs, python3, psql
#   armv7  - armv7 panel toolchain (Debian cross gcc, qemu, Rust target armv7-unknown-linux-musleabihf)
#   x86_64 - x86_64 PC board toolchain (musl-gcc for the bundled SQLite, Rust target x86_64-unknown-linux-musl)
#   test   - everything the test suite and CI need (includes run, cross and image)
# run, image and test also fetch hls.js (npm) into web/vendor/, served at /assets/hls.min.js.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps.sh: not root and no sudo" >&2; exit 1; }
  SUDO=(sudo --preserve-env=DEBIAN_FRONTEND)
fi

pkgs=() targets=() want_nextest=0 want_hlsjs=0
for group in "${@:-test}"; do
  case $group in
    run) pkgs+=(ffmpeg); want_hlsjs=1 ;;
    cross)
      pkgs+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static)
      targets+=(aarch64-unknown-linux-gnu aarch64-unknown-linux-musl) ;;
    image) pkgs+=(systemd procps); want_hlsjs=1 ;;  # procps: /bin/kill, the unit's ExecReload
    boot) pkgs+=(debootstrap qemu-user-static qemu-system-arm e2fsprogs python3 postgresql-client) ;;
    armv7)
      pkgs+=(gcc-arm-linux-gnueabihf libc6-dev-armhf-cross qemu-user-static)
      targets+=(armv7-unknown-linux-musleabihf) ;;
    x86_64) pkgs+=(musl-tools); targets+=(x86_64-unknown-linux-musl) ;;
    test)
      # x264enc (test camera) lives in -ugly; the RTSP server and its Python bindings drive the test camera.
      pkgs+=(ffmpeg gir1.2-gst-rtsp-server-1.0 python3-gst-1.0
        gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly
        chromium libnss3-tools nginx-light postgresql mosquitto mosquitto-clients sqlite3 openssl
        gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static
        systemd procps  # systemd-analyze checks the image's units (tests/image.rs)
        debootstrap qemu-system-arm e2fsprogs python3 postgresql-client)  # the boot test (scripts/image-test.sh)
      targets+=(aarch64-unknown-linux-gnu aarch64-unknown-linux-musl)
      want_nextest=1 want_hlsjs=1 ;;
    *) echo "deps.sh: unknown group '$group' (run|test|cross|image|boot|armv7|x86_64)" >&2; exit 2 ;;
  esac
done

# `dpkg -s` succeeds for removed-but-not-purged packages too, so ask for the real install state.
missing=()
for p in "${pkgs[@]}"; do
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" = installed ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps.sh: installing ${missing[*]}"
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ${#targets[@]} -gt 0 ]; then
  installed=$(rustup target list --installed)
  for t in "${targets[@]}"; do
    grep -qx "$t" <<<"$installed" && continue
    echo "deps.sh: adding Rust target $t"
    # size-check only warns about aarch64 musl, so a failed add must not stop the tests here;
    # scripts/build-image checks its board's target itself and says what is missing.
    rustup target add "$t" || [[ $t == *musl ]] || exit 1
  done
fi

if [ $want_nextest = 1 ] && ! cargo nextest --version >/dev/null 2>&1; then
  echo "deps.sh: installing cargo-nextest"
  cargo install cargo-nextest --locked --quiet
fi

# hls.js plays live and recorded HLS in browsers without native HLS. It is a browser library,
# not part of the binary: fetched from npm into a cache and copied next to the pages.
if [ $want_hlsjs = 1 ] && [ ! -s web/vendor/hls.min.js ]; then
  if ! command -v npm >/dev/null; then
    "${SUDO[@]}" apt-get install -y -qq npm >/dev/null
  fi
  cache=${XDG_CACHE_HOME:-$HOME/.cache}/panelcam/npm
  mkdir -p "$cache" web/vendor
  echo "deps.sh: fetching hls.js from npm"
  npm install --silent --no-audit --no-fund --prefix "$cache" hls.js@1.7 >/dev/null
  cp "$cache/node_modules/hls.js/dist/hls.light.min.js" web/vendor/hls.min.js
fi
