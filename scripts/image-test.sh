#!/usr/bin/env bash
# scripts/image-test.sh: the boot test. Builds the emulated panel (scripts/build-image --rootfs),
# boots it with qemu-system-aarch64 (Cortex-A53, 2 cores, 1 GiB, virtio disk and network) and
# checks from the host and in the guest that systemd runs panelcam under its hardened unit with
# the demo camera: scripts/image/boot_check.py lists the checks. Prints the measured times.
# Needs root (debootstrap, chroot); the Debian base is cached in /var/cache/panelcam-image.
set -euo pipefail
cd "$(dirname "$0")/.."
die() { echo "image-test: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (scripts/image/rootfs.sh runs debootstrap and chroot)"

readonly BOARD=aarch64-panel DATABASE=panelcam_boot
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
out=$target_dir/boot-image
bash scripts/deps.sh boot || die "installing the boot group failed (scripts/deps.sh boot)"
bash scripts/services.sh || die "PostgreSQL on 127.0.0.1:5432 is not running (scripts/services.sh)"

start=$SECONDS
scripts/build-image --board "$BOARD" --rootfs --out "$out" || die "building the image failed (above)"
echo "image-test: image built in $((SECONDS - start)) s"
image=$(ls -t "$out"/panelcam-"$BOARD"-*.ext4 | head -n1)

# A fresh database for the segments the panel ships (the image's database_url names it).
psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $DATABASE" -c "CREATE DATABASE $DATABASE" \
  || die "cannot create database $DATABASE on 127.0.0.1:5432"

run=$(mktemp -d "${TMPDIR:-/tmp}/panelcam-boot.XXXXXX")
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
qemu_pid=''
cleanup() {
  if [ -n "$qemu_pid" ] && kill -0 "$qemu_pid" 2>/dev/null; then kill "$qemu_pid"; fi
  rm -rf "$run"
}
trap cleanup EXIT

# snapshot=on: the guest's writes go to a temporary file, so the image stays as built and the
# next run boots the same first boot. The port is forwarded on 127.0.0.1 only.
launched=$(python3 -c 'import time; print(time.monotonic())')
qemu-system-aarch64 -M virt -cpu cortex-a53 -smp 2 -m 1024 -nographic -monitor none \
  -kernel "$image.vmlinuz" -initrd "$image.initrd" \
  -append "root=/dev/vda rw console=ttyAMA0 panic=-1" -no-reboot \
  -drive "file=$image,if=virtio,format=raw,snapshot=on" \
  -netdev "user,id=net0,hostfwd=tcp:127.0.0.1:$port-:8080" -device virtio-net-pci,netdev=net0 \
  -device virtio-serial-pci -chardev "socket,id=hook,path=$run/hook.sock,server=on,wait=off" \
  -device virtconsole,chardev=hook \
  -serial "file:$run/console.log" </dev/null >"$run/qemu.log" 2>&1 &
qemu_pid=$!
echo "image-test: booting $image (qemu pid $qemu_pid, http://127.0.0.1:$port)"

rc=0
python3 scripts/image/boot_check.py --port "$port" --hook "$run/hook.sock" --database "$DATABASE" \
  --launched-mono "$launched" || rc=$?

# boot_check.py powers the guest off at the end; give it the time to shut down cleanly.
for _ in $(seq 60); do kill -0 "$qemu_pid" 2>/dev/null || break; sleep 1; done
if kill -0 "$qemu_pid" 2>/dev/null; then
  echo "image-test: the guest did not power off within 60 s" >&2
  [ "$rc" != 0 ] || rc=1
fi
if [ "$rc" != 0 ]; then
  echo "---- serial console (last 60 lines)"
  tail -n 60 "$run/console.log" || true
  echo "---- qemu"
  cat "$run/qemu.log" || true
  die "the boot test FAILED (above); image $image"
fi
echo "image-test: passed in $((SECONDS - start)) s"
