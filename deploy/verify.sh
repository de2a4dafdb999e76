#!/bin/sh
# Checks the detached signatures written by deploy/sign.sh the way iPXE's
# `imgverify` does once `imgtrust` is in force: the CMS signature must match
# the file byte for byte, the signer must chain to CA and nothing else (the
# system's CA store is not consulted) and the signer certificate must allow
# code signing.
#
#   deploy/verify.sh CA FILE...      (reads FILE.sig for each FILE)
#
# Prints one line per file and exits non-zero if any check fails.
set -u

[ $# -ge 2 ] || { echo "usage: $0 CA FILE..." >&2; exit 2; }
ca=$1
shift
[ -r "$ca" ] || { echo "verify: cannot read CA file $ca" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
status=0
for f in "$@"; do
    if [ ! -f "$f" ] || [ ! -f "$f.sig" ]; then
        echo "FAILED $f: missing $f or $f.sig (run make sign)"
        status=1
        continue
    fi
    if ! openssl cms -verify -binary -inform DER -in "$f.sig" -content "$f" \
            -CAfile "$ca" -no-CApath -no-CAstore -purpose any \
            -signer "$tmp/signer.pem" -out /dev/null >"$tmp/err" 2>&1; then
        echo "FAILED $f: signature does not verify against $ca"
        sed 's/^/  /' "$tmp/err" | head -5
        status=1
        continue
    fi
    if ! openssl x509 -in "$tmp/signer.pem" -noout -ext extendedKeyUsage 2>/dev/null | grep -q 'Code Signing'; then
        echo "FAILED $f: the signer certificate lacks extendedKeyUsage=codeSigning (iPXE would reject it)"
        status=1
        continue
    fi
    echo "OK     $f (signer: $(openssl x509 -in "$tmp/signer.pem" -noout -subject -nameopt oneline | sed 's/^subject=//'))"
done
exit $status
