#!/bin/sh
# Detached signatures for iPXE's `imgverify`, made exactly as the muen.sk
# deployment makes them (see docs/deploy.md):
#
#   openssl cms -sign -binary -noattr -in FILE -signer SIGN_CERT \
#     -inkey SIGN_KEY -certfile CA -outform DER -out FILE.sig
#
#   deploy/sign.sh SIGN_CERT SIGN_KEY CA FILE...
#
# Before signing it checks what would otherwise only show up at boot time,
# on the target machine: the key belongs to the certificate, the certificate
# is valid, chains to CA and allows code signing (iPXE refuses signatures
# from certificates without the codeSigning extended key usage).
set -eu

die() { echo "sign: $*" >&2; exit 1; }

[ $# -ge 4 ] || { echo "usage: $0 SIGN_CERT SIGN_KEY CA FILE..." >&2; exit 2; }
cert=$1 key=$2 ca=$3
shift 3
for f in "$cert" "$key" "$ca"; do
    [ -r "$f" ] || die "cannot read $f"
done

cert_pub=$(openssl x509 -in "$cert" -noout -pubkey) || die "$cert is not a PEM certificate"
key_pub=$(openssl pkey -in "$key" -pubout) || die "$key is not a PEM private key (or it is encrypted)"
[ "$cert_pub" = "$key_pub" ] || die "$key is not the private key of $cert"

openssl x509 -in "$cert" -noout -checkend 0 >/dev/null ||
    die "$cert has expired ($(openssl x509 -in "$cert" -noout -enddate | cut -d= -f2)); issue a new signing certificate"
openssl x509 -in "$cert" -noout -ext extendedKeyUsage 2>/dev/null | grep -q 'Code Signing' ||
    die "$cert lacks extendedKeyUsage=codeSigning, which iPXE requires for imgverify;
  issue it with: openssl x509 -req ... -extfile <(printf 'extendedKeyUsage=codeSigning\nkeyUsage=digitalSignature\n')"
openssl verify -no-CApath -no-CAstore -CAfile "$ca" -purpose any "$cert" >/dev/null 2>&1 ||
    die "$cert does not chain to the CA in $ca (iPXE trusts only that CA)"

# iPXE's ECDSA code is young; the iPXE tested with this project (commit
# 0ab2277c, 2026-08) rejects P-256 signatures ("Could not verify: Invalid
# argument"), while RSA works.
for c in "$cert" "$ca"; do
    openssl x509 -in "$c" -noout -text 2>/dev/null | grep -q 'Public Key Algorithm: rsaEncryption' ||
        echo "sign: warning: $c does not use an RSA key; iPXE may fail to verify the signatures (docs/deploy.md)" >&2
done

for f in "$@"; do
    [ -f "$f" ] || die "$f does not exist"
    openssl cms -sign -binary -noattr -in "$f" -signer "$cert" \
        -inkey "$key" -certfile "$ca" -outform DER -out "$f.sig.tmp" ||
        { rm -f "$f.sig.tmp"; die "signing $f failed"; }
    mv "$f.sig.tmp" "$f.sig"
    echo "signed $f -> $f.sig"
done
