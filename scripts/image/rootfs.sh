#!/usr/bin/env bash
# scripts/image/rootfs.sh TARBALL OUT.ext4: the emulated panel, a bootable Debian bookworm arm64
# root with TARBALL laid over it, as an ext4 image for qemu-system-aarch64 (scripts/image-test.sh).
# Also writes OUT.vmlinuz and OUT.initrd next to it (qemu boots them with -kernel/-initrd).
#
# The Debian base (debootstrap under qemu-user: 10-20 min on 2 cores) is cached in
# $PANELCAM_IMAGE_CACHE (default /var/cache/panelcam-image), keyed by the recipe below; the image
# itself (copy, tarball, test settings, mke2fs) takes well under a minute on a warm cache.
#
# This is a TEST image, not what ships: besides the tarball it enables the demo camera, points
# recording at the host's PostgreSQL (10.0.2.2 under qemu's user networking) and adds a root
# shell on the virtio console /dev/hvc0 (scripts/image/test-overlay/) for the test to drive.
set -euo pipefail
cd "$(dirname "$0")/../.."
die() { echo "rootfs.sh: $*" >&2; exit 1; }
[ $# = 2 ] || die "usage: scripts/image/rootfs.sh TARBALL OUT.ext4"
tarball=$(realpath "$1") out=$2
[ -f "$tarball" ] || die "no tarball $tarball"
[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot, owners in the image)"
bash scripts/deps.sh boot || die "installing the boot group failed (scripts/deps.sh boot)"

# The base recipe. Bump RECIPE when anything in build_base changes: the cache key is its hash.
readonly RECIPE=1 SUITE=bookworm
# systemd-sysv: systemd as /sbin/init. udev: loads virtio_console for /dev/hvc0. ffmpeg and procps
# (/bin/kill): what the service needs (rootfs-overlay/README.md). iproute2: looking at the network.
readonly PACKAGES=(systemd systemd-sysv udev dbus ffmpeg procps iproute2 kmod initramfs-tools linux-image-arm64)
# The initramfs only needs to find an ext4 root on virtio: MODULES=list builds it in seconds
# under qemu-user, where the default MODULES=most took minutes.
readonly INITRAMFS_MODULES=(virtio_mmio virtio_pci virtio_blk virtio_net virtio_console ext4 crc32c_generic)
mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}
cache=${PANELCAM_IMAGE_CACHE:-/var/cache/panelcam-image}
key=$(printf '%s\n' "$RECIPE" "$SUITE" "$mirror" "${PACKAGES[@]}" "${INITRAMFS_MODULES[@]}" | sha256sum | cut -c1-16)
base=$cache/base-$key
mkdir -p "$cache"

# One builder at a time: a second run waits instead of debootstrapping into the same place.
exec 9>"$cache/.lock"
flock 9

# umount_below DIR: every mount at or under DIR, deepest first (an interrupted chroot leaves
# proc, sys and dev mounted, and rm -rf must not walk into the host's /dev).
umount_below() {
  local m
  awk -v d="$1" '$2 == d || index($2, d "/") == 1 {print $2}' /proc/self/mounts | sort -r \
    | while read -r m; do umount -l "$m" || echo "rootfs.sh: could not unmount $m" >&2; done
}

# What an interrupted earlier run left behind.
for stale in "$cache"/*.tmp; do
  [ -e "$stale" ] || continue
  echo "rootfs.sh: removing $stale (left by an interrupted run)"
  umount_below "$stale"
  rm -rf --one-file-system "$stale"
done

binfmt() {
  mountpoint -q /proc/sys/fs/binfmt_misc \
    || mount binfmt_misc -t binfmt_misc /proc/sys/fs/binfmt_misc \
    || die "cannot mount binfmt_misc (needed to run arm64 programs in the chroot)"
  if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    # F (fix binary) is in Debian's line: the interpreter works inside the chroot without a copy.
    grep -v '^#' /usr/lib/binfmt.d/qemu-aarch64.conf >/proc/sys/fs/binfmt_misc/register \
      || die "registering qemu-aarch64 with binfmt_misc failed"
  fi
}

build_base() {
  # Not local: the EXIT trap (an error, Ctrl-C) needs it after this function is gone.
  tmp=$base.tmp
  local root=$tmp/root
  trap 'umount_below "$tmp"' EXIT
  mkdir -p "$root"
  binfmt
  echo "rootfs.sh: debootstrap $SUITE arm64 from $mirror into $tmp (once per recipe; 10-20 min)"
  local include
  include=$(IFS=,; echo "${PACKAGES[*]}")
  # --foreign stops after unpacking, so the initramfs settings are in place before the kernel's
  # postinst builds it in the second stage.
  debootstrap --arch=arm64 --variant=minbase --foreign --include="$include" "$SUITE" "$root" "$mirror" \
    >"$tmp/debootstrap.log" 2>&1 || { tail -n 30 "$tmp/debootstrap.log" >&2; die "debootstrap (first stage) failed; log $tmp/debootstrap.log"; }
  mkdir -p "$root/etc/initramfs-tools/conf.d" "$root/usr/share/initramfs-tools/modules.d"
  printf 'MODULES=list\nCOMPRESS=gzip\n' >"$root/etc/initramfs-tools/conf.d/panelcam.conf"
  printf '%s\n' "${INITRAMFS_MODULES[@]}" >"$root/usr/share/initramfs-tools/modules.d/panelcam"
  chroot "$root" /debootstrap/debootstrap --second-stage >>"$tmp/debootstrap.log" 2>&1 \
    || { tail -n 30 "$tmp/debootstrap.log" >&2; die "debootstrap (second stage, under qemu-aarch64) failed; log $tmp/debootstrap.log"; }
  umount_below "$root"

  # A machine that boots on its own: hostname, root on /dev/vda, DHCP from qemu, nothing slow.
  echo panel >"$root/etc/hostname"
  echo '/dev/vda / ext4 rw,errors=remount-ro 0 1' >"$root/etc/fstab"
  printf '[Match]\nName=en* eth*\n\n[Network]\nDHCP=ipv4\n' >"$root/etc/systemd/network/10-wired.network"
  systemctl -q --root="$root" enable systemd-networkd.service systemd-networkd-wait-online.service >/dev/null
  : >"$root/etc/machine-id" # generated at first boot
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  cp -L "$root/vmlinuz" "$tmp/vmlinuz" || die "no kernel /vmlinuz in the base root"
  cp -L "$root/initrd.img" "$tmp/initrd.img" || die "no /initrd.img in the base root (initramfs-tools failed?)"
  mv "$tmp/debootstrap.log" "$tmp/build.log"
  trap - EXIT
  mv "$tmp" "$base"
}

start=$SECONDS
if [ -d "$base" ]; then
  echo "rootfs.sh: Debian base $base (cached)"
else
  build_base
  echo "rootfs.sh: Debian base built in $((SECONDS - start)) s: $base"
fi

# The same inputs make the same image (the boot test boots it with snapshot=on, so it stays as
# built): reuse it, saving the copy and mke2fs.
stamp=$( (echo "$key"; sha256sum "$tarball" scripts/image/rootfs.sh; find scripts/image/test-overlay -type f -exec sha256sum {} +) \
  | sed 's|  /.*/|  |' | sha256sum | cut -d' ' -f1)
if [ -f "$out" ] && [ -f "$out.initrd" ] && [ "$(cat "$out.stamp" 2>/dev/null)" = "$stamp" ]; then
  echo "rootfs.sh: $out is up to date"
  exit 0
fi
rm -f "$out.stamp"

# The image: a copy of the base with the tarball applied as the README installs it.
work=$cache/image-$$.tmp
root=$work/root
trap 'rm -rf --one-file-system "$work"' EXIT
mkdir -p "$work"
cp -a "$base/root" "$root"
tar -xzf "$tarball" -C "$root"
systemd-sysusers --root="$root" >/dev/null
systemd-tmpfiles --root="$root" --create >/dev/null 2>&1 || true # runs again at every boot
systemctl -q --root="$root" enable panelcam.service >/dev/null

# Test settings (this image only): the demo camera on; recordings shipped to the host's
# PostgreSQL (qemu's 10.0.2.2 is the host's 127.0.0.1) in database panelcam_boot.
sed -i 's/^\( *"enabled": *\)false,$/\1true,/' "$root/etc/panelcam/cameras/demo.json"
grep -q '"enabled": *true' "$root/etc/panelcam/cameras/demo.json" || die "could not enable the demo camera"
python3 - "$root/etc/panelcam/config.json" <<'EOF'
import json, sys
path = sys.argv[1]
config = json.load(open(path))
config["server"]["admin_token"] = "boot-test-admin-token-0123"  # the admin API check
config["recording"].update({
    "database_type": "postgresql",
    "database_url": "postgres://postgres@10.0.2.2:5432/panelcam_boot",
    "hls_storage_enabled": True,
    "hls_segment_seconds": 2,
})
json.dump(config, open(path, "w"), indent=2)
EOF
cp -r scripts/image/test-overlay/. "$root/"
systemctl -q --root="$root" enable panelcam-test-shell.service >/dev/null
# systemd's getty generator would also put a login prompt on the virtio console.
systemctl -q --root="$root" mask serial-getty@hvc0.service
# Boot time under emulation (systemd-analyze blame in the guest): e2scrub_reap took 9 s, and
# networkd's nl80211 probe loads cfg80211 with its certificates; a test boot needs neither, nor
# the maintenance timers or a getty on a screen that does not exist.
systemctl -q --root="$root" mask e2scrub_reap.service e2scrub_all.timer fstrim.timer apt-daily.timer \
  apt-daily-upgrade.timer dpkg-db-backup.timer getty@tty1.service
echo 'install cfg80211 /bin/false' >"$root/etc/modprobe.d/panelcam-test.conf"

# ext4 straight from the directory (no loop mount): the root's size plus room for recordings.
used_mb=$(du -sm "$root" | cut -f1)
size_mb=$((used_mb + used_mb / 4 + 512))
rm -f "$out.tmp"
mke2fs -q -t ext4 -L panel -d "$root" "$out.tmp" "${size_mb}M" || die "mke2fs -d $root failed"
mv "$out.tmp" "$out"
cp "$base/vmlinuz" "$out.vmlinuz"
cp "$base/initrd.img" "$out.initrd"
echo "$stamp" >"$out.stamp"
echo "rootfs.sh: $out (${size_mb} MiB, ${used_mb} MiB used), kernel $out.vmlinuz, initrd $out.initrd ($((SECONDS - start)) s)"
