# Sourced by tests/run.sh and examples/demo.sh before anything is installed or built:
# Keywarden needs a Rust toolchain (cargo and rustc >= 1.85), which is not a Debian
# package of the right version, so it is not installed here. Says so plainly and
# exits instead of failing later with "cargo: command not found".
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"   # rustup's default, not yet on this shell's PATH
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "keywarden: no Rust toolchain found (cargo is not on PATH)." >&2
  echo "  Install Rust 1.85 or newer with rustup (see https://rustup.rs), open a new shell" >&2
  echo "  (or run: . \"\$HOME/.cargo/env\"), then run this command again." >&2
  exit 1
fi
kw_rustc=$(rustc --version 2>/dev/null | awk '{print $2}')
kw_minor=$(printf '%s' "$kw_rustc" | cut -d. -f2)
if [ "$(printf '%s' "$kw_rustc" | cut -d. -f1)" != 1 ] || [ "${kw_minor:-0}" -lt 85 ]; then
  echo "keywarden: Rust ${kw_rustc:-unknown} is too old: 1.85 or newer is needed (rustup update)." >&2
  exit 1
fi
unset kw_rustc kw_minor
