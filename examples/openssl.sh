#!/usr/bin/env bash
# OpenSSL 3 with the libp11 "pkcs11" engine through a PKCS#11 module: keys stay on the
# token, named by pkcs11: URIs; signatures and certificates are checked in software.
#
#   examples/openssl.sh MODULE [WORKDIR]
#
# MODULE is the module the engine loads (PKCS11_MODULE_PATH): libkeywarden.so (with
# KEYWARDEN_CONF set) or, for comparison, the token's own module. WORKDIR keeps the
# files made on the way (default: a temporary directory, removed at the end).
# SOFTHSM2_CONF names the token store. TOKEN_LABEL (demo) and USER_PIN (1234) describe
# the token. The engine cannot create keys, so pkcs11-tool makes them, through the
# same MODULE. Objects made here are labelled ossl-*; a re-run first removes those of
# an earlier run. Exits non-zero at the first failed step.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=examples/lib/recipe.sh
. "$here/lib/recipe.sh"
recipe_init "$@"

export PKCS11_MODULE_PATH=$module
p11=(pkcs11-tool --module "$module" --token-label "$label" --login --pin "$pin")
ec_key="pkcs11:token=$label;object=ossl-ec;type=private;pin-value=$pin"
ec_pub="pkcs11:token=$label;object=ossl-ec;type=public"
rsa_key="pkcs11:token=$label;object=ossl-rsa;type=private;pin-value=$pin"
rsa_pub="pkcs11:token=$label;object=ossl-rsa;type=public"
engine=(-engine pkcs11 -keyform engine)

printf 'OpenSSL %s with the pkcs11 engine, PKCS11_MODULE_PATH=%s, token "%s"\n' \
  "$(openssl version | cut -d' ' -f2)" "$module" "$label"

step "Remove ossl-* objects left by an earlier run"
for obj in ossl-ec:privkey ossl-ec:pubkey ossl-rsa:privkey ossl-rsa:pubkey; do
  for _ in 1 2 3 4 5; do
    "${p11[@]}" --delete-object --label "${obj%%:*}" --type "${obj##*:}" >/dev/null 2>&1 || break
  done
done
ok "no ossl-* objects left"

step "Create an EC P-256 and an RSA-2048 key pair on the token (pkcs11-tool)"
token "${p11[@]}" --keypairgen --key-type EC:prime256v1 --id 21 --label ossl-ec
expect 'Private Key Object; EC' "EC key pair ossl-ec generated"
token "${p11[@]}" --keypairgen --key-type rsa:2048 --id 22 --label ossl-rsa
expect 'Private Key Object; RSA' "RSA key pair ossl-rsa generated"

step "Export the public keys through the engine"
token openssl pkey -engine pkcs11 -inform engine -pubin -in "$ec_pub" -out "$work/ec.pub.pem"
token openssl pkey -engine pkcs11 -inform engine -pubin -in "$rsa_pub" -out "$work/rsa.pub.pem"
local_cmd openssl pkey -pubin -in "$work/ec.pub.pem" -noout -text
expect 'ASN1 OID: prime256v1' "EC public key exported (P-256)"
local_cmd openssl pkey -pubin -in "$work/rsa.pub.pem" -noout -text
expect 'Public-Key: \(2048 bit\)' "RSA public key exported (2048 bits)"

printf 'Keywarden demo data: signed by a key that never leaves the token\n' >"$work/data.txt"
cp "$work/data.txt" "$work/altered.txt"
printf 'one more line\n' >>"$work/altered.txt"

step "ECDSA: sign on the token, verify in software"
token openssl dgst -sha256 "${engine[@]}" -sign "$ec_key" -out "$work/ec.sig" "$work/data.txt"
local_cmd openssl dgst -sha256 -verify "$work/ec.pub.pem" -signature "$work/ec.sig" "$work/data.txt"
expect '^Verified OK' "ECDSA-SHA256 signature verifies"
local_rc openssl dgst -sha256 -verify "$work/ec.pub.pem" -signature "$work/ec.sig" "$work/altered.txt"
[ "$rc" -ne 0 ] || fail "the signature verified for altered data"
ok "the signature does not verify for altered data"

step "RSA: PKCS#1 v1.5 and PSS signatures on the token, verified in software"
token openssl dgst -sha256 "${engine[@]}" -sign "$rsa_key" -out "$work/rsa.sig" "$work/data.txt"
local_cmd openssl dgst -sha256 -verify "$work/rsa.pub.pem" -signature "$work/rsa.sig" "$work/data.txt"
expect '^Verified OK' "RSA PKCS#1 v1.5 SHA-256 signature verifies"
token openssl dgst -sha256 "${engine[@]}" -sign "$rsa_key" -sigopt rsa_padding_mode:pss \
  -sigopt rsa_pss_saltlen:32 -out "$work/rsa-pss.sig" "$work/data.txt"
local_cmd openssl dgst -sha256 -verify "$work/rsa.pub.pem" -sigopt rsa_padding_mode:pss \
  -signature "$work/rsa-pss.sig" "$work/data.txt"
expect '^Verified OK' "RSA-PSS SHA-256 signature verifies"

step "RSA: encrypt in software, decrypt on the token (OAEP SHA-256, then PKCS#1 v1.5)"
oaep=(-pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256)
local_cmd openssl pkeyutl -encrypt -pubin -inkey "$work/rsa.pub.pem" "${oaep[@]}" \
  -in "$work/data.txt" -out "$work/data.oaep"
token openssl pkeyutl -decrypt "${engine[@]}" -inkey "$rsa_key" "${oaep[@]}" \
  -in "$work/data.oaep" -out "$work/data.oaep.out"
cmp -s "$work/data.txt" "$work/data.oaep.out" || fail "OAEP decryption gave other bytes"
ok "OAEP ciphertext decrypts to the original data"
local_cmd openssl pkeyutl -encrypt -pubin -inkey "$work/rsa.pub.pem" \
  -in "$work/data.txt" -out "$work/data.pkcs1"
token openssl pkeyutl -decrypt "${engine[@]}" -inkey "$rsa_key" \
  -in "$work/data.pkcs1" -out "$work/data.pkcs1.out"
cmp -s "$work/data.txt" "$work/data.pkcs1.out" || fail "PKCS#1 v1.5 decryption gave other bytes"
ok "PKCS#1 v1.5 ciphertext decrypts to the original data"

step "A self-signed certificate and a CSR signed by the token's EC key"
token openssl req -new -x509 -days 1 -sha256 "${engine[@]}" -key "$ec_key" \
  -subj "/CN=Keywarden demo/O=Keywarden" -out "$work/ec.crt"
local_cmd openssl x509 -in "$work/ec.crt" -noout -text
expect 'Signature Algorithm: ecdsa-with-SHA256' "certificate signed with ecdsa-with-SHA256"
expect 'Subject: CN ?= ?Keywarden demo, O ?= ?Keywarden' "certificate subject is CN=Keywarden demo"
local_cmd openssl x509 -in "$work/ec.crt" -noout -pubkey
cmp -s "$last" "$work/ec.pub.pem" || fail "the certificate holds another public key"
ok "the certificate holds the token key's public key"
local_cmd openssl verify -check_ss_sig -CAfile "$work/ec.crt" "$work/ec.crt"
expect ': OK$' "openssl verify -check_ss_sig accepts the self-signature"
token openssl req -new -sha256 "${engine[@]}" -key "$ec_key" -subj "/CN=keywarden-csr" -out "$work/ec.csr"
local_cmd openssl req -in "$work/ec.csr" -noout -verify
expect 'verify OK' "the CSR's signature verifies"

printf '\nopenssl: all steps passed\n'
