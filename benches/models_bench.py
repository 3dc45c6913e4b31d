"""Orchestrates benches/models.sh: runs Panorama and the Python libraries on the same split
of the same files, each fit in its own process (peak memory per process), and prints one
side-by-side table (and benches/out/models.json).

    python models_bench.py PANORAMA_BIN OUT_DIR [--skip-big | --only-big]
"""
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PY = sys.executable


def run(cmd):
    """Runs cmd under GNU time; returns (stdout, wall seconds, peak RSS of the process in MB)."""
    import tempfile
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        t = time.perf_counter()
        p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", tf.name, *cmd], capture_output=True, text=True)
        wall = time.perf_counter() - t
        try:
            rss = int(open(tf.name).read().strip().splitlines()[-1]) / 1024
        except (ValueError, IndexError):
            rss = None
    if p.returncode != 0:
        print(f"FAILED: {' '.join(cmd)}\n{p.stderr[-2000:]}", file=sys.stderr)
        return None, wall, None
    return p.stdout, wall, rss


def panorama(bin_, data, algo, extra=()):
    out, wall, rss = run([bin_, "train", "--data", data, "--target", "target", "--algo", algo,
                          "--oot-column", "is_test", "--oot-cutoff", "1", "--format", "json",
                          "--no-report", *extra])
    if out is None:
        return None
    v = json.loads(out.strip().splitlines()[-1])
    return {"auc": v["auc"], "ks": v["ks"], "train_auc": v["train_auc"], "fit_s": v["fit_seconds"],
            "wall_s": wall, "max_rss_mb": rss}


def python(task, data):
    out, wall, rss = run([PY, os.path.join(HERE, "models_py.py"), task, data])
    if out is None:
        return None
    v = json.loads(out.strip().splitlines()[-1])
    v["wall_s"] = wall
    v["max_rss_mb"] = rss
    return v


def fmt(v, k, nd=4):
    if v is None or v.get(k) is None:
        return "-"
    return f"{v[k]:.{nd}f}" if isinstance(v[k], float) else str(v[k])


def main():
    bin_, out_dir = sys.argv[1], sys.argv[2]
    skip_big = "--skip-big" in sys.argv
    rows = []
    small = [("synthetic_100k.csv", True), ("german.csv", True), ("numeric_100k.csv", False)]
    if "--only-big" in sys.argv:
        small = []
    for name, full in small:
        data = os.path.join(out_dir, name)
        plan = [("scorecard", "panorama", lambda: panorama(bin_, data, "scorecard")),
                ("scorecard", "optbinning", lambda: python("optbinning", data)),
                ("scorecard", "scorecardpy", lambda: python("scorecardpy", data)),
                ("logistic", "panorama", lambda: panorama(bin_, data, "logistic")),
                ("logistic", "sklearn lbfgs", lambda: python("sklearn_logistic", data)),
                ("gbdt", "panorama", lambda: panorama(bin_, data, "gbdt")),
                ("gbdt", "lightgbm (1 thread)", lambda: python("lightgbm_1t", data)),
                ("gbdt", "lightgbm (all cores)", lambda: python("lightgbm", data))]
        if not full:
            plan = [p for p in plan if p[0] == "logistic"]
        for model, lib, f in plan:
            r = f()
            rows.append({"data": name, "model": model, "lib": lib, **(r or {})})
            print(f"  {name:<20} {model:<10} {lib:<22} auc {fmt(r, 'auc')} ks {fmt(r, 'ks')} fit {fmt(r, 'fit_s', 2)} s", file=sys.stderr)
    if not skip_big:
        data = os.path.join(out_dir, "big_1m.parquet")
        plan = [("logistic", "panorama", lambda: panorama(bin_, data, "logistic")),
                ("logistic", "sklearn lbfgs", lambda: python("sklearn_logistic", data)),
                ("gbdt", "panorama", lambda: panorama(bin_, data, "gbdt")),
                ("gbdt", "lightgbm (1 thread)", lambda: python("lightgbm_1t", data)),
                ("gbdt", "lightgbm (all cores)", lambda: python("lightgbm", data)),
                ("scorecard", "panorama", lambda: panorama(bin_, data, "scorecard")),
                ("binning (40)", "optbinning BinningProcess", lambda: python("optbinning_bp", data))]
        for model, lib, f in plan:
            r = f()
            rows.append({"data": "big_1m.parquet", "model": model, "lib": lib, **(r or {})})
            print(f"  big_1m               {model:<10} {lib:<22} auc {fmt(r, 'auc')} fit {fmt(r, 'fit_s', 2)} s rss {fmt(r, 'max_rss_mb', 0)} MB", file=sys.stderr)
    with open(os.path.join(out_dir, "models.json"), "w") as f:
        json.dump(rows, f, indent=1)
    print(f"\n{'data':<20} {'model':<13} {'library':<26} {'test AUC':>9} {'KS':>7} {'train AUC':>9} {'fit s':>8} {'peak MB':>8}")
    for r in rows:
        print(f"{r['data']:<20} {r['model']:<13} {r['lib']:<26} {fmt(r, 'auc'):>9} {fmt(r, 'ks'):>7} {fmt(r, 'train_auc'):>9} {fmt(r, 'fit_s', 2):>8} {fmt(r, 'max_rss_mb', 0):>8}")


if __name__ == "__main__":
    main()
