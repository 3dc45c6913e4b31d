use super::*;
use crate::warehouse::{PartitionKey, Success};

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn commit(wh: &Warehouse, layer: Layer, table: &str, dt: &str, mut df: DataFrame) {
    let s = wh
        .stage(layer, table, &PartitionKey::date(dt), "r")
        .unwrap();
    crate::warehouse::parquet::write_frame(&s.dir().join("part-00000.parquet"), &mut df, &[])
        .unwrap();
    s.commit(Success {
        rows: df.height() as u64,
        ..Default::default()
    })
    .unwrap();
}

fn checks(toml_text: &str) -> Vec<Check> {
    let t: toml::Table = toml::from_str(toml_text).unwrap();
    parse_checks(t["checks"].as_array().unwrap(), "test").unwrap()
}

fn setup() -> (tempfile::TempDir, Warehouse, Catalog) {
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::new(dir.path());
    commit(
        &wh,
        Layer::Clean,
        "apps",
        "2026-11-24",
        df!("id" => ["a1", "a2"], "amount" => [10.0, 20.0]).unwrap(),
    );
    commit(
        &wh,
        Layer::Clean,
        "apps",
        "2026-11-25",
        df!("id" => ["a1", "a2", "a3"], "amount" => [10.0, 20.0, 30.0]).unwrap(),
    );
    let apply = [
        d("2026-11-20"),
        d("2026-11-25"),
        d("2026-11-26"),
        d("2026-11-26"),
    ];
    commit(
        &wh,
        Layer::Clean,
        "apps",
        "2026-11-26",
        df!(
            "id" => ["a1", "a2", "a2", "a4"],
            "ent" => [Some("E1"), Some("E2"), Some("E9"), None],
            "amount" => [Some(100.0), Some(-5.0), Some(2_000_000.0), None],
            "status" => ["approved", "rejected", "approved", "lost"],
            "code" => ["91110000AB", "91110000CD", "bad code", "91110000EF"],
            "apply_date" => apply,
            "extra" => [1i64, 2, 3, 4],
        )
        .unwrap(),
    );
    commit(
        &wh,
        Layer::Clean,
        "ents",
        "2026-11-26",
        df!("ent" => ["E1", "E2"]).unwrap(),
    );
    let cat = Catalog::from_warehouse(&wh);
    (dir, wh, cat)
}

fn run(wh: &Warehouse, cat: &Catalog, text: &str) -> Vec<CheckResult> {
    evaluate(
        wh,
        cat,
        Layer::Clean,
        "apps",
        d("2026-11-26"),
        &checks(text),
    )
    .results
}

fn statuses(rs: &[CheckResult]) -> Vec<&str> {
    rs.iter().map(|r| r.status.as_str()).collect()
}

#[test]
fn row_checks_pass_and_fail() {
    let (_d, wh, cat) = setup();
    let rs = run(
        &wh,
        &cat,
        r#"
        [[checks]]
        type = "not_null"
        columns = ["id", "ent"]
        [[checks]]
        type = "unique"
        column = "id"
        severity = "warn"
        [[checks]]
        type = "unique"
        columns = ["id", "ent"]
        [[checks]]
        type = "accepted_values"
        column = "status"
        values = ["approved", "rejected"]
        [[checks]]
        type = "accepted_values"
        column = "status"
        values = ["approved", "rejected", "lost"]
        [[checks]]
        type = "range"
        column = "amount"
        min = 0
        max = 1000000
        [[checks]]
        type = "range"
        column = "amount"
        min = 0
        where = "status = 'approved'"
        tolerance = 0.5
        [[checks]]
        type = "range"
        column = "apply_date"
        min = "2026-01-01"
        max = "2026-11-26"
        [[checks]]
        type = "regex"
        column = "code"
        pattern = "[0-9A-Z]{10}"
        [[checks]]
        type = "regex"
        column = "code"
        pattern = "[0-9A-Za-z ]+"
        [[checks]]
        type = "expression"
        expression = "amount < 1000000 OR status = 'approved'"
        [[checks]]
        type = "expression"
        expression = "extra > 1"
        "#,
    );
    let names: Vec<&str> = rs.iter().map(|r| r.check.as_str()).collect();
    assert_eq!(names[0], "not_null(id)");
    assert_eq!(names[1], "not_null(ent)");
    assert_eq!(
        statuses(&rs),
        [
            "pass", "fail", "warn", "pass", "fail", "pass", "fail", "pass", "pass", "fail", "pass",
            "pass", "fail"
        ],
        "{rs:#?}"
    );
    assert_eq!(rs[1].failing_rows, 1);
    assert_eq!(rs[2].failing_rows, 2);
    assert_eq!(rs[2].sample, "a2 ×2");
    assert_eq!(rs[4].sample, "lost");
    assert_eq!(rs[6].failing_rows, 2, "{:?}", rs[6]);
    assert_eq!(rs[9].sample, "bad code");
    assert!(rs[6].observed.contains("2 of 4 rows"), "{}", rs[6].observed);
    assert!(rs[1].blocking() && !rs[2].blocking());
}

#[test]
fn relationships_freshness_counts_and_drift() {
    let (_d, wh, cat) = setup();
    let rs = run(
        &wh,
        &cat,
        r#"
        [[checks]]
        type = "relationships"
        column = "ent"
        to = "clean.ents"
        [[checks]]
        type = "relationships"
        column = "ent"
        to = "ents"
        field = "ent"
        where = "status = 'rejected'"
        [[checks]]
        type = "freshness"
        max_age = "1d"
        [[checks]]
        type = "freshness"
        column = "apply_date"
        max_age = 0
        [[checks]]
        type = "freshness"
        column = "apply_date"
        max_age = "12h"
        "#,
    );
    assert_eq!(
        statuses(&rs),
        ["fail", "pass", "pass", "pass", "pass"],
        "{rs:#?}"
    );
    assert_eq!(rs[0].sample, "E9");
    let rs = run(
        &wh,
        &cat,
        r#"
        [[checks]]
        type = "row_count"
        min = 1
        max = 3
        [[checks]]
        type = "row_count"
        min = 4
        [[checks]]
        type = "row_count_drift"
        max_change_pct = 10
        compare = 2
        [[checks]]
        type = "row_count_drift"
        max_change_pct = 80
        [[checks]]
        type = "schema_drift"
        [[checks]]
        type = "schema_drift"
        allow_added = true
        "#,
    );
    assert_eq!(
        statuses(&rs),
        ["fail", "pass", "fail", "pass", "fail", "pass"],
        "{rs:#?}"
    );
    assert!(rs[2].observed.contains("+60.0%"), "{}", rs[2].observed);
    assert!(rs[4].observed.contains("+ent"), "{}", rs[4].observed);
}

#[test]
fn schema_drift_allows_additions_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::new(dir.path());
    commit(
        &wh,
        Layer::Clean,
        "t",
        "2026-11-01",
        df!("a" => [1i64]).unwrap(),
    );
    commit(
        &wh,
        Layer::Clean,
        "t",
        "2026-11-02",
        df!("a" => [1i64], "b" => [2i64]).unwrap(),
    );
    let cat = Catalog::from_warehouse(&wh);
    let cs = checks("[[checks]]\ntype = \"schema_drift\"\nallow_added = true\n[[checks]]\ntype = \"schema_drift\"\n");
    let o = evaluate(&wh, &cat, Layer::Clean, "t", d("2026-11-02"), &cs);
    assert_eq!(statuses(&o.results), ["pass", "fail"]);
}

#[test]
fn unknown_columns_and_missing_partitions_are_errors() {
    let (_d, wh, cat) = setup();
    let rs = run(
        &wh,
        &cat,
        "[[checks]]\ntype = \"not_null\"\ncolumn = \"nope\"\nseverity = \"warn\"\n",
    );
    assert_eq!(rs[0].status, "error");
    assert!(
        rs[0].message.contains("no column \"nope\""),
        "{}",
        rs[0].message
    );
    assert!(!rs[0].blocking());
    // Regression: the run summary's warning for it ended in an empty colon.
    let o = evaluate(
        &wh,
        &cat,
        Layer::Clean,
        "apps",
        d("2026-11-26"),
        &checks("[[checks]]\ntype = \"not_null\"\ncolumn = \"nope\"\nseverity = \"warn\"\n"),
    );
    let lines = o.warning_lines();
    assert!(
        lines[0].contains("(warn) could not run: ") && lines[0].contains("nope"),
        "{lines:?}"
    );
    let o = evaluate(
        &wh,
        &cat,
        Layer::Clean,
        "apps",
        d("2020-01-01"),
        &checks("[[checks]]\ntype = \"row_count\"\nmin = 1\n"),
    );
    assert_eq!(o.results[0].status, "error");
    assert!(
        o.results[0]
            .message
            .contains("no partition on or before 2020-01-01"),
        "{:?}",
        o.results[0]
    );
    // Regression: a range with date bounds said its bound did not suit an f64 column.
    let o = evaluate(
        &wh,
        &cat,
        Layer::Clean,
        "apps",
        d("2020-01-01"),
        &checks("[[checks]]\ntype = \"range\"\ncolumn = \"amount\"\nmin = \"2000-01-01\"\n"),
    );
    assert!(
        o.results[0]
            .message
            .contains("no partition on or before 2020-01-01"),
        "{:?}",
        o.results[0]
    );
}

#[test]
fn declarations_report_every_problem() {
    let t: toml::Table = toml::from_str(
        r#"
        [[checks]]
        type = "nott_null"
        [[checks]]
        type = "range"
        column = "a"
        [[checks]]
        type = "regex"
        column = "a"
        pattern = "("
        [[checks]]
        type = "unique"
        column = "a"
        severity = "fatal"
        colour = "red"
        "#,
    )
    .unwrap();
    let p = parse_checks(t["checks"].as_array().unwrap(), "jobs/x.toml").unwrap_err();
    let all = p.join("\n");
    assert!(
        all.contains("checks[0]: unknown type \"nott_null\""),
        "{all}"
    );
    assert!(
        all.contains("checks[1] (range): give `min`, `max` or both"),
        "{all}"
    );
    assert!(
        all.contains("checks[2] (regex): `pattern` is not a valid regular expression"),
        "{all}"
    );
    assert!(
        all.contains("`severity` must be \"warn\" or \"error\""),
        "{all}"
    );
    assert!(all.contains("unknown key `colour`"), "{all}");
    assert_eq!(parse_age(&toml::Value::String("36h".into())).unwrap(), 1.5);
}

#[test]
fn results_are_committed_and_reported() {
    let (dir, wh, cat) = setup();
    let o = evaluate(
        &wh,
        &cat,
        Layer::Clean,
        "apps",
        d("2026-11-26"),
        &checks("[[checks]]\ntype = \"not_null\"\ncolumn = \"ent\"\n[[checks]]\ntype = \"unique\"\ncolumn = \"id\"\nseverity = \"warn\"\n"),
    );
    let p = write_results(&wh, &o, d("2026-11-26"), "check.apps", "run1").unwrap();
    assert!(
        p.ends_with("quality/check_results/dt=2026-11-26/table=clean.apps"),
        "{}",
        p.display()
    );
    let html = report::render(&wh, d("2026-11-26"), &[]).unwrap();
    assert!(
        html.contains("1 warnings") && html.contains("1 failed"),
        "{html}"
    );
    assert!(html.contains("<h2 id=\"clean.apps\">"), "{html}");
    assert!(html.contains("<svg"), "{html}");
    drop(dir);
}

/// Regression: a timestamp column's age was counted in whole days (cast to a date), so
/// `max_age = "36h"` could not tell 30 hours from 40.
#[test]
fn freshness_of_a_timestamp_counts_hours_from_the_end_of_the_run_date() {
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::new(dir.path());
    let ts = chrono::NaiveDate::from_ymd_opt(2026, 11, 25)
        .unwrap()
        .and_hms_opt(21, 0, 0)
        .unwrap();
    let col = Series::new("updated_at".into(), [ts.and_utc().timestamp_millis()])
        .cast(&DataType::Datetime(TimeUnit::Milliseconds, None))
        .unwrap();
    commit(
        &wh,
        Layer::Clean,
        "events",
        "2026-11-26",
        DataFrame::new(1, vec![col.into()]).unwrap(),
    );
    let cat = Catalog::from_warehouse(&wh);
    // Newest 2026-11-25 21:00; the run date 2026-11-26 ends 27 hours later.
    let text = r#"
        [[checks]]
        type = "freshness"
        column = "updated_at"
        max_age = "26h"
        [[checks]]
        type = "freshness"
        column = "updated_at"
        max_age = "27h"
        [[checks]]
        type = "freshness"
        column = "updated_at"
        max_age = "1d"
        "#;
    let rs = evaluate(
        &wh,
        &cat,
        Layer::Clean,
        "events",
        d("2026-11-26"),
        &checks(text),
    )
    .results;
    assert_eq!(statuses(&rs), ["fail", "pass", "fail"], "{rs:#?}");
    assert!(
        rs[0]
            .observed
            .contains("27.0 hour(s) before the end of 2026-11-26"),
        "{}",
        rs[0].observed
    );
}
