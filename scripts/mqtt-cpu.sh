#!/usr/bin/env bash
# MQTT publish cost (issue 9 §1): panelcam's CPU over 30 s with 4 cameras (lavfi 640x360 at
# 10 fps) sending every frame to the local Mosquitto, against the same without MQTT.
# Usage: scripts/mqtt-cpu.sh [panelcam binary]   (default: the release build)
# Needs Mosquitto on 127.0.0.1:1883 (scripts/services.sh) and mosquitto_sub (scripts/deps.sh test).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-${CARGO_TARGET_DIR:-target}/release/panelcam}
seconds=${SECONDS_MEASURED:-30}

# run MODE: prints panelcam's CPU in percent of one core (utime+stime from /proc/<pid>/stat).
run() {
  local mode=$1 port d mq pid t0 t1 s0 s1 sub
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  d=$(mktemp -d /tmp/panelcam-mqtt-cpu.XXXX); mkdir -p "$d/cameras"
  if [ "$mode" = on ]; then
    mq='{"enabled":true,"broker_url":"mqtt://127.0.0.1:1883","base_topic":"bench/'$port'","publish_interval_secs":1}'
  else
    mq='{"enabled":false}'
  fi
  echo '{"server":{"host":"127.0.0.1","port":'"$port"'},"recording":{"database_path":"'"$d"'/rec","spool_path":"'"$d"'/spool"},"mqtt":'"$mq"'}' >"$d/config.json"
  for i in 1 2 3 4; do
    echo '{"path":"/c'$i'","url":"lavfi:testsrc2=size=640x360:rate=10","mqtt":{"publish_interval":0}}' >"$d/cameras/c$i.json"
  done
  "$bin" --config "$d/config.json" >"$d/log" 2>&1 & pid=$!
  # A subscriber, so the broker really forwards every picture.
  mosquitto_sub -h 127.0.0.1 -t "bench/$port/#" >/dev/null 2>&1 & sub=$!
  sleep 8
  t0=$(awk '{print $14+$15}' "/proc/$pid/stat"); s0=$(date +%s.%N)
  sleep "$seconds"
  t1=$(awk '{print $14+$15}' "/proc/$pid/stat"); s1=$(date +%s.%N)
  echo "mqtt $mode: $(curl -s "http://127.0.0.1:$port/api/status" | python3 -c 'import json,sys; d=json.load(sys.stdin)["data"]; m=d["mqtt"]; print("published", m["published"], "dropped", m["dropped"], "fps", [c["fps"] for c in d["cameras"]])')"
  kill "$pid" "$sub"; wait "$pid" 2>/dev/null || true
  python3 -c "print('mqtt $mode: panelcam CPU %.1f %% of one core' % (($t1-$t0)/$(getconf CLK_TCK)/($s1-$s0)*100))"
  rm -rf "$d"
}

run off
run on
