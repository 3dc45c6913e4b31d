//! Ingest through the real binary: cleaning, accounting, PII, every reader, errors, atomicity.

mod common;

use common::{read_partition, stderr, stdout, Workdir};
use polars::prelude::*;

const APPS_CONTRACT: &str = r#"
kind = "ingest"
name = "applications"
[source]
path = "src/{date}/apps.csv"
format = "csv"
[rules]
max_reject_rate = 0.9
dedupe = { key = ["application_id"], keep_latest_by = "updated_at" }
[[columns]]
name = "application_id"
from = "app_id"
type = "string"
required = true
[[columns]]
name = "amount"
from = "loan_amount"
type = "float"
clean = ["trim", "halfwidth", "money"]
min = 0
[[columns]]
name = "apply_date"
type = "date"
formats = ["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d"]
[[columns]]
name = "phone"
type = "string"
clean = ["phone"]
pii = "tokenize"
required = true
[[columns]]
name = "id_card"
type = "string"
clean = ["trim", "upper"]
check = "id_card"
pii = "tokenize"
[[columns]]
name = "name"
type = "string"
pii = "mask"
[[columns]]
name = "product"
type = "string"
map = { "小微" = "micro" }
accepted = ["micro", "sme"]
[[columns]]
name = "updated_at"
type = "datetime"
"#;

fn apps_csv() -> Vec<u8> {
    let mut s = Vec::new();
    s.extend_from_slice(b"\xEF\xBB\xBF");
    s.extend_from_slice(
        "app_id,loan_amount,apply_date,phone,id_card,name,product,updated_at\n\
A1,\"1,298,633\",2024-03-01,+86 138-0013-8000,11010519491231002X,张三,micro,2024-03-01 10:00:00\n\
A2,129.8万,2024/3/1,１３８００１３８００１,110105194912310021,李四,sme,2024-03-01 10:00:00\n\
A3,1298633 CNY,20240301,13800138002,,王五,小微,2024-03-01 10:00:00\n\
A1,\"1,300,000\",2024-03-01,13800138000,11010519491231002x,张三,micro,2024-03-02 09:00:00\n\
A4,-5,2024-03-01,13800138003,,赵六,sme,2024-03-01 10:00:00\n\
A5,100,2024-13-01,13800138004,,钱七,sme,2024-03-01 10:00:00\n\
A6,100,2024-03-01,12345,,孙八,sme,2024-03-01 10:00:00\n\
A7,100,2024-03-01,13800138005,,周九,retail,2024-03-01 10:00:00\n\
A8,100,2024-03-01\n\
A9,¥2000,2024-03-05,0086 13900139000,,吴十,sme,2024-03-05 10:00:00\n\
A10,3.5万,2024-03-06,139 0013 9001,,郑一,sme,2024-03-06 10:00:00\n"
            .as_bytes(),
    );
    s.extend_from_slice(b"A11,100,2024-03-01,13800138006,,\xff\xfe,sme,2024-03-01 10:00:00\n");
    s
}

/// A string column's non-null values.
fn strs(df: &DataFrame, column: &str) -> Vec<String> {
    let c = df.column(column).unwrap().str().unwrap().clone();
    c.iter().flatten().map(str::to_string).collect()
}

/// An integer column's non-null values.
fn ints(df: &DataFrame, column: &str) -> Vec<i64> {
    df.column(column)
        .unwrap()
        .i64()
        .unwrap()
        .iter()
        .flatten()
        .collect()
}

fn strings_in(df: &DataFrame) -> Vec<String> {
    let mut out = Vec::new();
    for c in df.columns() {
        if let Ok(ca) = c.as_materialized_series().str() {
            out.extend(ca.iter().flatten().map(str::to_string));
        }
    }
    out
}

#[test]
fn csv_cleaning_accounting_dedupe_and_pii() {
    let w = Workdir::new();
    w.write("jobs/ingest/applications.toml", APPS_CONTRACT);
    w.write("src/2024-03-31/apps.csv", apps_csv());
    let out = w.run_code(
        &[
            "ingest",
            "applications",
            "--date",
            "2024-03-31",
            "--format",
            "json",
        ],
        0,
    );
    let summary: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let r = &summary["ingested"][0];
    assert_eq!(r["rows_read"], 12, "{summary}");
    assert_eq!(r["rows_written"], 4, "{summary}");
    assert_eq!(r["rows_rejected"], 8, "{summary}");

    let part = "warehouse/clean/applications/dt=2024-03-31";
    let success: serde_json::Value =
        serde_json::from_slice(&std::fs::read(w.path(part).join("_SUCCESS")).unwrap()).unwrap();
    assert_eq!(success["rows"], 4);
    assert_eq!(success["rows_read"], 12);
    assert_eq!(success["rows_rejected"], 8);
    assert_eq!(success["source_checksum"].as_str().unwrap().len(), 64);

    let df = w
        .read_parquet(part)
        .sort(["application_id"], Default::default())
        .unwrap();
    let ids = strs(&df, "application_id");
    assert_eq!(ids, ["A1", "A10", "A3", "A9"]);
    let amounts: Vec<f64> = df
        .column("amount")
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .flatten()
        .collect();
    assert_eq!(
        amounts,
        [1_300_000.0, 35_000.0, 1_298_633.0, 2_000.0],
        "the later A1 wins"
    );
    let products = strs(&df, "product");
    assert_eq!(products[2], "micro", "value mapping");
    assert_eq!(df.column("apply_date").unwrap().dtype(), &DataType::Date);
    let names = strs(&df, "name");
    assert_eq!(names[0], "张*");
    let phones = strs(&df, "phone");
    assert!(phones
        .iter()
        .all(|p| p.len() == 32 && p.chars().all(|c| c.is_ascii_hexdigit())));

    // No raw personal value from the source anywhere in the clean layer.
    let all = strings_in(&df);
    for raw in [
        "13800138000",
        "138-0013-8000",
        "13900139000",
        "11010519491231002X",
        "11010519491231002x",
        "张三",
        "郑一",
    ] {
        assert!(
            !all.iter().any(|v| v.contains(raw)),
            "raw PII {raw} leaked: {all:?}"
        );
    }

    // Every reject has file, line, column, reason and raw text.
    let rej = w.read_parquet("warehouse/rejects/applications/dt=2024-03-31");
    assert_eq!(rej.height(), 8);
    let rec = ints(&rej, "record");
    let reasons = strs(&rej, "reason");
    let raws = strs(&rej, "raw");
    let files = strs(&rej, "source_file");
    assert!(
        files.iter().all(|f| *f == "src/2024-03-31/apps.csv"),
        "{files:?}"
    );
    let by_line = |l: i64| {
        let i = rec
            .iter()
            .position(|x| *x == l)
            .unwrap_or_else(|| panic!("no reject for line {l}: {rec:?}"));
        (reasons[i].as_str(), raws[i].as_str())
    };
    assert!(
        by_line(2).0.contains("duplicate") && by_line(2).0.contains("record 5"),
        "{:?}",
        by_line(2)
    );
    assert!(
        by_line(2).1.starts_with("A1,"),
        "raw text of the dropped duplicate: {:?}",
        by_line(2).1
    );
    assert!(by_line(3).0.contains("id_card"), "{:?}", by_line(3));
    assert!(by_line(6).0.contains("minimum"), "{:?}", by_line(6));
    assert!(by_line(7).0.contains("not a date"), "{:?}", by_line(7));
    assert!(by_line(8).0.contains("mobile"), "{:?}", by_line(8));
    assert!(by_line(9).0.contains("accepted"), "{:?}", by_line(9));
    assert!(
        by_line(10).0.contains("expected 8 fields"),
        "{:?}",
        by_line(10)
    );
    assert!(by_line(13).0.contains("utf-8"), "{:?}", by_line(13));
    let cols: Vec<Option<&str>> = rej
        .column("column")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(
        cols[rec.iter().position(|x| *x == 6).unwrap()],
        Some("amount")
    );

    // Re-running the date replaces the partition: same rows, same tokens, no duplicates.
    w.run_code(&["ingest", "--all", "--date", "2024-03-31"], 0);
    let again = w
        .read_parquet(part)
        .sort(["application_id"], Default::default())
        .unwrap();
    assert!(
        again.equals_missing(&df),
        "re-run must give the same partition"
    );
    let parts: Vec<_> = std::fs::read_dir(w.path("warehouse/clean/applications"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(parts.len(), 1, "no staging leftovers: {parts:?}");
}

#[test]
fn every_reader_format_and_encoding() {
    let w = Workdir::new();
    // GBK CSV with one undecodable line, CRLF line ends and a blank line: rejects name the
    // record's own line and hold its text without the line ends.
    w.write(
        "jobs/persons.toml",
        r#"kind = "ingest"
name = "persons"
[source]
path = "src/persons.csv"
format = "csv"
encoding = "gbk"
delimiter = "|"
[rules]
max_reject_rate = 0.5
unique_key = ["person_id"]
[[columns]]
name = "person_id"
type = "int"
required = true
[[columns]]
name = "name"
type = "string"
pii = "tokenize"
[[columns]]
name = "gender"
type = "string"
map = { "男" = "M", "女" = "F" }
accepted = ["M", "F"]
"#,
    );
    let mut gbk = encoding_rs::GBK
        .encode("person_id|name|gender\r\n1|张三|男\r\n2|李四|女\r\n2|李四|女\r\n\r\n")
        .0
        .into_owned();
    gbk.extend_from_slice(b"3|\x81\x20|M\r\n");
    // Regression: `墊` and `億` end in the byte of `|` (0x7C) in GBK; the bytes were split
    // there, and the rows rejected for a wrong field count.
    gbk.extend_from_slice(&encoding_rs::GBK.encode("4|墊付|男\r\n5|億\"x|女\r\n").0);
    w.write("src/persons.csv", gbk);

    // NDJSON with a nested array exploded into rows, and one truncated line.
    w.write(
        "jobs/telecom.toml",
        r#"kind = "ingest"
name = "telecom"
[source]
path = "src/telecom.ndjson"
format = "ndjson"
explode = "months"
[rules]
max_reject_rate = 0.5
[[columns]]
name = "phone"
type = "string"
clean = ["phone"]
pii = "tokenize"
[[columns]]
name = "carrier"
from = "info.carrier"
type = "string"
[[columns]]
name = "month"
from = "months.month"
type = "string"
[[columns]]
name = "spend"
from = "months.spend"
type = "float"
"#,
    );
    w.write(
        "src/telecom.ndjson",
        "{\"phone\":\"13800138000\",\"info\":{\"carrier\":\"CMCC\"},\"months\":[{\"month\":\"2024-01\",\"spend\":12.5},{\"month\":\"2024-02\",\"spend\":30}]}\n\
{\"phone\":\"13900139000\",\"info\":{\"carrier\":\"CU\"},\"months\":[]}\n\
{\"phone\":\"1390013\n",
    );

    // A JSON document with the records under a key.
    w.write(
        "jobs/court.toml",
        r#"kind = "ingest"
name = "court"
[source]
path = "src/court.json"
format = "json"
records_path = "data.records"
[[columns]]
name = "case_no"
type = "string"
required = true
[[columns]]
name = "amount"
type = "float"
clean = ["money"]
"#,
    );
    w.write(
        "src/court.json",
        r#"{"data":{"records":[{"case_no":"(2024)京01民初1号","amount":"12万"},{"case_no":"(2024)京01民初2号","amount":null}]}}"#,
    );

    // Fixed width with a layout file.
    w.write(
        "jobs/tax.toml",
        r#"kind = "ingest"
name = "tax"
[source]
path = "src/tax.txt"
format = "fixed_width"
layout = "src/tax.layout"
[rules]
max_reject_rate = 0.5
[[columns]]
name = "code"
type = "string"
[[columns]]
name = "month"
type = "date"
required = true
formats = ["%Y%m%d"]
[[columns]]
name = "revenue"
type = "float"
"#,
    );
    w.write(
        "src/tax.layout",
        "# name,start,width\ncode,1,6\nmonth,7,8\nrevenue,15,10\n",
    );
    w.write(
        "src/tax.txt",
        "ABC12320240131   1234.50\nXYZ98720240229     10\nshort\n",
    );

    // Excel.
    {
        let mut wb = rust_xlsxwriter::Workbook::new();
        let ws = wb.add_worksheet().set_name("enterprises").unwrap();
        ws.write_string(0, 0, "code").unwrap();
        ws.write_string(0, 1, "capital").unwrap();
        ws.write_string(1, 0, "91350100M000100Y43").unwrap();
        ws.write_number(1, 1, 5_000_000.0).unwrap();
        ws.write_string(2, 0, "91350100M000100Y44").unwrap();
        ws.write_string(2, 1, "500万").unwrap();
        // An Excel error in a cell the contract reads rejects the row, naming the column and
        // the error; one in a column it does not read is no concern.
        let div0 = rust_xlsxwriter::Formula::new("=1/0").set_result("#DIV/0!");
        ws.write_string(3, 0, "91350100M000100Y43").unwrap();
        ws.write_formula(3, 1, div0.clone()).unwrap();
        ws.write_string(4, 0, "91350100M000100Y43").unwrap();
        ws.write_number(4, 1, 100.0).unwrap();
        ws.write_formula(4, 2, div0).unwrap();
        wb.save(w.path("src/ent.xlsx")).unwrap();
    }
    w.write(
        "jobs/ent.toml",
        r#"kind = "ingest"
name = "enterprises"
[source]
path = "src/ent.xlsx"
format = "xlsx"
sheet = "enterprises"
[rules]
max_reject_rate = 0.6
[[columns]]
name = "code"
type = "string"
check = "credit_code"
[[columns]]
name = "capital"
type = "float"
clean = ["money"]
"#,
    );

    // CSV without a header: records must have the contract's columns, or reach the last
    // field a column names by number.
    w.write(
        "jobs/ledger.toml",
        r#"kind = "ingest"
name = "ledger"
[source]
path = "src/ledger.csv"
format = "csv"
header = false
delimiter = "|"
[rules]
max_reject_rate = 0.9
[[columns]]
name = "id"
type = "int"
[[columns]]
name = "who"
type = "string"
[[columns]]
name = "amt"
type = "float"
"#,
    );
    w.write("src/ledger.csv", "1|a|10\n2|b\n  \t\n3|c|6|7\n4|d|8\n");
    w.write(
        "jobs/ledger_picked.toml",
        r#"kind = "ingest"
name = "ledger_picked"
[source]
path = "src/ledger.csv"
format = "csv"
header = false
delimiter = "|"
[rules]
max_reject_rate = 0.9
[[columns]]
name = "amt"
from = "3"
type = "float"
"#,
    );

    // Parquet.
    {
        // A timestamp column, read with a contract format of whole seconds.
        let paid_at = Series::new("paid_at".into(), [1_700_000_000_000i64, 1_700_000_060_000])
            .cast(&DataType::Datetime(TimeUnit::Milliseconds, None))
            .unwrap();
        let mut df = df!("loan_id" => ["L1", "L2"], "overdue_days" => [0i64, 95]).unwrap();
        df.with_column(paid_at.into()).unwrap();
        // Columns the contract does not read, of types without a text form: they failed the
        // ingest.
        let tags = Series::new(
            "tags".into(),
            [
                Series::new("".into(), [1i64]),
                Series::new("".into(), [2i64, 3]),
            ],
        );
        df.with_column(tags.into()).unwrap();
        let blob = Series::new("blob".into(), [&b"\x00\xff"[..], &b"\x01"[..]]);
        df.with_column(blob.into()).unwrap();
        panorama::warehouse::parquet::write_frame(&w.path("src/repay.parquet"), &mut df, &[])
            .unwrap();
    }
    w.write(
        "jobs/repay.toml",
        r#"kind = "ingest"
name = "repayments"
[source]
path = "src/repay.parquet"
format = "parquet"
[[columns]]
name = "loan_id"
type = "string"
[[columns]]
name = "overdue_days"
type = "int"
min = 0
[[columns]]
name = "paid_at"
type = "datetime"
formats = ["%Y-%m-%d %H:%M:%S"]
"#,
    );

    // Classic-Mac line ends (lone CR, Excel's "CSV (Macintosh)") after a banner line, and in
    // a fixed-width file: each CR ends a line (the header was read up to the first LF, i.e.
    // the whole file, and the rows were lost).
    w.write(
        "jobs/mac.toml",
        r#"kind = "ingest"
name = "mac"
[source]
path = "src/mac.csv"
format = "csv"
skip_lines = 1
[rules]
max_reject_rate = 0.5
[[columns]]
name = "id"
type = "string"
[[columns]]
name = "amount"
type = "float"
"#,
    );
    w.write(
        "src/mac.csv",
        "exported 2024-03-31\rid,amount\ra,1\rb,x\rc,3\r",
    );
    w.write(
        "jobs/macfw.toml",
        r#"kind = "ingest"
name = "macfw"
[source]
path = "src/macfw.txt"
format = "fixed_width"
fields = [{ name = "code", start = 1, width = 4 }, { name = "amt", start = 5, width = 6 }]
[[columns]]
name = "code"
type = "string"
[[columns]]
name = "amt"
type = "float"
"#,
    );
    // ... ending in a line of padding blanks, which is no record (it was a rejected row).
    w.write(
        "src/macfw.txt",
        "A001  1.50\rA002  2.50\rA003  3.50\r          \r\u{3000}\u{3000}\r",
    );

    // A GBK fixed-width extract whose layout counts bytes (a Chinese character takes two):
    // the fields line up; a character cut by the layout rejects its row, naming the column.
    w.write(
        "jobs/gbkfw.toml",
        r#"kind = "ingest"
name = "gbkfw"
[source]
path = "src/gbkfw.txt"
format = "fixed_width"
encoding = "gbk"
width_unit = "bytes"
fields = [{ name = "code", start = 1, width = 4 }, { name = "name", start = 5, width = 10 }, { name = "amt", start = 15, width = 6 }]
[rules]
max_reject_rate = 0.5
[[columns]]
name = "code"
type = "string"
[[columns]]
name = "name"
type = "string"
[[columns]]
name = "amt"
type = "float"
"#,
    );
    let gbk = |s: &str| encoding_rs::GBK.encode(s).0.into_owned();
    let mut fw = gbk("A001上海众源    1.50\r\nA002ab公司      2.50\r\n");
    fw.extend(gbk("A003一二三四 五  3.50\r\n"));
    w.write("src/gbkfw.txt", fw);

    // A quote that is never closed: the record is rejected naming the quote's line, not read
    // as one clean row holding the rest of the file.
    w.write(
        "jobs/runaway.toml",
        r#"kind = "ingest"
name = "runaway"
[source]
path = "src/runaway.csv"
format = "csv"
[rules]
max_reject_rate = 0.5
[[columns]]
name = "a"
type = "string"
[[columns]]
name = "b"
type = "string"
"#,
    );
    w.write(
        "src/runaway.csv",
        "a,b\n1,ok\n2,\"runaway\n3,lost\n4,lost\n",
    );

    w.run_code(&["ingest", "--all", "--date", "2024-03-31"], 0);
    let dt = "dt=2024-03-31";
    let persons = w.read_parquet(&format!("warehouse/clean/persons/{dt}"));
    assert_eq!(persons.height(), 4);
    let prej = w.read_parquet(&format!("warehouse/rejects/persons/{dt}"));
    let reasons = strs(&prej, "reason");
    assert!(reasons.iter().any(|r| r.contains("gbk")), "{reasons:?}");
    assert!(
        reasons.iter().any(|r| r.contains("duplicate")),
        "{reasons:?}"
    );
    let records = ints(&prej, "record");
    assert_eq!(records, [4, 6], "{reasons:?}");
    // The reject of bytes that are not GBK names the column their field is read into.
    assert_eq!(strs(&prej, "column"), ["person_id", "name"]);
    assert!(
        reasons[0].ends_with("src/persons.csv record 3 takes precedence (the first)"),
        "{reasons:?}"
    );
    let raws = strs(&prej, "raw");
    assert_eq!(raws[0], "2|李四|女");
    assert!(raws[1].starts_with("3|"), "{raws:?}");

    let tel = w.read_parquet(&format!("warehouse/clean/telecom/{dt}"));
    assert_eq!(
        tel.height(),
        3,
        "two months exploded + one phone without months"
    );
    let spend: Vec<Option<f64>> = tel.column("spend").unwrap().f64().unwrap().iter().collect();
    assert_eq!(spend, [Some(12.5), Some(30.0), None]);
    let trej = w.read_parquet(&format!("warehouse/rejects/telecom/{dt}"));
    let rec = ints(&trej, "record");
    assert_eq!(rec, [3]);
    // Regression: the reason of a record on line 3 said "line 1" (of the record's own text).
    let why = strs(&trej, "reason");
    assert!(
        why[0].starts_with("malformed JSON at column ") && !why[0].contains("line 1"),
        "{why:?}"
    );

    let court = w.read_parquet(&format!("warehouse/clean/court/{dt}"));
    assert_eq!(
        court.column("amount").unwrap().f64().unwrap().get(0),
        Some(120_000.0)
    );
    let tax = w.read_parquet(&format!("warehouse/clean/tax/{dt}"));
    assert_eq!(tax.height(), 2);
    assert_eq!(
        tax.column("revenue").unwrap().f64().unwrap().get(0),
        Some(1234.5)
    );
    let ent = w.read_parquet(&format!("warehouse/clean/enterprises/{dt}"));
    assert_eq!(ent.height(), 2, "the bad check character is rejected");
    let erej = w.read_parquet(&format!("warehouse/rejects/enterprises/{dt}"));
    assert_eq!(ints(&erej, "record"), [3, 4], "Excel row numbers");
    assert_eq!(strs(&erej, "column"), ["code", "capital"]);
    let reasons = strs(&erej, "reason");
    assert!(
        reasons[1].contains("capital: the cell holds the Excel error #DIV/0!"),
        "{reasons:?}"
    );
    assert_eq!(strs(&erej, "raw")[1], "91350100M000100Y43,#DIV/0!,");
    let gbkfw = w.read_parquet(&format!("warehouse/clean/gbkfw/{dt}"));
    assert_eq!(strs(&gbkfw, "name"), ["上海众源", "ab公司"]);
    let gbkrej = w.read_parquet(&format!("warehouse/rejects/gbkfw/{dt}"));
    assert_eq!(strs(&gbkrej, "column"), ["name"]);
    let ledger = w.read_parquet(&format!("warehouse/clean/ledger/{dt}"));
    assert_eq!(ledger.height(), 2);
    let lrej = w.read_parquet(&format!("warehouse/rejects/ledger/{dt}"));
    let lreasons = strs(&lrej, "reason");
    assert_eq!(lreasons.len(), 2, "{lreasons:?}");
    assert!(
        lreasons
            .iter()
            .all(|r| r.contains("expected 3 fields as the contract has columns")),
        "{lreasons:?}"
    );
    let picked = w.read_parquet(&format!("warehouse/clean/ledger_picked/{dt}"));
    assert_eq!(
        picked.height(),
        3,
        "extra fields are fine when columns name their field"
    );
    let prej = w.read_parquet(&format!("warehouse/rejects/ledger_picked/{dt}"));
    let reason = prej
        .column("reason")
        .unwrap()
        .str()
        .unwrap()
        .get(0)
        .unwrap()
        .to_string();
    assert!(reason.contains("expected at least 3 fields"), "{reason}");
    let repay = w.read_parquet(&format!("warehouse/clean/repayments/{dt}"));
    assert_eq!(
        repay.height(),
        2,
        "Parquet timestamps read with a whole-second format"
    );
    let paid: Vec<Option<i64>> = repay
        .column("paid_at")
        .unwrap()
        .cast(&DataType::Int64)
        .unwrap()
        .i64()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(paid, [Some(1_700_000_000_000), Some(1_700_000_060_000)]);

    let mac = w.read_parquet(&format!("warehouse/clean/mac/{dt}"));
    assert_eq!(strs(&mac, "id"), ["a", "c"]);
    let mrej = w.read_parquet(&format!("warehouse/rejects/mac/{dt}"));
    assert_eq!(
        ints(&mrej, "record"),
        [4],
        "the banner is line 1, the header line 2"
    );
    let macfw = w.read_parquet(&format!("warehouse/clean/macfw/{dt}"));
    assert_eq!(strs(&macfw, "code"), ["A001", "A002", "A003"]);
    assert_eq!(
        w.read_parquet(&format!("warehouse/rejects/macfw/{dt}"))
            .height(),
        0
    );
    let runaway = w.read_parquet(&format!("warehouse/clean/runaway/{dt}"));
    assert_eq!(strs(&runaway, "b"), ["ok"]);
    let rrej = w.read_parquet(&format!("warehouse/rejects/runaway/{dt}"));
    assert_eq!(ints(&rrej, "record"), [3]);
    let reason = &strs(&rrej, "reason")[0];
    assert!(
        reason.contains("a quote opened on line 3 is never closed"),
        "{reason}"
    );
    let success: serde_json::Value = serde_json::from_slice(
        &std::fs::read(w.path(&format!("warehouse/clean/runaway/{dt}/_SUCCESS"))).unwrap(),
    )
    .unwrap();
    assert_eq!(
        (&success["rows_read"], &success["rows_rejected"]),
        (&2.into(), &1.into())
    );

    let out = w.run_code(&["tables", "--format", "json"], 0);
    let tables: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let names: Vec<&str> = tables
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["table"].as_str().unwrap())
        .collect();
    for t in [
        "clean.persons",
        "clean.telecom",
        "clean.court",
        "clean.tax",
        "clean.enterprises",
        "clean.repayments",
        "rejects.persons",
    ] {
        assert!(names.contains(&t), "{t} missing from {names:?}");
    }
}

#[test]
fn bad_input_gives_clear_messages_and_exit_codes() {
    let w = Workdir::new();
    // A contract with several problems: all are listed, exit 2.
    w.write(
        "jobs/bad.toml",
        "kind = \"ingest\"\nname = \"bad\"\n[source]\npath = \"x.csv\"\nformat = \"csvv\"\n[[columns]]\nname = \"a\"\ntype = \"strin\"\n[[columns]]\nname = \"b\"\ntype = \"int\"\nbogus = 1\n",
    );
    let out = w.run_code(&["ingest", "--all", "--date", "2024-03-31"], 2);
    let e = stderr(&out);
    assert!(
        e.contains("jobs/bad.toml")
            && e.contains("csvv")
            && e.contains("strin")
            && e.contains("bogus"),
        "{e}"
    );
    std::fs::remove_file(w.path("jobs/bad.toml")).unwrap();

    let simple = |name: &str, path: &str, format: &str, extra: &str| {
        format!(
            "kind = \"ingest\"\nname = \"{name}\"\n[source]\npath = \"{path}\"\nformat = \"{format}\"\n{extra}\n[[columns]]\nname = \"id\"\ntype = \"int\"\nrequired = true\n"
        )
    };
    // Missing file.
    w.write("jobs/a.toml", simple("missing", "src/nope.csv", "csv", ""));
    let out = w.run_code(&["ingest", "missing", "--date", "2024-03-31"], 3);
    assert!(
        stderr(&out).contains("src/nope.csv") && stderr(&out).contains("not found"),
        "{}",
        stderr(&out)
    );

    // Malformed JSON document: line and column.
    w.write("jobs/b.toml", simple("badjson", "src/b.json", "json", ""));
    w.write("src/b.json", "[\n{\"id\": 1},\n{\"id\": 2,,}\n]");
    let out = w.run_code(&["ingest", "badjson", "--date", "2024-03-31"], 3);
    assert!(
        stderr(&out).contains("src/b.json") && stderr(&out).contains("line 3"),
        "{}",
        stderr(&out)
    );

    // Corrupt Parquet.
    w.write(
        "jobs/c.toml",
        simple("badpq", "src/c.parquet", "parquet", ""),
    );
    w.write("src/c.parquet", b"PAR1 this is not parquet");
    let out = w.run_code(&["ingest", "badpq", "--date", "2024-03-31"], 3);
    assert!(
        stderr(&out).contains("src/c.parquet") && stderr(&out).contains("Parquet"),
        "{}",
        stderr(&out)
    );

    // A Parquet file that makes polars-parquet panic (one byte flipped, found here by probing
    // in process): still bad input, exit 3, without the internal-error line (it was exit 5).
    let mut df = df!("id" => [1i64, 2, 3], "s" => ["a", "b", "c"]).unwrap();
    panorama::warehouse::parquet::write_frame(&w.path("src/good.parquet"), &mut df, &[]).unwrap();
    let good = std::fs::read(w.path("src/good.parquet")).unwrap();
    let panicking = (0..good.len())
        .map(|at| {
            let mut bytes = good.clone();
            bytes[at] ^= 0xff;
            bytes
        })
        .find(|bytes| {
            panorama::error::catch_library_panic(|| {
                ParquetReader::new(std::io::Cursor::new(bytes.clone())).finish()
            })
            .is_err()
        })
        .expect("a byte whose flip makes polars-parquet panic");
    w.write("src/c.parquet", panicking);
    let out = w.run_code(&["ingest", "badpq", "--date", "2024-03-31"], 3);
    let e = stderr(&out);
    assert!(
        e.contains("src/c.parquet: not a readable Parquet file (") && !e.contains("internal error"),
        "{e}"
    );

    // A Parquet file without the contract's column: no "line 0" of a header.
    let mut df = df!("ID2" => [1i64]).unwrap();
    panorama::warehouse::parquet::write_frame(&w.path("src/c.parquet"), &mut df, &[]).unwrap();
    let e = stderr(&w.run_code(&["ingest", "badpq", "--date", "2024-03-31"], 3));
    assert!(
        e.contains(
            "src/c.parquet: the Parquet file has no column \"id\" (column `id`); it has: ID2"
        ),
        "{e}"
    );

    // A header without the contract's column: names the column and shows the header.
    w.write("jobs/d.toml", simple("nocol", "src/d.csv", "csv", ""));
    w.write("src/d.csv", "ident,x\n1,2\n");
    let out = w.run_code(&["ingest", "nocol", "--date", "2024-03-31"], 3);
    assert!(
        stderr(&out).contains("\"id\"")
            && stderr(&out).contains("ident, x")
            && stderr(&out).contains("line 1"),
        "{}",
        stderr(&out)
    );

    // Above the reject threshold: exit 3, rejects kept, no clean partition.
    w.write(
        "jobs/e.toml",
        simple(
            "mostlybad",
            "src/e.csv",
            "csv",
            "[rules]\nmax_reject_rate = 0.1",
        ),
    );
    w.write("src/e.csv", "id\n1\nx\ny\n");
    let out = w.run_code(&["ingest", "mostlybad", "--date", "2024-03-31"], 3);
    assert!(
        stderr(&out).contains("2 of 3 rows rejected"),
        "{}",
        stderr(&out)
    );
    assert!(!w.path("warehouse/clean/mostlybad/dt=2024-03-31").exists());
    assert_eq!(
        read_partition(&w.path("warehouse/rejects/mostlybad/dt=2024-03-31")).height(),
        2
    );

    // A contract that tokenizes without a key: exit 2, says how to set one.
    w.write(
        "jobs/f.toml",
        "kind = \"ingest\"\nname = \"pii\"\n[source]\npath = \"src/f.csv\"\nformat = \"csv\"\n[[columns]]\nname = \"phone\"\ntype = \"string\"\npii = \"tokenize\"\n",
    );
    w.write("src/f.csv", "phone\n13800138000\n");
    let out = w
        .cmd(&["ingest", "pii", "--date", "2024-03-31"])
        .env_remove("PANORAMA_PII_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("PANORAMA_PII_KEY"),
        "{}",
        stderr(&out)
    );
    // Regression: a key of one byte in the environment was taken (a key file that short was
    // refused): tokens under a guessable key are reversible by trying the values.
    let out = w
        .cmd(&["ingest", "pii", "--date", "2024-03-31"])
        .env("PANORAMA_PII_KEY", "k")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("too short"), "{}", stderr(&out));

    // While a run holds the warehouse lock, an ingest by hand refuses (exit 4) naming the
    // holder, and writes nothing (it deleted the run's staging folder).
    {
        let _night = panorama::warehouse::lock::WarehouseLock::acquire(
            &w.path("warehouse"),
            "panorama run --date 2024-03-31",
        )
        .unwrap();
        w.write("jobs/g.toml", simple("locked", "src/g.csv", "csv", ""));
        w.write("src/g.csv", "id\n1\n");
        let out = w.run_code(&["ingest", "locked", "--date", "2024-03-31"], 4);
        assert!(
            stderr(&out).contains("panorama run --date 2024-03-31"),
            "{}",
            stderr(&out)
        );
        assert!(!w.path("warehouse/clean/locked").exists());
        assert!(!w.path("warehouse/rejects/locked").exists());
    }
    w.run_code(&["ingest", "locked", "--date", "2024-03-31"], 0);

    // `--var` names one instance of the family: an unknown key (it nested a partition inside
    // the live one) and a value outside the matrix (a `../` value swapped a folder outside
    // the warehouse into place and deleted it) are usage errors that touch nothing.
    w.write(
        "jobs/h.toml",
        "kind = \"ingest\"\nname = \"branches\"\n[source]\npath = \"src/{date}/{branch}/h.csv\"\nformat = \"csv\"\n[matrix]\nbranch = [\"0001\", \"0002\"]\n[[columns]]\nname = \"id\"\ntype = \"int\"\n",
    );
    w.write("src/2024-03-31/0001/h.csv", "id\n1\n");
    w.write("victim/h.csv", "id\n2\n");
    w.write("victim/keep.txt", "precious");
    let ingest_branch = |vars: &[&str], code: i32| {
        let mut args = vec!["ingest", "branches", "--date", "2024-03-31"];
        for v in vars {
            args.extend(["--var", v]);
        }
        stderr(&w.run_code(&args, code))
    };
    let e = ingest_branch(&["branch=0001", "typo=1"], 2);
    assert!(e.contains("unknown: typo"), "{e}");
    let e = ingest_branch(&["branch=../../../../../victim"], 2);
    assert!(
        e.contains("no instance [branch=../../../../../victim]") && e.contains("0001, 0002"),
        "{e}"
    );
    assert!(!w.path("warehouse/clean/branches").exists());
    assert_eq!(
        std::fs::read_to_string(w.path("victim/keep.txt")).unwrap(),
        "precious"
    );
    ingest_branch(&["branch=0001"], 0);
    assert_eq!(
        read_partition(&w.path("warehouse/clean/branches/dt=2024-03-31/branch=0001")).height(),
        1
    );
    // A key given twice names two instances: refused (the last one was ingested).
    let e = ingest_branch(&["branch=0001", "branch=0002"], 2);
    assert!(e.contains("given twice"), "{e}");
    // No --var for a family: says so (it was "unknown placeholder {branch}").
    let e = ingest_branch(&[], 2);
    assert!(
        e.contains("ingest.branches is a family (matrix: branch)"),
        "{e}"
    );
    // Another instance's missing fixed source does not stop this one (it refused every
    // instance of the family).
    w.write(
        "jobs/fixed.toml",
        "kind = \"ingest\"\nname = \"fixed\"\n[source]\npath = \"src/fixed/{branch}.csv\"\nformat = \"csv\"\n[matrix]\nbranch = [\"0001\", \"0002\"]\n[[columns]]\nname = \"id\"\ntype = \"int\"\n",
    );
    w.write("src/fixed/0001.csv", "id\n1\n");
    w.run_code(
        &[
            "ingest",
            "fixed",
            "--date",
            "2024-03-31",
            "--var",
            "branch=0001",
        ],
        0,
    );
    std::fs::remove_file(w.path("jobs/fixed.toml")).unwrap();

    // A misspelt top-level key is refused by hand as `panorama jobs` refuses it.
    w.write(
        "jobs/typo.toml",
        simple("typo", "src/g.csv", "csv", "").replace("[source]", "colour = \"red\"\n[source]"),
    );
    let out = w.run_code(&["ingest", "typo", "--date", "2024-03-31"], 2);
    assert!(
        stderr(&out).contains("`colour`: unknown key"),
        "{}",
        stderr(&out)
    );
    std::fs::remove_file(w.path("jobs/typo.toml")).unwrap();

    // Unknown source name and a bad date flag are usage errors.
    w.run_code(&["ingest", "nosuch", "--date", "2024-03-31"], 2);
    w.run_code(&["ingest", "--all", "--date", "2024-3-31x"], 2);

    assert!(!stderr(&out).contains("panicked"));
}

#[test]
fn a_killed_rewrite_leaves_the_old_partition_readable() {
    let w = Workdir::new();
    w.write(
        "jobs/big.toml",
        "kind = \"ingest\"\nname = \"big\"\n[source]\npath = \"src/big.csv\"\nformat = \"csv\"\n[[columns]]\nname = \"id\"\ntype = \"int\"\n[[columns]]\nname = \"amount\"\ntype = \"float\"\nclean = [\"money\"]\n[[columns]]\nname = \"d\"\ntype = \"date\"\nformats = [\"%Y/%m/%d\"]\n",
    );
    w.write(
        "src/big.csv",
        "id,amount,d\n1,\"1,000\",2024/1/1\n2,5万,2024/1/2\n",
    );
    w.run_code(&["ingest", "big", "--date", "2024-03-31"], 0);
    let part = w.path("warehouse/clean/big/dt=2024-03-31");
    assert_eq!(read_partition(&part).height(), 2);

    // A much larger source for the second attempt, killed while it writes.
    let mut text = String::from("id,amount,d\n");
    for i in 0..600_000 {
        text.push_str(&format!(
            "{i},\"{},{:03}\",2024/{}/{}\n",
            i % 997,
            i % 1000,
            i % 12 + 1,
            i % 28 + 1
        ));
    }
    w.write("src/big.csv", text);
    let mut child = w
        .cmd(&["ingest", "big", "--date", "2024-03-31", "--threads", "1"])
        .spawn()
        .unwrap();
    let parent = w.path("warehouse/clean/big");
    let t0 = std::time::Instant::now();
    loop {
        let staging = std::fs::read_dir(&parent)
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with(".staging-"));
        if staging || t0.elapsed().as_secs() > 60 {
            break;
        }
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let _ = child.kill();
    let status = child.wait().unwrap();
    if status.success() {
        // The machine was fast enough to finish: then the new partition must be whole.
        assert_eq!(read_partition(&part).height(), 600_000);
    } else {
        let df = read_partition(&part);
        assert_eq!(df.height(), 2, "the old partition stays whole and readable");
        assert!(part.join("_SUCCESS").exists());
    }
    // The next run cleans the leftovers and commits the new data.
    w.run_code(&["ingest", "big", "--date", "2024-03-31"], 0);
    assert_eq!(read_partition(&part).height(), 600_000);
    let left: Vec<_> = std::fs::read_dir(&parent)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
}

/// De-duplication decides in a key pass before cleaning: the latest version of a key wins
/// even when it fails another check (both versions are then rejected, the older naming the
/// newer), a record whose key does not clean takes no part, a superseded record spanning
/// several lines keeps its whole raw text, and document sources (JSON) follow the same rule.
#[test]
fn dedupe_latest_version_wins_in_every_format() {
    let w = Workdir::new();
    w.write(
        "jobs/ingest/loans.toml",
        r#"kind = "ingest"
name = "loans"
[source]
path = "src/loans.csv"
format = "csv"
[rules]
max_reject_rate = 0.9
dedupe = { key = ["loan_id"], keep_latest_by = "updated_at" }
[[columns]]
name = "loan_id"
type = "string"
required = true
pattern = "L[0-9]+"
[[columns]]
name = "amount"
type = "float"
clean = ["money"]
[[columns]]
name = "note"
type = "string"
[[columns]]
name = "updated_at"
type = "datetime"
required = true
"#,
    );
    w.write(
        "src/loans.csv",
        "loan_id,amount,note,updated_at\n\
L1,100,\"first\nversion\",2024-03-01 10:00:00\n\
L2,200,ok,2024-03-01 10:00:00\n\
L1,150,second,2024-03-02 10:00:00\n\
L2,not money,bad,2024-03-02 10:00:00\n\
X9,300,bad key,2024-03-03 10:00:00\n\
L3,300,old,2024-03-01 10:00:00\n\
L3,310,same time,2024-03-01 10:00:00\n",
    );
    w.write(
        "jobs/ingest/limits.toml",
        r#"kind = "ingest"
name = "limits"
[source]
path = "src/limits.json"
format = "json"
[rules]
max_reject_rate = 0.9
dedupe = { key = ["company"], keep_latest_by = "day" }
[[columns]]
name = "company"
type = "string"
required = true
[[columns]]
name = "limit"
type = "int"
[[columns]]
name = "day"
type = "date"
required = true
"#,
    );
    w.write(
        "src/limits.json",
        r#"[{"company": "A", "limit": 5, "day": "2024-03-02"},
            {"company": "A", "limit": 4, "day": "2024-03-01"},
            {"company": "B", "limit": 7, "day": "2024-03-01"}]"#,
    );
    // Integer versions above 2^53 (snowflake ids): compared as f64 they tied, and the later,
    // older version won.
    w.write(
        "jobs/ingest/versions.toml",
        r#"kind = "ingest"
name = "versions"
[source]
path = "src/versions.csv"
format = "csv"
[rules]
max_reject_rate = 0.9
dedupe = { key = ["id"], keep_latest_by = "ver" }
[[columns]]
name = "id"
type = "string"
[[columns]]
name = "ver"
type = "int"
[[columns]]
name = "note"
type = "string"
"#,
    );
    w.write(
        "src/versions.csv",
        // Rows without a key are no one's duplicates (they were all dropped but one).
        "id,ver,note\nb,1700000000000000001,newest\nb,1700000000000000000,older\n,1,n1\n,2,n2\n",
    );
    w.run_code(&["ingest", "--all", "--date", "2024-03-31"], 0);

    let clean = w
        .read_parquet("warehouse/clean/loans/dt=2024-03-31")
        .sort(["loan_id"], Default::default())
        .unwrap();
    let ids = strs(&clean, "loan_id");
    let amounts: Vec<f64> = clean
        .column("amount")
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .flatten()
        .collect();
    // L2's latest version is invalid: L2 is absent rather than stale; on a tie the later
    // row (L3 at 310) wins.
    assert_eq!(ids, ["L1", "L3"]);
    assert_eq!(amounts, [150.0, 310.0]);

    let rej = w.read_parquet("warehouse/rejects/loans/dt=2024-03-31");
    assert_eq!(rej.height(), 5, "{rej}");
    let rec = ints(&rej, "record");
    let reason = |line: i64| -> (String, String) {
        let i = rec.iter().position(|r| *r == line).unwrap();
        let get = |c: &str| {
            rej.column(c)
                .unwrap()
                .str()
                .unwrap()
                .get(i)
                .unwrap()
                .to_string()
        };
        (get("reason"), get("raw"))
    };
    let (why, raw) = reason(2);
    assert!(why.contains("duplicate key (loan_id)"), "{why}");
    assert!(
        why.contains("record 5") && why.contains("latest by updated_at"),
        "{why}"
    );
    assert_eq!(raw, "L1,100,\"first\nversion\",2024-03-01 10:00:00");
    assert!(reason(4).0.contains("record 6"), "{:?}", reason(4));
    assert!(reason(6).0.contains("not an amount"), "{:?}", reason(6));
    assert!(reason(7).0.contains("pattern"), "{:?}", reason(7));
    assert!(reason(8).0.contains("record 9"), "{:?}", reason(8));

    let versions = w.read_parquet("warehouse/clean/versions/dt=2024-03-31");
    let mut notes = strs(&versions, "note");
    notes.sort();
    assert_eq!(notes, ["n1", "n2", "newest"]);
    let limits = w.read_parquet("warehouse/clean/limits/dt=2024-03-31");
    let mut got: Vec<(String, i64)> = (0..limits.height())
        .map(|i| {
            (
                limits
                    .column("company")
                    .unwrap()
                    .str()
                    .unwrap()
                    .get(i)
                    .unwrap()
                    .to_string(),
                limits
                    .column("limit")
                    .unwrap()
                    .i64()
                    .unwrap()
                    .get(i)
                    .unwrap(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(got, [("A".to_string(), 5), ("B".to_string(), 7)]);
    let lrej = w.read_parquet("warehouse/rejects/limits/dt=2024-03-31");
    assert_eq!(lrej.height(), 1);
    let why = lrej
        .column("reason")
        .unwrap()
        .str()
        .unwrap()
        .get(0)
        .unwrap()
        .to_string();
    assert!(
        why.contains("duplicate key (company)") && why.contains("record 1"),
        "{why}"
    );
}

/// Regression for the key index's memory bound: with `dedupe_memory_mb = 0` (a table of 14
/// keys) the index spills to disk on a source with hundreds of keys, and the night's clean
/// and rejected rows are exactly those of an index that fits in memory.
#[test]
fn dedupe_spilled_to_disk_matches_in_memory() {
    let w = Workdir::new();
    w.write(
        "jobs/ingest/events.toml",
        r#"kind = "ingest"
name = "events"
[source]
path = "src/events.csv"
format = "csv"
[rules]
max_reject_rate = 1.0
dedupe = { key = ["account", "kind"], keep_latest_by = "version" }
[[columns]]
name = "account"
type = "string"
required = true
[[columns]]
name = "kind"
type = "string"
[[columns]]
name = "version"
type = "int"
required = true
[[columns]]
name = "row"
type = "int"
"#,
    );
    // 3,000 rows over about 700 keys, versions with ties, a few rows without a version.
    let mut csv = String::from("account,kind,version,row\n");
    let mut state = 12345u64;
    for row in 0..3000 {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let account = (state >> 33) % 350;
        let kind = ["a", "b"][((state >> 20) & 1) as usize];
        let version = if (state >> 40).is_multiple_of(97) {
            String::new()
        } else {
            ((state >> 45) % 6).to_string()
        };
        csv.push_str(&format!("acct{account},{kind},{version},{row}\n"));
    }
    w.write("src/events.csv", &csv);
    let frames = |w: &Workdir| {
        let out = w.run_code(&["-v", "ingest", "events", "--date", "2024-03-31"], 0);
        let sort = |df: DataFrame, by: &str| df.sort([by], Default::default()).unwrap();
        (
            sort(
                w.read_parquet("warehouse/clean/events/dt=2024-03-31"),
                "row",
            ),
            sort(
                w.read_parquet("warehouse/rejects/events/dt=2024-03-31"),
                "record",
            ),
            stderr(&out).contains("spilled to disk"),
        )
    };
    let (clean, rejects, spilled) = frames(&w);
    assert!(!spilled);
    let config = std::fs::read_to_string(w.path("panorama.toml")).unwrap();
    w.write(
        "panorama.toml",
        format!("{config}\n[ingest]\ndedupe_memory_mb = 0\n"),
    );
    let (spilled_clean, spilled_rejects, spilled) = frames(&w);
    assert!(spilled);
    assert!(clean.height() > 500 && rejects.height() > 2000, "{clean}");
    assert_eq!(clean.height() + rejects.height(), 3000);
    assert!(
        clean.equals_missing(&spilled_clean),
        "{clean}\n{spilled_clean}"
    );
    assert!(rejects.equals_missing(&spilled_rejects));
    let leftovers: Vec<_> = std::fs::read_dir(w.path("warehouse/clean/events/dt=2024-03-31"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| !n.to_string_lossy().ends_with(".parquet") && n != "_SUCCESS")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// A contract reading `id` and `amount` from `path` in `format`, with extra source keys.
fn small_contract(name: &str, path: &str, format: &str, extra: &str) -> String {
    format!(
        r#"kind = "ingest"
name = "{name}"
[source]
path = "{path}"
format = "{format}"
{extra}
[rules]
max_reject_rate = 1.0
[[columns]]
name = "id"
type = "int"
[[columns]]
name = "amount"
type = "float"
"#
    )
}

#[test]
fn ndjson_fields_in_no_record_fail_and_bom_lines_are_read() {
    // Regression: a field no record holds (a misspelt `from`, or `amount` renamed `amt`
    // upstream) became a column of NULLs silently. Mapped with `from`, its absence fails.
    let w = Workdir::new();
    w.write(
        "jobs/n.toml",
        small_contract("n", "src/n.ndjson", "ndjson", "").replace(
            "name = \"amount\"\n",
            "name = \"amount\"\nfrom = \"amount\"\n",
        ),
    );
    w.write(
        "src/n.ndjson",
        "{\"id\":1,\"amt\":5}\n{\"id\":2,\"amt\":6}\n",
    );
    let out = w.run_code(&["ingest", "n", "--date", "2024-03-31"], 3);
    let err = stderr(&out);
    assert!(
        err.contains("src/n.ndjson") && err.contains("no record has the field \"amount\""),
        "{err}"
    );
    assert!(!w.path("warehouse/clean/n/dt=2024-03-31").exists());
    // Null in one record, absent in another: fine. A BOM starting a later line (files joined
    // with `cat`) was "malformed JSON at column 1".
    w.write(
        "src/n.ndjson",
        "\u{feff}{\"id\":1,\"amount\":null}\n\u{feff}{\"id\":2}\n\n{\"id\":3,\"amount\":7.5}\n",
    );
    let out = w.run_code(
        &["ingest", "n", "--date", "2024-03-31", "--format", "json"],
        0,
    );
    let summary: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let r = &summary["ingested"][0];
    assert_eq!(
        (&r["rows_read"], &r["rows_rejected"]),
        (&3.into(), &0.into()),
        "{summary}"
    );
    let df = w.read_parquet("warehouse/clean/n/dt=2024-03-31");
    assert_eq!(ints(&df, "id"), [1, 2, 3]);
}

#[test]
fn a_blank_header_line_says_so() {
    // Regression: "the header has no column "id"; it has: " (nothing).
    let w = Workdir::new();
    w.write("jobs/c.toml", small_contract("c", "src/c.csv", "csv", ""));
    w.write("src/c.csv", "\r\nid,amount\r\n1,2\r\n");
    let out = w.run_code(&["ingest", "c", "--date", "2024-03-31"], 3);
    let err = stderr(&out);
    assert!(
        err.contains("line 1: the header line is blank") && err.contains("skip_lines"),
        "{err}"
    );
    w.write(
        "jobs/c.toml",
        small_contract("c", "src/c.csv", "csv", "skip_lines = 1"),
    );
    w.run_code(&["ingest", "c", "--date", "2024-03-31"], 0);
}

#[test]
fn an_empty_csv_shard_among_several_is_no_rows() {
    // Regression: one 0-byte shard among a glob's files failed the whole source.
    let w = Workdir::new();
    w.write(
        "jobs/g.toml",
        small_contract("g", "src/in/*.csv", "csv", ""),
    );
    w.write("src/in/a.csv", "id,amount\n1,10\n");
    w.write("src/in/b.csv", "");
    w.write("src/in/c.csv", "id,amount\n2,20\n");
    let out = w.run_code(
        &["ingest", "g", "--date", "2024-03-31", "--format", "json"],
        0,
    );
    let summary: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(summary["ingested"][0]["rows_written"], 2, "{summary}");
    // Every file empty (or a single empty file): still an error.
    w.write("src/in/a.csv", "");
    w.write("src/in/c.csv", "");
    let out = w.run_code(&["ingest", "g", "--date", "2024-03-31"], 3);
    assert!(stderr(&out).contains("no header line"), "{}", stderr(&out));
}

#[test]
fn contract_refusals_through_the_binary() {
    let w = Workdir::new();
    // A fixed-width width near usize::MAX overflowed `start + width`: a panic (exit 5) whose
    // message printed the line, personal data, to stderr.
    w.write(
        "jobs/f.toml",
        r#"kind = "ingest"
name = "f"
[source]
path = "src/f.txt"
format = "fixed_width"
layout = "src/f.layout"
[[columns]]
name = "phone"
type = "string"
pii = "tokenize"
[[columns]]
name = "amt"
type = "string"
"#,
    );
    w.write("src/f.layout", "phone,1,11\namt,3,18446744073709551615\n");
    w.write("src/f.txt", "13912345678 100\n");
    let out = w.run_code(&["ingest", "f", "--date", "2024-03-31"], 2);
    let err = stderr(&out);
    assert!(err.contains("line 2: amt: width"), "{err}");
    assert!(!err.contains("13912345678"), "{err}");
    std::fs::remove_file(w.path("jobs/f.toml")).unwrap();

    // A column named like a partition key was hidden by the partition's value.
    w.write(
        "jobs/e.toml",
        r#"kind = "ingest"
name = "e"
[matrix]
branch = ["0101"]
[source]
path = "src/{branch}/e.csv"
format = "csv"
[[columns]]
name = "dt"
type = "date"
[[columns]]
name = "branch"
type = "string"
"#,
    );
    w.write("src/0101/e.csv", "dt,branch\n2020-01-01,xx\n");
    for args in [
        &[
            "ingest",
            "e",
            "--var",
            "branch=0101",
            "--date",
            "2024-03-31",
        ][..],
        &["jobs"][..],
    ] {
        let err = stderr(&w.run_code(args, 2));
        assert!(
            err.contains("`dt` is the partition column")
                && err.contains("`branch` is a matrix key"),
            "{args:?}: {err}"
        );
    }
    std::fs::remove_file(w.path("jobs/e.toml")).unwrap();

    // Without `name`, `panorama ingest` refused the whole project ("`name`: missing") while
    // `panorama jobs` and `run` named the job after the file.
    w.write(
        "jobs/x.toml",
        "kind = \"ingest\"\n[source]\npath = \"src/x.csv\"\nformat = \"csv\"\n\
         [[columns]]\nname = \"id\"\ntype = \"int\"\n",
    );
    w.write("src/x.csv", "id\n1\n");
    w.run_code(&["ingest", "x", "--date", "2024-03-31"], 0);
    w.run_code(&["ingest", "--all", "--date", "2024-03-31"], 0);
    let df = w.read_parquet("warehouse/clean/x/dt=2024-03-31");
    assert_eq!(ints(&df, "id"), [1]);
}
