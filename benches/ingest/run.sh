#!/usr/bin/env bash
# Ingestion throughput through /v1/batch on both stores; figures go to docs/benchmarks/ingest.md.
# Usage: benches/ingest/run.sh [EVENTS] [OUT_DIR]
# Needs PostgreSQL at $CANDOR_BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres).
set -euo pipefail
cd "$(dirname "$0")/../.."
EVENTS=${1:-2000000}
OUT=${2:-target/bench-ingest}
PG=${CANDOR_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
mkdir -p "$OUT"
cargo build --release -p candor-bench
BIN=$OUT/candor-bench
cp target/release/candor-bench "$BIN"   # a copy, so a concurrent rebuild cannot swap it mid-run
export CANDOR_LOG__LEVEL=error RUST_LOG=error
{ uname -srm; nproc; grep -m1 'model name' /proc/cpuinfo; free -g | sed -n 2p; } > "$OUT/machine.txt"
for clients in 2; do
  /usr/bin/time -f "wall %e s, user %U s, sys %S s, cpu %P" \
    "$BIN" ingest --events "$EVENTS" --clients "$clients" 2>&1 | tee "$OUT/sqlite-c$clients.txt"
done
/usr/bin/time -f "wall %e s, user %U s, sys %S s, cpu %P" \
  "$BIN" ingest --events "$EVENTS" --clients 1 --postgres "$PG" 2>&1 | tee "$OUT/postgres-c1.txt"
# More than one concurrent batch on PostgreSQL currently deadlocks in Store::ingest (see
# docs/benchmarks/ingest.md); rerun with --clients 8 once the upserts are ordered.
# What encrypting context.ip on every message costs.
"$BIN" ingest --events 200000 --clients 2 --ip-share 0 2>&1 | tee "$OUT/sqlite-noip.txt"
