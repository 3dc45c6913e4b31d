"""Helpers of benches/query.sh (run by it, inside benches/.venv).

  scale BASE_PROJECT OUT_PROJECT DATE APPS TXNS
      Builds a large warehouse from a small generated and ingested one by replicating every
      clean table with DuckDB: replica r suffixes every key (credit codes, application, loan and
      transaction ids, PII tokens, devices) with ".r", so relationships hold within a replica and
      fraud rings stay rings. Applications and enterprises are replicated until there are APPS
      applications; transactions and the other sources until there are TXNS transactions (the
      enterprises of later replicas have applications but no transactions, tax, telecom, ...).
      Rows are shuffled; files are zstd Parquet with 256k-row groups and a _SUCCESS marker,
      like Panorama's own.

  run PROJECT DATE PANORAMA REPEAT
      Runs the five analyst queries with Panorama (`panorama query`, one process per query, wall
      time) and DuckDB (in process, views over the same Parquet files, 2 threads), REPEAT times
      each, and prints a table: first run and best run of each, the ratio, and the bars
      (< 3 s, <= 1.5x DuckDB). Results are compared (row counts, then every value: floats to a
      relative 1e-9, as parallel sums differ in the last digits) so both answer the same query.
"""

import csv
import datetime
import json
import math
import os
import shutil
import subprocess
import sys
import time

import duckdb

# Keys replicated per table: columns whose values get the replica suffix.
KEYS = {
    "enterprises": ["credit_code", "legal_rep_id_card"],
    "enterprise_kyc": ["credit_code", "legal_rep_id_card", "legal_rep_phone", "account"],
    "persons": ["person_id", "id_card", "phone", "credit_code"],
    "applications": ["application_id", "credit_code", "applicant_id_card", "applicant_phone", "imei", "iccid", "ip"],
    "transactions": ["txn_id", "account", "credit_code", "counterparty_account"],
    "repayments": ["loan_id", "application_id", "credit_code"],
    "tax_filings": ["credit_code"],
    "telecom": ["phone"],
    "contacts": ["owner_phone", "contact_phone"],
    "court_records": ["record_id", "party_credit_code", "party_id_card"],
}
APP_LEVEL = {"enterprises", "applications"}


def base_file(base, table, date):
    return os.path.join(base, "warehouse", "clean", table, f"dt={date}", "*.parquet")


def scale(base, out, date, apps, txns):
    con = duckdb.connect()
    con.execute("SET threads = 2")
    n_apps = con.execute(f"SELECT count(*) FROM read_parquet('{base_file(base, 'applications', date)}', hive_partitioning = false)").fetchone()[0]
    n_txns = con.execute(f"SELECT count(*) FROM read_parquet('{base_file(base, 'transactions', date)}', hive_partitioning = false)").fetchone()[0]
    rep_apps = math.ceil(apps / n_apps)
    rep_txns = math.ceil(txns / n_txns)
    print(f"base: {n_apps} applications, {n_txns} transactions; replicas: {rep_apps} (applications, "
          f"enterprises), {rep_txns} (transactions and the other sources)", flush=True)
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)
    # The project around the warehouse: config, key, contracts (so that models resolve names).
    for f in ["panorama.toml"]:
        shutil.copy(os.path.join(base, f), os.path.join(out, f))
    for d in ["keys", "jobs", "data/static"]:
        if os.path.isdir(os.path.join(base, d)):
            shutil.copytree(os.path.join(base, d), os.path.join(out, d))
    stats = {}
    for table, keys in KEYS.items():
        reps = rep_apps if table in APP_LEVEL else rep_txns
        cols = [r[0] for r in con.execute(
            f"DESCRIBE SELECT * FROM read_parquet('{base_file(base, table, date)}', hive_partitioning = false)").fetchall()]
        keys = [k for k in keys if k in cols]
        replace = ", ".join(f"{k} || '.' || r AS {k}" for k in keys)
        select = f"SELECT * EXCLUDE (r) REPLACE ({replace})" if replace else "SELECT * EXCLUDE (r)"
        part = os.path.join(out, "warehouse", "clean", table, f"dt={date}")
        os.makedirs(part)
        path = os.path.join(part, "part-00000.parquet")
        t0 = time.time()
        # Shuffled, so that replicas do not sit side by side: real files do not compress to a
        # fraction of their size because a row repeats 100 rows earlier.
        order = f"ORDER BY hash({keys[0]}, r)" if keys else ""
        con.execute(
            f"COPY ({select} FROM range({reps}) t(r), read_parquet('{base_file(base, table, date)}', hive_partitioning = false) {order}) "
            f"TO '{path}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 262144)")
        rows = con.execute(f"SELECT count(*) FROM read_parquet('{path}', hive_partitioning = false)").fetchone()[0]
        size = os.path.getsize(path)
        with open(os.path.join(part, "_SUCCESS"), "w") as f:
            json.dump({"rows": rows, "columns": cols, "files": ["part-00000.parquet"], "bytes": size,
                       "job": "benches/query.sh", "run_id": "bench"}, f)
        stats[table] = (rows, size)
        print(f"  clean.{table:<15} {rows:>12,} rows {size / 2**20:>9.1f} MB  ({time.time() - t0:.1f} s)", flush=True)
    return stats


QUERIES = [
    ("q1 group-by province x month",
     """SELECT e.province, DATE_TRUNC('month', a.apply_date) AS month,
               COUNT(*) AS applications, SUM(a.amount) AS amount
        FROM clean.applications a JOIN clean.enterprises e ON e.credit_code = a.credit_code
        GROUP BY e.province, DATE_TRUNC('month', a.apply_date)
        ORDER BY 1, 2"""),
    ("q2 join with per-company txn aggregates",
     """WITH t AS (
            SELECT credit_code, SUM(CASE WHEN direction = 'in' THEN amount ELSE 0 END) AS inflow,
                   COUNT(*) AS txns
            FROM clean.transactions GROUP BY credit_code)
        SELECT a.product, COUNT(*) AS applications, AVG(t.inflow) AS avg_inflow,
               AVG(t.txns) AS avg_txns, AVG(a.amount / NULLIF(t.inflow, 0)) AS amount_to_inflow
        FROM clean.applications a JOIN t ON t.credit_code = a.credit_code
        GROUP BY a.product ORDER BY a.product"""),
    ("q3 top-10 per industry (window)",
     """SELECT industry, application_id, amount FROM (
            SELECT e.industry, a.application_id, a.amount,
                   ROW_NUMBER() OVER (PARTITION BY e.industry ORDER BY a.amount DESC, a.application_id DESC) AS rn
            FROM clean.applications a JOIN clean.enterprises e ON e.credit_code = a.credit_code) r
        WHERE rn <= 10 ORDER BY industry, amount DESC, application_id DESC"""),
    ("q4 date-range filter",
     """SELECT direction, COUNT(*) AS txns, SUM(amount) AS amount, MAX(amount) AS largest
        FROM clean.transactions
        WHERE ts >= TIMESTAMP '2026-10-01 00:00:00' AND ts < TIMESTAMP '2026-11-01 00:00:00'
          AND amount > 1000
        GROUP BY direction ORDER BY direction"""),
    ("q5 count distinct",
     """SELECT COUNT(DISTINCT counterparty_account) AS counterparties,
               COUNT(DISTINCT credit_code) AS enterprises, COUNT(*) AS txns
        FROM clean.transactions"""),
]


def duck_sql(sql):
    return sql.replace("clean.applications", "applications").replace(
        "clean.enterprises", "enterprises").replace("clean.transactions", "transactions")


def same_value(cell, v):
    """A CSV cell of Panorama's output against DuckDB's value of the same cell."""
    if v is None:
        return cell == ""
    if isinstance(v, bool):
        return cell.lower() == str(v).lower()
    if isinstance(v, (int, float)):
        try:
            x = float(cell)
        except ValueError:
            return False
        return math.isclose(x, float(v), rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(v, datetime.datetime):
        # DuckDB's DATE_TRUNC gives a timestamp where polars keeps a date.
        if v.time() == datetime.time() and cell == v.date().isoformat():
            return True
        return cell.replace("T", " ").rstrip("0").rstrip(".") == str(v).rstrip("0").rstrip(".")
    return cell == str(v)


def compare(path, res):
    """The first difference between Panorama's CSV result and DuckDB's rows, or None."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))[1:]
    if len(rows) != len(res):
        return f"panorama {len(rows)} rows, duckdb {len(res)} rows"
    for i, (a, b) in enumerate(zip(rows, res)):
        if len(a) != len(b) or not all(same_value(c, v) for c, v in zip(a, b)):
            return f"row {i}: panorama {a}, duckdb {list(b)}"
    return None


def run(project, date, panorama, repeat):
    con = duckdb.connect()
    con.execute("SET threads = 2")
    wh = os.path.join(project, "warehouse", "clean")
    for t in ["applications", "enterprises", "transactions"]:
        con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{wh}/{t}/dt=*/*.parquet', hive_partitioning = true)")
    out = os.path.join(project, "bench-out.csv")
    rows = []
    for name, sql in QUERIES:
        pano, duck = [], []
        pano_rows = None
        diff = None
        for _ in range(repeat):
            t0 = time.perf_counter()
            p = subprocess.run([panorama, "-C", project, "-q", "query", sql, "--format", "csv", "--out", out],
                               capture_output=True, text=True)
            pano.append(time.perf_counter() - t0)
            if p.returncode != 0:
                sys.exit(f"panorama failed on {name}:\n{p.stderr}")
            with open(out) as f:
                pano_rows = sum(1 for _ in f) - 1
            t0 = time.perf_counter()
            res = con.execute(duck_sql(sql)).fetchall()
            duck.append(time.perf_counter() - t0)
            diff = diff or compare(out, res)
        if diff:
            print(f"WARNING {name}: results differ: {diff}", flush=True)
        rows.append((name, pano[0], min(pano), duck[0], min(duck), pano_rows))
        print(f"  {name:<42} panorama first {pano[0]:6.2f} s best {min(pano):6.2f} s | "
              f"duckdb first {duck[0]:6.2f} s best {min(duck):6.2f} s", flush=True)
    print()
    print(f"| query | rows | Panorama best (first) | DuckDB best (first) | ratio | < 3 s | <= 1.5x DuckDB |")
    print(f"|---|---:|---:|---:|---:|:-:|:-:|")
    for name, pf, pb, df, db, n in rows:
        ratio = pb / db if db > 0 else float("inf")
        print(f"| {name} | {n} | {pb:.2f} s ({pf:.2f}) | {db:.2f} s ({df:.2f}) | {ratio:.2f}x | "
              f"{'yes' if pb < 3 else 'NO'} | {'yes' if ratio <= 1.5 else 'NO'} |")


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "scale":
        scale(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]))
    elif cmd == "run":
        run(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        sys.exit(f"unknown command {cmd}")
