#!/usr/bin/env bash
# The Keywarden demo: real PKCS#11 clients use a SoftHSM token through Keywarden.
#
#   examples/demo.sh [WORKDIR]
#
# Installs what is missing (softhsm-config/install-deps.sh), builds Keywarden, makes
# a fresh demo token and a Keywarden configuration in WORKDIR (default
# ${TMPDIR:-/tmp}/keywarden-demo; the token and logs of an earlier run there are
# replaced), runs `keywarden doctor`, then routes pkcs11-tool, OpenSSL, Java and
# p11tool through libkeywarden.so with the recipes in examples/, and finally puts the
# baseline policy in force and shows what it allows and refuses, and why, and the
# audit trail all of it left (tail, refusals, verify). Prints each
# step and its result; the full output of every recipe is kept in WORKDIR/logs.
#
# CARGO_PROFILE=release builds and uses the release module (default: debug, quicker
# to build on a fresh clone). VERBOSE=1 prints the recipes' full output.
# Exits 0 when every client passed.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
. "$repo/softhsm-config/need-rust.sh"
work=${1:-${TMPDIR:-/tmp}/keywarden-demo}
profile=${CARGO_PROFILE:-debug}
label=demo
so_pin=123456
pin=1234

say() { printf '%s\n' "$*"; }
if [ -t 1 ]; then
  banner() { printf '\n\033[1m### %s\033[0m\n' "$*"; }
else
  banner() { printf '\n### %s\n' "$*"; }
fi

banner "1. Install what is missing (softhsm-config/install-deps.sh)"
"$repo/softhsm-config/install-deps.sh"
say "SoftHSM $(softhsm2-util --version), OpenSC $(dpkg-query -W -f='${Version}' opensc 2>/dev/null || echo '?'),\
 $(openssl version | cut -d' ' -f1-2), $(java -version 2>&1 | head -n1), p11tool $(p11tool --version 2>&1 | sed -n '1s/^p11tool //p')"

banner "2. Build Keywarden ($profile)"
cargo_args=(build --manifest-path "$repo/Cargo.toml")
[ "$profile" = release ] && cargo_args+=(--release)
cargo "${cargo_args[@]}"
target=${CARGO_TARGET_DIR:-$repo/target}
case $target in /*) ;; *) target=$repo/$target ;; esac
module=$target/$profile/libkeywarden.so
keywarden=$target/$profile/keywarden
if [ ! -f "$module" ] || [ ! -x "$keywarden" ]; then
  say "the build did not produce $module and $keywarden"
  exit 1
fi
say "module: $module"
say "CLI:    $keywarden"

banner "3. A fresh SoftHSM token \"$label\" and a Keywarden configuration in front of it"
mkdir -p "$work"
work=$(cd "$work" && pwd)
rm -rf "$work/token" "$work/logs" "$work/files"
mkdir -p "$work/logs" "$work/files"
say "\$ KEYWARDEN_BIN=$keywarden softhsm-config/make-token.sh $work/token $label $so_pin $pin"
KEYWARDEN_BIN=$keywarden "$repo/softhsm-config/make-token.sh" "$work/token" "$label" "$so_pin" "$pin" | sed 's/^/  /'
say "(those two lines point your own shell at this token and configuration)"
export SOFTHSM2_CONF=$work/token/softhsm2.conf
export KEYWARDEN_CONF=$work/token/keywarden.toml
say "Applications now load $module instead of /usr/lib/softhsm/libsofthsm2.so;"
say "Keywarden reads KEYWARDEN_CONF and forwards every call to SoftHSM:"
grep -Ev '^(#|$)' "$KEYWARDEN_CONF" | sed 's/^/  /'

banner "4. keywarden doctor"
"$keywarden" doctor | sed 's/^/  /'

# Every command that loads the module logs Keywarden's start-up line at this level:
# proof that the client went through Keywarden, shown with each command below.
export KEYWARDEN_LOG=info

results=()
failed=0
n=4
run_client() {
  local script=$1 title=$2 story=$3 log rc=0 started commands
  n=$((n + 1))
  banner "$n. $title"
  say "$story"
  log=$work/logs/${script%.sh}.log
  TOKEN_LABEL=$label USER_PIN=$pin SO_PIN=$so_pin \
    "$repo/examples/$script" "$module" "$work/files/${script%.sh}" >"$log" 2>&1 || rc=$?
  if [ "${VERBOSE:-0}" = 1 ]; then
    cat "$log"
  else
    # Steps, commands and checks; each command that loaded the module is followed by
    # Keywarden's log line (shortened here).
    grep -E '^(==>|  \$|  \(no token\) \$|[[:space:]]+(ok|known):|[[:space:]]*FAILED)|started over' "$log" |
      sed -E 's/^ *\[[^]]*INFO *\] (keywarden [^ ]+ started over [^ ]+).*/      -> \1/'
  fi
  commands=$(grep -c '^  \$' "$log" || true)
  started=$(grep -c 'keywarden .* started over' "$log" || true)
  if [ "$rc" -eq 0 ]; then
    results+=("$(printf '%-12s passed: %s commands through Keywarden (%s module start-ups logged)' "$title" "$commands" "$started")")
  else
    failed=1
    results+=("$(printf '%-12s FAILED (exit %s): see %s' "$title" "$rc" "$log")")
    say "--- last lines of $log:"
    tail -n 30 "$log"
  fi
}

run_client pkcs11-tool.sh "pkcs11-tool" \
  "OpenSC's pkcs11-tool: self-test, EC/RSA/AES keys, sign, verify, encrypt, decrypt, delete, PIN change and SO PIN reset."
run_client openssl.sh "OpenSSL" \
  "OpenSSL 3 with the libp11 engine: sign with token keys named by pkcs11: URIs, verify in software, decrypt, self-signed certificate and CSR."
run_client java.sh "Java" \
  "Java's SunPKCS11: keytool keys and certificate, jarsigner sign and verify, and a JCA program (SHA256withECDSA, AES/GCM/NoPadding)."
run_client p11tool.sh "p11tool" \
  "GnuTLS's p11tool and certtool: generate, test-sign, certificate on the token, rename, list."

# The same token with the policy engine in force: `keywarden init --profile baseline`
# rewrites the configuration (mode = "enforce") and writes a commented policy.toml.
# Each step shows the client's answer and, from Keywarden's log, the rule that decided.
n=$((n + 1))
banner "$n. The same token under the baseline policy"
"$keywarden" init --dir "$work/token" --backend "${SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}" \
  --profile baseline --force | sed 's/^/  /'
say "\$ keywarden policy check --strict $work/token/policy.toml"
"$keywarden" policy check --strict "$work/token/policy.toml" | sed 's/^/  /'
p11=(pkcs11-tool --module "$module" --token-label "$label" --login --pin "$pin")
# policy_step EXPECT TEXT CMD...: runs CMD through Keywarden; its output must contain
# EXPECT (a return code name, or "ALLOWED" for success); prints Keywarden's decision.
policy_step() {
  local expect=$1 text=$2 out rc=0
  shift 2
  say ""
  say "  $text"
  say "  \$ ${*/#$module/\$MODULE}"
  out=$("$@" 2>&1) || rc=$?
  printf '%s\n' "$out" | grep -E 'refused by policy|CKR_[A-Z_]+' | sed -E \
    -e 's/^ *\[[^]]*INFO *\] /      keywarden: /' -e 's/; session .*//' -e 's/^error: /      /' || true
  if { [ "$expect" = ALLOWED ] && [ "$rc" -eq 0 ]; } || { [ "$expect" != ALLOWED ] && printf '%s' "$out" | grep -q "$expect"; }; then
    say "    ok: ${expect/ALLOWED/allowed}"
  else
    say "    FAILED: expected $expect (exit $rc)"
    printf '%s\n' "$out" | tail -n 5
    failed=1
  fi
}
policy_step CKR_TEMPLATE_INCONSISTENT "RSA-1024 is below the baseline's minimum (2048):" \
  "${p11[@]}" --keypairgen --key-type rsa:1024 --label demo-weak
policy_step ALLOWED "An EC P-256 key pair is within policy:" \
  "${p11[@]}" --keypairgen --key-type EC:prime256v1 --label demo-policy-ec --id 77
printf 'data to sign\n' >"$work/files/policy-data"
policy_step ALLOWED "Signing with it (rule use-keys):" \
  "${p11[@]}" --sign --mechanism ECDSA --id 77 -i "$work/files/policy-data" -o "$work/files/policy-sig"
policy_step CKR_TEMPLATE_INCONSISTENT "An AES key that is not sensitive (pkcs11-tool's default) needs a rule allowing export:" \
  "${p11[@]}" --keygen --key-type AES:32 --label demo-aes
policy_step ALLOWED "The same AES key, sensitive:" \
  "${p11[@]}" --keygen --key-type AES:32 --label demo-aes --sensitive
say "    (the key was made; pkcs11-tool then tries to print its value, which the token never"
say "    reveals for a sensitive key (CKR_ATTRIBUTE_SENSITIVE): Keywarden refuses and records"
say "    that read as read-sensitive-attribute, and pkcs11-tool prints its warning)"
policy_step CKR_TEMPLATE_INCONSISTENT "A key labelled high-* is classified High, above the users' clearance:" \
  "${p11[@]}" --keypairgen --key-type EC:prime256v1 --label high-payments
say ""
say "  Asking the policy before deploying (keywarden policy explain):"
for args in "--user $(id -un) --key demo-policy-ec --key-class private-key --op sign --mech CKM_ECDSA" \
  "--user $(id -un) --key high-payments --key-class private-key --op sign --mech CKM_ECDSA"; do
  say "  \$ keywarden policy explain $args"
  # shellcheck disable=SC2086 # the arguments are word-split on purpose
  "$keywarden" policy explain $args | sed 's/^/    /' || true
done
if [ "$failed" -eq 0 ]; then
  results+=("$(printf '%-12s passed: refusals and permissions as the baseline policy says' "Policy")")
else
  results+=("$(printf '%-12s FAILED: see above' "Policy")")
fi

banner "The audit trail (keywarden audit)"
say "Every call that matters above was recorded: one record per operation (bytes,"
say "mechanism, key), logins, sessions, key creation, and each refusal with its rule."
say "\$ keywarden audit tail -n 6"
"$keywarden" audit tail -n 6 | sed 's/^/  /' || failed=1
say "\$ keywarden audit search --denied   (the refusals, with the rule that decided)"
"$keywarden" audit search --denied | tail -n 6 | sed 's/^/  /' || failed=1
say "\$ keywarden audit verify"
if "$keywarden" audit verify | sed 's/^/  /'; then
  results+=("$(printf '%-12s passed: %s records, chain intact' "Audit" \
    "$("$keywarden" audit search --format jsonl | wc -l)")")
else
  results+=("$(printf '%-12s FAILED: keywarden audit verify' "Audit")")
  failed=1
fi

banner "Summary"
for r in "${results[@]}"; do say "  $r"; done
say ""
say "The clients first ran in transparent mode: Keywarden passed their calls on to"
say "SoftHSM (tests/clients.rs runs the same recipes directly against SoftHSM too and"
say "checks that both ways end alike). Then the baseline policy decided, and each"
say "refusal named its rule. The audit trail recorded both phases (the security events"
say "while transparent, every operation under the policy), and \`keywarden"
say "audit verify\` checked its hash chain (this demo configures no seal key; with"
say "\`keywarden init --audit-token LABEL\` the chain head is also signed on the token)."
say "Token, configuration and logs: $work"
exit "$failed"
