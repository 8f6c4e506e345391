# Shared helpers of the client recipes in examples/*.sh (sourced, not run).
#
# After `recipe_init "$@"` the recipe has: $module (the PKCS#11 module to load), $work
# (WORKDIR, or a temporary directory removed at exit), $label and $pin (TOKEN_LABEL,
# USER_PIN), and these helpers, which print a uniform narrative the tests compare:
#   step TEXT        "==> TEXT"             ok TEXT     "  ok: TEXT"
#   known TEXT       "  known: TEXT"        fail TEXT   "  FAILED: TEXT", exit 1
#   token CMD...     run a command that loads the module; show it and its output; stop on failure
#   token_rc CMD...  the same, leaving the exit status in $rc
#   local_cmd CMD... / local_rc CMD...  the same for software-only checks ("(no token)")
#   expect PATTERN WHAT  the last command's output must match PATTERN (grep -E)

recipe_init() {
  local usage="usage: $0 MODULE [WORKDIR]"
  module=${1:?$usage}
  label=${TOKEN_LABEL:-demo}
  pin=${USER_PIN:-1234}
  if [ -n "${2:-}" ]; then
    mkdir -p "$2"
    work=$(cd "$2" && pwd)
  else
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
  fi
  last=$work/last.out
}

step() { printf '\n==> %s\n' "$*"; }
ok() { printf '  ok: %s\n' "$*"; }
known() { printf '  known: %s\n' "$*"; }
fail() { printf '  FAILED: %s\n' "$*"; exit 1; }

# shown CMD...: the command as a copy-pasteable line, MODULE and WORKDIR abbreviated.
shown() {
  local a out=""
  for a in "$@"; do
    if [[ $a =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then out+=" $a"; else out+=" '${a//\'/\'\\\'\'}'"; fi
  done
  out=${out//"$module"/\$MODULE}
  printf '%s\n' "${out//"$work"/\$WORKDIR}"
}

# output: the last command's output, indented, at most 40 lines.
output() {
  sed -n '1,40s/^/    /p' "$last"
  local n
  n=$(wc -l <"$last")
  [ "$n" -le 40 ] || printf '    ... (%d more lines)\n' $((n - 40))
}

# run_shown PREFIX CMD...: shows and runs CMD; its exit status is left in $rc.
run_shown() {
  local prefix=$1
  shift
  rc=0
  printf '  %s$%s\n' "$prefix" "$(shown "$@")"
  "$@" >"$last" 2>&1 || rc=$?
  output
}

token_rc() { run_shown "" "$@"; }
token() {
  token_rc "$@"
  [ "$rc" -eq 0 ] || fail "exit status $rc from:$(shown "$@")"
}
local_rc() { run_shown "(no token) " "$@"; }
local_cmd() {
  local_rc "$@"
  [ "$rc" -eq 0 ] || fail "exit status $rc from:$(shown "$@")"
}

expect() { grep -Eq -- "$1" "$last" || fail "$2 (no '$1' in the output)"; ok "$2"; }
