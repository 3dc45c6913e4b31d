//! Champion/challenger, A/B scoring and score tables through the real binary: two nights of a
//! small project, the recorded decision, stable arms, the score schema as saved in docs/, limit
//! caps, fraud flags, monitoring tables, promote and rollback by hand.

mod common;

use common::{stderr, Workdir};
use polars::prelude::*;

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Applications of `n` customers (each with a stable id and risk) up to `dt`.
fn applications(n: usize, night: u64) -> String {
    let mut s = String::from(
        "application_id,customer_id,apply_date,income,debt,utilisation,channel,shared_devices,default_flag\n",
    );
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut rnd = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 11) as f64 / (1u64 << 53) as f64
    };
    // Night 2 has the same applications plus a few new ones.
    let rows = n + night as usize * 50;
    for i in 0..rows {
        let income = 2000.0 + 8000.0 * rnd();
        let debt = 20000.0 * rnd();
        let util = rnd();
        let z = -2.0 + 2.5 * util + debt / 10000.0 - income / 5000.0;
        let bad = (rnd() < 1.0 / (1.0 + (-z).exp())) as i32;
        let day = 1 + (i * 700 / rows) as i64;
        let date =
            chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap() + chrono::Duration::days(day);
        let channel = ["web", "branch", "agent"][i % 3];
        s.push_str(&format!(
            "AP{i:08},C{:06},{date},{income:.0},{debt:.0},{util:.4},{channel},{},{bad}\n",
            i % (n / 2),
            (rnd() < 0.03) as i32 * 3
        ));
    }
    s
}

fn feature_partition(w: &Workdir, dt: &str, csv: &str) {
    use panorama::warehouse::{Layer, PartitionKey, Success, Warehouse};
    w.write("tmp.csv", csv);
    let mut df = panorama::model::prep::read_table(&w.path("tmp.csv")).unwrap();
    let wh = Warehouse::new(w.path("warehouse"));
    let staged = wh
        .stage(Layer::Feature, "apps", &PartitionKey::date(dt), "test-run")
        .unwrap();
    panorama::warehouse::parquet::write_frame(&staged.dir().join("part-0.parquet"), &mut df, &[])
        .unwrap();
    staged
        .commit(Success {
            rows: df.height() as u64,
            job: "sql.apps".into(),
            run_id: "test-run".into(),
            ..Default::default()
        })
        .unwrap();
}

const TRAIN: &str = r#"kind = "train"
input = "feature.apps"
target = "default_flag"
entity_id = "application_id"
exclude = ["customer_id", "apply_date"]
split = { type = "hash", column = "application_id", test_size = 0.3, oot_column = "apply_date", oot_days = 90 }
"#;

fn project() -> Workdir {
    let w = Workdir::new();
    w.write(
        "jobs/models/card.toml",
        format!("{TRAIN}algo = \"logistic\"\n"),
    );
    w.write(
        "jobs/models/boost.toml",
        format!("{TRAIN}algo = \"gbdt\"\n[params]\nn_estimators = 30\nnum_leaves = 7\n"),
    );
    w.write(
        "jobs/decide/apps.toml",
        r#"kind = "decide"
models = ["card", "boost"]
[policy]
min_auc_gain = -1.0
max_ks_drop = 1.0
max_oot_auc_drop = 1.0
max_score_psi = 100.0
nights = 1
min_events = 5
"#,
    );
    w.write(
        "jobs/score/apps.toml",
        r#"kind = "score"
input = "feature.apps"
family = "apps"
id = "application_id"
entity = "customer_id"
csv = true
[ab]
challenger_share = 0.3
salt = "test"
[limit]
max_pd = 0.6
min_limit = 1000
round_to = 100
grade_caps = { A = 50000, B = 40000, C = 30000, D = 20000, E = 10000, F = 5000, G = 0 }
[[limit.caps]]
name = "income"
ceiling = "3 * income"
[[fraud]]
flag = "shared_device"
when = "shared_devices >= 3"
decline = true
"#,
    );
    w
}

fn score_frame(w: &Workdir, dt: &str) -> DataFrame {
    w.read_parquet(&format!("warehouse/score/apps/dt={dt}"))
}

#[test]
fn two_nights_decide_score_and_keep_arms() {
    let w = project();
    feature_partition(&w, "2026-11-25", &applications(1200, 0));
    feature_partition(&w, "2026-11-26", &applications(1200, 1));
    let out = w.run_code(&["run", "--date", "2026-11-25"], 0);
    assert!(stdout(&out).contains("\"succeeded\":4"), "{}", stdout(&out));
    let summary = |out: &std::process::Output| -> serde_json::Value {
        serde_json::from_str(stdout(out).lines().last().unwrap()).unwrap()
    };
    assert_eq!(
        summary(&out)["score_tables"],
        serde_json::json!(["warehouse/score/apps/dt=2026-11-25"])
    );
    // Regression: a run that did not score listed the partition an earlier run wrote.
    let out = w.run_code(
        &[
            "run",
            "--date",
            "2026-11-25",
            "--select",
            "train.card",
            "--force",
        ],
        0,
    );
    assert_eq!(summary(&out)["score_tables"], serde_json::json!([]));

    // Night 1: the first model is champion; the score table has the saved schema.
    let s1 = score_frame(&w, "2026-11-25");
    let saved: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/docs/score-schema-v1.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let want: Vec<(String, String)> = saved["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["type"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let got: Vec<(String, String)> = s1
        .columns()
        .iter()
        .map(|c| {
            let t = match c.dtype() {
                DataType::String => "str",
                DataType::Float64 => "f64",
                DataType::Int32 => "i32",
                other => panic!("unexpected type {other}"),
            };
            (c.name().to_string(), t.to_string())
        })
        .collect();
    assert_eq!(
        got, want,
        "the score table drifted from docs/score-schema-v1.json"
    );
    let meta = panorama::warehouse::parquet::read_metadata(
        &w.path("warehouse/score/apps/dt=2026-11-25/part-0.parquet"),
    )
    .unwrap();
    assert!(meta
        .iter()
        .any(|(k, v)| k == "panorama.score.schema_version" && v == "1"));
    assert!(w
        .path("warehouse/score/apps/dt=2026-11-25/_SUCCESS")
        .exists());
    assert!(w
        .path("warehouse/export/score/apps/dt=2026-11-25/apps.csv")
        .exists());
    for t in ["score_psi", "grade_migration"] {
        assert!(w
            .path(&format!(
                "warehouse/monitor/{t}/dt=2026-11-25/table=apps/_SUCCESS"
            ))
            .exists());
    }
    // Entity ids are tokens, never the raw customer id.
    let ent = s1.column("entity_id").unwrap().str().unwrap();
    assert!(ent
        .iter()
        .all(|e| e.is_some_and(|e| e.len() == 32 && !e.starts_with('C'))));
    // Declines: fraud and PD; approved limits respect the income cap and the rounding.
    let dec = s1.column("decline_reason").unwrap().str().unwrap();
    assert!(dec.iter().any(|d| d == Some("fraud:shared_device")));
    let lim = s1.column("credit_limit").unwrap().f64().unwrap();
    let cap = s1.column("limit_cap").unwrap().str().unwrap();
    for ((l, c), d) in lim.iter().zip(cap.iter()).zip(dec.iter()) {
        let (l, c) = (l.unwrap(), c.unwrap());
        if d.is_some() {
            assert_eq!((l, c), (0.0, "declined"));
        } else {
            assert!(
                (1000.0..=50000.0).contains(&l) && (l / 100.0).fract() == 0.0,
                "{l}"
            );
        }
    }
    assert!(cap.iter().any(|c| c == Some("income")));
    let r1 = s1.column("reason_1").unwrap().str().unwrap();
    assert!(r1.iter().filter(|r| r.is_some()).count() > s1.height() / 2);

    // Night 2: a recorded decision with evidence, and the same arm for each entity.
    w.run_code(&["run", "--date", "2026-11-26"], 0);
    let st: serde_json::Value = serde_json::from_str(&stdout(
        &w.run_code(&["models", "champions", "apps", "--format", "json"], 0),
    ))
    .unwrap();
    let decisions = st[0]["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), 2);
    assert_eq!(decisions[0]["action"], "initial");
    assert_eq!(decisions[1]["action"], "promote", "{}", decisions[1]);
    assert!(
        decisions[1]["evidence"][1]["holdout"]["auc"]
            .as_f64()
            .unwrap()
            > 0.6
    );
    let hist = w.read_parquet("warehouse/monitor/champion_challenger/dt=2026-11-26/family=apps");
    assert!(hist.height() >= 2);
    let s2 = score_frame(&w, "2026-11-26");
    let arms = |df: &DataFrame| -> std::collections::HashMap<String, String> {
        let e = df.column("entity_id").unwrap().str().unwrap();
        let a = df.column("arm").unwrap().str().unwrap();
        e.iter()
            .zip(a.iter())
            .map(|(e, a)| (e.unwrap().to_string(), a.unwrap().to_string()))
            .collect()
    };
    let (a1, a2) = (arms(&s1), arms(&s2));
    let common: Vec<&String> = a1.keys().filter(|k| a2.contains_key(*k)).collect();
    assert!(common.len() > 500);
    assert!(common.iter().all(|k| a1[*k] == a2[*k]));
    let share = a2.values().filter(|a| *a == "challenger").count() as f64 / a2.len() as f64;
    assert!((share - 0.3).abs() < 0.06, "challenger share {share}");
    // The promoted model scores the champion arm of night 2.
    let champ = decisions[1]["champion_after"]["model"].as_str().unwrap();
    let names = s2.column("model_name").unwrap().str().unwrap();
    let arm = s2.column("arm").unwrap().str().unwrap();
    assert!(names
        .iter()
        .zip(arm.iter())
        .all(|(n, a)| a != Some("champion") || n == Some(champ)));

    // By hand: rollback puts the first champion back; promote records a manual decision.
    let out = w.run_code(
        &["models", "rollback", "apps", "--reason", "limits too high"],
        0,
    );
    assert!(stdout(&out).contains("\"action\":\"rollback\""));
    w.run_code(&["models", "rollback", "apps", "--reason", "again"], 2);
    w.run_code(
        &[
            "models",
            "promote",
            "apps",
            "boost",
            "--reason",
            "back again",
        ],
        0,
    );
    // Regression: a model outside the family (here the limit model, a regression) was
    // promoted, and its outputs served as PDs.
    let out = w.run_code(
        &["models", "promote", "apps", "limit", "--reason", "oops"],
        2,
    );
    assert!(
        stderr(&out).contains("is not a model of the family apps"),
        "{}",
        stderr(&out)
    );
    // Regression: a family no decide job declares got a state file of its own; an empty
    // reason was recorded as the reason.
    let out = w.run_code(
        &["models", "promote", "no_such", "boost", "--reason", "x"],
        2,
    );
    assert!(
        stderr(&out)
            .contains("no decide job declares the family \"no_such\"; declared families: apps"),
        "{}",
        stderr(&out)
    );
    assert!(!w.path("warehouse/models/_champions/no_such.json").exists());
    for sub in [
        &["models", "promote", "apps", "card", "--reason", " "][..],
        &["models", "rollback", "apps", "--reason", ""][..],
    ] {
        let out = w.run_code(sub, 2);
        assert!(
            stderr(&out).contains("--reason is empty"),
            "{}",
            stderr(&out)
        );
    }
    let st: serde_json::Value = serde_json::from_str(&stdout(
        &w.run_code(&["models", "champions", "--format", "json"], 0),
    ))
    .unwrap();
    assert_eq!(st.as_array().unwrap().len(), 1);
    assert_eq!(st[0]["decisions"].as_array().unwrap().len(), 4);
    assert_eq!(st[0]["champion"]["model"]["model"], "boost");

    // Ad hoc: a file scored into a file, same schema.
    w.run_code(
        &[
            "score",
            "apps",
            "--date",
            "2026-11-26",
            "--input",
            "warehouse/feature/apps/dt=2026-11-26",
            "--out",
            "adhoc.parquet",
        ],
        0,
    );
    let adhoc = panorama::warehouse::parquet::read_frame(&w.path("adhoc.parquet")).unwrap();
    assert_eq!(adhoc.height(), s2.height());
}

#[test]
fn bad_score_and_decide_jobs_are_configuration_errors() {
    let w = project();
    w.write(
        "jobs/score/bad.toml",
        "kind = \"score\"\ninput = \"feature.apps\"\nfamily = \"apps\"\nid = \"application_id\"\nentity = \"customer_id\"\nbogus = 1\n[limit]\ngrade_caps = { Z = 1 }\n",
    );
    let out = w.run_code(&["jobs"], 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bogus"), "{err}");
    std::fs::remove_file(w.path("jobs/score/bad.toml")).unwrap();
    w.write(
        "jobs/score/bad.toml",
        "kind = \"score\"\ninput = \"feature.apps\"\nfamily = \"apps\"\nid = \"application_id\"\nentity = \"customer_id\"\n[limit]\ngrade_caps = { Z = 1 }\n",
    );
    let out = w.run_code(&["jobs"], 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"Z\" is not a grade"));
    std::fs::remove_file(w.path("jobs/score/bad.toml")).unwrap();
    // Regression: the first unknown key hid every other problem, and no message named the
    // table of the key; a bad value named no key at all.
    w.write(
        "jobs/score/bad.toml",
        "kind = \"score\"\ninput = \"feature.apps\"\nfamily = \"apps\"\nid = \"application_id\"\nentity = \"customer_id\"\n[ab]\nchallenger_share = 1.2\nsalt = \"s\"\n[monitor]\npsi_warn = 0.1\ncolour = 1\n",
    );
    w.write(
        "jobs/decide/bad.toml",
        "kind = \"decide\"\nmodels = [\"card\"]\n[policy]\nmin_events = -3\nnights = 0\n",
    );
    let out = w.run_code(&["jobs"], 2);
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "`monitor.colour`: unknown key",
        "`ab.challenger_share` = 1.2",
        "`policy.min_events`: invalid value: integer `-3`, expected a whole number >= 0",
        "`policy.nights`: at least 1",
    ] {
        assert!(err.contains(want), "{want:?} missing from:\n{err}");
    }
    std::fs::remove_file(w.path("jobs/score/bad.toml")).unwrap();
    std::fs::remove_file(w.path("jobs/decide/bad.toml")).unwrap();
    // Scoring before any decision names the missing champion.
    feature_partition(&w, "2026-11-25", &applications(400, 0));
    let out = w.run_code(&["score", "--date", "2026-11-25"], 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no champion yet"));
}
