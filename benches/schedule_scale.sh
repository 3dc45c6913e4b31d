#!/usr/bin/env bash
# A realistic night of >= 20,000 real jobs on one machine: `panorama generate --scale-jobs`.
#
#   benches/schedule_scale.sh [JOBS] [THREADS] [BRANCH_ENTERPRISES]
#
# Generates a project split per branch (JOBS/32 branches of BRANCH_ENTERPRISES enterprises;
# per branch: 10 ingest jobs with their sources, 8 checks of clean tables, 7 SQL feature models,
# 7 checks of feature tables), then times with /usr/bin/time -v (wall time, peak RSS):
#   panorama jobs, panorama plan --date D, panorama run --date D (every job runs),
#   and panorama run --date D again (every job skipped).
# PANORAMA_BIN overrides the binary (default: target/release/panorama, built if missing).
# KEEP=1 keeps the project folder.
set -euo pipefail
JOBS=${1:-20000}
THREADS=${2:-2}
ENTS=${3:-20}
DATE=2026-11-26
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${PANORAMA_BIN:-$ROOT/target/release/panorama}
if [ ! -x "$BIN" ]; then
  (cd "$ROOT" && cargo build --release --bin panorama >&2)
fi
DIR=$(mktemp -d -t panorama-scale-XXXXXX)
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$DIR"' EXIT
TIME=/usr/bin/time
[ -x "$TIME" ] || { echo "needs GNU time at /usr/bin/time" >&2; exit 1; }

measure() { # label, command...
  local label=$1; shift
  local log="$DIR/time-$label.txt"
  local t0 t1 rc=0
  t0=$(date +%s.%N)
  "$TIME" -v "$@" > "$DIR/out-$label.txt" 2> "$log" || rc=$?
  t1=$(date +%s.%N)
  local rss
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log")
  printf '%-12s exit %d  wall %8.2f s  peak RSS %6.0f MB\n' "$label" "$rc" \
    "$(echo "$t1 - $t0" | bc)" "$(echo "$rss / 1024" | bc)"
}

measure generate "$BIN" generate --out "$DIR/p" --scale-jobs "$JOBS" \
  --branch-enterprises "$ENTS" --seed 7 --date "$DATE"
printf '[run]\nthreads = %s\n' "$THREADS" >> "$DIR/p/panorama.toml"
echo "project: $(du -sh "$DIR/p/data" | cut -f1) of sources in $(find "$DIR/p/data" -type f | wc -l) files"
measure jobs "$BIN" -C "$DIR/p" jobs --format json
echo "jobs: $(grep -o '"name"' "$DIR/out-jobs.txt" | wc -l)"
measure plan "$BIN" -C "$DIR/p" plan --date "$DATE"
measure run "$BIN" -C "$DIR/p" run --date "$DATE" --log-format json
tail -n 1 "$DIR/out-run.txt"
measure rerun "$BIN" -C "$DIR/p" run --date "$DATE" --log-format json
tail -n 1 "$DIR/out-rerun.txt"
echo "warehouse: $(du -sh "$DIR/p/warehouse" | cut -f1)"
