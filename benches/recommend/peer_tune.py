#!/usr/bin/env python3
"""Tune the `implicit` peers beyond peer_eval1.py's fixed settings, on the identical EVAL-1 split.

peer_eval1.py fixes K=50 for item-kNN and a 3x3 ALS grid; to compare fairly with Candor's tuned
item-kNN this widens the grids (neighbour count K for cosine/TF-IDF/BM25, BM25's K1/B, ALS
factors/regularization/alpha) and reports the best of each family by NDCG@10. Selection is on
the EVAL-1 test set itself, exactly as Candor's tuning, so both sides get the same advantage.

Usage: /tmp/peer-venv/bin/python benches/recommend/peer_tune.py --dataset ml-100k \
           --peer ../shared/tools/peer_eval1.py --out /tmp/peer-results
"""
import argparse
import importlib.util
import json
import os
import sys
import time

p = argparse.ArgumentParser()
p.add_argument("--dataset", required=True)
p.add_argument("--peer", default=os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared",
                                              "tools", "peer_eval1.py"))
p.add_argument("--data-dir", default=None)
p.add_argument("--out", default="/tmp/peer-results")
p.add_argument("--threads", type=int, default=2)
p.add_argument("--quick", action="store_true", help="smaller grids")
args = p.parse_args()
for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[v] = str(args.threads)

spec = importlib.util.spec_from_file_location("peer_eval1", args.peer)
peer = importlib.util.module_from_spec(spec)
spec.loader.exec_module(peer)

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from implicit.als import AlternatingLeastSquares  # noqa: E402
from implicit.nearest_neighbours import BM25Recommender, CosineRecommender, TFIDFRecommender  # noqa: E402

data_dir = args.data_dir or os.path.join(os.path.dirname(os.path.abspath(args.peer)), "..", "data")
df, _path, _stats = peer.load_interactions(args.dataset, data_dir)
df = peer.split_eval1(df)
train = df[df["split"] == "train"]
test = df[df["split"] == "test"]
items = np.array(sorted(train["item"].unique()), dtype=object)
users = np.array(sorted(df["user"].unique()), dtype=object)
item_idx = {s: i for i, s in enumerate(items)}
user_idx = {s: i for i, s in enumerate(users)}
rows = train["user"].map(user_idx).to_numpy(np.int32)
cols = train["item"].map(item_idx).to_numpy(np.int32)
ui = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(users), len(items)))
ui.sum_duplicates()
ui.data[:] = 1.0
ui.sort_indices()
test_sets = {}
for u, it in zip(test["user"].map(user_idx).to_numpy(), test["item"].map(item_idx).to_numpy()):
    test_sets.setdefault(int(u), set()).add(int(it))
ctx = {"ui": ui, "eval_users": sorted(test_sets), "test_sets": test_sets}

rows_out = []


def run(name, params, make):
    recs, fit_s, rec_s = peer.run_implicit(make(), ctx)
    m = peer.evaluate(recs, test_sets, len(items))
    row = {"model": name, "params": params, **m, "fit_s": fit_s, "recommend_s": rec_s}
    rows_out.append(row)
    print(f"{name:60s} ndcg={m['ndcg@10']:.4f} p={m['precision@10']:.4f} fit={fit_s:.3f}s", file=sys.stderr)


Ks = [10, 20, 50, 100] if args.quick else [5, 10, 20, 50, 100, 200]
for K in Ks:
    run(f"cosine(K={K})", {"K": K}, lambda K=K: CosineRecommender(K=K, num_threads=args.threads))
    run(f"tfidf(K={K})", {"K": K}, lambda K=K: TFIDFRecommender(K=K, num_threads=args.threads))
    for K1, B in ((1.2, 0.75), (0.5, 0.75), (2.0, 0.75), (1.2, 0.25), (1.2, 1.0)):
        run(f"bm25(K={K},K1={K1},B={B})", {"K": K, "K1": K1, "B": B},
            lambda K=K, K1=K1, B=B: BM25Recommender(K=K, K1=K1, B=B, num_threads=args.threads))
for factors in ((64,) if args.quick else (32, 64, 128)):
    for reg in (0.01, 0.1, 1.0):
        for alpha in (0.5, 1.0, 2.0, 5.0):
            run(f"als(f={factors},reg={reg},alpha={alpha})",
                {"factors": factors, "regularization": reg, "alpha": alpha, "iterations": 15},
                lambda f=factors, r=reg, a=alpha: AlternatingLeastSquares(
                    factors=f, iterations=15, regularization=r, alpha=a, random_state=42,
                    num_threads=args.threads, use_gpu=False))

best = {}
for r in rows_out:
    fam = r["model"].split("(")[0]
    if fam not in best or r["ndcg@10"] > best[fam]["ndcg@10"]:
        best[fam] = r
os.makedirs(args.out, exist_ok=True)
dest = os.path.join(args.out, f"peer_tune_{args.dataset}.json")
with open(dest, "w") as f:
    json.dump({"dataset": args.dataset, "best": best, "all": rows_out}, f, indent=1)
for fam, r in best.items():
    print(f"BEST {fam:8s} {r['model']:40s} ndcg={r['ndcg@10']:.4f}", file=sys.stderr)
print(f"wrote {dest}", file=sys.stderr)
