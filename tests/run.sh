#!/usr/bin/env bash
# Runs every test: installs what is missing, then the whole suite under
# cargo-nextest (one process per test, as SoftHSM keeps per-process state).
set -euo pipefail
cd "$(dirname "$0")/.."
softhsm-config/install-deps.sh
cargo nextest run --no-fail-fast "$@"
