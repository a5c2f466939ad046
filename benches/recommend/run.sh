#!/usr/bin/env bash
# Reproduces docs/benchmarks/recommend.md: EVAL-1 for Candor and for the `implicit` peers on the
# same machine, same split (verified byte-identical), 2 threads each, run one after the other.
#
#   benches/recommend/run.sh                 # all three data sets
#   DATASETS="ml-100k" benches/recommend/run.sh
#   PEER_TUNE=1 benches/recommend/run.sh     # also the widened peer grids (peer_tune.py, slower)
#
# Env: CANDOR_SHARED_DATA (default ../shared/data), PEER_VENV (default /tmp/peer-venv),
#      OUT (default /tmp/candor-recommend-bench), CARGO_TARGET_DIR, THREADS (default 2).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DATA=${CANDOR_SHARED_DATA:-$ROOT/../shared/data}
PEER=${PEER:-$ROOT/../shared/tools/peer_eval1.py}
VENV=${PEER_VENV:-/tmp/peer-venv}
OUT=${OUT:-/tmp/candor-recommend-bench}
THREADS=${THREADS:-2}
DATASETS=${DATASETS:-"ml-100k online-retail ml-1m-partial"}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
mkdir -p "$OUT"

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install implicit==0.7.3 numpy scipy pandas threadpoolctl
fi
(cd "$ROOT" && cargo build --release -p candor-recommend --example eval --example serve_bench)
EVAL="$CARGO_TARGET_DIR/release/examples/eval"

for d in $DATASETS; do
  echo "== $d: peer (implicit 0.7.3, peer_eval1.py)" >&2
  "$VENV/bin/python" "$PEER" --dataset "$d" --data-dir "$DATA" --out "$OUT" --threads "$THREADS" \
      --dump-split "$OUT/peer_split_$d.tsv"
  echo "== $d: Candor, tuned defaults + implicit-equivalent kNN + the peer's ALS grid" >&2
  "$EVAL" --dataset "$d" --data-dir "$DATA" --threads "$THREADS" --repeats 3 --model popularity,item-knn \
      --split-out "$OUT/candor_split_$d.tsv" --json-out "$OUT/candor_${d}_default.json"
  "$EVAL" --dataset "$d" --data-dir "$DATA" --threads "$THREADS" --repeats 3 --model item-knn \
      --knn-k 50 --knn-power 1 --knn-recency 0 --knn-weighting cosine,bm25 \
      --json-out "$OUT/candor_${d}_knn_plain.json"
  "$EVAL" --dataset "$d" --data-dir "$DATA" --threads "$THREADS" --repeats 3 --model item-knn \
      --knn-k 20 --knn-power 2 --knn-recency 1 --knn-recency-unit position \
      --json-out "$OUT/candor_${d}_knn_position.json"
  "$EVAL" --dataset "$d" --data-dir "$DATA" --threads "$THREADS" --repeats 3 --model als \
      --factors 64 --iterations 15 --reg 0.01,0.05,0.1 --alpha 1,10,40 --cg-steps 3 \
      --json-out "$OUT/candor_${d}_als.json"
  if cmp -s "$OUT/peer_split_$d.tsv" "$OUT/candor_split_$d.tsv"; then
    echo "split $d: IDENTICAL to peer_eval1.py --dump-split" | tee "$OUT/split_check_$d.txt" >&2
  else
    echo "split $d: DIFFERS from peer_eval1.py --dump-split" | tee "$OUT/split_check_$d.txt" >&2
    exit 1
  fi
  # ALS fit time, interleaved with implicit (BLAS at 1 and 2 threads), the peer's best alpha and 10
  for a in 1 10; do
    "$VENV/bin/python" "$ROOT/benches/recommend/als_fit.py" --dataset "$d" --eval "$EVAL" \
        --peer "$PEER" --data-dir "$DATA" --threads "$THREADS" --rounds 5 --reg 0.01 --alpha "$a" \
        --out "$OUT/als_fit_${d}_alpha$a.json"
  done
  if [ "${PEER_TUNE:-0}" = 1 ]; then
    "$VENV/bin/python" "$ROOT/benches/recommend/peer_tune.py" --dataset "$d" --peer "$PEER" \
        --data-dir "$DATA" --out "$OUT" --threads "$THREADS" --quick
  fi
done
echo "== serving pipeline, synthetic 100k-item catalogue (3 runs)" >&2
for i in 1 2 3; do "$CARGO_TARGET_DIR/release/examples/serve_bench" | sed -n 1,2p; done | tee "$OUT/serve_bench.txt"
python3 "$ROOT/benches/recommend/summarize.py" "$OUT" $DATASETS
