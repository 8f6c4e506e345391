#!/usr/bin/env bash
# CPU time the audit writer thread spends per record, in a real run.
#
#   benches/writer_cpu.sh [CASE] [N] [RUNS]   (default: ecdsa-p256-sign 100000 3)
#
# Builds the release module and the bench binary, then RUNS times runs
#   overhead --callgrind CASE keywarden N
# with the baseline policy and the buffered trail (one record per operation), and
# reads the `keywarden-audit` thread's CPU time from /proc/PID/task/TID/schedstat
# while it runs (the last reading before the process exits; polled every 20 ms, so
# it misses at most the final 20 ms). Prints the writer's and the calling thread's
# nanoseconds per operation. The caller's figure includes set-up; the writer's is
# the one to compare between builds (noise: about ±8 % on the 2-core VM).
set -euo pipefail
cd "$(dirname "$0")/.."

case=${1:-ecdsa-p256-sign}
n=${2:-100000}
runs=${3:-3}

cargo build --release --lib >&2
bin=$(cargo bench --bench overhead --no-run 2>&1 | tee /dev/stderr |
      sed -n 's/.*Executable .*(\(.*overhead-[0-9a-f]*\)).*/\1/p' | tail -1)
[ -x "$bin" ] || { echo "could not find the overhead bench binary" >&2; exit 1; }

for _ in $(seq "$runs"); do
  KEYWARDEN_BENCH_PROFILE=baseline "$bin" --callgrind "$case" keywarden "$n" >/dev/null 2>&1 &
  pid=$!
  writer=0 caller=0
  while kill -0 "$pid" 2>/dev/null; do
    for task in /proc/"$pid"/task/*; do
      if [ "$(cat "$task/comm" 2>/dev/null)" = keywarden-audit ]; then
        v=$(cut -d' ' -f1 "$task/schedstat" 2>/dev/null || true)
        [ -n "$v" ] && writer=$v
      fi
    done
    v=$(cut -d' ' -f1 /proc/"$pid"/task/"$pid"/schedstat 2>/dev/null || true)
    [ -n "$v" ] && caller=$v
    sleep 0.02
  done
  wait "$pid"
  echo "$case: writer $((writer / n)) ns/op, caller $((caller / n)) ns/op"
done
