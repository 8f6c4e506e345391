#!/usr/bin/env bash
# Creates a private SoftHSM2 token and a Keywarden configuration in front of it.
#
#   softhsm-config/make-token.sh DIR [LABEL] [SO_PIN] [USER_PIN]
#
# DIR gets softhsm2.conf, tokens/, and (through `keywarden init`, when the binary is
# given in $KEYWARDEN_BIN) keywarden.toml with store/ and audit/. Prints the two
# export lines to use. Defaults: label "demo", SO PIN 123456, user PIN 1234.
set -euo pipefail
dir=${1:?usage: make-token.sh DIR [LABEL] [SO_PIN] [USER_PIN]}
label=${2:-demo}
so_pin=${3:-123456}
pin=${4:-1234}
here=$(cd "$(dirname "$0")" && pwd)

mkdir -p "$dir/tokens"
dir=$(cd "$dir" && pwd)
sed "s#@TOKENDIR@#$dir/tokens#" "$here/softhsm2.conf.in" > "$dir/softhsm2.conf"
export SOFTHSM2_CONF=$dir/softhsm2.conf
softhsm2-util --init-token --free --label "$label" --so-pin "$so_pin" --pin "$pin" >/dev/null

softhsm_module=${SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
if [ -n "${KEYWARDEN_BIN:-}" ]; then
  "$KEYWARDEN_BIN" init --dir "$dir" --backend "$softhsm_module" --profile transparent >/dev/null
fi
echo "export SOFTHSM2_CONF=$dir/softhsm2.conf"
[ -f "$dir/keywarden.toml" ] && echo "export KEYWARDEN_CONF=$dir/keywarden.toml"
exit 0
