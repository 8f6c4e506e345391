#!/usr/bin/env bash
# GnuTLS's p11tool and certtool through a PKCS#11 module: list tokens and
# mechanisms, generate an EC key, test-sign with it, make a self-signed certificate
# with certtool and store it on the token, rename the key, list everything.
#
#   examples/p11tool.sh MODULE [WORKDIR]
#
# MODULE is the module GnuTLS loads (--provider): libkeywarden.so (with KEYWARDEN_CONF
# set) or, for comparison, the token's own module. WORKDIR keeps the files made on the
# way (default: a temporary directory, removed at the end). SOFTHSM2_CONF names the
# token store. TOKEN_LABEL (demo) and USER_PIN (1234) describe the token. Objects made
# here are labelled gnutls-*; a re-run first removes those of an earlier run. Exits
# non-zero at the first failed step.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=examples/lib/recipe.sh
. "$here/lib/recipe.sh"
recipe_init "$@"

p11tool=(p11tool --provider "$module")
login=("${p11tool[@]}" --login --set-pin="$pin")
tok="pkcs11:token=$label"

printf 'GnuTLS p11tool %s through MODULE=%s, token "%s", WORKDIR=%s\n' \
  "$(p11tool --version 2>&1 | sed -n '1s/^p11tool //p')" "$module" "$label" "$work"

step "List the tokens and the mechanisms"
token "${p11tool[@]}" --list-tokens
expect "^[[:space:]]+Label: $label\$" "token \"$label\" is listed"
token "${p11tool[@]}" --list-mechanisms "$tok"
expect 'CKM_ECDSA ' "mechanism list includes CKM_ECDSA"

step "Remove gnutls-* objects left by an earlier run"
for obj in gnutls-ec gnutls-ec-renamed gnutls-cert; do
  "${login[@]}" --batch --delete "$tok;object=$obj" >/dev/null 2>&1 || true
done
ok "no gnutls-* objects left"

step "Generate an EC P-256 key on the token"
token "${login[@]}" --generate-privkey=ecdsa --curve=secp256r1 --label gnutls-ec \
  --outfile "$work/gnutls-ec.pub.pem" "$tok"
expect 'Generating an EC/ECDSA key' "EC key gnutls-ec generated"
token "${login[@]}" --export-pubkey "$tok;object=gnutls-ec;type=private" --outfile "$work/exported.pub.pem"
local_cmd cmp "$work/gnutls-ec.pub.pem" "$work/exported.pub.pem"
ok "the exported public key is the generated one"

step "Test-sign with the key (p11tool signs on the token and verifies)"
token "${login[@]}" --test-sign "$tok;object=gnutls-ec"
expect 'Signing using ECDSA-SHA256\.\.\. ok' "ECDSA-SHA256 signature made"
expect 'Verifying against private key parameters\.\.\. ok' "verifies against the private key's parameters"
expect 'Verifying against public key in the token\.\.\. ok' "verifies against the public key on the token"

step "certtool: a self-signed certificate from the token key, stored on the token"
cat >"$work/cert.tmpl" <<EOF
cn = "Keywarden GnuTLS demo"
organization = "Keywarden"
expiration_days = 1
ca
cert_signing_key
signing_key
EOF
token certtool --provider "$module" --generate-self-signed \
  --load-privkey "$tok;object=gnutls-ec;type=private;pin-value=$pin" \
  --template "$work/cert.tmpl" --outfile "$work/gnutls-ec.crt"
local_cmd certtool --verify --load-ca-certificate "$work/gnutls-ec.crt" --infile "$work/gnutls-ec.crt"
expect 'Chain verification output: Verified' "certtool verifies the self-signed certificate"
local_cmd openssl verify -check_ss_sig -CAfile "$work/gnutls-ec.crt" "$work/gnutls-ec.crt"
expect ': OK$' "OpenSSL verifies it too"
token "${login[@]}" --write --load-certificate "$work/gnutls-ec.crt" --label gnutls-cert "$tok"
token "${p11tool[@]}" --list-all-certs "$tok"
expect 'Label: gnutls-cert$' "the certificate is on the token"

step "Rename the key pair (p11tool --set-label; needs one object per URI)"
token "${login[@]}" --set-label gnutls-ec-renamed "$tok;object=gnutls-ec;type=private"
token "${login[@]}" --set-label gnutls-ec-renamed "$tok;object=gnutls-ec;type=public"
ok "private and public key relabelled"

step "List all objects"
token "${login[@]}" --list-all "$tok"
[ "$(grep -Ec 'Label: gnutls-ec-renamed$' "$last")" -eq 2 ] || fail "gnutls-ec-renamed is not listed twice"
ok "gnutls-ec-renamed is listed as private and public key"
grep -Eq 'Label: gnutls-ec$' "$last" && fail "the old label gnutls-ec is still listed"
ok "the old label is gone"
token "${login[@]}" --test-sign "$tok;object=gnutls-ec-renamed"
expect 'Verifying against public key in the token\.\.\. ok' "the renamed key still signs and verifies"

printf '\np11tool: all steps passed\n'
