#!/usr/bin/env bash
# Live recommendation serving benchmark (docs/benchmarks/serving.md).
#   benches/recommend/serving.sh [extra `candor-bench recommend` flags]
# Builds the release binary, runs the in-process and in-process-client HTTP measurements, then
# holds the server and drives it with wrk (a separate process; still the same 2 cores).
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -p candor-bench
out=$(mktemp)
./target/release/candor-bench recommend --hold-secs 60 "$@" | tee "$out" &
pid=$!
until grep -q "holding the server" "$out" 2>/dev/null; do
  kill -0 $pid 2>/dev/null || exit 1
  sleep 2
done
url=$(grep "holding the server" "$out" | sed -E 's#.*(http://[0-9.:]+)/.*#\1#')
key=$(grep "holding the server" "$out" | sed -E 's#.*Bearer ##')
served=$(grep "holding the server" "$out" | sed -E 's#.*N < ([0-9]+).*#\1#')
for c in 16 64; do
  echo "== wrk -t2 -c$c -d20s"
  WRK_KEY=$key WRK_SERVED=$served wrk -t2 -c$c -d20s --latency \
    -s benches/recommend/wrk_recommend.lua "$url" | grep -v "^HTTP"
done
wait $pid
