#!/usr/bin/env bash
# Instructions Keywarden adds per forwarded PKCS#11 call, counted with callgrind.
#
#   benches/callgrind.sh [CASE...]        (default: every single-threaded case)
#
# Builds the release module and the bench binary, then, for each case and each
# path (SoftHSM directly, SoftHSM through libkeywarden.so), runs
#   overhead --callgrind CASE PATH N
# under `valgrind --tool=callgrind --collect-atstart=no
# --toggle-collect=kw_bench_measured`: only the N operations inside the measured
# function are counted; setup and a warm-up run outside it.
#
# Two numbers per case, both per forwarded call (an operation is 1-3 calls):
#   extra  = (Ir_keywarden - Ir_direct) / (N * calls)      whole measured loop
#   own    = (Ir of calls into libkeywarden.so - Ir of its calls into the backend)
#            / (N * calls), from the keywarden run alone
# They agree where the backend is deterministic. Where it is not (ECDSA nonces, RSA
# blinding, the RNG) `extra` carries the backend's noise and `own` is the figure.
# Also prints, per object, the self-cost difference between the two runs.
#
# Environment: CG_SCALE multiplies every N (default 1); CG_KEEP=DIR keeps the
# callgrind.out files in DIR (they can be read with callgrind_annotate).
set -euo pipefail
cd "$(dirname "$0")/.."

cases=("$@")
if [ ${#cases[@]} -eq 0 ]; then
  cases=(get-session-info generate-random-1 get-1-attribute get-3-attributes
         open-close-session find-by-label sha256-4k-digest aes256-gcm-1k-encrypt
         ecdsa-p256-sign rsa2048-sha256-sign)
fi
scale=${CG_SCALE:-1}
iterations() {
  case $1 in
    get-session-info|generate-random-1|get-1-attribute|get-3-attributes|open-close-session) echo 20000 ;;
    find-by-label) echo 5000 ;;
    sha256-4k-digest|aes256-gcm-1k-encrypt) echo 2000 ;;
    ecdsa-p256-sign) echo 200 ;;
    rsa2048-sha256-sign) echo 20 ;;
    *) echo 1000 ;;
  esac
}

command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }
cargo build --release --lib >&2
bin=$(cargo bench --bench overhead --no-run 2>&1 | tee /dev/stderr |
      sed -n 's/.*Executable .*(\(.*overhead-[0-9a-f]*\)).*/\1/p' | tail -1)
[ -x "$bin" ] || { echo "could not find the overhead bench binary" >&2; exit 1; }

out=${CG_KEEP:-$(mktemp -d)}
mkdir -p "$out"
[ -n "${CG_KEEP:-}" ] || trap 'rm -rf "$out"' EXIT

# Totals, and the keywarden-own cost: inclusive cost of the calls the bench binary
# makes into libkeywarden.so minus the inclusive cost of the calls libkeywarden.so
# makes into the backend. Also the self cost per object ("self:<object> <Ir>").
analyse() {
  awk '
    function resolve(s,   id, rest) {
      if (match(s, /^\([0-9]+\)/)) {
        id = substr(s, RSTART, RLENGTH); rest = substr(s, RLENGTH + 2)
        if (rest != "") names[id] = rest
        return names[id]
      }
      return s
    }
    /^ob=/     { ob = resolve(substr($0, 4)); next }
    /^cob=/    { cob = resolve(substr($0, 5)); next }
    /^calls=/  { callee = (cob != "" ? cob : ob); cob = ""; incall = 1; next }
    /^summary:/ { total = $2; next }
    /^[0-9+*-]/ {
      n = split($0, f, " "); if (n < 2) { incall = 0; next }
      if (incall) {
        incall = 0
        if (ob ~ /overhead-/ && callee ~ /libkeywarden/) into += f[n]
        if (ob ~ /libkeywarden/ && callee !~ /libkeywarden|ld-linux|libc\.so|libgcc/) out += f[n]
        next
      }
      self[ob] += f[n]
      next
    }
    END {
      printf "total %d\nown %d\n", total, into - out
      for (o in self) { k = o; sub(/.*\//, "", k); printf "self:%s %d\n", k, self[o] }
    }' "$1"
}

value() { awk -v k="$1" '$1 == k { print $2 }' "$2"; }

printf '\nKeywarden %s under callgrind (valgrind %s), %s, %s cores\n\n' \
  "$(git rev-parse --short HEAD)$([ -z "$(git status --porcelain -- src Cargo.toml Cargo.lock)" ] || echo -dirty)" \
  "$(valgrind --version | sed 's/valgrind-//')" "$(date -u '+%Y-%m-%d %H:%M UTC')" "$(nproc)"
printf '| case | one op | N | Ir/op direct | Ir/op keywarden | extra Ir/call | own Ir/call |\n'
printf '|---|---|--:|--:|--:|--:|--:|\n'
breakdown=""
for c in "${cases[@]}"; do
  n=$(( $(iterations "$c") * scale ))
  calls=0
  for p in direct keywarden; do
    log=$(valgrind --tool=callgrind --collect-atstart=no --toggle-collect=kw_bench_measured \
            --callgrind-out-file="$out/$c.$p.out" "$bin" --callgrind "$c" "$p" "$n" 2>"$out/$c.$p.err") ||
      { cat "$out/$c.$p.err" >&2; exit 1; }
    calls=$(sed -n 's/.*calls_per_op=\([0-9]*\).*/\1/p' <<<"$log")
    analyse "$out/$c.$p.out" > "$out/$c.$p.sum"
  done
  d=$(value total "$out/$c.direct.sum"); k=$(value total "$out/$c.keywarden.sum")
  own=$(value own "$out/$c.keywarden.sum")
  what=$("$bin" --list | sed -n "s/^$c (\(.*\))\$/\1/p")
  awk -v c="$c" -v w="$what" -v n="$n" -v calls="$calls" -v d="$d" -v k="$k" -v own="$own" 'BEGIN {
    printf "| %s | %s | %d | %.0f | %.0f | %.1f | %.1f |\n", c, w, n, d / n, k / n,
      (k - d) / (n * calls), own / (n * calls) }'
  # Self cost per object, keywarden run minus direct run, per call.
  breakdown+=$(awk -v c="$c" -v n="$n" -v calls="$calls" '
    FNR == 1 { file++ }
    /^self:/ { o = substr($1, 6); v[o, file] = $2; seen[o] = 1 }
    END {
      line = ""
      for (o in seen) {
        diff = (v[o, 2] - v[o, 1]) / (n * calls)
        if (diff >= 0.5 || diff <= -0.5) line = line sprintf(" %s %+.1f;", o, diff)
      }
      printf "- %s:%s\n", c, line
    }' "$out/$c.direct.sum" "$out/$c.keywarden.sum")$'\n'
done
printf '\nSelf cost per forwarded call by object (keywarden run minus direct run):\n\n%s' "$breakdown"
[ -z "${CG_KEEP:-}" ] || printf '\ncallgrind.out files kept in %s\n' "$out"
