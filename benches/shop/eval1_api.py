#!/usr/bin/env python3
"""EVAL-1 on online-retail, measured from Candor's API answers.

Prepares the EVAL-1 split (docs/RECOMMENDATIONS.md) of online_retail.csv into files under a work
directory, loads them with the product's own commands (`candor import catalog`, `candor import
consents`, `candor import events`), trains with `candor train`, serves with `candor serve`, sets
each test user's level to `full` (new people start at `basic`) and asks
`GET /v1/recommendations/{CustomerID}?surface=home&k=10` for every test user, with the serving
defaults (diversity on: MMR, category cap, exploration slot). NDCG@10 with binary gains, IDCG over
min(10, |test|) positions, averaged over evaluated users, as the offline tool computes it.

Usage: eval1_api.py CANDOR_BINARY ONLINE_RETAIL_CSV WORK_DIR
"""
import csv, json, math, os, subprocess, sys, time, urllib.request
from collections import defaultdict

candor, source, work = sys.argv[1:4]
os.makedirs(work, exist_ok=True)
data = os.path.join(work, "data")

# 1. EVAL-1 interactions and split.
first = {}  # (user, item) -> (timestamp, row)
titles, prices = {}, {}
with open(source, newline="", encoding="utf-8") as f:
    for row in csv.DictReader(f):
        user, item = row["CustomerID"].strip(), row["StockCode"]
        if not user or row["InvoiceNo"].startswith("C") or float(row["Quantity"]) <= 0:
            continue
        key = (user, item)
        if key not in first or row["InvoiceDate"] < first[key][0]:
            first[key] = (row["InvoiceDate"], row)
        titles.setdefault(item, row["Description"].strip() or item)
        prices[item] = row["UnitPrice"]
by_user = defaultdict(list)
for (user, item), (ts, row) in first.items():
    by_user[user].append((ts, item, row))
train_rows, test = [], {}
for user, xs in by_user.items():
    xs.sort(key=lambda x: (x[0], x[1]))
    n_test = int(0.2 * len(xs))
    cut = len(xs) - n_test
    train_rows += [r for _, _, r in xs[:cut]]
    test[user] = [i for _, i, _ in xs[cut:]]
train_items = {r["StockCode"] for r in train_rows}
test = {u: [i for i in items if i in train_items] for u, items in test.items()}
test = {u: items for u, items in test.items() if items}
print(f"EVAL-1: {len(train_rows)} train interactions, {len(train_items)} train items, {len(test)} test users")

# 2. Files for the commands: the train items (category: the stock code's product line, as the
# offline constraint evaluation uses), consent for every customer, the train interactions.
with open(os.path.join(work, "items.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["id", "title", "category", "price", "currency"])
    for item in sorted(train_items):
        price = max(float(prices[item]), 0.0)
        w.writerow([item, titles[item][:500], "Line " + item[:3], f"{price:.2f}", "GBP"])
yesterday = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 86400))
with open(os.path.join(work, "consents.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["user_id", "purpose", "decision", "timestamp"])
    for user in by_user:
        # The data set has no consent records: every customer is taken to have granted
        # personalization yesterday (the purpose's grants expire after 365 days).
        w.writerow([user, "personalization", "granted", yesterday])
with open(os.path.join(work, "train.csv"), "w", newline="") as f:
    fields = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country"]
    w = csv.DictWriter(f, fieldnames=fields)
    w.writeheader()
    for r in train_rows:
        w.writerow({k: r[k] for k in fields})

env = dict(os.environ, CANDOR_DATA_DIR=data, CANDOR_LOG__LEVEL="warn")
env.pop("CANDOR_CONFIG", None)
env.pop("CANDOR_DATABASE_URL", None)
repo = os.path.join(os.path.dirname(__file__), "..", "..")
examples = os.path.join(repo, "docs", "examples")

def run(*args):
    t = time.time()
    out = subprocess.run([candor, *args], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"candor {' '.join(args)} failed:\n{out.stdout}{out.stderr}")
    print(f"candor {args[0]} {args[1] if len(args) > 1 else ''}: {time.time() - t:.1f} s; {out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ''}")
    return out.stdout

run("import", "catalog", os.path.join(work, "items.csv"), "--quiet", "--json")
run("import", "consents", os.path.join(work, "consents.csv"), "--purposes",
    os.path.join(examples, "online-retail-purposes.json"), "--quiet", "--json")
run("import", "events", os.path.join(work, "train.csv"),
    "--inventory", os.path.join(examples, "online-retail-inventory.json"),
    "--checkpoint", os.path.join(work, "events.checkpoint.json"), "--restart",
    "--event", "Order Completed", "--user-id-column", "CustomerID",
    "--timestamp-column", "InvoiceDate", "--timestamp-format", "[year]-[month]-[day] [hour]:[minute]:[second]",
    "--property", "sku=StockCode:string", "--property", "quantity=Quantity:number",
    "--property", "price=UnitPrice:number", "--property", "country=Country", "--quiet", "--json")
run("train")
keys = {}
for scope in ["recommend", "consent"]:
    out = run("keys", "create", "--scope", scope, "--name", f"eval-{scope}")
    keys[scope] = next(tok for tok in out.split() if tok.startswith(f"cnd_{scope}_"))

# 3. Serve and ask.
port = 18000 + os.getpid() % 1000
server = subprocess.Popen([candor, "serve"], env=dict(env, CANDOR_SERVER__BIND=f"127.0.0.1:{port}"),
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
base = f"http://127.0.0.1:{port}"
try:
    for _ in range(100):
        try:
            urllib.request.urlopen(base + "/readyz", timeout=1)
            break
        except Exception:
            time.sleep(0.2)

    def call(method, path, key, body=None):
        req = urllib.request.Request(base + path, method=method, headers={"Authorization": f"Bearer {key}", "content-type": "application/json"},
                                     data=json.dumps(body).encode() if body is not None else None)
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    ndcg, levels, t = 0.0, defaultdict(int), time.time()
    for user, items in test.items():
        call("PUT", f"/v1/subjects/{user}/preferences", keys["consent"], {"level": "full", "source": "import"})
        answer = call("GET", f"/v1/recommendations/{user}?surface=home&k=10", keys["recommend"])
        levels[answer["level_applied"]] += 1
        recs = [i["item_id"] for i in answer["items"]][:10]
        relevant = set(items)
        dcg = sum(1.0 / math.log2(r + 2) for r, i in enumerate(recs) if i in relevant)
        idcg = sum(1.0 / math.log2(r + 2) for r in range(min(10, len(relevant))))
        ndcg += dcg / idcg
    print(f"asked {len(test)} users in {time.time() - t:.1f} s; levels applied: {dict(levels)}")
    print(f"EVAL-1 online-retail NDCG@10 from the API's answers (level full, diversity on): {ndcg / len(test):.4f}")
finally:
    server.terminate()
    server.wait()
