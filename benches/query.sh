#!/usr/bin/env bash
# Ad hoc queries and the feature build over a large warehouse (a benchmark, not a test).
#
#  1. `panorama generate` + `panorama ingest --all` a base project (BASE enterprises);
#  2. replicate its clean tables with DuckDB to APPS applications and TXNS transactions
#     (benches/query_bench.py `scale`: keys suffixed per replica, zstd Parquet, _SUCCESS);
#  3. five analyst queries — group-by province x month, a join of applications with
#     per-company transaction aggregates, a top-10 per industry window, a date-range filter,
#     count distinct — with `panorama query` (wall time of the process) and DuckDB (in process,
#     2 threads, views over the same Parquet files), side by side, REPEAT times each;
#  4. the full feature build: every `sql` job of the shipped models (sql/) on that warehouse,
#     through the scheduler (`panorama run --select kind:sql --threads 1`: one model at a time,
#     each using both cores), wall time, peak memory and per-model time.
#
# DuckDB goes into the throw-away virtualenv benches/.venv; data into benches/out/query/.
# Usage: benches/query.sh            (10M applications, 50M transactions: the issue's size)
#        APPS=2000000 TXNS=10000000 benches/query.sh    (smaller, when time or disk is short)
set -euo pipefail
cd "$(dirname "$0")/.."
APPS=${APPS:-10000000}
TXNS=${TXNS:-50000000}
BASE=${BASE:-20000}
REPEAT=${REPEAT:-3}
DATE=2026-11-26
OUT=benches/out/query
mkdir -p "$OUT"
if ! benches/.venv/bin/python -c "import duckdb" 2>/dev/null; then
  [ -x benches/.venv/bin/python ] || python3 -m venv benches/.venv
  benches/.venv/bin/pip install -q duckdb
fi
cargo build --release --quiet
TARGET=${CARGO_TARGET_DIR:-target}
[[ $TARGET = /* ]] || TARGET=$(pwd)/$TARGET
BIN=$TARGET/release/panorama
echo "cores: $(nproc); memory: $(free -g | awk '/Mem:/ {print $2}') GB; duckdb $(benches/.venv/bin/python -c 'import duckdb; print(duckdb.__version__)')"

if [ ! -f "$OUT/base-$BASE/warehouse/clean/transactions/dt=$DATE/_SUCCESS" ]; then
  rm -rf "$OUT/base-$BASE"
  "$BIN" -q generate --out "$OUT/base-$BASE" --enterprises "$BASE" --seed 11 --date "$DATE" > /dev/null
  "$BIN" -q -C "$OUT/base-$BASE" ingest --all --date "$DATE" > /dev/null
fi
PROJ="$OUT/warehouse-$APPS-$TXNS"
if [ ! -f "$PROJ/warehouse/clean/transactions/dt=$DATE/_SUCCESS" ]; then
  echo "== building the warehouse: $APPS applications, $TXNS transactions"
  /usr/bin/time -f "   %e s, peak %M KB" benches/.venv/bin/python benches/query_bench.py scale "$OUT/base-$BASE" "$PROJ" "$DATE" "$APPS" "$TXNS"
fi
du -sh "$PROJ/warehouse/clean" | awk '{print "warehouse size: " $1}'

echo "== five analyst queries (best of $REPEAT; Panorama = whole process, DuckDB = in process)"
benches/.venv/bin/python benches/query_bench.py run "$(cd "$PROJ" && pwd)" "$DATE" "$BIN" "$REPEAT"

echo "== full feature build (the shipped models of sql/), one model at a time (--threads 1)"
rm -rf "$PROJ/sql" "$PROJ/jobs/sql" "$PROJ/warehouse/feature"
cp -r sql "$PROJ/sql"
cp -r jobs/sql "$PROJ/jobs/sql"
/usr/bin/time -f "   wall %e s, peak RSS %M KB" "$BIN" -C "$PROJ" --log-format json run --date "$DATE" --select kind:sql \
  --threads 1 --force > "$OUT/feature-build.out" 2> "$OUT/feature-build.log" || true
grep '"msg":"succeeded"' "$OUT/feature-build.log" | sed -E 's/.*"job":"([^"]+)".*"seconds":([0-9.]+).*"rows_out":([0-9]+).*/   \1: \2 s, \3 rows/' || true
tail -1 "$OUT/feature-build.log"
tail -1 "$OUT/feature-build.out" | cut -c1-200
