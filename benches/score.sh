#!/usr/bin/env bash
# Scoring 1,000,000 applicants (features already built) through `panorama score`: both A/B
# arms (scorecard champion, GBDT challenger), reason codes, limit model and caps, fraud rules,
# and the monitoring tables (PSI of every input against the training baseline, grade
# migration), committed into the warehouse with the CSV export; then the same population into
# a plain Parquet file (no monitoring, no CSV). Wall time and peak memory from /usr/bin/time.
#
# The project is generated (3,000 enterprises) and its night run once to train and decide;
# the 1M-row population is drawn from its feature partition by benches/score_data.py (polars,
# in the benches/.venv virtualenv). Usage: benches/score.sh [ROWS]
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-1000000}
OUT=benches/out/score
P=$OUT/project
mkdir -p "$OUT"
if [ ! -x benches/.venv/bin/python ]; then
  python3 -m venv benches/.venv
  benches/.venv/bin/pip install -q numpy polars
fi
cargo build --release --quiet
BIN=${CARGO_TARGET_DIR:-target}/release/panorama
if [ ! -f "$P/warehouse/models/_champions/pre_credit.json" ]; then
  rm -rf "$P"
  "$BIN" generate --out "$P" --enterprises 3000 --seed 11 --date 2026-11-26 > /dev/null 2>&1
  # The repository's SQL models and jobs (a generated project ships them too).
  cp sql/*.sql "$P/sql/"
  for d in sql checks models decide score; do mkdir -p "$P/jobs/$d"; cp jobs/$d/*.toml "$P/jobs/$d/"; done
  "$BIN" -C "$P" run --date 2026-11-26 > /dev/null 2>&1
fi
POP=$OUT/applicants_$ROWS.parquet
[ -f "$POP" ] || benches/.venv/bin/python benches/score_data.py \
  "$P/warehouse/feature/application_features/dt=2026-11-26" "$POP" "$ROWS"
nproc | xargs echo "cores:"
ls -l "$POP" | awk '{printf "population: %s (%.1f MB)\n", $9, $5/1e6}'
measure() {
  local what=$1; shift
  /usr/bin/time -f "%e %M" -o "$OUT/time.txt" "$@" > "$OUT/last.json" 2> "$OUT/last.log"
  read -r secs kb < "$OUT/time.txt"
  echo "$what: ${secs} s wall, peak RSS $((kb / 1024)) MB, $(awk -v r="$ROWS" -v s="$secs" 'BEGIN{printf "%.0f", r/s}') rows/s"
}
measure "score into the warehouse (+ monitoring, CSV export)" \
  "$BIN" -C "$P" score pre_credit --date 2026-11-26 --input "$POP"
python3 -c "import json;r=json.load(open('$OUT/last.json'));print('  arms', r['stats']['arms'], 'declines', r['stats']['declines'], 'in-process seconds', round(r['seconds'],2))"
measure "score into a Parquet file" \
  "$BIN" -C "$P" score pre_credit --date 2026-11-26 --input "$POP" --out "$OUT/scores.parquet"
python3 -c "import json;r=json.load(open('$OUT/last.json'));print('  in-process seconds', round(r['seconds'],2))"
