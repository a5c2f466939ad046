#!/usr/bin/env python3
"""ALS fit time, Candor vs implicit, interleaved so that background load hits both alike.

Same data (EVAL-1 train part, identical split), same model: 64 factors, 15 iterations, CG with
3 steps, float32, the given regularization/alpha, 2 threads. implicit is timed with its BLAS
pool at 1 thread (implicit's own recommendation; its ALS warns about severe slowdowns otherwise)
and at 2 threads (peer_eval1.py's default). Rounds alternate implicit and Candor; medians.

Usage: /tmp/peer-venv/bin/python benches/recommend/als_fit.py --dataset ml-100k \
           --eval target/release/examples/eval [--rounds 5] [--reg 0.01 --alpha 1]
"""
import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

p = argparse.ArgumentParser()
p.add_argument("--dataset", required=True)
p.add_argument("--eval", required=True, help="Candor's examples/eval binary")
p.add_argument("--peer", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..",
                                              "shared", "tools", "peer_eval1.py"))
p.add_argument("--data-dir", default=None)
p.add_argument("--rounds", type=int, default=5)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--reg", type=float, default=0.01)
p.add_argument("--alpha", type=float, default=1.0)
p.add_argument("--out", default=None)
args = p.parse_args()
os.environ["OMP_NUM_THREADS"] = str(args.threads)

import threadpoolctl  # noqa: E402

spec = importlib.util.spec_from_file_location("peer_eval1", args.peer)
peer = importlib.util.module_from_spec(spec)
spec.loader.exec_module(peer)
import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from implicit.als import AlternatingLeastSquares  # noqa: E402

data_dir = args.data_dir or os.path.join(os.path.dirname(os.path.abspath(args.peer)), "..", "data")
df, _, _ = peer.load_interactions(args.dataset, data_dir)
df = peer.split_eval1(df)
train = df[df["split"] == "train"]
items = sorted(train["item"].unique())
users = sorted(df["user"].unique())
ii = {s: i for i, s in enumerate(items)}
uu = {s: i for i, s in enumerate(users)}
ui = sp.csr_matrix((np.ones(len(train), dtype=np.float32),
                    (train["user"].map(uu).to_numpy(), train["item"].map(ii).to_numpy())),
                   shape=(len(users), len(items)))
ui.sum_duplicates()
ui.data[:] = 1.0
ui.sort_indices()


def implicit_fit(blas_threads):
    with threadpoolctl.threadpool_limits(blas_threads, "blas"):
        m = AlternatingLeastSquares(factors=64, iterations=15, regularization=args.reg, alpha=args.alpha,
                                    random_state=42, num_threads=args.threads, use_gpu=False)
        t = time.perf_counter()
        m.fit(ui, show_progress=False)
        return time.perf_counter() - t


def candor_fit():
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        subprocess.run([args.eval, "--dataset", args.dataset, "--data-dir", data_dir, "--model", "als",
                        "--threads", str(args.threads), "--repeats", "1", "--factors", "64",
                        "--iterations", "15", "--reg", str(args.reg), "--alpha", str(args.alpha),
                        "--cg-steps", "3", "--json-out", f.name],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        rep = json.load(open(f.name))
        r = rep["results"][0]
        return r["fit_s"], r["ndcg"]


implicit_fit(1)  # warm-up (imports, JIT-free but page cache / BLAS init)
t1, t2, tc, nd = [], [], [], None
for _ in range(args.rounds):
    t1.append(implicit_fit(1))
    tc_s, nd = candor_fit()
    tc.append(tc_s)
    t2.append(implicit_fit(2))
res = {"dataset": args.dataset, "reg": args.reg, "alpha": args.alpha, "threads": args.threads,
       "implicit_blas1_s": statistics.median(t1), "implicit_blas2_s": statistics.median(t2),
       "candor_s": statistics.median(tc), "candor_ndcg": nd,
       "all": {"implicit_blas1": t1, "implicit_blas2": t2, "candor": tc},
       "load1_after": os.getloadavg()[0]}
print(f"{args.dataset}: ALS fit median of {args.rounds}: implicit(blas 1 thr) {res['implicit_blas1_s']:.3f}s, "
      f"implicit(blas 2 thr) {res['implicit_blas2_s']:.3f}s, Candor {res['candor_s']:.3f}s", file=sys.stderr)
if args.out:
    with open(args.out, "w") as f:
        json.dump(res, f, indent=1)
