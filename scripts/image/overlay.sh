#!/usr/bin/env bash
# scripts/image/overlay.sh ROOT BINARY: lays out the image's files under ROOT at their places on
# the panel, for the board in the BOARD_* variables (`scripts/board env`). Called by
# scripts/build-image, which checks the board, builds BINARY and packs ROOT afterwards.
# Sources: rootfs-overlay/ (static files), systemd/ (the units, with the reference board's
# values, rewritten here line by line), scripts/image/templates/ (@BOARD_*@ placeholders).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$1 bin=$2
: "${BOARD_NAME:?BOARD_* are not set: run scripts/build-image --board <name>}"

die() { echo "build-image: $*" >&2; exit 1; }

# sed_escape VALUE: VALUE as a literal sed replacement with `|` as the delimiter.
sed_escape() { local v=${1//\\/\\\\}; v=${v//|/\\|}; printf '%s' "${v//&/\\&}"; }

# render TEMPLATE DEST: a copy with every @BOARD_X@ replaced by $BOARD_X; a leftover placeholder
# (a misspelt name) is an error rather than a literal "@BOARD_PROT@" on a panel.
render() {
  local args=() name
  for name in $(compgen -v BOARD_); do
    args+=(-e "s|@$name@|$(sed_escape "${!name}")|g")
  done
  install -d -m 0755 "$(dirname "$2")"
  sed "${args[@]}" "$1" > "$2"
  chmod 0644 "$2"
  if grep -n '@BOARD_[A-Za-z0-9_]*@' "$2" >&2; then die "$1: unknown placeholder above (names: scripts/board --help)"; fi
}

# set_key UNIT KEY VALUE: replaces the unit's one `KEY=` line. Fails unless there is exactly one,
# so a unit edited in systemd/ cannot silently keep the reference board's value.
set_key() {
  local n
  n=$(grep -c "^$2=" "$1" || true)
  [ "$n" = 1 ] || die "systemd/$(basename "$1"): expected exactly one '$2=' line to set for board $BOARD_NAME, found $n"
  sed -i "s|^$2=.*|$2=$(sed_escape "$3")|" "$1"
}

install -D -m 0755 "$bin" "$root$BOARD_BINARY"

# Static files, at the same places as in rootfs-overlay/ (its README.md is the documentation).
while IFS= read -r f; do
  install -D -m 0644 "rootfs-overlay/$f" "$root/$f"
done < <(cd rootfs-overlay && find . -type f ! -path ./README.md -printf '%P\n' | LC_ALL=C sort)

# hls.js for browsers without native HLS (the config points at it); scripts/deps.sh fetches it.
[ -s web/vendor/hls.min.js ] || die "web/vendor/hls.min.js is missing (scripts/deps.sh image fetches it from npm)"
install -D -m 0644 web/vendor/hls.min.js "$root/usr/share/panelcam/hls.min.js"

# Configuration: the board's paths, limits and port.
render scripts/image/templates/config.json.in "$root$BOARD_CONFIG_DIR/config.json"
# The demo camera (FFmpeg's test picture) ships disabled: a panel must not spend CPU on it unless
# someone asks (README: "The demo camera").
demo=$root$BOARD_CONFIG_DIR/cameras/demo.json
install -d -m 0755 "$(dirname "$demo")"
sed 's/^\( *"enabled": *\)true,$/\1false,/' cameras/demo.json > "$demo"
chmod 0644 "$demo"
grep -q '^ *"enabled": *false,$' "$demo" || die "cameras/demo.json: expected a line '\"enabled\": true,' to switch off for the image"

# systemd units; Debian has merged /usr, so they go to usr/lib/systemd/system (never lib/...).
units=$root/usr/lib/systemd/system
service=$units/panelcam.service
install -D -m 0644 systemd/panelcam.service "$service"
set_key "$service" ExecStart "$BOARD_BINARY --config $BOARD_CONFIG_DIR/config.json --cameras $BOARD_CONFIG_DIR/cameras"
set_key "$service" Environment "PANELCAM_FFMPEG=$BOARD_FFMPEG"
set_key "$service" WorkingDirectory "$BOARD_DATA_DIR"
set_key "$service" ConfigurationDirectory "$BOARD_CONFIGURATION_DIRECTORY"
set_key "$service" StateDirectory "$BOARD_STATE_DIRECTORY"
set_key "$service" LogsDirectory "$BOARD_LOGS_DIRECTORY"
set_key "$service" RuntimeDirectory "$BOARD_RUNTIME_DIRECTORY"
set_key "$service" MemoryMax "$BOARD_MEMORY_MAX"
set_key "$service" ReadWritePaths "$BOARD_DATA_DIR $BOARD_SPOOL_DIR $BOARD_LOG_DIR $BOARD_CONFIG_DIR/cameras"
set_key "$service" RequiresMountsFor "$BOARD_SPOOL_DIR"

# The RAM spool's tmpfs: systemd wants the unit named after its mount point.
mount=$units/$BOARD_SPOOL_UNIT
install -m 0644 systemd/run-panelcam-spool.mount "$mount"
set_key "$mount" Where "$BOARD_SPOOL_DIR"
options=$(sed -n 's/^Options=//p' "$mount")
[[ $options == size=* ]] || die "systemd/run-panelcam-spool.mount: expected Options= to start with size=, found '$options'"
set_key "$mount" Options "size=$BOARD_SPOOL_MAX,${options#*,}"

render scripts/image/templates/tmpfiles.conf.in "$root/usr/lib/tmpfiles.d/panelcam.conf"

# The documentation, and this image's own values after it (the README uses the reference board's).
doc=$root/usr/share/doc/panelcam/README.md
install -d -m 0755 "$(dirname "$doc")"
{
  cat rootfs-overlay/README.md
  cat <<INFO

## This image

| | |
|---|---|
| board | \`$BOARD_NAME\` ($BOARD_DESCRIPTION) |
| target | \`$BOARD_TARGET\` |
| binary | \`$BOARD_BINARY\` |
| configuration | \`$BOARD_CONFIG_DIR/config.json\`, cameras in \`$BOARD_CONFIG_DIR/cameras/\` |
| data (recordings, outbox) | \`$BOARD_DATA_DIR/recordings\`, at most $BOARD_DISK_MAX_PERCENT % of its filesystem, outbox $BOARD_OUTBOX_MAX_MB MiB |
| RAM spool | \`$BOARD_SPOOL_DIR\` (tmpfs, $BOARD_SPOOL_MAX, \`$BOARD_SPOOL_UNIT\`) |
| FFmpeg logs | \`$BOARD_LOG_DIR\` |
| memory limit | $BOARD_MEMORY_MAX (MemoryMax of panelcam.service) |
| FFmpeg | \`$BOARD_FFMPEG\` |
| pages | \`http://<panel>:$BOARD_PORT/dashboard\` |
INFO
} > "$doc"
chmod 0644 "$doc"
