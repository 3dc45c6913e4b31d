//! SQL models, `panorama query` and data-quality checks, through the real binary in a temp
//! project: dependency inference, materialisation and atomic commit, checks gating models,
//! query formats, refusal of writes, error messages; and every SQL example of docs/sql.md run
//! against a generated warehouse with the shipped feature models.

mod common;

use std::path::Path;

use common::{stderr, stdout, Workdir};
use polars::prelude::*;

const D1: &str = "2026-11-25";
const D2: &str = "2026-11-26";

/// A small shop: accounts and payments (CSV sources for two nights), two models, checks on
/// payments (job file) and on the first model (its config comment).
fn shop() -> Workdir {
    let w = Workdir::new();
    w.write(
        "jobs/ingest/accounts.toml",
        r#"kind = "ingest"
name = "accounts"
[source]
path = "data/{date}/accounts.csv"
format = "csv"
[[columns]]
name = "account_id"
type = "string"
required = true
[[columns]]
name = "region"
type = "string"
"#,
    );
    w.write(
        "jobs/ingest/payments.toml",
        r#"kind = "ingest"
name = "payments"
[source]
path = "data/{date}/payments.csv"
format = "csv"
[[columns]]
name = "payment_id"
type = "string"
required = true
[[columns]]
name = "account_id"
type = "string"
[[columns]]
name = "amount"
type = "float"
[[columns]]
name = "paid_on"
type = "date"
formats = ["%Y-%m-%d"]
[[columns]]
name = "status"
type = "string"
"#,
    );
    for d in [D1, D2] {
        w.write(
            &format!("data/{d}/accounts.csv"),
            "account_id,region\nA1,north\nA2,north\nA3,south\n",
        );
    }
    w.write(
        &format!("data/{D1}/payments.csv"),
        "payment_id,account_id,amount,paid_on,status\n\
         P1,A1,10.5,2026-11-20,paid\nP2,A1,4.5,2026-11-21,paid\nP3,A2,100,2026-11-24,refunded\n",
    );
    // The second night plants a status the checks do not accept.
    w.write(
        &format!("data/{D2}/payments.csv"),
        "payment_id,account_id,amount,paid_on,status\n\
         P1,A1,10.5,2026-11-20,paid\nP2,A1,4.5,2026-11-21,paid\nP3,A2,100,2026-11-24,refunded\n\
         P4,A3,7,2026-11-26,chargeback\n",
    );
    w.write(
        "sql/account_totals.sql",
        r#"-- payments per account
/* config
description = "payments and their total per account"
[[checks]]
type = "unique"
column = "account_id"
[[checks]]
type = "range"
column = "total"
min = 0
*/
SELECT a.account_id, a.region, COUNT(p.payment_id) AS payments, COALESCE(SUM(p.amount), 0) AS total
FROM clean.accounts a
LEFT JOIN payments p ON p.account_id = a.account_id
GROUP BY a.account_id, a.region
ORDER BY a.account_id
"#,
    );
    w.write(
        "sql/region_totals.sql",
        "SELECT region, SUM(total) AS total, '{{ ds }}' AS built_for\nFROM account_totals\nGROUP BY region\nORDER BY region\n",
    );
    w.write(
        "jobs/sql/account_totals.toml",
        "kind = \"sql\"\ntags = [\"features\"]\n",
    );
    w.write("jobs/sql/region_totals.toml", "kind = \"sql\"\n");
    w.write(
        "jobs/checks/payments.toml",
        r#"kind = "check"
table = "clean.payments"
[[checks]]
type = "accepted_values"
column = "status"
values = ["paid", "refunded"]
[[checks]]
type = "not_null"
column = "amount"
[[checks]]
type = "row_count_drift"
max_change_pct = 10
severity = "warn"
"#,
    );
    w.write(
        "jobs/checks/features.toml",
        "kind = \"check\"\n[matrix]\ntable = [\"feature.account_totals\"]\n",
    );
    w
}

fn last_json_line(out: &std::process::Output) -> serde_json::Value {
    let text = stdout(out);
    let line = text
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .unwrap_or_else(|| {
            panic!(
                "no JSON line on stdout:\n{text}\n--- stderr\n{}",
                stderr(out)
            )
        });
    serde_json::from_str(line).unwrap()
}

#[test]
fn dependencies_are_inferred_from_the_sql() {
    let w = shop();
    // A model file without a job is not built, and `plan` says so.
    w.write("sql/forgotten.sql", "SELECT 1 AS x\n");
    let out = w.run_code(&["plan", "--date", D1], 0);
    assert!(
        stderr(&out).contains("sql/forgotten.sql is not built: no sql job runs it"),
        "{}",
        stderr(&out)
    );
    std::fs::remove_file(w.path("sql/forgotten.sql")).unwrap();
    let out = w.run_code(&["jobs", "--format", "json"], 0);
    let jobs: Vec<serde_json::Value> = serde_json::from_str(stdout(&out).trim()).unwrap();
    let after = |name: &str| -> Vec<String> {
        let j = jobs
            .iter()
            .find(|j| j["name"] == name)
            .unwrap_or_else(|| panic!("no job {name} in {jobs:#?}"));
        let mut v: Vec<String> = j["after"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["job"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    // Inputs by layer-qualified and bare names, plus the checks of an input.
    assert_eq!(
        after("sql.account_totals"),
        ["check.payments", "ingest.accounts", "ingest.payments"]
    );
    // A model read by another: the reader waits for the model and for its checks.
    assert_eq!(
        after("sql.region_totals"),
        [
            "check.features[table=feature.account_totals]",
            "sql.account_totals"
        ]
    );
    assert_eq!(after("check.payments"), ["ingest.payments"]);
    assert_eq!(
        after("check.features[table=feature.account_totals]"),
        ["sql.account_totals"]
    );
    let j = jobs
        .iter()
        .find(|j| j["name"] == "sql.account_totals")
        .unwrap();
    assert_eq!(j["writes"], serde_json::json!(["feature.account_totals"]));

    // A typo is found when the schedule loads, with where it is and what was meant.
    w.write(
        "sql/region_totals.sql",
        "SELECT region, SUM(total) AS total\nFROM acount_totals\nGROUP BY region\n",
    );
    let out = w.run_code(&["plan", "--date", D1], 2);
    let err = stderr(&out);
    assert!(
        err.contains("sql/region_totals.sql: line 2, column 6: unknown table acount_totals; did you mean feature.account_totals?"),
        "{err}"
    );
}

#[test]
fn models_materialise_and_checks_gate_them() {
    let w = shop();
    let out = w.run_code(&["run", "--date", D1], 0);
    let summary = last_json_line(&out);
    assert_eq!(summary["status"], "succeeded", "{summary}");

    // The model's partition, whole, with its marker.
    let part = w.path(&format!("warehouse/feature/account_totals/dt={D1}"));
    let success: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(part.join("_SUCCESS")).unwrap()).unwrap();
    assert_eq!(success["job"], "sql.account_totals");
    assert_eq!(success["rows"], 3);
    assert_eq!(success["extra"]["model"], "sql/account_totals.sql");
    let df = w.read_parquet(&format!("warehouse/feature/account_totals/dt={D1}"));
    assert_eq!(
        df.get_column_names(),
        ["account_id", "region", "payments", "total"]
    );
    let t = df.column("total").unwrap().f64().unwrap();
    let totals: Vec<Option<f64>> = (0..t.len()).map(|i| t.get(i)).collect();
    assert_eq!(totals, [Some(15.0), Some(100.0), Some(0.0)]);
    let region = w.read_parquet(&format!("warehouse/feature/region_totals/dt={D1}"));
    assert_eq!(
        region.column("built_for").unwrap().str().unwrap().get(0),
        Some(D1)
    );
    // Results of every check job, and the report.
    for t in ["clean.payments", "feature.account_totals"] {
        assert!(
            w.path(&format!(
                "warehouse/quality/check_results/dt={D1}/table={t}/_SUCCESS"
            ))
            .exists(),
            "{t}"
        );
    }
    let html = std::fs::read_to_string(w.path(&format!("reports/quality-{D1}.html"))).unwrap();
    assert!(
        html.contains("clean.payments") && html.contains("feature.account_totals"),
        "{html}"
    );

    // Night two plants a status the checks refuse: the check fails, its descendants are
    // skipped, and the previous night's feature partition is untouched.
    let out = w.run_code(&["run", "--date", D2], 1);
    let summary = last_json_line(&out);
    assert_eq!(summary["counts"]["failed"], 1, "{summary}");
    assert_eq!(summary["counts"]["skipped"], 3, "{summary}");
    let failures = summary["failures"].to_string();
    assert!(failures.contains("check.payments"), "{failures}");
    assert!(failures.contains("accepted_values(status)"), "{failures}");
    assert!(!w
        .path(&format!("warehouse/feature/account_totals/dt={D2}"))
        .exists());
    assert!(part.join("_SUCCESS").exists());
    let left: Vec<String> = std::fs::read_dir(w.path("warehouse/feature/account_totals"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(left, [format!("dt={D1}")], "no staging leftovers");
    let results = w.read_parquet(&format!(
        "warehouse/quality/check_results/dt={D2}/table=clean.payments"
    ));
    let st = results.column("status").unwrap().str().unwrap();
    let status: Vec<&str> = (0..st.len()).map(|i| st.get(i).unwrap()).collect();
    assert_eq!(status, ["fail", "pass", "warn"], "{results}");
    let sample = results
        .column("sample")
        .unwrap()
        .str()
        .unwrap()
        .get(0)
        .unwrap()
        .to_string();
    assert_eq!(sample, "chargeback");
    // The report says which checks never ran (their table was not built), instead of
    // reading as if only clean.payments had been checked.
    let html = std::fs::read_to_string(w.path(&format!("reports/quality-{D2}.html"))).unwrap();
    assert!(html.contains("1 check job(s) did not run"), "{html}");
    assert!(
        html.contains(
            "<td>check.features[table=feature.account_totals]</td><td>feature.account_totals</td>"
        ),
        "{html}"
    );
    // …and which failed job kept it from running.
    assert!(html.contains("skipped: check.payments failed"), "{html}");

    // By hand while a run holds the warehouse lock: refused (exit 4) when it would write
    // results, as the night's check jobs do; allowed with --no-write.
    {
        let _night =
            panorama::warehouse::lock::WarehouseLock::acquire(&w.path("warehouse"), "a night")
                .unwrap();
        let out = w.run_code(&["check", "payments", "--date", D2], 4);
        assert!(stderr(&out).contains("a night"), "{}", stderr(&out));
        w.run_code(&["check", "payments", "--date", D2, "--no-write"], 1);
    }
    // By hand: the same verdict, exit 1, as JSON too.
    let out = w.run_code(&["check", "payments", "--date", D2, "--format", "json"], 1);
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(v[0]["table"], "clean.payments");
    assert_eq!(v[0]["results"][0]["status"], "fail");
    let out = w.run_code(
        &[
            "check",
            "feature.account_totals",
            "--date",
            D1,
            "--no-write",
        ],
        0,
    );
    assert!(
        stdout(&out).contains("2 checks on 1 table(s): 2 passed"),
        "{}",
        stdout(&out)
    );

    // Re-running a night replaces its partition: same rows, one partition.
    w.run_code(
        &[
            "run",
            "--date",
            D1,
            "--force",
            "--select",
            "sql.account_totals",
        ],
        0,
    );
    let again = w.read_parquet(&format!("warehouse/feature/account_totals/dt={D1}"));
    assert!(again.equals(&df));

    // The source of night two is corrected: the catch-up run (no --force) sees the changed
    // file, ingests it again, and the check and the jobs after it run on the new rows.
    // Regression: it re-ran only the failed check, on the old partition, and failed again.
    let out = w.run_code(&["plan", "--date", D2], 0);
    assert!(stdout(&out).contains("ingest.payments"), "{}", stdout(&out));
    w.write(
        &format!("data/{D2}/payments.csv"),
        "payment_id,account_id,amount,paid_on,status\n\
         P1,A1,10.5,2026-11-20,paid\nP2,A1,4.5,2026-11-21,paid\nP3,A2,100,2026-11-24,refunded\n\
         P4,A3,7,2026-11-26,paid\n",
    );
    let out = w.run_code(&["plan", "--date", D2], 0);
    assert!(
        stdout(&out).contains("data/2026-11-26/payments.csv is now"),
        "{}",
        stdout(&out)
    );
    let out = w.run_code(&["run", "--date", D2], 0);
    let summary = last_json_line(&out);
    assert_eq!(summary["counts"]["failed"], 0, "{summary}");
    assert!(w
        .path(&format!(
            "warehouse/feature/account_totals/dt={D2}/_SUCCESS"
        ))
        .exists());
    // Nothing changed since: the next run has nothing to do.
    let out = w.run_code(&["run", "--date", D2], 0);
    assert_eq!(last_json_line(&out)["counts"]["to_run"], 0);
    // An edited model is built again, with the jobs after it, and only those.
    let model = std::fs::read_to_string(w.path("sql/account_totals.sql")).unwrap();
    w.write(
        "sql/account_totals.sql",
        format!("{model}\n-- payments of refunded accounts count too\n"),
    );
    let out = w.run_code(&["plan", "--date", D2], 0);
    assert!(
        stdout(&out).contains("its SQL (sql/account_totals.sql) changed since run"),
        "{}",
        stdout(&out)
    );
    let out = w.run_code(&["run", "--date", D2], 0);
    let summary = last_json_line(&out);
    // sql.account_totals, its check job and sql.region_totals.
    assert_eq!(summary["counts"]["to_run"], 3, "{summary}");
    // A source ingested again on its own (a selected run, or by hand) leaves the jobs after
    // it built from its older rows: the next night run builds them again, once.
    w.run_code(
        &[
            "run",
            "--date",
            D2,
            "--select",
            "ingest.payments",
            "--force",
        ],
        0,
    );
    let out = w.run_code(&["plan", "--date", D2], 0);
    assert!(
        stdout(&out).contains("but ingest.payments ran again later"),
        "{}",
        stdout(&out)
    );
    w.run_code(&["ingest", "payments", "--date", D2], 0);
    let out = w.run_code(&["plan", "--date", D2], 0);
    assert!(
        stdout(&out).contains("its partition was written again (run manual-"),
        "{}",
        stdout(&out)
    );
    w.run_code(&["run", "--date", D2], 0);
    let out = w.run_code(&["run", "--date", D2], 0);
    assert_eq!(last_json_line(&out)["counts"]["to_run"], 0);
    // An edited contract ingests its source again (a new date format, a wider reject rate).
    let contract = std::fs::read_to_string(w.path("jobs/ingest/accounts.toml")).unwrap();
    w.write(
        "jobs/ingest/accounts.toml",
        contract.replace("required = true", "required = true\nclean = [\"trim\"]"),
    );
    let out = w.run_code(&["plan", "--date", D2], 0);
    assert!(
        stdout(&out).contains("its contract (jobs/ingest/accounts.toml) changed since run"),
        "{}",
        stdout(&out)
    );
}

fn ingested_shop() -> Workdir {
    let w = shop();
    w.run_code(&["ingest", "--all", "--date", D1], 0);
    w.run_code(&["ingest", "--all", "--date", D2], 0);
    w
}

#[test]
fn query_formats_partitions_and_errors() {
    let w = ingested_shop();
    let q = "SELECT payment_id, amount, paid_on FROM payments WHERE amount > 5 ORDER BY payment_id";

    let out = w.run_code(&["query", q, "--format", "csv"], 0);
    assert_eq!(
        stdout(&out),
        "payment_id,amount,paid_on\nP1,10.5,2026-11-20\nP3,100.0,2026-11-24\nP4,7.0,2026-11-26\n"
    );
    let out = w.run_code(&["query", q, "--format", "json"], 0);
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(
        v[0],
        serde_json::json!({"payment_id": "P1", "amount": 10.5, "paid_on": "2026-11-20"})
    );
    let out = w.run_code(&["query", q, "--format", "ndjson"], 0);
    assert_eq!(stdout(&out).lines().count(), 3);
    let out = w.run_code(&["query", q], 0);
    let table = stdout(&out);
    assert!(
        table.starts_with("payment_id  amount  paid_on\n"),
        "{table}"
    );
    assert!(table.ends_with("(3 rows)\n"), "{table}");
    w.run_code(&["query", q, "--out", "out/result.parquet"], 0);
    let df = common::read_partition(&w.path("out"));
    assert_eq!(df.shape(), (3, 3));
    assert_eq!(df.column("paid_on").unwrap().dtype(), &DataType::Date);

    // Latest partition by default; a `dt` condition reads the nights it selects.
    let q = "SELECT dt, count(*) AS n FROM clean.payments WHERE dt >= '2026-11-01' GROUP BY dt ORDER BY dt";
    let out = w.run_code(&["query", q, "--format", "csv"], 0);
    assert_eq!(stdout(&out), format!("dt,n\n{D1},3\n{D2},4\n"));
    let out = w.run_code(
        &[
            "query",
            "SELECT count(*) AS n FROM clean.payments",
            "--format",
            "csv",
            "--date",
            D1,
        ],
        0,
    );
    assert_eq!(stdout(&out), "n\n3\n", "--date hides later partitions");
    // Regressions: counting a join on `dt` panicked inside polars (exit 101); a date text
    // left of `dt`, or against the second table's `dt`, failed to compare.
    for (q, want) in [
        (
            "SELECT count(*) AS n FROM clean.payments a JOIN clean.payments b \
             ON a.payment_id = b.payment_id AND a.dt = b.dt",
            "n\n7\n",
        ),
        (
            &*format!("SELECT count(*) AS n FROM clean.payments WHERE '{D1}' = dt"),
            "n\n3\n",
        ),
        (
            &*format!(
                "SELECT count(*) AS n FROM clean.accounts a JOIN clean.payments p \
                 ON p.account_id = a.account_id WHERE a.dt = '{D1}' AND p.dt IN ('{D1}')"
            ),
            "n\n3\n",
        ),
        // A LEFT JOIN keeps its unmatched rows when ON has a condition on the joined table
        // (polars applied it after the join, as an inner join would).
        (
            "SELECT count(*) AS n, count(p.payment_id) AS matched FROM clean.accounts a \
             LEFT JOIN clean.payments p ON p.account_id = a.account_id AND p.amount > 50",
            "n,matched\n3,1\n",
        ),
    ] {
        let out = w.run_code(&["query", q, "--format", "csv"], 0);
        assert_eq!(stdout(&out), want, "{q}");
    }
    let out = w.run_code(
        &[
            "query",
            &format!("SELECT * FROM payments WHERE dt = '{D1}'"),
            "--explain",
        ],
        0,
    );
    assert!(
        stdout(&out).contains(&format!(
            "clean.payments (partitions matching the dt condition): 1 partition(s) {D1}"
        )),
        "{}",
        stdout(&out)
    );

    // Writes are refused before anything runs.
    for (sql, kw) in [
        ("DROP TABLE clean.payments", "DROP is refused"),
        (
            "INSERT INTO clean.payments VALUES ('x')",
            "INSERT is refused",
        ),
        ("COPY clean.payments TO 'x.csv'", "COPY is refused"),
        ("SELECT 1; DELETE FROM clean.payments", "DELETE is refused"),
    ] {
        let out = w.run_code(&["query", sql], 2);
        assert!(stderr(&out).contains(kw), "{sql}: {}", stderr(&out));
        assert!(stderr(&out).contains("read-only"), "{}", stderr(&out));
    }
    // Files (raw sources, the PII key) only with --allow-files.
    let read_file = format!("SELECT * FROM read_csv('data/{D1}/payments.csv')");
    let out = w.run_code(&["query", &read_file], 2);
    assert!(stderr(&out).contains("--allow-files"), "{}", stderr(&out));
    let out = w.run_code(
        &["query", &read_file, "--allow-files", "--format", "csv"],
        0,
    );
    assert!(stdout(&out).starts_with("payment_id,"), "{}", stdout(&out));
    assert!(w.path("warehouse/clean/payments").exists());

    // Errors point at the problem.
    let out = w.run_code(&["query", "SELECT amount\nFROM clean.paymnts"], 2);
    let err = stderr(&out);
    assert!(
        err.contains("unknown table clean.paymnts; did you mean clean.payments?"),
        "{err}"
    );
    assert!(
        err.contains(
            "known tables: clean.accounts, clean.payments, rejects.accounts, rejects.payments"
        ),
        "{err}"
    );
    assert!(
        err.contains("(line 2, column 6)\n  FROM clean.paymnts\n       ^"),
        "{err}"
    );
    let out = w.run_code(&["query", "SELECT amount FROM payments WHERE"], 2);
    assert!(
        stderr(&out).contains("SQL syntax error"),
        "{}",
        stderr(&out)
    );
    let out = w.run_code(&["query", "SELECT amout FROM payments"], 2);
    assert!(stderr(&out).contains("amout"), "{}", stderr(&out));
    // Regressions: a type error (wrapped in several plan contexts) and a strict cast the data
    // does not allow are the query's fault (exit 2, one short message), not a failed run (1).
    let out = w.run_code(&["query", "SELECT payment_id + 1 FROM payments"], 2);
    let err = stderr(&out);
    assert!(err.contains("arithmetic on"), "{err}");
    assert!(!err.contains("Resolved plan"), "{err}");
    let out = w.run_code(
        &["query", "SELECT CAST(payment_id AS INT) FROM payments"],
        2,
    );
    assert!(stderr(&out).contains("TRY_CAST"), "{}", stderr(&out));

    // Regressions where polars answered differently from SQL (the latest payments: 10.5,
    // 4.5, 100, 7 with statuses paid, paid, refunded, chargeback).
    let csv = |sql: &str| {
        let out = w.run_code(&["query", sql, "--format", "csv"], 0);
        stdout(&out).lines().skip(1).collect::<Vec<_>>().join("|")
    };
    // A cross join with an aggregate whose column is not selected kept the aggregate's input
    // rows (4 × 4), and one filtered by an inequality panicked in the streaming engine.
    assert_eq!(
        csv("SELECT p.payment_id FROM payments p CROSS JOIN (SELECT sum(amount) AS s FROM payments) c ORDER BY 1"),
        "P1|P2|P3|P4"
    );
    assert_eq!(
        csv("SELECT count(*) AS n FROM payments p CROSS JOIN (SELECT avg(amount) AS m FROM payments) c WHERE p.amount > c.m"),
        "1"
    );
    // NULL rules: IS NOT TRUE of NULL is true; NOT IN a list with NULL is never true.
    assert_eq!(
        csv("SELECT count(*) AS n FROM payments WHERE (CASE WHEN status = 'paid' THEN amount > 5 END) IS NOT TRUE"),
        "3"
    );
    assert_eq!(
        csv("SELECT count(*) AS n FROM payments WHERE status NOT IN ('paid', NULL)"),
        "0"
    );
    // Windows: NULLs last when ascending; a running AVG is running.
    assert_eq!(
        csv("SELECT v, ROW_NUMBER() OVER (ORDER BY v) AS rn, AVG(v) OVER (ORDER BY v) AS a FROM (VALUES (3), (NULL), (1)) t(v) ORDER BY rn"),
        "1,1,1.0|3,2,2.0|,3,2.0"
    );
    // An IN list mixing integers and decimals (polars typed it by the first value).
    assert_eq!(
        csv("SELECT count(*) AS n FROM payments WHERE amount IN (7, 10.5)"),
        "2"
    );
    // STRPOS counts characters.
    assert_eq!(
        csv("SELECT STRPOS('上海市众源广告有限公司', '公司') AS p"),
        "10"
    );
    // A NULL-valued condition on dt kept the partitions it was NULL for (D1 has 3 payments).
    assert_eq!(
        csv("SELECT count(*) AS n FROM payments WHERE dt IN ('2026-11-25', NULL)"),
        "3"
    );
    // A running AVG over a named window (polars ran the SUM but not the COUNT).
    assert_eq!(
        csv("SELECT v, AVG(v) OVER w AS a FROM (VALUES (1), (3), (5)) t(v) WINDOW w AS (ORDER BY v) ORDER BY v"),
        "1,1.0|3,2.0|5,3.0"
    );
    // `OVER (w ORDER BY …)` keeps w's partition; RANK with NULLs first ties them; POSITION
    // counts characters.
    assert_eq!(
        csv("SELECT k, v, COUNT(*) OVER (w ORDER BY v) AS c FROM (VALUES ('a', 1), ('a', 2), ('b', 3)) t(k, v) WINDOW w AS (PARTITION BY k) ORDER BY k, v"),
        "a,1,1|a,2,2|b,3,1"
    );
    assert_eq!(
        csv("SELECT v, RANK() OVER (ORDER BY v DESC) AS r FROM (VALUES (1), (NULL), (2), (NULL)) t(v) ORDER BY r, v"),
        ",1|,1|2,3|1,4"
    );
    assert_eq!(
        csv("SELECT POSITION('公司' IN '上海市众源广告有限公司') AS p"),
        "10"
    );
    // A model's file previewed ad hoc may name the run.
    assert_eq!(csv("SELECT '{{ run_id }}' AS r"), "adhoc");
    // Aggregates of a constant (polars gave the constant: SUM(1) = 1), in groups and windows.
    assert_eq!(
        csv("SELECT SUM(1) AS s, SUM(2) AS t, COUNT(*) FILTER (WHERE 1 = 1) AS f, COUNT(CASE WHEN TRUE THEN 1 END) AS c FROM payments"),
        "4,8,4,4"
    );
    assert_eq!(
        csv("SELECT k, SUM(1) OVER (PARTITION BY k) AS s FROM (VALUES ('a'), ('a'), ('b')) t(k) ORDER BY k"),
        "a,2|a,2|b,1"
    );
    // LAST_VALUE without ORDER BY is the partition's (polars gave each row its own value).
    assert_eq!(
        csv("SELECT COUNT(DISTINCT l) AS n FROM (SELECT LAST_VALUE(v) OVER (PARTITION BY k) AS l FROM (VALUES ('a', 1), ('a', 2), ('a', 3)) t(k, v)) x"),
        "1"
    );
    // Whole weeks toward zero; HAVING on a grouping column; a correlated EXISTS whose own
    // condition names a column the outer table has too (dt).
    assert_eq!(
        csv("SELECT DATE_DIFF('week', DATE '2026-11-20', DATE '2026-11-17') AS a, DATE_DIFF('week', DATE '2026-11-20', DATE '2026-11-05') AS b"),
        "0,-2"
    );
    // A running AVG of a constant; LAST_VALUE with a frame stays a running value; an
    // upper-case alias survives the EXISTS rewrite (polars matches aliases by case).
    assert_eq!(
        csv("SELECT AVG(1) OVER (ORDER BY v) AS a, LAST_VALUE(v) OVER (ORDER BY v ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS l FROM (VALUES (1), (2)) t(v) ORDER BY v"),
        "1.0,1|1.0,2"
    );
    assert_eq!(
        csv("SELECT COUNT(*) AS n FROM payments P WHERE EXISTS (SELECT 1 FROM accounts A WHERE A.account_id = P.account_id AND A.region = 'north')"),
        "3"
    );
    assert_eq!(
        csv("SELECT status, COUNT(*) AS n FROM payments GROUP BY status HAVING status = 'paid'"),
        "paid,2"
    );
    assert_eq!(
        csv(&format!("SELECT COUNT(*) AS n FROM payments p WHERE EXISTS (SELECT 1 FROM accounts a WHERE a.account_id = p.account_id AND a.region = 'north' AND a.dt = '{D2}')")),
        "3"
    );
    // NTILE (polars lacks it): 7 rows in 3 buckets are 3, 2, 2 rows, larger buckets first,
    // per partition; more buckets than rows gives each row its own.
    assert_eq!(
        csv("SELECT k, v, NTILE(3) OVER (PARTITION BY k ORDER BY v) AS q FROM (VALUES ('a', 1), ('a', 2), ('a', 3), ('a', 4), ('a', 5), ('a', 6), ('a', 7), ('b', 1), ('b', 2)) t(k, v) ORDER BY k, v"),
        "a,1,1|a,2,1|a,3,1|a,4,2|a,5,2|a,6,3|a,7,3|b,1,1|b,2,2"
    );
    // LAG/LEAD with a default: only rows whose offset row is outside the partition get it; a
    // NULL value of the row before stays NULL.
    assert_eq!(
        csv("SELECT v, LAG(x, 1, 0) OVER (ORDER BY v) AS p, LEAD(x, 2, -1) OVER (ORDER BY v) AS n FROM (VALUES (1, 10), (2, NULL), (3, 30), (4, 40)) t(v, x) ORDER BY v"),
        "1,0,30|2,10,40|3,,-1|4,30,-1"
    );
    // Windows over a grouped query run over its groups: a share of the total was each
    // group's own count (4 of 4 paid), a rank over SUM(…) a list.
    assert_eq!(
        csv("SELECT status, COUNT(*) AS n, SUM(COUNT(*)) OVER () AS total, RANK() OVER (ORDER BY SUM(amount) DESC) AS r FROM payments GROUP BY status ORDER BY status"),
        "chargeback,1,4,3|paid,2,4,2|refunded,1,4,1"
    );
    // Counts, lengths, ranks and date parts are BIGINT: arithmetic on them wrapped (u32, i8).
    assert_eq!(
        csv("SELECT COUNT(*) - 10 AS a, -COUNT(*) AS b, LENGTH('abc') - 5 AS c, STRPOS('abc', 'x') - 1 AS d, EXTRACT(MONTH FROM DATE '2026-11-30') * 100 + EXTRACT(DAY FROM DATE '2026-11-30') AS e, POWER(2, 31) AS f FROM payments"),
        "-6,-4,-2,-1,1130,2147483648.0"
    );
    // ORDER BY an aggregate after GROUP BY (polars sorted by a constant); a chain of set
    // operations (a nested EXCEPT ran as INTERSECT); ORDER BY a name of a UNION's first branch.
    assert_eq!(
        csv("SELECT status FROM payments GROUP BY status ORDER BY SUM(amount) DESC"),
        "refunded|paid|chargeback"
    );
    assert_eq!(
        csv("SELECT x FROM (VALUES (1), (2), (3)) t(x) EXCEPT SELECT x FROM (VALUES (2)) t(x) UNION SELECT x FROM (VALUES (5)) t(x) ORDER BY 1"),
        "1|3|5"
    );
    assert_eq!(csv("SELECT 2 AS x UNION ALL SELECT 1 ORDER BY x"), "1|2");
    // A timestamp after midnight does not prune the day's partition (`dt < 'D2 12:00'` holds
    // for dt = D2; pruning by the day dropped it).
    assert_eq!(
        csv(&format!(
            "SELECT COUNT(*) AS n FROM payments WHERE dt < TIMESTAMP '{D2} 12:00:00'"
        )),
        csv(&format!(
            "SELECT COUNT(*) AS n FROM payments WHERE dt <= '{D2}'"
        ))
    );
    assert_ne!(
        csv(&format!(
            "SELECT COUNT(*) AS n FROM payments WHERE dt < TIMESTAMP '{D2} 12:00:00'"
        )),
        csv(&format!(
            "SELECT COUNT(*) AS n FROM payments WHERE dt < '{D2}'"
        ))
    );
    // Date arithmetic on literals in an IN list (polars takes literals only there).
    assert_eq!(
        csv(&format!("SELECT COUNT(*) AS n FROM payments WHERE dt IN (DATE '{D2}' - INTERVAL '1 day', DATE '{D2}')")),
        csv("SELECT COUNT(*) AS n FROM payments WHERE dt IS NOT NULL")
    );
    // In a mixed HAVING a grouping column's name reads the column, not an alias that
    // shadows it; a grouped CTE keeps polars' names when it is split.
    assert_eq!(
        csv("SELECT UPPER(status) AS status, COUNT(*) AS n FROM payments GROUP BY status HAVING status = 'paid' OR COUNT(*) > 5"),
        "PAID,2"
    );
    assert_eq!(
        csv("WITH a AS (SELECT status, SUM(amount) FROM payments GROUP BY status ORDER BY SUM(amount) DESC LIMIT 1) SELECT status, amount FROM a"),
        "refunded,100.0"
    );
    // A date text before the date column it is compared with.
    assert_eq!(
        csv("SELECT COUNT(*) AS n FROM payments WHERE '2000-01-01' < paid_on"),
        csv("SELECT COUNT(*) AS n FROM payments WHERE paid_on > '2000-01-01'")
    );
    // A window ordered by a grouping expression (not its column) over the groups.
    assert_eq!(
        csv("SELECT UPPER(status) AS s, COUNT(*) AS n, RANK() OVER (ORDER BY UPPER(status) DESC) AS r FROM payments GROUP BY 1 ORDER BY 1"),
        "CHARGEBACK,1,3|PAID,2,2|REFUNDED,1,1"
    );
    // HAVING mixing a grouping column with an aggregate (polars: "cannot cast List type").
    assert_eq!(
        csv("SELECT status, COUNT(*) AS n FROM payments GROUP BY status HAVING status = 'refunded' OR COUNT(*) > 1 ORDER BY status"),
        "paid,2|refunded,1"
    );
    // SUM/AVG(DISTINCT …): NULLs left out, a group with no value is NULL.
    assert_eq!(
        csv("SELECT k, SUM(DISTINCT v) AS s, AVG(DISTINCT v) AS a, SUM(DISTINCT CASE WHEN v > 5 THEN v END) AS n FROM (VALUES ('a', 1), ('a', 1), ('a', 2), ('a', NULL), ('b', 7)) t(k, v) GROUP BY k ORDER BY k"),
        "a,3,1.5,|b,7,7.0,7"
    );
    assert_eq!(
        csv("SELECT EXTRACT(EPOCH FROM DATE '2024-05-27') AS d, EXTRACT(EPOCH FROM TIMESTAMP '2024-05-27 10:00:00.5') AS t, DATE_PART('epoch', DATE '2024-05-28') AS p"),
        "1716768000.0,1716804000.5,1716854400.0"
    );
    assert_eq!(
        csv("SELECT ROUND(12345.6, -3) AS a, ROUND(-2750, -2) AS b"),
        "12000.0,-2800.0"
    );
    // What polars cannot answer right is refused (exit 2) instead of answered wrong.
    for (sql, says) in [
        (
            "SELECT NTILE(4) OVER (PARTITION BY status) AS q FROM payments",
            "NTILE needs an ORDER BY in its window",
        ),
        (
            "SELECT status FROM payments GROUP BY status QUALIFY RANK() OVER (ORDER BY COUNT(*)) = 1",
            "QUALIFY in a grouped query is not supported",
        ),
        (
            "SELECT status, COUNT(*) AS n FROM payments",
            "status is selected beside an aggregate but is not grouped",
        ),
        (
            "SELECT COUNT(*) AS n FROM payments p WHERE p.amount > 50 OR EXISTS (SELECT 1 FROM accounts a WHERE a.account_id = p.account_id)",
            "EXISTS (…) inside OR, NOT or another expression is not supported",
        ),
        (
            "SELECT 1 AS a, 2 AS a",
            "two columns of the result are named a",
        ),
        (
            "SELECT DATE '2026-01-01' + INTERVAL '100000000 years' AS a",
            "reaches beyond 10,000 years",
        ),
        (
            "SELECT COUNT(*) AS n FROM payments WHERE dt > DATE '2026-01-01' - INTERVAL '9223372036854775807 days'",
            "reaches beyond 10,000 years",
        ),
        (
            "SELECT STDDEV(amount) OVER (ORDER BY paid_on) AS s FROM payments",
            "as a running value is not supported",
        ),
        (
            "SELECT * FROM payments FULL JOIN accounts USING (account_id)",
            "FULL JOIN … USING (…) is not supported",
        ),
        (
            "SELECT count(*) AS n FROM payments p JOIN accounts a ON p.account_id = a.account_id AND (p.amount > 5) IS TRUE",
            "move the other conditions to WHERE",
        ),
        (
            "SELECT count(*) AS n FROM payments WHERE amount IN (4 + 0, 10.5)",
            "an IN (…) list may hold literal values only",
        ),
        (
            "SELECT STRING_AGG(DISTINCT status, ',') AS s FROM payments",
            "STRING_AGG(DISTINCT …) is not supported",
        ),
        (
            "SELECT CORR(amount, amount) OVER (PARTITION BY account_id) AS c FROM payments",
            "CORR(…) OVER (…) is not supported",
        ),
        (
            "SELECT COUNT(DISTINCT status) OVER (ORDER BY paid_on) AS c FROM payments",
            "COUNT(DISTINCT …) OVER (… ORDER BY …) as a running value is not supported",
        ),
        // polars filtered after the join (14 rows instead of every account's).
        (
            "SELECT count(*) AS n FROM payments p RIGHT JOIN accounts a ON a.account_id = p.account_id AND p.amount > 5",
            "RIGHT JOIN … ON p.amount > 5",
        ),
        // polars ignored NULLS LAST on a later key.
        (
            "SELECT ROW_NUMBER() OVER (ORDER BY account_id, paid_on NULLS LAST) AS r FROM payments",
            "NULLS LAST on a key after the first is not supported",
        ),
        // polars panicked.
        (
            "SELECT CAST(amount AS DECIMAL(39, 2)) AS x FROM payments",
            "precision is 1 to 38",
        ),
        // polars gave NULL.
        (
            "SELECT DATE '2026-02-30' AS d",
            "is not a day of the calendar",
        ),
        (
            "SELECT count(*) AS n FROM \"clean.payments\"",
            "quoted, it is one name with a dot in it",
        ),
        // The query's own mistakes found while running it (exit 1 before).
        (
            "SELECT count(*) AS n FROM payments WHERE amount > 'abc'",
            "cannot compare string with numeric",
        ),
        (
            "SELECT count(*) AS n FROM payments WHERE REGEXP_LIKE(status, '(')",
            "invalid regular expression: unclosed group",
        ),
        (
            "SELECT count(*) AS n FROM payments p WHERE EXISTS (SELECT 1 FROM payments q WHERE q.account_id = p.account_id AND q.paid_on < p.paid_on)",
            "a correlation other than an equality",
        ),
        // In HAVING it would see the latest partition only (a silent 0 rows).
        (
            "SELECT dt, COUNT(*) AS n FROM payments GROUP BY dt HAVING dt = '2026-11-25'",
            "a condition on dt belongs in WHERE",
        ),
    ] {
        let out = w.run_code(&["query", sql], 2);
        assert!(stderr(&out).contains(says), "{sql}: {}", stderr(&out));
    }
    // A column CSV cannot hold is refused before the header is printed.
    let out = w.run_code(
        &[
            "query",
            "SELECT ARRAY_AGG(status) AS s FROM payments",
            "--format",
            "csv",
        ],
        2,
    );
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("column `s` is of type list"),
        "{}",
        stderr(&out)
    );
    // A query may start with a comment; an --out without a known extension is refused.
    assert_eq!(
        csv("-- the latest partition\nSELECT count(*) AS n FROM payments"),
        "4"
    );
    let out = w.run_code(&["query", "SELECT 1 AS x", "--out", "result.xlsx"], 2);
    assert!(stderr(&out).contains("give --format"), "{}", stderr(&out));
}

/// The ```sql blocks of a Markdown file.
fn sql_blocks(md: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for line in md.lines() {
        match (&mut cur, line.trim_start()) {
            (None, l) if l.starts_with("```sql") => cur = Some(String::new()),
            (Some(_), l) if l.starts_with("```") => out.push(cur.take().unwrap()),
            (Some(s), _) => {
                s.push_str(line);
                s.push('\n');
            }
            _ => {}
        }
    }
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn shipped_models_build_and_docs_examples_run() {
    let w = Workdir::new();
    let dir = w.path("g");
    let dir_s = dir.to_string_lossy().to_string();
    w.run_code(
        &[
            "generate",
            "--out",
            &dir_s,
            "--enterprises",
            "300",
            "--seed",
            "7",
            "--date",
            D2,
            "--days",
            "2",
        ],
        0,
    );
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    copy_dir(&repo.join("sql"), &dir.join("sql"));
    copy_dir(&repo.join("jobs/sql"), &dir.join("jobs/sql"));
    copy_dir(&repo.join("jobs/checks"), &dir.join("jobs/checks"));
    let out = w.run(&["-C", &dir_s, "run", "--date", D1]);
    let summary = last_json_line(&out);
    assert_eq!(
        summary["status"],
        "succeeded",
        "{summary}\n{}",
        stderr(&out)
    );

    // Night two: a transaction in fen instead of yuan fails the range check of the transactions,
    // and the models that read them are skipped; the other sources' models still run.
    let src = dir.join(format!("data/{D2}/transactions.ndjson"));
    let text = std::fs::read_to_string(&src).unwrap();
    let mut bad: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    bad["txn_id"] = serde_json::json!("T_PLANTED_0001");
    bad["amount"] = serde_json::json!(3_000_000_000.0);
    std::fs::write(&src, format!("{text}{bad}\n")).unwrap();
    let out = w.run(&["-C", &dir_s, "run", "--date", D2]);
    let summary = last_json_line(&out);
    assert_eq!(summary["status"], "failed", "{summary}\n{}", stderr(&out));
    let failures: Vec<String> = summary["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["job"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(failures, ["check.transactions"], "{summary}");
    assert!(
        summary["failures"].to_string().contains("range(amount)"),
        "{summary}"
    );
    let fdir = |t: &str, d: &str| dir.join(format!("warehouse/feature/{t}/dt={d}"));
    for skipped in ["txn_features", "application_features"] {
        assert!(
            !fdir(skipped, D2).exists(),
            "feature.{skipped} was built for {D2}"
        );
        assert!(fdir(skipped, D1).join("_SUCCESS").exists());
    }
    for built in ["tax_features", "device_features", "court_features"] {
        assert!(
            fdir(built, D2).join("_SUCCESS").exists(),
            "feature.{built} was not built for {D2}"
        );
    }
    let html = std::fs::read_to_string(dir.join(format!("reports/quality-{D2}.html"))).unwrap();
    assert!(
        html.contains("3000000000"),
        "the report shows the failing value"
    );

    let wh = panorama::warehouse::Warehouse::new(dir.join("warehouse"));
    let features = [
        "txn_features",
        "tax_features",
        "repayment_features",
        "telecom_features",
        "court_features",
        "device_features",
        "application_features",
    ];
    for f in features {
        let s = wh
            .read_success(
                panorama::warehouse::Layer::Feature,
                f,
                &panorama::warehouse::PartitionKey::date(D1),
            )
            .unwrap_or_else(|| panic!("feature.{f} was not built"));
        assert!(s.rows > 0, "feature.{f} is empty");
    }
    let apps = common::read_partition(
        &dir.join(format!("warehouse/feature/application_features/dt={D1}")),
    );
    let label = apps.column("default_label").unwrap();
    assert!(
        label.len() - label.null_count() > 0,
        "no application has a known label"
    );

    // Every SQL example of docs/sql.md runs on this warehouse.
    let md = std::fs::read_to_string(repo.join("docs/sql.md")).unwrap();
    let blocks = sql_blocks(&md);
    assert!(blocks.len() >= 12, "{} blocks", blocks.len());
    let cat = panorama::transform::query::Catalog::from_warehouse(&wh);
    let opts = panorama::transform::query::QueryOptions {
        params: panorama::transform::parse::Params::for_date(
            chrono::NaiveDate::from_ymd_opt(2026, 11, 26).unwrap(),
        ),
        ..Default::default()
    };
    for sql in blocks {
        let res = panorama::transform::query::compile(&wh, &cat, &sql, &opts)
            .and_then(|mut c| c.collect());
        if let Err(e) = res {
            panic!("docs/sql.md example failed: {e}\n{sql}");
        }
    }
}

const ACCOUNTS_WITH_CHECKS: &str = r#"kind = "ingest"
name = "accounts"
[source]
path = "data/{date}/accounts.csv"
format = "csv"
[[columns]]
name = "account_id"
type = "string"
required = true
[[columns]]
name = "region"
type = "string"
[[checks]]
type = "unique"
column = "account_id"
[[checks]]
type = "accepted_values"
column = "region"
values = ["north", "south"]
severity = "warn"
"#;

#[test]
fn ingest_contract_checks_run_after_the_commit_and_an_error_fails_the_job() {
    let w = Workdir::new();
    w.write("jobs/ingest/accounts.toml", ACCOUNTS_WITH_CHECKS);
    w.write(
        "sql/regions.sql",
        "SELECT region, COUNT(*) AS n FROM clean.accounts GROUP BY region ORDER BY region\n",
    );
    w.write("jobs/sql/regions.toml", "kind = \"sql\"\n");
    // Night 1: a region the warn check does not accept; night 2: a duplicate key too.
    w.write(
        &format!("data/{D1}/accounts.csv"),
        "account_id,region\nA1,north\nA2,east\n",
    );
    w.write(
        &format!("data/{D2}/accounts.csv"),
        "account_id,region\nA1,north\nA1,south\n",
    );

    let out = w.run_code(&["run", "--date", D1], 0);
    assert_eq!(
        last_json_line(&out)["counts"]["succeeded"],
        2,
        "{}",
        stderr(&out)
    );
    let results = format!("warehouse/quality/check_results/dt={D1}/table=clean.accounts");
    let success: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(w.path(&format!("{results}/_SUCCESS"))).unwrap(),
    )
    .unwrap();
    assert_eq!(success["job"], "ingest.accounts");
    assert_eq!(success["extra"]["warnings"], 1);
    let df = w.read_parquet(&results);
    let st = df.column("status").unwrap().str().unwrap();
    let status: Vec<&str> = (0..st.len()).map(|i| st.get(i).unwrap()).collect();
    assert_eq!(status, ["pass", "warn"]);
    let report = std::fs::read_to_string(w.path(&format!("reports/quality-{D1}.html"))).unwrap();
    assert!(report.contains("accepted_values"), "{report}");
    assert!(w
        .path(&format!("warehouse/feature/regions/dt={D1}/_SUCCESS"))
        .exists());

    // The unique check fails: the ingest job fails (its partition is committed, but the model
    // that reads it is skipped).
    let out = w.run_code(&["run", "--date", D2], 1);
    let s = last_json_line(&out);
    assert_eq!(s["counts"]["failed"], 1, "{s}");
    assert_eq!(s["counts"]["skipped"], 1, "{s}");
    assert_eq!(s["failures"][0]["job"], "ingest.accounts", "{s}");
    let err = s["failures"][0]["error"].as_str().unwrap();
    assert!(err.contains("unique"), "{err}");
    assert!(!w
        .path(&format!("warehouse/feature/regions/dt={D2}"))
        .exists());

    // Removing the failing checks fixes the night: the failed job runs again, and the results
    // of the removed checks go with them (they stayed in the quality table and the report as
    // current failures).
    let without_checks = ACCOUNTS_WITH_CHECKS
        .split("[[checks]]")
        .next()
        .unwrap()
        .to_string();
    let results2 = format!("warehouse/quality/check_results/dt={D2}/table=clean.accounts");
    assert!(w.path(&results2).exists());
    let report = std::fs::read_to_string(w.path(&format!("reports/quality-{D2}.html"))).unwrap();
    assert!(report.contains("accepted_values"), "{report}");
    w.write("jobs/ingest/accounts.toml", &without_checks);
    w.run_code(&["run", "--date", D2], 0);
    assert!(!w.path(&results2).exists());
    let report = std::fs::read_to_string(w.path(&format!("reports/quality-{D2}.html"))).unwrap();
    assert!(!report.contains("accepted_values"), "{report}");

    // Bad checks are configuration errors of the contract (exit 2), like a model's.
    w.write(
        "jobs/ingest/accounts.toml",
        format!("{ACCOUNTS_WITH_CHECKS}[[checks]]\ntype = \"no_such_check\"\n"),
    );
    let out = w.run_code(&["plan", "--date", D1], 2);
    assert!(stderr(&out).contains("no_such_check"), "{}", stderr(&out));
}

#[test]
fn ingest_contract_checks_go_to_the_tables_check_job_when_there_is_one() {
    let w = Workdir::new();
    w.write("jobs/ingest/accounts.toml", ACCOUNTS_WITH_CHECKS);
    w.write(
        "jobs/checks/accounts.toml",
        "kind = \"check\"\ntable = \"clean.accounts\"\n",
    );
    w.write(
        &format!("data/{D1}/accounts.csv"),
        "account_id,region\nA1,north\nA1,south\n",
    );
    let out = w.run_code(&["run", "--date", D1], 1);
    let s = last_json_line(&out);
    assert_eq!(s["failures"][0]["job"], "check.accounts", "{s}");
    assert_eq!(s["counts"]["succeeded"], 1, "{s}");
}

#[test]
fn branch_families_of_ingest_sql_and_check_stay_in_their_branch() {
    let w = Workdir::new();
    w.write("data/branches.csv", "branch\n0001\n0002\n");
    w.write(
        "jobs/ingest/accounts.toml",
        format!(
            "{ACCOUNTS_WITH_CHECKS}[matrix]\nbranch = {{ csv = \"data/branches.csv\", column = \"branch\" }}\n"
        )
        .replace("data/{date}/accounts.csv", "data/{date}/{branch}/accounts.csv"),
    );
    w.write(
        "sql/regions.sql",
        "SELECT region, COUNT(*) AS n, '{{ branch }}' AS b FROM clean.accounts GROUP BY region ORDER BY region\n",
    );
    w.write(
        "jobs/sql/regions.toml",
        "kind = \"sql\"\n[matrix]\nbranch = { csv = \"data/branches.csv\", column = \"branch\" }\n",
    );
    w.write(
        "jobs/checks/features.toml",
        "kind = \"check\"\n[matrix]\nbranch = { csv = \"data/branches.csv\", column = \"branch\" }\ntable = [\"feature.regions\"]\n",
    );
    w.write(
        "sql/regions.toml",
        "[[checks]]\ntype = \"row_count\"\nmax = 1\n",
    );
    w.write(
        &format!("data/{D1}/0001/accounts.csv"),
        "account_id,region\nA1,north\nA2,north\n",
    );
    // Branch 0002 has two regions: its feature check (at most one row) fails, 0001's passes.
    w.write(
        &format!("data/{D1}/0002/accounts.csv"),
        "account_id,region\nA1,south\nA2,north\n",
    );
    let out = w.run_code(&["run", "--date", D1], 1);
    let s = last_json_line(&out);
    assert_eq!(s["counts"]["selected"], 6, "{s}");
    assert_eq!(s["counts"]["failed"], 1, "{s}");
    assert_eq!(
        s["failures"][0]["job"], "check.features[branch=0002,table=feature.regions]",
        "{s}"
    );
    let one = w.read_parquet(&format!("warehouse/feature/regions/dt={D1}/branch=0001"));
    assert_eq!(one.height(), 1);
    let n = one.column("n").unwrap().cast(&DataType::Int64).unwrap();
    assert_eq!(n.i64().unwrap().get(0), Some(2));
    assert!(
        one.column("branch").is_err(),
        "{:?}",
        one.get_column_names()
    );
    let two = w.read_parquet(&format!("warehouse/feature/regions/dt={D1}/branch=0002"));
    assert_eq!(two.height(), 2);
    // The sidecar's check names the sidecar as its origin (it said sql/regions.sql).
    let results = w.read_parquet(&format!(
        "warehouse/quality/check_results/dt={D1}/table=feature.regions/branch=0002"
    ));
    let origin = results.column("origin").unwrap().str().unwrap().get(0);
    assert_eq!(origin, Some("sql/regions.toml"), "{results}");
    for b in ["0001", "0002"] {
        for t in ["clean.accounts", "feature.regions"] {
            assert!(
                w.path(&format!(
                    "warehouse/quality/check_results/dt={D1}/table={t}/branch={b}/_SUCCESS"
                ))
                .exists(),
                "{t} {b}"
            );
        }
    }
}

/// Regression: a model's own checks (its config) ran only when a check job listed its table;
/// now its job runs them after the commit, and a failing `error` check skips its readers.
#[test]
fn a_models_own_checks_run_in_its_job() {
    let w = shop();
    std::fs::remove_file(w.path("jobs/checks/features.toml")).unwrap();
    let sql = std::fs::read_to_string(w.path("sql/account_totals.sql")).unwrap();
    let planted = sql.replace(
        "min = 0\n*/",
        "min = 0\n[[checks]]\ntype = \"range\"\ncolumn = \"payments\"\nmax = 1\n*/",
    );
    assert_ne!(sql, planted);
    w.write("sql/account_totals.sql", &planted);
    let out = w.run_code(&["run", "--date", D1], 1);
    let summary = last_json_line(&out);
    let failures = summary["failures"].to_string();
    assert!(failures.contains("sql.account_totals"), "{summary}");
    assert!(failures.contains("range(payments)"), "{failures}");
    assert_eq!(summary["counts"]["failed"], 1, "{summary}");
    assert_eq!(summary["counts"]["skipped"], 1, "region_totals: {summary}");
    let results = w.read_parquet(&format!(
        "warehouse/quality/check_results/dt={D1}/table=feature.account_totals"
    ));
    assert_eq!(results.height(), 3, "the model's three checks");

    // Regression: one bad declaration was reported once per check job, under their names.
    w.write(
        "jobs/checks/features.toml",
        "kind = \"check\"\n[matrix]\ntable = [\"feature.account_totals\"]\n",
    );
    w.write(
        "sql/account_totals.sql",
        planted.replace("type = \"unique\"", "type = \"uniqe\""),
    );
    let out = w.run_code(&["plan", "--date", D1], 2);
    let err = stderr(&out);
    assert!(err.contains("1 problem(s)"), "{err}");
    assert!(
        err.contains("sql/account_totals.sql: checks[0]: unknown type \"uniqe\""),
        "{err}"
    );

    // A misspelled placeholder is a configuration error when the night is planned.
    w.write("sql/account_totals.sql", &planted);
    w.write(
        "sql/region_totals.sql",
        "SELECT region, '{{ dss }}' AS d FROM account_totals\n",
    );
    let out = w.run_code(&["plan", "--date", D1], 2);
    let err = stderr(&out);
    assert!(err.contains("sql/region_totals.sql:1:"), "{err}");
    assert!(err.contains("unknown placeholder {{ dss }}"), "{err}");
}
