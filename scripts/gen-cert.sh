#!/usr/bin/env bash
# Generates a self-signed ECDSA P-256 certificate (valid 14 days, so browsers
# accept it for serverCertificateHashes) unless DIR already has a valid one.
#   scripts/gen-cert.sh DIR [HOSTNAME]
set -euo pipefail
dir="$1"; host="${2:-localhost}"
mkdir -p "$dir"
crt="$dir/cert.pem"; key="$dir/key.pem"
if [ -s "$crt" ] && [ -s "$key" ] && openssl x509 -checkend 86400 -noout -in "$crt" >/dev/null 2>&1; then
  exit 0
fi
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$key" -out "$crt" -days 14 -subj "/CN=$host" \
  -addext "subjectAltName=DNS:$host,DNS:localhost,IP:127.0.0.1,IP:::1" >/dev/null 2>&1
chmod 600 "$key"
echo "generated $crt"
