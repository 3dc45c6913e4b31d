//! Credit models through the real binary: ad hoc training, bad targets, reproducibility, the
//! registry.

mod common;

use common::{stderr, stdout, Workdir};

/// A messy credit-like CSV: an id column, a high-cardinality category, heavy outliers, missing
/// values written three ways, and a yes/no target with about 15% events.
fn messy_csv(n: usize, seed: u64) -> String {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 11) as f64) / ((1u64 << 53) as f64)
    };
    let mut out =
        String::from("customer_id,income,utilisation,late_payments,region,employer,default_flag\n");
    for i in 0..n {
        let income = 20_000.0 + 80_000.0 * next();
        let util = next();
        let late = (next() * 4.0).floor();
        let region = ["north", "south", "east", "west"][(next() * 4.0) as usize];
        let employer = format!("emp{}", (next() * 300.0) as usize);
        let z = -2.2 + 2.5 * util + 0.6 * late - income / 60_000.0
            + if region == "east" { 0.7 } else { 0.0 };
        let p = 1.0 / (1.0 + (-z).exp());
        let target = if next() < p { "yes" } else { "no" };
        let income_s = match i % 50 {
            0 => "NA".to_string(),
            1 => String::new(),
            2 => "1e9".to_string(), // heavy outlier
            _ => format!("{income:.2}"),
        };
        let util_s = if i % 37 == 0 {
            "?".to_string()
        } else {
            format!("{util:.4}")
        };
        out.push_str(&format!(
            "{},{income_s},{util_s},{late},{region},{employer},{target}\n",
            100_000 + i
        ));
    }
    out
}

fn json(out: &std::process::Output) -> serde_json::Value {
    let text = stdout(out);
    let line = text.lines().last().unwrap_or("");
    serde_json::from_str(line).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON object ({e}):\n{text}\n{}",
            stderr(out)
        )
    })
}

#[test]
fn ad_hoc_training_on_a_messy_csv_for_every_algorithm() {
    let w = Workdir::new();
    w.write("loans.csv", messy_csv(3000, 1));
    for algo in ["scorecard", "logistic", "tree", "gbdt", "knn"] {
        let out = w.run_code(
            &[
                "train",
                "--data",
                "loans.csv",
                "--target",
                "default_flag",
                "--algo",
                algo,
                "--format",
                "json",
            ],
            0,
        );
        let v = json(&out);
        for k in ["auc", "ks", "gini", "train_auc"] {
            assert!(v[k].as_f64().is_some(), "{algo}: no {k} in {v}");
        }
        let auc = v["auc"].as_f64().unwrap();
        assert!(auc > 0.68, "{algo}: test AUC {auc}");
        assert!((v["gini"].as_f64().unwrap() - (2.0 * auc - 1.0)).abs() < 1e-9);
        assert_eq!(v["event"], "yes");
        let dropped: Vec<&str> = v["dropped_columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["column"].as_str().unwrap())
            .collect();
        assert_eq!(dropped, vec!["customer_id"], "{algo}");
        let report = v["report"].as_str().unwrap();
        let html = std::fs::read_to_string(w.path(report)).unwrap();
        assert!(
            html.contains("<svg") && html.contains("ROC"),
            "{algo}: report without charts"
        );
    }
    // Regression: rows without a target were counted only in the HTML report.
    let unlabelled: String = messy_csv(1000, 2)
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i > 0 && i % 100 == 0 {
                format!("{},\n", l.rsplit_once(',').unwrap().0)
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    w.write("unlabelled.csv", unlabelled);
    let args = [
        "train",
        "--data",
        "unlabelled.csv",
        "--target",
        "default_flag",
        "--algo",
        "logistic",
    ];
    let v = json(&w.run_code(&[&args[..], &["--format", "json"]].concat(), 0));
    assert_eq!(v["rows_without_target"], 10, "{v}");
    let text = stdout(&w.run_code(&args, 0));
    assert!(text.contains("10 rows without a target left out"), "{text}");
    // The scorecard report carries the scorecard table and WoE charts.
    let html = std::fs::read_to_string(w.path("reports/loans-scorecard.html")).unwrap();
    assert!(html.contains("WoE per bin") && html.contains("points"));
}

#[test]
fn same_seed_same_metrics_other_seed_other_split() {
    let w = Workdir::new();
    w.write("loans.csv", messy_csv(1500, 2));
    let run = |seed: &str| {
        let v = json(&w.run_code(
            &[
                "train",
                "--data",
                "loans.csv",
                "--target",
                "default_flag",
                "--algo",
                "gbdt",
                "--format",
                "json",
                "--seed",
                seed,
                "--no-report",
            ],
            0,
        ));
        (
            v["auc"].as_f64().unwrap(),
            v["train_auc"].as_f64().unwrap(),
            v["ks"].as_f64().unwrap(),
        )
    };
    assert_eq!(run("7"), run("7"));
    assert_ne!(run("7"), run("8"));
}

#[test]
fn bad_targets_and_flags_are_usage_errors() {
    let w = Workdir::new();
    w.write("three.csv", "a,b,t\n1,2,x\n2,3,y\n3,4,z\n4,5,x\n");
    let out = w.run_code(&["train", "--data", "three.csv", "--target", "t"], 2);
    assert!(
        stderr(&out).contains("must be binary") && stderr(&out).contains("\"z\""),
        "{}",
        stderr(&out)
    );
    let out = w.run_code(&["train", "--data", "three.csv", "--target", "nope"], 2);
    assert!(
        stderr(&out).contains("columns are: a, b, t"),
        "{}",
        stderr(&out)
    );
    w.write("loans.csv", messy_csv(300, 3));
    let out = w.run_code(
        &[
            "train",
            "--data",
            "loans.csv",
            "--target",
            "default_flag",
            "--algo",
            "forest",
        ],
        2,
    );
    assert!(
        stderr(&out).contains("allowed values are scorecard, logistic"),
        "{}",
        stderr(&out)
    );
    let out = w.run_code(
        &[
            "train",
            "--data",
            "loans.csv",
            "--target",
            "default_flag",
            "--algo",
            "gbdt",
            "--params",
            r#"{"leaves": 3}"#,
        ],
        2,
    );
    assert!(
        stderr(&out).contains("unknown field `leaves`") && stderr(&out).contains("num_leaves"),
        "{}",
        stderr(&out)
    );
    let out = w.run_code(
        &[
            "train",
            "--data",
            "loans.csv",
            "--target",
            "default_flag",
            "--algo",
            "gbdt",
            "--params",
            r#"{"learning_rate": 2}"#,
        ],
        2,
    );
    assert!(stderr(&out).contains("learning_rate"), "{}", stderr(&out));
    let out = w.run_code(&["train", "--data", "missing.csv", "--target", "t"], 3);
    assert!(stderr(&out).contains("missing.csv"));
}

#[test]
fn registered_models_are_listed_and_shown() {
    let w = Workdir::new();
    w.write("loans.csv", messy_csv(1200, 4));
    w.run_code(
        &[
            "train",
            "--data",
            "loans.csv",
            "--target",
            "default_flag",
            "--register",
            "pre_credit",
            "--no-report",
        ],
        0,
    );
    w.run_code(
        &[
            "train",
            "--data",
            "loans.csv",
            "--target",
            "default_flag",
            "--register",
            "pre_credit",
            "--no-report",
            "--seed",
            "3",
        ],
        0,
    );
    let dir = w.path("warehouse/models/pre_credit/v0002");
    for f in [
        "model.json",
        "spec.json",
        "features.json",
        "metrics.json",
        "meta.json",
        "binning.json",
        "scorecard.csv",
        "scorecard.sql",
    ] {
        assert!(dir.join(f).exists(), "missing {f}");
    }
    let sql = std::fs::read_to_string(dir.join("scorecard.sql")).unwrap();
    assert!(sql.contains("CASE") && sql.contains("IS NULL"));
    let list = stdout(&w.run_code(&["models", "list"], 0));
    assert!(
        list.contains("pre_credit") && list.contains("v0001") && list.contains("v0002"),
        "{list}"
    );
    let show: serde_json::Value = serde_json::from_str(&stdout(
        &w.run_code(&["models", "show", "pre_credit", "--format", "json"], 0),
    ))
    .unwrap();
    assert_eq!(show["meta"]["version"], "v0002");
    assert_eq!(show["meta"]["seed"], 3);
    assert_eq!(show["meta"]["data_fingerprint"].as_str().unwrap().len(), 16);
    let out = w.run_code(&["models", "show", "nope"], 2);
    assert!(stderr(&out).contains("pre_credit"));
}

/// Writes `feature.<table>` for `dt` from a CSV, committed like any job's output.
fn feature_partition(w: &Workdir, table: &str, dt: &str, csv: &str) {
    use panorama::warehouse::{Layer, PartitionKey, Success, Warehouse};
    w.write("tmp.csv", csv);
    let mut df = panorama::model::prep::read_table(&w.path("tmp.csv")).unwrap();
    let wh = Warehouse::new(w.path("warehouse"));
    let staged = wh
        .stage(Layer::Feature, table, &PartitionKey::date(dt), "test-run")
        .unwrap();
    let bytes = panorama::warehouse::parquet::write_frame(
        &staged.dir().join("part-00000.parquet"),
        &mut df,
        &[],
    )
    .unwrap();
    let columns = df
        .get_column_names()
        .iter()
        .map(|c| c.to_string())
        .collect();
    staged
        .commit(Success {
            rows: df.height() as u64,
            columns,
            bytes,
            job: "sql.test".into(),
            run_id: "test-run".into(),
            ..Default::default()
        })
        .unwrap();
}

#[test]
fn nightly_train_jobs_register_models_and_write_reports() {
    let w = Workdir::new();
    feature_partition(&w, "apps", "2026-11-26", &messy_csv(1500, 5));
    w.write(
        "jobs/models/card.toml",
        r#"kind = "train"
input = "feature.apps"
target = "default_flag"
entity_id = "customer_id"
exclude = ["employer"]
split = { type = "stratified", test_size = 0.3 }
algo = "scorecard"
[params]
pdo = 40
[params.binning]
monotonic = "ascending"
"#,
    );
    w.write(
        "jobs/models/segments.toml",
        "kind = \"train\"\ninput = \"feature.apps\"\nfeatures = [\"income\", \"utilisation\", \"late_payments\"]\nalgo = \"kmeans\"\n[params]\nk = 3\n",
    );
    let out = w.run_code(&["run", "--date", "2026-11-26"], 0);
    let last = stdout(&out).lines().last().unwrap_or("").to_string();
    assert!(last.contains("\"succeeded\":2"), "{last}\n{}", stderr(&out));
    let show: serde_json::Value = serde_json::from_str(&stdout(
        &w.run_code(&["models", "show", "card", "--format", "json"], 0),
    ))
    .unwrap();
    assert_eq!(show["meta"]["dt"], "2026-11-26");
    assert!(show["meta"]["headline"]["auc"].as_f64().unwrap() > 0.6);
    assert!(!show["meta"]["features"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f == "customer_id" || f == "employer"));
    assert!(
        w.path("reports/models/card.html").exists()
            && w.path("reports/models/segments.html").exists()
    );
    assert!(w
        .path("warehouse/models/segments/v0001/model.json")
        .exists());
    // A second run of the same night finds the models registered and trains nothing again.
    w.run_code(&["run", "--date", "2026-11-26"], 0);
    assert!(!w.path("warehouse/models/card/v0002").exists());
    // Regression: the same rows in another order (a model's table has none set) drew another
    // random split and gave another model; rows are put in `entity_id` order first.
    let csv = messy_csv(1500, 5);
    let mut lines: Vec<&str> = csv.lines().collect();
    lines[1..].reverse();
    feature_partition(&w, "apps", "2026-11-27", &(lines.join("\n") + "\n"));
    w.run_code(&["run", "--date", "2026-11-27"], 0);
    let fingerprint = |v: &str| {
        let meta: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(w.path(&format!("warehouse/models/card/{v}/meta.json")))
                .unwrap(),
        )
        .unwrap();
        meta["data_fingerprint"].as_str().unwrap().to_string()
    };
    assert_eq!(fingerprint("v0001"), fingerprint("v0002"));
}

#[test]
fn bad_train_specs_name_the_key_and_the_allowed_values() {
    let w = Workdir::new();
    w.write(
        "jobs/models/bad.toml",
        r#"kind = "train"
input = "feature.apps"
algo = "forest"
missing = "guess"
split = { type = "random" }
colour = "blue"
"#,
    );
    w.write("jobs/models/bad_params.toml", "kind = \"train\"\ninput = \"feature.apps\"\ntarget = \"y\"\nalgo = \"gbdt\"\n[params]\nnum_leaves = 1\nleaves = 3\n");
    w.write(
        "jobs/models/no_target.toml",
        "kind = \"train\"\ninput = \"feature.apps\"\nalgo = \"logistic\"\n",
    );
    let out = w.run_code(&["jobs"], 2);
    let err = stderr(&out);
    for want in [
        "`algo`: \"forest\" is not an algorithm; allowed values: scorecard, logistic",
        "`missing`: \"guess\"; allowed values: keep, drop_rows, zero",
        "`split.type`: \"random\"; allowed values: stratified, out_of_time",
        "`colour`: unknown key",
        "unknown field `leaves`",
        "`target`: required for algorithm logistic",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
}
