#!/usr/bin/env bash
# Makes the certificates for panelcam's HTTPS (server.tls): a small local CA and a server
# certificate signed by it, for this panel's host name and IP addresses (subject alternative
# names), as PEM files panelcam reads. Browsers trust the panel once the CA certificate is
# imported (one file for every panel of a plant when they share the CA).
#
#   scripts/make-cert.sh [--dir certs] [--days 825] [--name extra.name]... [--ip 10.0.0.5]...
#   scripts/make-cert.sh --self-signed ...     one self-signed certificate, no CA
#
# Writes <dir>/ca.crt + ca.key (kept if they exist, so re-running renews the server certificate
# under the same CA) and <dir>/server.crt + server.key (server.key mode 600). Keys are EC P-256:
# quick handshakes on the panel's CPU. Needs openssl.
set -euo pipefail

dir=certs days=825 self_signed=0 names=() ips=()
while [ $# -gt 0 ]; do
  case $1 in
    --dir) dir=$2; shift 2 ;;
    --days) days=$2; shift 2 ;;
    --name) names+=("$2"); shift 2 ;;
    --ip) ips+=("$2"); shift 2 ;;
    --self-signed) self_signed=1; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "make-cert: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
command -v openssl >/dev/null || { echo "make-cert: openssl is needed (apt-get install openssl)" >&2; exit 1; }
[[ $days =~ ^[0-9]+$ ]] && [ "$days" -ge 1 ] || { echo "make-cert: --days expects a positive number, got '$days'" >&2; exit 2; }

host=$(hostname)
names=("$host" "$(hostname -f 2>/dev/null || echo "$host")" localhost "${names[@]}")
# Every address of the panel, so https://<ip>:8443 works as well as the name.
ips=(127.0.0.1 ::1 $(hostname -I 2>/dev/null || true) "${ips[@]}")

san=""
declare -A seen=()
for n in "${names[@]}"; do [ -n "$n" ] && [ -z "${seen[DNS:$n]:-}" ] && seen[DNS:$n]=1 && san+="DNS:$n,"; done
for i in "${ips[@]}"; do [ -n "$i" ] && [ -z "${seen[IP:$i]:-}" ] && seen[IP:$i]=1 && san+="IP:$i,"; done
san=${san%,}

mkdir -p "$dir"
umask 077
ext=$(mktemp); trap 'rm -f "$ext" "$dir/server.csr"' EXIT
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\n' "$san" >"$ext"

openssl ecparam -name prime256v1 -genkey -noout -out "$dir/server.key.new"
if [ $self_signed = 1 ]; then
  openssl req -new -x509 -key "$dir/server.key.new" -out "$dir/server.crt.new" -days "$days" \
    -subj "/CN=$host" -extensions v3 -config <(printf '[req]\ndistinguished_name=dn\n[dn]\n[v3]\n'; cat "$ext") 2>/dev/null
else
  if [ ! -s "$dir/ca.key" ] || [ ! -s "$dir/ca.crt" ]; then
    openssl ecparam -name prime256v1 -genkey -noout -out "$dir/ca.key"
    openssl req -new -x509 -key "$dir/ca.key" -out "$dir/ca.crt" -days 3650 -subj "/CN=panelcam local CA ($host)" \
      -addext "basicConstraints=critical,CA:TRUE,pathlen:0" -addext "keyUsage=critical,keyCertSign,cRLSign"
    echo "make-cert: new CA $dir/ca.crt (import it into the browsers that show the panel)"
  fi
  openssl req -new -key "$dir/server.key.new" -out "$dir/server.csr" -subj "/CN=$host"
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
    -out "$dir/server.crt.new" -days "$days" -extfile "$ext" 2>/dev/null
fi
# Renamed into place key first, so a running panelcam never pairs a new certificate with an old key
# for longer than its next check (it keeps the old pair while they do not match).
chmod 600 "$dir/server.key.new"; chmod 644 "$dir/server.crt.new"
[ -f "$dir/ca.crt" ] && chmod 644 "$dir/ca.crt"
mv "$dir/server.key.new" "$dir/server.key"
mv "$dir/server.crt.new" "$dir/server.crt"
echo "make-cert: $dir/server.crt for $san, valid $days days"
