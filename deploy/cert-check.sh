#!/bin/sh
# The certificate check of the muen.sk deployment, run by every `make`:
#
#   openssl x509 -checkend 2592000 -noout -in CERT     (valid for 30 more days?)
#
#   deploy/cert-check.sh CERT KEY [--strict] [--days N]
#
# Also checks that KEY is the private key of CERT (a mismatch would only show
# up as failing TLS handshakes on the running server). Without --strict an
# expiring or expired certificate is a warning, so development builds go on;
# with --strict (used by `make sign`, the step before deployment) it is an
# error. Either way it says what to do.
set -eu

[ $# -ge 2 ] || { echo "usage: $0 CERT KEY [--strict] [--days N]" >&2; exit 2; }
cert=$1 key=$2
shift 2
strict=false
days=30
while [ $# -gt 0 ]; do
    case $1 in
        --strict) strict=true ;;
        --days) days=$2; shift ;;
        *) echo "$0: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

[ -r "$cert" ] || { echo "error: cannot read the certificate $cert (make CERT=path/fullchain.pem)" >&2; exit 1; }
[ -r "$key" ] || { echo "error: cannot read the private key $key (make KEY=path/privkey.pem)" >&2; exit 1; }
end=$(openssl x509 -in "$cert" -noout -enddate 2>/dev/null | cut -d= -f2) || {
    echo "error: $cert is not a PEM certificate" >&2; exit 1; }

if [ "$(openssl x509 -in "$cert" -noout -pubkey)" != "$(openssl pkey -in "$key" -pubout 2>/dev/null)" ]; then
    echo "error: $key is not the private key of $cert." >&2
    echo "  Pass the matching pair, e.g. for certbot:" >&2
    echo "  make CERT=/etc/letsencrypt/live/DOMAIN/fullchain.pem KEY=/etc/letsencrypt/live/DOMAIN/privkey.pem" >&2
    exit 1
fi

if openssl x509 -in "$cert" -noout -checkend $((days * 86400)) >/dev/null; then
    exit 0
fi
if openssl x509 -in "$cert" -noout -checkend 0 >/dev/null; then
    what="expires within $days days (on $end)"
else
    what="HAS EXPIRED (on $end)"
fi
if $strict; then level=error; else level=warning; fi
cat >&2 <<MSG
$level: the TLS certificate $cert $what.
  The image serves this certificate; browsers will reject it once it expires.
  - Let's Encrypt (certbot): run 'certbot renew' (first time:
    'certbot certonly --standalone -d DOMAIN'), then rebuild with
    make CERT=/etc/letsencrypt/live/DOMAIN/fullchain.pem KEY=/etc/letsencrypt/live/DOMAIN/privkey.pem
  - Development certificate: rm -r certs/dev && make   (creates a new one)
  Then 'make sign ipxe', upload the signed files and reboot the target (docs/deploy.md).
MSG
$strict && exit 1
exit 0
