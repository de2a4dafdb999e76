#!/bin/sh
# Creates a development CA and an ECDSA P-256 server certificate signed by it
# in DIR (default certs/dev): ca.pem, ca.key, server.pem (server + CA chain),
# server.key (PKCS#8). Names: localhost, 127.0.0.1, ::1 and any extra names
# given as arguments (IP addresses or DNS names).
#
#   certs/gen-dev-cert.sh [DIR] [NAME...]
#
# Browsers will warn about the unknown CA; import DIR/ca.pem to avoid that,
# or point curl at it with --cacert.
set -eu
dir=${1:-certs/dev}
[ $# -gt 0 ] && shift
mkdir -p "$dir"
umask 077
sans="DNS:localhost,IP:127.0.0.1,IP:::1"
for n in "$@"; do
    case $n in
        *[!0-9.:]*) sans="$sans,DNS:$n" ;;
        *) sans="$sans,IP:$n" ;;
    esac
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" -days 3650 \
    -subj "/CN=unipi-rs development CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
    -keyout "$tmp/server.key" -out "$tmp/server.csr" -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName=%s\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' "$sans" >"$tmp/ext"
openssl x509 -req -in "$tmp/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
    -CAcreateserial -out "$tmp/server.crt" -days 825 -extfile "$tmp/ext" 2>/dev/null
openssl pkcs8 -topk8 -nocrypt -in "$tmp/server.key" -out "$dir/server.key"
cat "$tmp/server.crt" "$dir/ca.pem" >"$dir/server.pem"
chmod 644 "$dir/ca.pem" "$dir/server.pem"
echo "created $dir/server.pem (names: $sans) signed by $dir/ca.pem"
