#!/usr/bin/env bash
# Ingest throughput with full cleaning (a benchmark, not a test).
#
# 1. `panorama generate --only applications` writes a messy applications CSV of about
#    SIZE_MB megabytes (UTF-8 with BOM; amounts as `1,298,633` / `129.8万` / `1298633 CNY`;
#    dates in three forms; phones as `+86 138…`, `138-…`, full-width digits; ~1% bad rows;
#    re-sent duplicates).
# 2. The same file is ingested, side by side, by
#    - panorama: the shipped contract (every column typed and validated: three date forms,
#      phones to digits, money with 万/亿, ID-card / credit-code / IMEI / ICCID check digits,
#      value maps, accepted values, PII tokenized, dedupe keep-latest, rejects kept) → zstd
#      Parquet partition + rejects partition; then again as "pano-peer" with only the peers'
#      cleaning (benches/contracts/applications_peer.toml), for a like-for-like figure;
#    - DuckDB and polars (Python, in the throw-away virtualenv benches/.venv) doing the
#      cleaning the issue names: the three date forms, phones to digits, money to numbers,
#      dedupe by id keeping the latest, rejects kept → zstd Parquet. They do less work than
#      panorama (no check digits, no tokenization).
#    The floor under these figures: each tool turning the same CSV into zstd Parquet with no
#    cleaning at all, every column as text ("pano-raw" with benches/contracts/
#    applications_raw.toml, "duck-copy", "pl-copy").
# 3. Prints MB/s of input and peak RSS for each.
#
# Usage: benches/ingest.sh              (about 1.1 GB of CSV)
#        SIZE_MB=5000 benches/ingest.sh (the 5 GB bounded-memory check: panorama only, as
#                                        the peers hold the file in memory, ~7 GB per GB)
#        SIZE_MB=200 benches/ingest.sh  (quicker)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MB=${SIZE_MB:-1100}
THREADS=${THREADS:-$(nproc)}
DATE=2026-11-26
OUT=benches/out/ingest
mkdir -p "$OUT"
if ! benches/.venv/bin/python -c "import duckdb, polars" 2>/dev/null; then
  [ -x benches/.venv/bin/python ] || python3 -m venv benches/.venv
  benches/.venv/bin/pip install -q duckdb polars
fi
cargo build --release --quiet
TARGET=${CARGO_TARGET_DIR:-target}
[[ $TARGET = /* ]] || TARGET=$(pwd)/$TARGET
BIN=$TARGET/release/panorama
# ~350 bytes of applications CSV per enterprise.
N=$(( SIZE_MB * 1000000 / 350 ))
MAX_N=10000000 # the generator's limit (fixed-width serials), about 3.5 GB of this CSV
PROJ="$OUT/apps-$SIZE_MB"
CSV="$PROJ/data/$DATE/applications.csv"
if [ ! -f "$CSV" ]; then
  rm -rf "$PROJ"
  "$BIN" -q generate --out "$PROJ" --enterprises "$(( N < MAX_N ? N : MAX_N ))" --seed 5 --date "$DATE" --only applications > /dev/null
  if [ "$N" -gt "$MAX_N" ]; then
    # Beyond the limit: append the file's first rows again under new application ids
    # (AP20… becomes AP19…, still valid), up to SIZE_MB; the last, partial line is dropped.
    EXTRA=$(( SIZE_MB * 1000000 - $(stat -c %s "$CSV") ))
    { tail -n +2 "$CSV" | head -c "$EXTRA" || true; } | sed '$d' | sed 's/^AP20/AP19/' > "$CSV.more"
    cat "$CSV.more" >> "$CSV" && rm "$CSV.more"
  fi
fi
BYTES=$(stat -c %s "$CSV")
echo "input: $CSV, $(( BYTES / 1000000 )) MB, $(wc -l < "$CSV") lines; cores: $(nproc); threads: $THREADS"
echo "duckdb $(benches/.venv/bin/python -c 'import duckdb; print(duckdb.__version__)'), polars $(benches/.venv/bin/python -c 'import polars; print(polars.__version__)')"

measure() { # name, command...
  local name=$1; shift
  sync
  local t0=$(date +%s.%N)
  /usr/bin/time -f "%M" -o "$OUT/rss-$name" "$@" > "$OUT/out-$name" 2> "$OUT/err-$name" || { echo "$name failed:"; tail -5 "$OUT/err-$name"; return 1; }
  local t1=$(date +%s.%N)
  local secs=$(echo "$t1 - $t0" | bc -l)
  local rss=$(( $(tail -1 "$OUT/rss-$name") / 1024 ))
  printf "%-10s %8.2f s %8.1f MB/s %7d MB peak RSS  %s\n" "$name" "$secs" "$(echo "$BYTES / 1000000 / $secs" | bc -l)" "$rss" "$(tail -1 "$OUT/out-$name" | cut -c1-110)"
}

echo "tool       seconds   throughput   memory"
measure panorama "$BIN" -q -C "$PROJ" ingest applications --date "$DATE" --threads "$THREADS" --format json
# Like for like: the same file with only the peers' cleaning (benches/contracts).
cp benches/contracts/applications_peer.toml "$PROJ/jobs/"
measure pano-peer "$BIN" -q -C "$PROJ" ingest applications_peer --date "$DATE" --threads "$THREADS" --format json
cp benches/contracts/applications_raw.toml "$PROJ/jobs/"
measure pano-raw "$BIN" -q -C "$PROJ" ingest applications_raw --date "$DATE" --threads "$THREADS" --format json
if [ "$SIZE_MB" -gt 2000 ]; then
  echo "(peers skipped above 2,000 MB: they load the whole file into memory)"
  exit 0
fi
measure duckdb benches/.venv/bin/python benches/ingest_peers.py duckdb "$CSV" "$OUT/duckdb" "$THREADS"
measure polars benches/.venv/bin/python benches/ingest_peers.py polars "$CSV" "$OUT/polars" "$THREADS"
echo "floor: CSV to zstd Parquet with no cleaning at all, every column as text"
measure duck-copy benches/.venv/bin/python benches/ingest_peers.py duckdb-copy "$CSV" "$OUT/duckdb" "$THREADS"
measure pl-copy benches/.venv/bin/python benches/ingest_peers.py polars-copy "$CSV" "$OUT/polars" "$THREADS"
