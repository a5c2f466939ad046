#!/usr/bin/env python3
"""Markdown tables from the JSON files benches/recommend/run.sh writes (stdlib only)."""
import json
import os
import sys

out, datasets = sys.argv[1], sys.argv[2:]


def load(name):
    p = os.path.join(out, name)
    return json.load(open(p)) if os.path.exists(p) else None


for d in datasets:
    peer = load(f"eval1_{d}.json")
    rows = []
    if peer:
        for m in peer["models"]:
            rows.append(("implicit", m["model"], m["precision@10"], m["recall@10"], m["ndcg@10"],
                         m["coverage@10"], m["fit_s"]))
    for tag in ("default", "knn_plain", "knn_position", "als"):
        rep = load(f"candor_{d}_{tag}.json")
        if not rep:
            continue
        res = rep["results"]
        if tag == "als":
            best = max(res, key=lambda r: r["ndcg"])
            res = [dict(best, label="Candor ALS (best of the same 3x3 grid) " + best["label"])]
        for r in res:
            rows.append(("Candor", r["label"], r["precision"], r["recall"], r["ndcg"], r["coverage"],
                         r["fit_s"]))
    tune = load(f"peer_tune_{d}.json")
    if tune:
        for fam, r in tune["best"].items():
            rows.append(("implicit (widened grid)", r["model"], r["precision@10"], r["recall@10"],
                         r["ndcg@10"], r["coverage@10"], r["fit_s"]))
    print(f"\n### {d}\n")
    split = open(os.path.join(out, f"split_check_{d}.txt")).read().strip() if os.path.exists(
        os.path.join(out, f"split_check_{d}.txt")) else "split not checked"
    print(f"{split}\n")
    print("| side | model | P@10 | R@10 | NDCG@10 | cov@10 | fit s (median) |")
    print("|---|---|---|---|---|---|---|")
    for side, name, p, r, n, c, f in rows:
        print(f"| {side} | {name} | {p:.4f} | {r:.4f} | {n:.4f} | {c:.4f} | {f:.3f} |")
    if peer:
        grid = {(g["params"]["regularization"], g["params"]["alpha"]): g["fit_s"] for g in peer["als_grid"]}
        ours = load(f"candor_{d}_als.json")
        if ours:
            print("\nALS fit seconds (median of 3, 64 factors, 15 iterations, CG 3 steps, 2 threads):\n")
            print("| reg | alpha | implicit | Candor | implicit NDCG | Candor NDCG |")
            print("|---|---|---|---|---|---|")
            pn = {(g["params"]["regularization"], g["params"]["alpha"]): g["ndcg@10"] for g in peer["als_grid"]}
            for r in ours["results"]:
                key = (round(r["spec"]["regularization"], 4), round(r["spec"]["alpha"], 4))
                k2 = next((k for k in grid if abs(k[0] - key[0]) < 1e-6 and abs(k[1] - key[1]) < 1e-6), None)
                if k2:
                    print(f"| {key[0]} | {key[1]:g} | {grid[k2]:.3f} | {r['fit_s']:.3f} | {pn[k2]:.4f} | {r['ndcg']:.4f} |")

    fits = [load(f"als_fit_{d}_alpha{a}.json") for a in (1, 10)]
    fits = [f for f in fits if f]
    if fits:
        print("\nALS fit seconds, interleaved rounds (median of 5; reg 0.01, 64 factors, 15 iterations, CG 3):\n")
        print("| alpha | implicit, BLAS 1 thread | implicit, BLAS 2 threads | Candor | Candor NDCG@10 | load1 after |")
        print("|---|---|---|---|---|---|")
        for f in fits:
            print(f"| {f['alpha']:g} | {f['implicit_blas1_s']:.3f} | {f['implicit_blas2_s']:.3f} | "
                  f"{f['candor_s']:.3f} | {f['candor_ndcg']:.4f} | {f['load1_after']:.1f} |")
