#!/usr/bin/env bash
# Scheduling overhead of the engine, independent of `panorama generate`.
#
#   benches/schedule.sh [JOBS] [THREADS] [LAYOUT]
#
# Writes a temp project of JOBS noop jobs and times `panorama jobs`, `panorama plan`, a full
# `panorama run` (ledger writes and run report included), and a second run that skips all.
# LAYOUT "families" (default): 4 layers x 5 families x JOBS/20 branches, each layer reading the
# previous one per branch (inferred dependencies), plus fan-in jobs reading whole tables.
# LAYOUT "files": one file per job, same graph (measures parsing 20,000 job files).
# PANORAMA_BIN overrides the binary (default: target/release/panorama, built if missing).
set -euo pipefail
JOBS=${1:-20000}
THREADS=${2:-2}
LAYOUT=${3:-families}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${PANORAMA_BIN:-$ROOT/target/release/panorama}
if [ ! -x "$BIN" ]; then
  (cd "$ROOT" && cargo build --release --bin panorama >&2)
fi
DIR=$(mktemp -d -t panorama-bench-XXXXXX)
trap 'rm -rf "$DIR"' EXIT
BRANCHES=$(( JOBS / 20 ))
[ "$BRANCHES" -ge 1 ] || BRANCHES=1
mkdir -p "$DIR/jobs" "$DIR/data"
printf '[project]\nname = "bench"\n[run]\nthreads = %s\n' "$THREADS" > "$DIR/panorama.toml"
{ echo code; for b in $(seq -w 1 "$BRANCHES"); do echo "b$b"; done; } > "$DIR/data/branches.csv"
LAYERS=(clean feature quality score)
for l in 0 1 2 3; do
  for f in 1 2 3 4 5; do
    name="l${l}_f${f}"
    out="${LAYERS[$l]}.t${f}"
    reads=""
    [ "$l" -gt 0 ] && reads="reads = [\"${LAYERS[$((l-1))]}.t${f}[branch={branch}]\"]"
    if [ "$LAYOUT" = files ]; then
      mkdir -p "$DIR/jobs/$name"
      for b in $(seq -w 1 "$BRANCHES"); do
        r=${reads//\{branch\}/b$b}
        printf 'kind = "noop"\nname = "%s_b%s"\n%s\nwrites = ["%s[branch=b%s]"]\n' "$name" "$b" "$r" "$out" "$b" > "$DIR/jobs/$name/b$b.toml"
      done
    else
      printf 'kind = "noop"\nname = "%s"\ntags = ["layer%s"]\n%s\nwrites = ["%s[branch={branch}]"]\n[matrix]\nbranch = { csv = "data/branches.csv", column = "code" }\n' \
        "$name" "$l" "$reads" "$out" > "$DIR/jobs/$name.toml"
    fi
  done
done
# Fan-in: one job per family reads the whole last-layer table.
for f in 1 2 3 4 5; do
  printf 'kind = "noop"\nname = "report_%s"\nreads = ["score.t%s"]\n' "$f" "$f" > "$DIR/jobs/report_$f.toml"
done

t() { local s e; s=$(date +%s.%N); "$@" > "$DIR/out.txt" 2> "$DIR/err.txt" || true; e=$(date +%s.%N); awk -v s="$s" -v e="$e" 'BEGIN { print e - s }'; }
N=$("$BIN" -C "$DIR" jobs --format json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
echo "project: $N noop jobs ($LAYOUT), $THREADS threads, binary $BIN"
printf '%-44s %8s\n' "step" "seconds"
printf '%-44s %8.2f\n' "panorama jobs (load + validate)" "$(t "$BIN" -C "$DIR" -q jobs)"
printf '%-44s %8.2f\n' "panorama plan --date (+ ledger read)" "$(t "$BIN" -C "$DIR" -q plan --date 2026-11-26)"
printf '%-44s %8.2f\n' "panorama run --date (all $N run)" "$(t "$BIN" -C "$DIR" -q run --date 2026-11-26)"
tail -1 "$DIR/out.txt" | python3 -c 'import json,sys; s=json.load(sys.stdin); c=s["counts"]; print("  summary: status=%s succeeded=%s failed=%s duration_s=%s" % (s["status"], c["succeeded"], c["failed"], s["duration_s"]))'
printf '%-44s %8.2f\n' "panorama run --date again (all skipped)" "$(t "$BIN" -C "$DIR" -q run --date 2026-11-26)"
printf '%-44s %8.2f\n' "panorama run --date --force --no-report" "$(t "$BIN" -C "$DIR" -q run --date 2026-11-26 --force --no-report)"
printf '%-44s %8s\n' "ledger size" "$(du -h "$DIR/warehouse/_ledger.sqlite" | cut -f1)"
printf '%-44s %8s\n' "run report size" "$(du -h "$DIR"/reports/*.html | head -1 | cut -f1)"
