"""The peers of benches/ingest.sh: DuckDB and polars doing the cleaning the issue names.

Both read every column as text, parse the three date forms, turn phones into digits
(full-width digits, +86/0086 and separators handled) and money into numbers (`,`, `¥`,
`CNY`, 万, 亿), split rows that fail into rejects with a reason, keep the latest row per
application_id, and write zstd Parquet. Usage: ingest_peers.py duckdb|polars CSV OUTDIR THREADS

`duckdb-copy` and `polars-copy` do no cleaning at all: every column as text, straight into zstd
Parquet (records with the wrong number of fields skipped). They are the floor under every figure
of the benchmark: how fast each engine turns this CSV into Parquet when nothing is parsed.
"""
import os
import sys

FULL = "０１２３４５６７８９"
HALF = "0123456789"


def run_duckdb(csv, out, threads):
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    con.execute(
        f"""
        CREATE TEMP TABLE raw AS SELECT * FROM read_csv('{csv}', all_varchar = true, header = true,
            store_rejects = true, ignore_errors = true);
        CREATE TEMP TABLE parsed AS
        WITH t AS (
          SELECT *,
            COALESCE(try_strptime(apply_date, '%Y-%m-%d'), try_strptime(apply_date, '%Y/%m/%d'),
                     try_strptime(apply_date, '%Y%m%d'))::DATE AS apply_date_d,
            regexp_replace(translate(applicant_phone, '{FULL}', '{HALF}'), '[^0-9]', '', 'g') AS p,
            translate(amount, '{FULL}．，', '{HALF}.,') AS a,
            try_strptime(updated_at, '%Y-%m-%d %H:%M:%S') AS updated_ts
          FROM raw)
        SELECT *,
          CASE WHEN length(p) = 13 AND p LIKE '86%' THEN substr(p, 3)
               WHEN length(p) = 15 AND p LIKE '0086%' THEN substr(p, 5) ELSE p END AS phone,
          try_cast(regexp_replace(a, '[^0-9.]', '', 'g') AS DOUBLE)
            * CASE WHEN a LIKE '%亿%' THEN 1e8 WHEN a LIKE '%万%' THEN 1e4 ELSE 1 END AS amount_n
        FROM t;
        """
    )
    ok = "apply_date_d IS NOT NULL AND amount_n IS NOT NULL AND length(phone) = 11 AND updated_ts IS NOT NULL AND application_id IS NOT NULL"
    con.execute(
        f"""COPY (SELECT * EXCLUDE (p, a) FROM parsed WHERE {ok}
                  QUALIFY row_number() OVER (PARTITION BY application_id ORDER BY updated_ts DESC) = 1)
            TO '{out}/clean.parquet' (FORMAT parquet, COMPRESSION zstd)"""
    )
    con.execute(
        f"""COPY (SELECT *, CASE WHEN apply_date_d IS NULL THEN 'apply_date' WHEN amount_n IS NULL THEN 'amount'
                               WHEN length(phone) <> 11 THEN 'phone' ELSE 'other' END AS reason
                  FROM parsed WHERE NOT ({ok}))
            TO '{out}/rejects.parquet' (FORMAT parquet, COMPRESSION zstd)"""
    )
    con.execute(f"COPY (SELECT * FROM reject_errors) TO '{out}/malformed.parquet' (FORMAT parquet)")
    n = con.execute(f"SELECT count(*) FROM '{out}/clean.parquet'").fetchone()[0]
    r = con.execute(f"SELECT count(*) FROM '{out}/rejects.parquet'").fetchone()[0]
    m = con.execute(f"SELECT count(*) FROM '{out}/malformed.parquet'").fetchone()[0]
    print(f'{{"rows_written": {n}, "rows_rejected": {r + m}}}')


def run_polars(csv, out, threads):
    import polars as pl

    df = pl.scan_csv(csv, infer_schema=False, truncate_ragged_lines=True, encoding="utf8-lossy")
    digits = lambda c: pl.col(c).str.replace_many(list(FULL), list(HALF))
    phone = digits("applicant_phone").str.replace_all(r"[^0-9]", "")
    phone = (
        pl.when((phone.str.len_chars() == 13) & phone.str.starts_with("86")).then(phone.str.slice(2))
        .when((phone.str.len_chars() == 15) & phone.str.starts_with("0086")).then(phone.str.slice(4))
        .otherwise(phone)
    )
    a = digits("amount").str.replace_many(["．", "，"], [".", ","])
    mult = pl.when(a.str.contains("亿")).then(1e8).when(a.str.contains("万")).then(1e4).otherwise(1.0)
    amount = a.str.replace_all(r"[^0-9.]", "").cast(pl.Float64, strict=False) * mult
    d = pl.col("apply_date")
    date = pl.coalesce(
        d.str.strptime(pl.Date, "%Y-%m-%d", strict=False),
        d.str.strptime(pl.Date, "%Y/%m/%d", strict=False),
        d.str.strptime(pl.Date, "%Y%m%d", strict=False),
    )
    parsed = df.with_columns(
        phone.alias("phone"),
        amount.alias("amount_n"),
        date.alias("apply_date_d"),
        pl.col("updated_at").str.strptime(pl.Datetime, "%Y-%m-%d %H:%M:%S", strict=False).alias("updated_ts"),
    ).collect()
    ok = (
        pl.col("apply_date_d").is_not_null() & pl.col("amount_n").is_not_null()
        & (pl.col("phone").str.len_chars() == 11) & pl.col("updated_ts").is_not_null()
        & pl.col("application_id").is_not_null()
    )
    good = parsed.filter(ok).sort("updated_ts").unique("application_id", keep="last", maintain_order=False)
    bad = parsed.filter(~ok)
    good.write_parquet(f"{out}/clean.parquet", compression="zstd")
    bad.write_parquet(f"{out}/rejects.parquet", compression="zstd")
    print(f'{{"rows_written": {good.height}, "rows_rejected": {bad.height}}}')


def run_duckdb_copy(csv, out, threads):
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    con.execute(
        f"""COPY (SELECT * FROM read_csv('{csv}', all_varchar = true, header = true, ignore_errors = true))
            TO '{out}/copy.parquet' (FORMAT parquet, COMPRESSION zstd)"""
    )
    n = con.execute(f"SELECT count(*) FROM '{out}/copy.parquet'").fetchone()[0]
    print(f'{{"rows_written": {n}}}')


def run_polars_copy(csv, out, threads):
    import polars as pl

    df = pl.scan_csv(csv, infer_schema=False, truncate_ragged_lines=True, encoding="utf8-lossy")
    df.sink_parquet(f"{out}/copy.parquet", compression="zstd")
    n = pl.scan_parquet(f"{out}/copy.parquet").select(pl.len()).collect().item()
    print(f'{{"rows_written": {n}}}')


if __name__ == "__main__":
    tool, csv, out, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    os.makedirs(out, exist_ok=True)
    os.environ["POLARS_MAX_THREADS"] = str(threads)
    {
        "duckdb": run_duckdb,
        "polars": run_polars,
        "duckdb-copy": run_duckdb_copy,
        "polars-copy": run_polars_copy,
    }[tool](csv, out, threads)
