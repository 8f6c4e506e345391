#!/usr/bin/env bash
# Java 17's SunPKCS11 provider through a PKCS#11 module: keytool makes an EC key
# pair with a self-signed certificate and an AES key on the token, jarsigner signs
# and verifies a jar with the token key, and examples/java/SignAndEncrypt.java uses
# the keys through JCA (SHA256withECDSA, AES/GCM/NoPadding).
#
#   examples/java.sh MODULE [WORKDIR]
#
# MODULE is the module Java loads: libkeywarden.so (with KEYWARDEN_CONF set) or, for
# comparison, the token's own module. WORKDIR keeps the files made on the way
# (default: a temporary directory, removed at the end). SOFTHSM2_CONF names the token
# store. TOKEN_LABEL (demo) and USER_PIN (1234) describe the token. JAVA_CLASSES may
# name a directory holding a compiled SignAndEncrypt.class (else javac compiles it
# into WORKDIR). The slot ID is looked up by label with pkcs11-tool through MODULE.
# Keystore entries made here are java-ec and java-aes; a re-run first deletes them
# (with pkcs11-tool, faster than a JVM per alias).
# Exits non-zero at the first failed step.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=examples/lib/recipe.sh
. "$here/lib/recipe.sh"
recipe_init "$@"

printf 'Java %s SunPKCS11 through MODULE=%s, token "%s", WORKDIR=%s\n' \
  "$(java -version 2>&1 | sed -n '1s/.*version "\([^"]*\)".*/\1/p')" "$module" "$label" "$work"

step "Find the slot ID of token \"$label\" and write the SunPKCS11 configuration"
token pkcs11-tool --module "$module" --list-token-slots
slot=$(awk -v want="$label" '
  /^Slot [0-9]+ \(0x[0-9a-fA-F]+\)/ { id = $3; gsub(/[():]/, "", id) }
  /^ *token label *:/ { sub(/^ *token label *: /, ""); if ($0 == want) { print id; exit } }
' "$last")
[ -n "$slot" ] || fail "no token labelled \"$label\""
ok "token \"$label\" found"
lib=${module//\\/\\\\}
lib=${lib//&/\\&}
lib=${lib//#/\\#}
sed -e "s#@LIBRARY@#$lib#" -e "s#@SLOT@#$slot#" "$here/java/p11.cfg" >"$work/p11.cfg"
printf '  wrote %s: %s\n' "\$WORKDIR/p11.cfg" "$(grep -v '^#' "$work/p11.cfg" | tr '\n' ' ')"
ks=(-keystore NONE -storetype PKCS11 -addprovider SunPKCS11 -providerArg "$work/p11.cfg" -storepass "$pin")

# SunPKCS11 labels the certificate and the secret key with the alias, and gives the
# private key and its certificate the alias as CKA_ID (the private key gets no label).
step "Remove java-ec and java-aes objects left by an earlier run (pkcs11-tool)"
ec_id=$(printf java-ec | od -An -tx1 | tr -d ' \n')
for obj in "--id $ec_id --type privkey" "--id $ec_id --type pubkey" "--id $ec_id --type cert" \
  "--label java-aes --type secrkey"; do
  for _ in 1 2 3 4 5; do
    # shellcheck disable=SC2086 # $obj is split into its options on purpose
    pkcs11-tool --module "$module" --token-label "$label" --login --pin "$pin" \
      --delete-object $obj >/dev/null 2>&1 || break
  done
done
ok "no java-ec or java-aes objects left"

step "keytool: an EC P-256 key pair with a self-signed certificate, and an AES-256 key"
token keytool -genkeypair "${ks[@]}" -alias java-ec -keyalg EC -groupname secp256r1 \
  -sigalg SHA256withECDSA -dname "CN=Keywarden Java demo" -validity 2
ok "EC key pair java-ec generated on the token"
token keytool -genseckey "${ks[@]}" -alias java-aes -keyalg AES -keysize 256
expect 'Generated 256-bit AES secret key' "AES-256 key java-aes generated on the token"
token keytool -list "${ks[@]}"
expect '^java-ec, PrivateKeyEntry' "keytool lists java-ec as a private key entry"
expect '^java-aes, SecretKeyEntry' "keytool lists java-aes as a secret key entry"
token keytool -exportcert "${ks[@]}" -alias java-ec -rfc -file "$work/java-ec.crt"
local_cmd openssl verify -check_ss_sig -CAfile "$work/java-ec.crt" "$work/java-ec.crt"
expect ': OK$' "the certificate's self-signature (made on the token) verifies in OpenSSL"

step "jarsigner: sign a jar with the token key, then verify it"
mkdir -p "$work/jar"
printf 'Signed through Keywarden by a key on the token.\n' >"$work/jar/hello.txt"
rm -f "$work/app.jar" "$work/app-signed.jar"
local_cmd jar cf "$work/app.jar" -C "$work/jar" hello.txt
token jarsigner "${ks[@]}" -sigalg SHA256withECDSA -signedjar "$work/app-signed.jar" "$work/app.jar" java-ec
expect 'jar signed' "jar signed"
local_cmd jarsigner -verify -verbose -certs "$work/app-signed.jar"
expect '^jar verified' "jarsigner -verify: jar verified"
expect 'CN="?Keywarden Java demo' "the signer is the java-ec certificate"
expect 'META-INF/JAVA-EC\.EC$' "the jar carries the ECDSA signature block META-INF/JAVA-EC.EC"

step "JCA program: SHA256withECDSA and AES/GCM/NoPadding with the token keys"
classes=${JAVA_CLASSES:-}
if [ -z "$classes" ] || [ ! -f "$classes/SignAndEncrypt.class" ]; then
  classes=$work/classes
  local_cmd javac -d "$classes" "$here/java/SignAndEncrypt.java"
fi
token java -cp "$classes" SignAndEncrypt "$work/p11.cfg" "$pin" java-ec java-aes
expect '^all checks passed' "SignAndEncrypt: all checks passed"

printf '\njava: all steps passed\n'
