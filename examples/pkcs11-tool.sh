#!/usr/bin/env bash
# OpenSC's pkcs11-tool through a PKCS#11 module: its own self-test, and an admin
# flow (EC, RSA and AES key generation, sign and verify, encrypt and decrypt, list,
# delete, change the user PIN, re-initialise it with the SO PIN). The self-test
# reports are kept as WORKDIR/pkcs11-tool-test-1.txt (EC key) and -2.txt (RSA key).
#
#   examples/pkcs11-tool.sh MODULE [WORKDIR]
#
# MODULE is the module the client loads: libkeywarden.so (with KEYWARDEN_CONF set) or,
# for comparison, the token's own module. WORKDIR keeps the files made on the way
# (default: a temporary directory, removed at the end). SOFTHSM2_CONF names the token
# store. TOKEN_LABEL (demo), USER_PIN (1234) and SO_PIN (123456) describe the token.
# Objects made here are labelled p11t-*; a re-run first removes those of an earlier
# run. Exits non-zero at the first failed step.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=examples/lib/recipe.sh
. "$here/lib/recipe.sh"
recipe_init "$@"
so_pin=${SO_PIN:-123456}
temp_pin=${TEMP_PIN:-87654321}

p11=(pkcs11-tool --module "$module" --token-label "$label")
user=("${p11[@]}" --login --pin "$pin")

# The --test self-test ends in "No errors", except for one step SoftHSM 2.6.1 cannot do:
# RSA-OAEP with a label (CKR_ARGUMENTS_BAD at C_DecryptInit, also without Keywarden).
# The step only runs when an RSA key is on the token; it aborts the rest of the test.
# Any other error fails the recipe.
check_self_test() {
  cp "$last" "$work/$1"
  if [ "$rc" -eq 0 ] && grep -q '^No errors' "$last"; then
    ok "pkcs11-tool --test: no errors"
  elif [ "$rc" -ne 0 ] && grep -q 'encoding parameter (Label) present' "$last" &&
    grep -q 'C_DecryptInit failed: rv = CKR_ARGUMENTS_BAD' "$last" &&
    [ "$(grep -c '^error:' "$last")" -eq 1 ]; then
    known "pkcs11-tool --test stopped at RSA-OAEP with a label: SoftHSM 2.6.1 does not support OAEP labels (CKR_ARGUMENTS_BAD), the same without Keywarden"
  else
    fail "pkcs11-tool --test reported errors (output in $work/$1)"
  fi
}

printf 'pkcs11-tool through MODULE=%s, token "%s"\n' "$module" "$label"

step "Find the token \"$label\""
token pkcs11-tool --module "$module" --list-token-slots
expect "token label +: $label\$" "token \"$label\" is listed"
token "${p11[@]}" --show-info
expect 'Cryptoki version' "library information answered"
token "${p11[@]}" --list-mechanisms
expect 'ECDSA' "mechanism list includes ECDSA"

step "Remove p11t-* objects left by an earlier run"
for obj in p11t-ec:privkey p11t-ec:pubkey p11t-rsa:privkey p11t-rsa:pubkey p11t-aes:secrkey; do
  for _ in 1 2 3 4 5; do
    "${user[@]}" --delete-object --label "${obj%%:*}" --type "${obj##*:}" >/dev/null 2>&1 || break
  done
done
ok "no p11t-* objects left"

# pkcs11-tool --test walks the private keys in the order the token lists them, and
# tests all mechanisms only on the first. SoftHSM's order is not stable, so each
# self-test here runs with exactly one private key of ours on the token: the EC key
# first, then (after the EC pair is deleted) the RSA key. On a fresh token the two
# reports are then reproducible, and tests/clients.rs compares them with direct runs.
step "Generate an EC P-256 key pair and an AES-256 key on the token"
token "${user[@]}" --keypairgen --key-type EC:prime256v1 --id 11 --label p11t-ec
expect 'Private Key Object; EC' "EC key pair p11t-ec generated"
token "${user[@]}" --keygen --key-type AES:32 --id 13 --label p11t-aes
expect 'Secret Key Object; AES length 32' "AES-256 key p11t-aes generated"

step "Run pkcs11-tool's self-test (EC and AES keys)"
token_rc "${user[@]}" --test
check_self_test pkcs11-tool-test-1.txt

step "Sign with ECDSA on the token; verify on the token and in software"
printf 'Keywarden demo data\n' >"$work/data.txt"
openssl dgst -sha256 -binary -out "$work/data.sha256" "$work/data.txt"
token "${user[@]}" --sign --mechanism ECDSA --id 11 --signature-format openssl \
  -i "$work/data.sha256" -o "$work/ec.sig"
ok "ECDSA signature made"
token "${user[@]}" --verify --mechanism ECDSA --id 11 --signature-format openssl \
  -i "$work/data.sha256" --signature-file "$work/ec.sig"
expect 'Signature is valid' "the token verifies the signature"
token "${p11[@]}" --read-object --type pubkey --id 11 -o "$work/ec.pub.der"
local_cmd openssl pkey -pubin -inform DER -in "$work/ec.pub.der" -out "$work/ec.pub.pem"
local_cmd openssl dgst -sha256 -verify "$work/ec.pub.pem" -signature "$work/ec.sig" "$work/data.txt"
expect '^Verified OK' "OpenSSL verifies the signature with the exported public key"

step "Encrypt and decrypt with the AES key (AES-CBC)"
printf 'sixty-four bytes of plaintext for the AES-CBC round trip.......\n' >"$work/plain.bin"
iv=000102030405060708090a0b0c0d0e0f
token "${user[@]}" --encrypt --mechanism AES-CBC --id 13 --iv "$iv" -i "$work/plain.bin" -o "$work/cipher.bin"
cmp -s "$work/plain.bin" "$work/cipher.bin" && fail "ciphertext equals plaintext"
[ "$(wc -c <"$work/cipher.bin")" -eq 64 ] || fail "AES-CBC ciphertext is not 64 bytes"
ok "64 bytes encrypted"
token "${user[@]}" --decrypt --mechanism AES-CBC --id 13 --iv "$iv" -i "$work/cipher.bin" -o "$work/plain.out"
cmp -s "$work/plain.bin" "$work/plain.out" || fail "AES-CBC decryption gave other bytes"
ok "decryption gives the plaintext back"

step "List the objects, delete the EC key pair, list again"
token "${user[@]}" --list-objects
expect 'label: +p11t-ec$' "p11t-ec is listed"
expect 'label: +p11t-aes$' "p11t-aes is listed"
token "${user[@]}" --delete-object --type privkey --id 11
token "${user[@]}" --delete-object --type pubkey --id 11
token "${user[@]}" --list-objects
grep -q 'label: *p11t-ec$' "$last" && fail "p11t-ec is still listed"
grep -q 'label: *p11t-aes$' "$last" || fail "p11t-aes disappeared"
ok "p11t-ec is gone; p11t-aes remains"

step "Generate an RSA-2048 key pair"
token "${user[@]}" --keypairgen --key-type rsa:2048 --id 12 --label p11t-rsa
expect 'Private Key Object; RSA' "RSA key pair p11t-rsa generated"

step "Run the self-test again, now with the RSA key"
token_rc "${user[@]}" --test
check_self_test pkcs11-tool-test-2.txt

step "Sign with RSA (PKCS#1 v1.5 and PSS); verify in software"
token "${user[@]}" --sign --mechanism SHA256-RSA-PKCS --id 12 -i "$work/data.txt" -o "$work/rsa.sig"
token "${user[@]}" --sign --mechanism SHA256-RSA-PKCS-PSS --id 12 -i "$work/data.txt" -o "$work/rsa-pss.sig"
token "${p11[@]}" --read-object --type pubkey --id 12 -o "$work/rsa.pub.der"
local_cmd openssl pkey -pubin -inform DER -in "$work/rsa.pub.der" -out "$work/rsa.pub.pem"
local_cmd openssl dgst -sha256 -verify "$work/rsa.pub.pem" -signature "$work/rsa.sig" "$work/data.txt"
expect '^Verified OK' "PKCS#1 v1.5 signature verifies"
local_cmd openssl dgst -sha256 -verify "$work/rsa.pub.pem" -sigopt rsa_padding_mode:pss \
  -signature "$work/rsa-pss.sig" "$work/data.txt"
expect '^Verified OK' "PSS signature verifies"

# No RSA decryption here: pkcs11-tool 0.23 decrypts with C_DecryptUpdate (SoftHSM 2.6.1
# has no multi-part RSA) and sends OAEP parameters without CKZ_DATA_SPECIFIED (SoftHSM
# answers CKR_ARGUMENTS_BAD), directly as through Keywarden. examples/openssl.sh does it.

step "Change the user PIN, then set it back with the SO PIN"
token "${p11[@]}" --change-pin --pin "$pin" --new-pin "$temp_pin"
ok "user PIN changed"
token_rc "${user[@]}" --list-objects --type privkey
if [ "$rc" -eq 0 ] || ! grep -q 'CKR_PIN_INCORRECT' "$last"; then
  fail "the old PIN is not refused"
fi
ok "the old PIN is refused (CKR_PIN_INCORRECT)"
token "${p11[@]}" --login --pin "$temp_pin" --list-objects --type privkey
expect 'label: +p11t-rsa$' "the new PIN logs in and sees the private key"
token "${p11[@]}" --login --login-type so --so-pin "$so_pin" --init-pin --new-pin "$pin"
expect 'successfully initialized' "the SO re-initialised the user PIN"
token "${user[@]}" --list-objects --type privkey
expect 'label: +p11t-rsa$' "the original PIN logs in again"

printf '\npkcs11-tool: all steps passed\n'
