#!/usr/bin/env bash
# Runs every test: installs what is missing, then the whole suite under
# cargo-nextest (one process per test, as SoftHSM keeps per-process state).
set -euo pipefail
cd "$(dirname "$0")/.."
. softhsm-config/need-rust.sh
softhsm-config/install-deps.sh
# Integration tests load target/debug/libkeywarden.so and run target/debug/keywarden;
# building the test targets alone produces only the rlib, so build the cdylib first.
cargo build --locked --lib --bins
cargo nextest run --locked --no-fail-fast "$@"
