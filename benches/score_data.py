"""A scoring population of N applicants drawn from a generated feature partition.

Rows are sampled with replacement (seeded), numeric features jittered by +-10% so that rows
differ, application ids made unique, and credit codes spread over N/2 enterprises so that the
A/B split has many entities. Usage: score_data.py FEATURE_PARTITION_DIR OUT.parquet N
"""
import sys

import numpy as np
import polars as pl

src, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
df = pl.read_parquet(f"{src}/*.parquet")
rng = np.random.default_rng(7)
idx = rng.integers(0, df.height, n)
big = df[idx]
cols = []
for name, dtype in big.schema.items():
    if dtype in (pl.Float64, pl.Float32):
        jitter = pl.Series(rng.uniform(0.9, 1.1, n))
        cols.append((pl.col(name) * jitter).alias(name))
big = big.with_columns(cols) if cols else big
big = big.with_columns(
    pl.format("AP{}", pl.int_range(0, n, eager=True).cast(pl.String).str.zfill(14)).alias("application_id"),
    (pl.col("credit_code") + "-" + (pl.int_range(0, n, eager=True) % (n // 2 // df["credit_code"].n_unique() + 1)).cast(pl.String)).alias("credit_code"),
)
big.write_parquet(out, compression="zstd")
print(f"{out}: {big.height} rows x {big.width} columns, {big['credit_code'].n_unique()} enterprises")
