#!/usr/bin/env bash
# Installs the Debian packages the demo and the test suite need, when missing:
# SoftHSM2 (the real token), and the real clients run through Keywarden.
# Idempotent and quiet when everything is already there. Needs root (or sudo).
set -euo pipefail

packages=(
  softhsm2                  # the token: /usr/lib/softhsm/libsofthsm2.so, softhsm2-util
  opensc                    # pkcs11-tool
  libengine-pkcs11-openssl  # OpenSSL's libp11 "pkcs11" engine
  openssl
  gnutls-bin                # p11tool, certtool
  p11-kit
  openjdk-17-jdk-headless   # SunPKCS11, keytool, jarsigner, javac
  gcc libc6-dev             # the C example and the C test harnesses
  libp11-kit-dev            # pkcs11.h, included by include/keywarden.h
  valgrind                  # instruction counts for the benchmark
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
command -v cargo-nextest >/dev/null 2>&1 || cargo nextest --version >/dev/null 2>&1 || need_nextest=1

if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ "${need_nextest:-0}" = 1 ]; then
  echo "installing: cargo-nextest" >&2
  cargo install --locked cargo-nextest >/dev/null
fi
