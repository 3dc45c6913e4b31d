//! A model saved to the registry and loaded back predicts bit-identically (serde_json's
//! `float_roundtrip`: without it, parsing may land one ulp off the written value).

use panorama::model::pipeline::{train, Algo, MissingPolicy, Split, TrainSpec};
use panorama::model::{prep, registry};

/// Credit-like rows with long decimals, missing values, a category and a 0/1 target.
fn csv(n: usize) -> String {
    let mut s: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 11) as f64) / ((1u64 << 53) as f64)
    };
    let mut out = String::from("income,utilisation,tenure,region,bad\n");
    for i in 0..n {
        let income = 20_000.0 + 80_000.0 * next();
        let util = next();
        let tenure = next() * 120.0;
        let region = ["north", "south", "east", "west", "far"][(next() * 5.0) as usize];
        let z = -1.5 + 2.0 * util - income / 80_000.0 + if region == "east" { 0.5 } else { 0.0 };
        let bad = u8::from(next() < 1.0 / (1.0 + (-z).exp()));
        let util_s = if i % 29 == 0 {
            String::new()
        } else {
            format!("{util}")
        };
        out.push_str(&format!("{income},{util_s},{tenure},{region},{bad}\n"));
    }
    out
}

#[test]
fn saved_and_reloaded_models_predict_bit_identically() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("loans.csv");
    std::fs::write(&data, csv(2000)).unwrap();
    let df = prep::read_table(&data).unwrap();
    for algo in [
        Algo::Scorecard,
        Algo::Logistic,
        Algo::Tree,
        Algo::Gbdt,
        Algo::Knn,
    ] {
        let spec = TrainSpec {
            algo,
            params: serde_json::json!({}),
            target: Some("bad".into()),
            features: None,
            exclude: Vec::new(),
            categorical: Vec::new(),
            split: Split::Stratified { test_size: 0.3 },
            seed: 7,
            missing: MissingPolicy::Keep,
        };
        let out = train(&df, &spec).unwrap();
        let warehouse = dir.path().join("warehouse");
        let spec_json = serde_json::to_value(&spec).unwrap();
        let (version, _) = registry::register(
            &warehouse,
            &format!("m_{}", algo.name()),
            &spec_json,
            &out,
            7,
            None,
            None,
        )
        .unwrap();
        let back = registry::load(&version).unwrap();
        let before = out.trained.predict_frame(&df).unwrap();
        let after = back.predict_frame(&df).unwrap();
        assert_eq!(before.len(), after.len());
        let differ = before
            .iter()
            .zip(&after)
            .filter(|(a, b)| a.to_bits() != b.to_bits())
            .count();
        assert_eq!(differ, 0, "{}: {differ} predictions changed", algo.name());
    }
}
