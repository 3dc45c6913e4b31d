"""Runs one competitor fit in its own process and prints one JSON line:
    python models_py.py TASK DATA [TARGET]
TASK: sklearn_logistic | lightgbm | lightgbm_1t | optbinning | scorecardpy | optbinning_bp
The split is the file's `is_test` column (0 train, 1 test), the same rows Panorama uses.
"""
import json
import resource
import sys
import time
import warnings

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score, roc_curve

warnings.filterwarnings("ignore")


def ks(y, p):
    fpr, tpr, _ = roc_curve(y, p)
    return float(np.max(tpr - fpr))


def load(path):
    df = pd.read_parquet(path) if path.endswith(".parquet") else pd.read_csv(path)
    return df


def prepared_numeric(tr, te, cols):
    """Panorama's scaled preparation for numeric columns: clip to the train 0.5/99.5
    percentiles, impute the median (+ a missing flag when train has missing), standardise."""
    out_tr, out_te = [], []
    for c in cols:
        a, b = tr[c].to_numpy(float), te[c].to_numpy(float)
        ok = a[~np.isnan(a)]
        lo, hi, med = np.quantile(ok, 0.005), np.quantile(ok, 0.995), np.quantile(ok, 0.5)
        miss = np.isnan(a).any()
        fa = np.where(np.isnan(a), med, np.clip(a, lo, hi))
        fb = np.where(np.isnan(b), med, np.clip(b, lo, hi))
        out_tr.append(fa); out_te.append(fb)
        if miss:
            out_tr.append(np.isnan(a).astype(float)); out_te.append(np.isnan(b).astype(float))
    A, B = np.column_stack(out_tr), np.column_stack(out_te)
    m, s = A.mean(0), A.std(0)
    s[s < 1e-12] = 1
    return (A - m) / s, (B - m) / s


def main():
    task, path = sys.argv[1], sys.argv[2]
    target = sys.argv[3] if len(sys.argv) > 3 else "target"
    df = load(path)
    tr, te = df[df.is_test == 0].reset_index(drop=True), df[df.is_test == 1].reset_index(drop=True)
    feats = [c for c in df.columns if c not in (target, "is_test")]
    cats = [c for c in feats if df[c].dtype == object or str(df[c].dtype).startswith("str")]
    nums = [c for c in feats if c not in cats]
    ytr, yte = tr[target].to_numpy(), te[target].to_numpy()
    res = {"task": task, "data": path.split("/")[-1]}
    if task == "sklearn_logistic":
        from sklearn.linear_model import LogisticRegression
        A, B = prepared_numeric(tr, te, nums)
        if cats:
            from sklearn.preprocessing import OneHotEncoder
            enc = OneHotEncoder(handle_unknown="ignore", sparse_output=False).fit(tr[cats])
            A = np.hstack([A, enc.transform(tr[cats])]); B = np.hstack([B, enc.transform(te[cats])])
        t = time.perf_counter()
        m = LogisticRegression(C=1.0, max_iter=1000).fit(A, ytr)
        res["fit_s"] = time.perf_counter() - t
        p, ptr = m.predict_proba(B)[:, 1], m.predict_proba(A)[:, 1]
    elif task in ("lightgbm", "lightgbm_1t"):
        import lightgbm as lgb
        Xtr, Xte = tr[feats].copy(), te[feats].copy()
        for c in cats:
            Xtr[c] = Xtr[c].astype("category")
            Xte[c] = pd.Categorical(Xte[c], categories=Xtr[c].cat.categories)
        kw = {"verbose": -1}
        if task == "lightgbm_1t":
            kw["n_jobs"] = 1
        t = time.perf_counter()
        m = lgb.LGBMClassifier(**kw).fit(Xtr, ytr)
        res["fit_s"] = time.perf_counter() - t
        p, ptr = m.predict_proba(Xte)[:, 1], m.predict_proba(Xtr)[:, 1]
    elif task == "optbinning":
        from optbinning import BinningProcess, Scorecard
        from sklearn.linear_model import LogisticRegression
        t = time.perf_counter()
        bp = BinningProcess(feats, categorical_variables=cats)
        sc = Scorecard(binning_process=bp, estimator=LogisticRegression(), scaling_method="pdo_odds",
                       scaling_method_params={"pdo": 20, "odds": 50, "scorecard_points": 600})
        sc.fit(tr[feats], ytr)
        res["fit_s"] = time.perf_counter() - t
        p, ptr = sc.predict_proba(te[feats])[:, 1], sc.predict_proba(tr[feats])[:, 1]
    elif task == "optbinning_bp":
        # Scale figure: the binning of every feature only.
        from optbinning import BinningProcess
        t = time.perf_counter()
        BinningProcess(feats, categorical_variables=cats).fit(tr[feats], ytr)
        res["fit_s"] = time.perf_counter() - t
        p = ptr = None
    elif task == "scorecardpy":
        import scorecardpy as scp
        from sklearn.linear_model import LogisticRegression
        t = time.perf_counter()
        d = tr[feats + [target]]
        bins = scp.woebin(d, y=target, print_step=0)
        wtr = scp.woebin_ply(d, bins, print_step=0)
        lr = LogisticRegression().fit(wtr.drop(columns=[target]), ytr)
        res["fit_s"] = time.perf_counter() - t
        wte = scp.woebin_ply(te[feats + [target]], bins, print_step=0)[wtr.columns]
        p = lr.predict_proba(wte.drop(columns=[target]))[:, 1]
        ptr = lr.predict_proba(wtr.drop(columns=[target]))[:, 1]
    else:
        raise SystemExit(f"unknown task {task}")
    if p is not None:
        res.update(auc=roc_auc_score(yte, p), ks=ks(yte, p), train_auc=roc_auc_score(ytr, ptr))
    res["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(res))


if __name__ == "__main__":
    main()
