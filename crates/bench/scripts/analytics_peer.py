"""The pandas peer of `candor-bench analytics`: the same histogram over the same synthetic
events, built by the same formula (subject s belongs to segment s % SEGMENTS and has EVENTS
events), timed without the data generation.

Prints one JSON line: {"pandas": version, "plain_s": .., "bounded_s": ..}. Installs pandas with
pip first when it is missing (benchmarks only; CI never runs this).
"""
import json
import subprocess
import sys
import time


def ensure_pandas():
    try:
        import pandas  # noqa: F401
    except ImportError:
        cmd = [sys.executable, "-m", "pip", "install", "-q", "pandas"]
        if subprocess.call(cmd) != 0:
            subprocess.check_call(cmd + ["--break-system-packages"])


def main():
    subjects, events, segments, max_rows = (int(a) for a in sys.argv[1:5])
    ensure_pandas()
    import numpy as np
    import pandas as pd

    subject = np.repeat(np.arange(subjects, dtype=np.int64), events)
    df = pd.DataFrame({"subject": subject, "segment": subject % segments})
    t = time.perf_counter()
    plain = df.groupby("segment").size()
    plain_s = time.perf_counter() - t
    # The same contribution bound Candor applies: at most max_rows rows per subject per segment.
    t = time.perf_counter()
    bounded = df.groupby(["subject", "segment"]).head(max_rows).groupby("segment").size()
    bounded_s = time.perf_counter() - t
    print(json.dumps({
        "pandas": pd.__version__,
        "rows": int(len(df)),
        "plain_s": plain_s,
        "bounded_s": bounded_s,
        "plain_total": int(plain.sum()),
        "bounded_total": int(bounded.sum()),
    }))


main()
