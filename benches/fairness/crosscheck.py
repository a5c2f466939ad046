#!/usr/bin/env python3
"""Independent reference values for crates/fairness/tests/datasets.rs.

Plain arithmetic on the shared data sets (no Candor code), plus Fairlearn 0.15 MetricFrame where
it applies. Run:  /tmp/fl/bin/python benches/fairness/crosscheck.py [/work/shared/data]
"""
import math, os, sys
from collections import Counter, defaultdict

DATA = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("CANDOR_SHARED_DATA", "/work/shared/data")

# ---- adult ----
rows = []
for line in open(f"{DATA}/adult/adult.data"):
    f = [x.strip() for x in line.strip().split(",")]
    if len(f) < 15:
        continue
    rows.append(f)
sex = [r[9] for r in rows]; race = [r[8] for r in rows]
y = [r[14] == ">50K" for r in rows]
pred = [int(r[4]) >= 13 for r in rows]
w = [float(r[2]) for r in rows]
print("adult rows", len(rows))

def rate(num, den):
    return num / den if den else None

for g in ["Female", "Male"]:
    idx = [i for i in range(len(rows)) if sex[i] == g]
    print(f"adult {g}: n={len(idx)} base={rate(sum(y[i] for i in idx), len(idx))!r}"
          f" sel={rate(sum(pred[i] for i in idx), len(idx))!r}"
          f" tpr={rate(sum(pred[i] and y[i] for i in idx), sum(y[i] for i in idx))!r}"
          f" fpr={rate(sum(pred[i] and not y[i] for i in idx), sum(not y[i] for i in idx))!r}"
          f" wsel={rate(sum(w[i] for i in idx if pred[i]), sum(w[i] for i in idx))!r}")

# AIF360 forms, privileged sex=Male
def grp(mask):
    idx = [i for i in range(len(rows)) if mask(i)]
    sel = rate(sum(pred[i] for i in idx), len(idx))
    tpr = rate(sum(pred[i] and y[i] for i in idx), sum(y[i] for i in idx))
    fpr = rate(sum(pred[i] and not y[i] for i in idx), sum(not y[i] for i in idx))
    return sel, tpr, fpr
u = grp(lambda i: sex[i] != "Male"); p = grp(lambda i: sex[i] == "Male")
print("adult aif360 spd", u[0] - p[0], "di", u[0] / p[0], "eod", u[1] - p[1],
      "aod", ((u[2] - p[2]) + (u[1] - p[1])) / 2)

# Reweighing (Kamiran-Calders, AIF360 formula), privileged sex=Male, label >50K, unit weights
n = len(rows)
cnt = Counter((sex[i] == "Male", y[i]) for i in range(n))
ng = Counter(sex[i] == "Male" for i in range(n)); ny = Counter(y)
for (pg, yy), c in sorted(cnt.items()):
    print("adult reweigh", "priv" if pg else "unpriv", int(yy), ng[pg] * ny[yy] / (n * c))

# Cramér's V and NMI (arithmetic), relationship vs sex, occupation vs sex (no pooling needed: all levels >= 5)
def assoc(a, b):
    n = len(a)
    ca, cb, cab = Counter(a), Counter(b), Counter(zip(a, b))
    chi2 = 0.0
    for x in ca:
        for z in cb:
            e = ca[x] * cb[z] / n
            o = cab.get((x, z), 0)
            chi2 += (o - e) ** 2 / e
    k = min(len(ca), len(cb)) - 1
    v = math.sqrt(chi2 / (n * k))
    mi = sum(o / n * math.log(o * n / (ca[x] * cb[z])) for (x, z), o in cab.items())
    h = lambda c: -sum(v / n * math.log(v / n) for v in c.values())
    return v, mi / ((h(ca) + h(cb)) / 2)
print("adult assoc relationship~sex", assoc([r[7] for r in rows], sex))
print("adult assoc occupation~sex", assoc([r[6] for r in rows], sex))

try:
    import numpy as np, warnings
    warnings.filterwarnings("ignore")
    from fairlearn.metrics import MetricFrame, selection_rate, true_positive_rate, false_positive_rate, \
        demographic_parity_difference, equalized_odds_difference, equalized_odds_ratio
    sf = np.array([f"{s}|{r}" for s, r in zip(sex, race)])
    print("fairlearn sex dpd", demographic_parity_difference(y, pred, sensitive_features=sex))
    print("fairlearn sex eod", equalized_odds_difference(y, pred, sensitive_features=sex))
    print("fairlearn sex&race dpd", demographic_parity_difference(y, pred, sensitive_features=sf),
          "to_overall", demographic_parity_difference(y, pred, sensitive_features=sf, method="to_overall"))
    print("fairlearn sex&race eor", equalized_odds_ratio(y, pred, sensitive_features=sf))
    print("fairlearn weighted sex dpd", demographic_parity_difference(y, pred, sensitive_features=sex, sample_weight=np.array(w)))
except ImportError:
    print("fairlearn not installed; skipped")

# ---- ml-100k ----
users = {}
for line in open(f"{DATA}/ml-100k/u.user", encoding="latin-1"):
    uid, age, g, occ, z = line.strip().split("|")
    age = int(age)
    band = "<25" if age < 25 else "25-34" if age < 35 else "35-44" if age < 45 else "45+"
    users[uid] = (g, band, occ, z)
ratings = [l.split("\t") for l in open(f"{DATA}/ml-100k/u.data")]
liked = defaultdict(lambda: [0, 0])
for uid, iid, r, _ in ratings:
    k = users[uid][0]
    liked[k][0] += int(r) >= 4
    liked[k][1] += 1
for k, (a, b) in sorted(liked.items()):
    print("ml100k liked", k, a, b, a / b)
print("ml100k assoc occupation~gender", assoc([u[2] for u in users.values()], [u[0] for u in users.values()]))

# Popularity recommender: top-10 most-rated items the user has not rated (ties by item id).
pop = Counter(int(iid) for _, iid, _, _ in ratings)
seen = defaultdict(set)
for uid, iid, _, _ in ratings:
    seen[uid].add(int(iid))
order = sorted(pop, key=lambda i: (-pop[i], i))
n_items = 1682
expo = [0.0] * (n_items + 1)
for uid in sorted(users, key=int):
    recs = [i for i in order if i not in seen[uid]][:10]
    for p, i in enumerate(recs):
        expo[i] += 1 / math.log2(p + 2)
x = sorted(expo[1:])
gini = sum((2 * (i + 1) - n_items - 1) * v for i, v in enumerate(x)) / (n_items * sum(x))
print("ml100k popularity recs coverage", sum(1 for v in expo[1:] if v > 0) / n_items, "gini", gini)
