#!/usr/bin/env bash
# Makes sure PostgreSQL (127.0.0.1:5432) and Mosquitto (127.0.0.1:1883) run and accept connections.
# Starts them directly, not through systemd: CI machines and containers have no running systemd.
set -euo pipefail

# wait_for NAME CMD...: polls CMD for up to 30 s.
wait_for() {
  local name=$1; shift
  for _ in $(seq 60); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  echo "services.sh: $name does not accept connections after 30 s" >&2
  return 1
}
pg_up() { pg_isready -q -h 127.0.0.1 -p 5432; }
mqtt_up() { (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; }

if ! pg_up; then
  if ! ls /etc/postgresql/*/main/postgresql.conf >/dev/null 2>&1; then
    # Package installed but no cluster (fresh image): create one with trust auth for local and
    # 127.0.0.1, as the test machines have. `--auth=trust` makes initdb's pg_hba.conf trust-only.
    ver=$(ls /usr/lib/postgresql | sort -V | tail -n1)
    echo "services.sh: creating PostgreSQL $ver cluster 'main'"
    pg_createcluster "$ver" main -p 5432 -- --auth=trust >/dev/null
    created=1
  fi
  echo "services.sh: starting PostgreSQL"
  # A cluster that is still starting makes this fail; the wait below decides.
  # shellcheck disable=SC2046  # one cluster per machine: /etc/postgresql holds a single version dir
  pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start || true
  wait_for PostgreSQL pg_up
  if [ "${created:-0}" = 1 ]; then
    # Tests connect as the login user (root) by default, like on the provisioned machines.
    psql -q -h 127.0.0.1 -U postgres -c 'CREATE ROLE root SUPERUSER LOGIN' \
      -c 'CREATE DATABASE root OWNER root' -c 'CREATE DATABASE test OWNER root'
  fi
fi

if ! mqtt_up; then
  echo "services.sh: starting Mosquitto"
  # mosquitto drops to its own user and writes its pid/log there; systemd's unit normally creates these.
  install -d -m 740 -o mosquitto /run/mosquitto /var/log/mosquitto
  mosquitto -d -c /etc/mosquitto/mosquitto.conf
  wait_for Mosquitto mqtt_up
fi
