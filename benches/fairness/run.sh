#!/usr/bin/env bash
# Fairness audit benchmark: Candor vs Fairlearn on the same 10M-decision CSV (5 groups).
#
#   benches/fairness/run.sh            # 10,000,000 rows
#   ROWS=1000000 benches/fairness/run.sh
#
# The CSV is generated under /tmp by the Rust bench (never in the repo). The Python side uses a
# venv in /tmp with fairlearn + pandas, timing pandas read_csv and MetricFrame (selection_rate,
# true/false positive rate, count) plus demographic_parity_difference.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROWS="${ROWS:-10000000}"
CSV="${CSV:-/tmp/candor-fairness-${ROWS}.csv}"
VENV="${VENV:-/tmp/fl}"
export ROWS CSV

echo "== machine"; nproc; grep -m1 'model name' /proc/cpuinfo || true; uptime

echo "== Candor (cargo bench -p candor-fairness --bench audit)"
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/target-fairness}" cargo bench -q -p candor-fairness --bench audit

echo "== Fairlearn"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q fairlearn pandas
fi
"$VENV/bin/python" - "$CSV" <<'PY'
import sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np, pandas as pd, fairlearn
from fairlearn.metrics import (MetricFrame, count, selection_rate, true_positive_rate,
                               false_positive_rate, demographic_parity_difference)
path = sys.argv[1]
t0 = time.perf_counter()
df = pd.read_csv(path, usecols=["group", "pred", "label", "score"])
t1 = time.perf_counter()
mf = MetricFrame(metrics={"count": count, "selection_rate": selection_rate,
                          "tpr": true_positive_rate, "fpr": false_positive_rate},
                 y_true=df["label"], y_pred=df["pred"], sensitive_features=df["group"])
bg = mf.by_group
dpd = demographic_parity_difference(df["label"], df["pred"], sensitive_features=df["group"])
t2 = time.perf_counter()
# Plain numpy group-by for comparison (what a hand-written pandas script would do).
g = df["group"].to_numpy(); p = df["pred"].to_numpy(); y = df["label"].to_numpy()
codes, uniq = pd.factorize(g)
n = np.bincount(codes); sel = np.bincount(codes, p) / n
tp = np.bincount(codes, p * y) / np.bincount(codes, y)
t3 = time.perf_counter()
print(f"fairlearn {fairlearn.__version__}, pandas {pd.__version__}, rows {len(df)}")
print(bg.to_string())
print(f"demographic_parity_difference={dpd:.6f}")
print(f"pandas read_csv:               {t1 - t0:.3f} s")
print(f"MetricFrame + dp difference:   {t2 - t1:.3f} s")
print(f"total Fairlearn (read+metrics): {t2 - t0:.3f} s")
print(f"plain numpy bincount metrics:  {t3 - t2:.3f} s (read+numpy {t1 - t0 + t3 - t2:.3f} s)")
PY
