//! One writer per source file. Each streams its rows enterprise by enterprise: chunks of
//! enterprises are rendered in parallel and written in order, so memory stays bounded and
//! the bytes do not depend on the number of threads.
//!
//! The mess (duplicates, nulls, malformed rows, bad encodings, out-of-range values, broken
//! check digits) is drawn from its own keyed stream per row, at about 1% of rows.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime};
use rayon::prelude::*;

use super::model::{Cp, Party, Status, TXN_WINDOW_DAYS};
use super::rng::{mix64, scramble, sigmoid, Rng, Stream};
use super::text::{
    break_check, csv_field, csv_line, date_form, json_kv_raw, json_kv_str, json_str, money_form,
    pad_chars, phone_form, trim_decimal, with_commas,
};
use super::vocab;
use super::world::{iccid, imei, month_index, month_start, World};
use crate::error::{Context, Error, Result};

/// Rows and bytes of one written file.
#[derive(Debug, Clone, Copy, Default)]
pub struct FileStat {
    pub rows: u64,
    pub bytes: u64,
}

const CHUNK: usize = 1024;

// Tags of the mess streams, one per source.
const TAG_ENT: u64 = 1;
const TAG_KYC: u64 = 2;
const TAG_PER: u64 = 3;
const TAG_APP: u64 = 4;
const TAG_TXN: u64 = 5;
const TAG_REP: u64 = 6;
const TAG_TAX: u64 = 7;
const TAG_TEL: u64 = 8;
const TAG_CON: u64 = 9;
const TAG_COURT: u64 = 10;

fn mess_rng(w: &World, tag: u64, a: u64, b: u64) -> Rng {
    Rng::keyed(w.seed, Stream::Mess, mix64(tag) ^ a, b)
}

fn hash_str(s: &str) -> u64 {
    s.bytes()
        .fold(0xcbf2_9ce4_8422_2325, |h, b| mix64(h ^ b as u64))
}

/// Streams rows generated per entity `0..n` into `path`. `f(i, buf)` appends entity `i`'s
/// rows and returns how many it wrote. For a JSON array each record starts with `,`; the
/// first one's comma is dropped.
fn write_entities<F>(
    path: &Path,
    head: &[u8],
    tail: &[u8],
    n: usize,
    json_array: bool,
    f: F,
) -> Result<FileStat>
where
    F: Fn(usize, &mut Vec<u8>) -> u64 + Sync,
{
    let file = File::create(path).ctx(|| format!("creating {}", path.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let io = |e: std::io::Error| Error::Io {
        context: format!("writing {}", path.display()),
        source: e,
    };
    out.write_all(head).map_err(io)?;
    let ranges: Vec<(usize, usize)> = (0..n)
        .step_by(CHUNK)
        .map(|s| (s, (s + CHUNK).min(n)))
        .collect();
    let group = rayon::current_num_threads().max(1) * 4;
    let mut rows = 0u64;
    let mut first = true;
    for g in ranges.chunks(group) {
        let parts: Vec<(Vec<u8>, u64)> = g
            .par_iter()
            .map(|&(s, e)| {
                let mut buf = Vec::with_capacity(64 * 1024);
                let mut r = 0;
                for i in s..e {
                    r += f(i, &mut buf);
                }
                (buf, r)
            })
            .collect();
        for (buf, r) in parts {
            rows += r;
            let mut b = &buf[..];
            if json_array && first && !b.is_empty() {
                b = &b[1..];
            }
            if !b.is_empty() {
                first = false;
            }
            out.write_all(b).map_err(io)?;
        }
    }
    out.write_all(tail).map_err(io)?;
    out.flush().map_err(io)?;
    drop(out);
    let bytes = std::fs::metadata(path)
        .ctx(|| format!("reading {}", path.display()))?
        .len();
    Ok(FileStat { rows, bytes })
}

fn dt(d: NaiveDateTime) -> String {
    d.format("%Y-%m-%d %H:%M:%S").to_string()
}

fn at(d: NaiveDate, rng: &mut Rng, from_hour: i64, to_hour: i64) -> NaiveDateTime {
    d.and_hms_opt(
        rng.range(from_hour, to_hour) as u32,
        rng.below(60) as u32,
        rng.below(60) as u32,
    )
    .expect("valid time")
}

/// The first enterprise from index 5 on for which `has` holds: where a planted encoding
/// error is forced, so that even a small sample carries one.
fn forced_index(n: usize, has: impl Fn(usize) -> bool) -> Option<usize> {
    (5.min(n)..n).find(|&i| has(i))
}

// ---------------------------------------------------------------------------------------
// Business registry and the branch KYC workbook
// ---------------------------------------------------------------------------------------

pub fn enterprises_csv(w: &World, _night: NaiveDate, path: &Path) -> Result<FileStat> {
    let head = "credit_code,name,type,industry,province,city,registered_capital,founding_date,status,legal_rep_name,legal_rep_id_card,employees,updated_at\n";
    let first_night = w.first_night();
    write_entities(path, head.as_bytes(), b"", w.ents.len(), false, |i, buf| {
        let e = &w.ents[i];
        let rep = &w.persons[2 * i];
        let mut rng = mess_rng(w, TAG_ENT, i as u64, 0);
        let r = e.risk as f64;
        let status = if rng.chance(sigmoid(-4.8 + 1.0 * r)) {
            "吊销"
        } else if rng.chance(0.003) {
            "注销"
        } else if rng.chance(0.3) {
            "在业"
        } else {
            "存续"
        };
        let span = (first_night - e.founded).num_days().max(1) as u64;
        let changed = e.founded + Duration::days(rng.below(span) as i64);
        let updated = dt(at(changed, &mut rng, 9, 18));
        let ind = e.industry();
        let industry = match rng.below(10) {
            0 => ind.letter.to_lowercase(),
            1 => ind.name.to_string(),
            _ => ind.letter.to_string(),
        };
        let kind = if e.sole {
            "个体工商户"
        } else if e.name.ends_with("股份有限公司") {
            "股份有限公司"
        } else {
            "有限责任公司"
        };
        let reg = e.region();
        let mut code = e.code_str().to_string();
        let mut name = e.name.clone();
        let mut capital = money_form(&mut rng, e.capital);
        let mut founding = date_form(&mut rng, e.founded);
        let mut id_card = rep.id_card_str().to_string();
        let employees = e.employees.to_string();
        let mut extra = false;
        let x = rng.f64();
        if x < 0.0015 {
            code = break_check(&code);
        } else if x < 0.0025 {
            name.clear();
        } else if x < 0.0035 {
            founding = "0000-00-00".into();
        } else if x < 0.0045 {
            capital = format!("-{}万", trim_decimal(e.capital / 10_000.0, 4));
        } else if x < 0.0055 {
            extra = true;
        } else if x < 0.0065 {
            id_card = break_check(&id_card);
        } else if x < 0.007 {
            code.clear();
        }
        let mut line = csv_line(&[
            &code,
            &name,
            kind,
            &industry,
            reg.province,
            reg.city,
            &capital,
            &founding,
            status,
            &rep.name,
            &id_card,
            &employees,
            &updated,
        ]);
        if extra {
            line.insert_str(line.len() - 1, ",见附件");
        }
        let mut rows = 1;
        if rng.chance(0.005) {
            // The registry re-sent an older version of the record; the latest must win.
            let old_cap = money_form(
                &mut rng,
                (e.capital / 2.0 / 10_000.0).round().max(1.0) * 10_000.0,
            );
            let old = csv_line(&[
                &code,
                &name,
                kind,
                &industry,
                reg.province,
                reg.city,
                &old_cap,
                &founding,
                "存续",
                &rep.name,
                &id_card,
                &employees,
                &dt(e.founded.and_hms_opt(8, 0, 0).expect("valid")),
            ]);
            if rng.chance(0.5) {
                line.insert_str(0, &old);
            } else {
                line.push_str(&old);
            }
            rows += 1;
        }
        buf.extend_from_slice(line.as_bytes());
        rows
    })
}

fn xlsx_err(path: &Path) -> impl Fn(rust_xlsxwriter::XlsxError) -> Error + '_ {
    move |e| Error::Other(format!("writing {}: {e}", path.display()))
}

/// The branch KYC workbook: the quarter of enterprises onboarded at a branch.
pub fn enterprises_xlsx(w: &World, night: NaiveDate, path: &Path) -> Result<FileStat> {
    use rust_xlsxwriter::{DocProperties, ExcelDateTime, Format, Workbook};
    let err = xlsx_err(path);
    let mut wb = Workbook::new();
    let created =
        ExcelDateTime::from_ymd(night.year() as u16, night.month() as u8, night.day() as u8)
            .map_err(&err)?;
    wb.set_properties(
        &DocProperties::new()
            .set_creation_datetime(&created)
            .set_author("对公客户经理"),
    );
    let date_fmt = Format::new().set_num_format("yyyy-mm-dd");
    let ws = wb.add_worksheet();
    ws.set_name("enterprises").map_err(&err)?;
    let header = [
        "统一社会信用代码",
        "企业名称",
        "开户网点",
        "客户经理",
        "建立关系日期",
        "客户分层",
        "员工人数",
        "年营业收入",
        "法定代表人",
        "法人证件号码",
        "法人手机",
        "结算账号",
    ];
    for (c, h) in header.iter().enumerate() {
        ws.write_string(0, c as u16, *h).map_err(&err)?;
    }
    let mut row = 1u32;
    let mut dups: Vec<usize> = Vec::new();
    for (i, e) in w.ents.iter().enumerate() {
        if !e.kyc {
            continue;
        }
        let rep = &w.persons[2 * i];
        let mut rng = mess_rng(w, TAG_KYC, i as u64, 0);
        let reg = e.region();
        let mut code = e.code_str().to_string();
        let span = (w.first_night() - e.founded).num_days().max(31) as u64;
        let since = e.founded + Duration::days(rng.below(span - 30) as i64);
        let male = rng.chance(0.5);
        let manager = super::world::person_name(&mut rng, male);
        let segment = if e.sole {
            vocab::SEGMENTS[1]
        } else if e.size > 1.5 {
            vocab::SEGMENTS[2]
        } else {
            vocab::SEGMENTS[0]
        };
        let revenue = ((12.0 * (11.0 + 0.9 * e.size as f64).exp() * rng.lognormal(0.0, 0.3))
            / 10_000.0)
            .round()
            .max(1.0)
            * 10_000.0;
        let revenue = money_form(&mut rng, revenue);
        let mut employees = e.employees as f64;
        let mut since_text: Option<String> = if rng.chance(0.1) {
            Some(date_form(&mut rng, since))
        } else {
            None
        };
        let x = rng.f64();
        if x < 0.003 {
            code.clear();
        } else if x < 0.005 {
            code = break_check(&code);
        } else if x < 0.007 {
            employees = if rng.chance(0.5) { -1.0 } else { 250_000.0 };
        } else if x < 0.008 {
            since_text = Some(format!(
                "{}年{}月{}日",
                since.year(),
                since.month(),
                since.day()
            ));
        }
        let phone = phone_form(&mut rng, w.phone(rep.phones[0]));
        let mut write_row = |row: u32| -> Result<()> {
            ws.write_string(row, 0, &code).map_err(&err)?;
            ws.write_string(row, 1, &e.name).map_err(&err)?;
            ws.write_string(
                row,
                2,
                format!(
                    "{}{}",
                    reg.city.trim_end_matches('市'),
                    vocab::BRANCH_SUFFIX[i % vocab::BRANCH_SUFFIX.len()]
                ),
            )
            .map_err(&err)?;
            ws.write_string(row, 3, &manager).map_err(&err)?;
            match &since_text {
                Some(t) => ws.write_string(row, 4, t).map_err(&err)?,
                None => {
                    let d = ExcelDateTime::from_ymd(
                        since.year() as u16,
                        since.month() as u8,
                        since.day() as u8,
                    )
                    .map_err(&err)?;
                    ws.write_datetime_with_format(row, 4, &d, &date_fmt)
                        .map_err(&err)?
                }
            };
            ws.write_string(row, 5, segment).map_err(&err)?;
            ws.write_number(row, 6, employees).map_err(&err)?;
            ws.write_string(row, 7, &revenue).map_err(&err)?;
            ws.write_string(row, 8, &rep.name).map_err(&err)?;
            ws.write_string(row, 9, rep.id_card_str()).map_err(&err)?;
            ws.write_string(row, 10, &phone).map_err(&err)?;
            ws.write_string(row, 11, e.account_str()).map_err(&err)?;
            Ok(())
        };
        write_row(row)?;
        row += 1;
        if rng.chance(0.005) {
            // Typed twice by two managers: the second copy is a duplicate of the unique key.
            write_row(row)?;
            row += 1;
            dups.push(i);
        }
    }
    wb.save(path).map_err(&err)?;
    let bytes = std::fs::metadata(path)
        .ctx(|| format!("reading {}", path.display()))?
        .len();
    Ok(FileStat {
        rows: row as u64 - 1,
        bytes,
    })
}

// ---------------------------------------------------------------------------------------
// Persons (GBK)
// ---------------------------------------------------------------------------------------

fn gbk(s: &str) -> Vec<u8> {
    encoding_rs::GBK.encode(s).0.into_owned()
}

pub fn persons_csv(w: &World, night: NaiveDate, path: &Path) -> Result<FileStat> {
    let head = gbk(
        "客户编号,姓名,性别,证件号码,出生日期,年龄,手机号码,所属企业,角色,学历,婚姻状况,更新时间\n",
    );
    let forced = if w.ents.len() >= 20 {
        Some(7usize)
    } else {
        None
    };
    write_entities(path, &head, b"", w.ents.len(), false, |i, buf| {
        let mut rows = 0;
        for p in [2 * i, 2 * i + 1] {
            let person = &w.persons[p];
            let e = &w.ents[i];
            let mut rng = mess_rng(w, TAG_PER, p as u64, 0);
            let gender = match rng.below(100) {
                0..=59 => {
                    if person.male {
                        "男"
                    } else {
                        "女"
                    }
                }
                60..=89 => {
                    if person.male {
                        "M"
                    } else {
                        "F"
                    }
                }
                _ => {
                    if person.male {
                        "male"
                    } else {
                        "female"
                    }
                }
            };
            let mut age = {
                let mut a = night.year() - person.birth.year();
                if (night.month(), night.day()) < (person.birth.month(), person.birth.day()) {
                    a -= 1;
                }
                a.to_string()
            };
            let pid = format!("P{:09}", scramble(p as u64, 9));
            let mut id_card = person.id_card_str().to_string();
            let mut phone = phone_form(&mut rng, w.phone(person.phones[0]));
            let birth = date_form(&mut rng, person.birth);
            let mut gender = gender.to_string();
            let span = (w.first_night() - e.founded).num_days().max(1) as u64;
            let updated = at(
                e.founded + Duration::days(rng.below(span) as i64),
                &mut rng,
                9,
                18,
            );
            let mut bad_bytes = forced == Some(p);
            let mut extra = false;
            let x = rng.f64();
            if x < 0.001 {
                bad_bytes = true;
            } else if x < 0.0025 {
                id_card = break_check(&id_card);
            } else if x < 0.003 {
                age = "0".into();
            } else if x < 0.0035 {
                age = "150".into();
            } else if x < 0.0045 {
                gender = "未知".into();
            } else if x < 0.0055 {
                phone = phone.chars().take(7).collect();
            } else if x < 0.0065 {
                extra = true;
            } else if x < 0.007 {
                id_card.clear();
            }
            let mut fields: Vec<Vec<u8>> = [
                pid.as_str(),
                &person.name,
                &gender,
                &id_card,
                &birth,
                &age,
                &phone,
                e.code_str(),
                person.role.zh(),
                vocab::EDUCATION[person.education as usize],
                vocab::MARITAL[person.marital as usize],
                &dt(updated),
            ]
            .iter()
            .map(|f| {
                let mut s = String::new();
                csv_field(&mut s, f);
                gbk(&s)
            })
            .collect();
            if bad_bytes {
                // A byte no GBK decoder accepts, in the middle of the name.
                let n = &mut fields[1];
                let at = n.len().min(2);
                n.insert(at, 0xFF);
            }
            if extra {
                fields.push(gbk("身份证复印件"));
            }
            let emit = |buf: &mut Vec<u8>, fields: &[Vec<u8>]| {
                for (k, f) in fields.iter().enumerate() {
                    if k > 0 {
                        buf.push(b',');
                    }
                    buf.extend_from_slice(f);
                }
                buf.push(b'\n');
            };
            if rng.chance(0.005) {
                // An older version (former phone number) sent again: keep the latest.
                let mut old = fields.clone();
                old[6] = gbk(&phone_form(&mut rng, w.phone(person.phones[0]) ^ 1));
                old[11] = gbk(&dt(e.founded.and_hms_opt(8, 0, 0).expect("valid")));
                if rng.chance(0.5) {
                    emit(buf, &old);
                    emit(buf, &fields);
                } else {
                    emit(buf, &fields);
                    emit(buf, &old);
                }
                rows += 2;
            } else {
                emit(buf, &fields);
                rows += 1;
            }
        }
        rows
    })
}

// ---------------------------------------------------------------------------------------
// Loan applications (UTF-8 with BOM) and repayments (Parquet)
// ---------------------------------------------------------------------------------------

pub fn applications_csv(w: &World, night: NaiveDate, path: &Path) -> Result<FileStat> {
    let mut head = b"\xEF\xBB\xBF".to_vec();
    head.extend_from_slice(
        b"application_id,credit_code,applicant_name,applicant_id_card,applicant_phone,amount,apply_date,product,channel,term_months,imei,iccid,ip,status,updated_at\n",
    );
    let forced = forced_index(w.ents.len().min(200), |i| {
        w.apps_of(i).iter().any(|a| a.in_window(night))
    });
    write_entities(path, &head, b"", w.ents.len(), false, |i, buf| {
        let e = &w.ents[i];
        let mut rows = 0;
        let mut forced_here = forced == Some(i);
        for app in w.apps_of(i).iter().filter(|a| a.in_window(night)) {
            let mut rng = mess_rng(w, TAG_APP, app.key(), 0);
            let person = &w.persons[app.applicant as usize];
            let status = app.status_at(night);
            let zh = rng.chance(0.6);
            let status_raw = |s: Status| match (s, zh) {
                (Status::Pending, true) => "审批中",
                (Status::Pending, false) => "pending",
                (Status::Approved, true) => "通过",
                (Status::Approved, false) => "approved",
                (Status::Rejected, true) => "拒绝",
                (Status::Rejected, false) => "rejected",
            };
            let mut id = app.application_id();
            let mut code = e.code_str().to_string();
            let mut id_card = person.id_card_str().to_string();
            let phone = phone_form(&mut rng, w.phone(person.phones[0]));
            let mut amount = money_form(&mut rng, app.amount);
            let mut apply_date = date_form(&mut rng, app.apply.date());
            let product = rng.pick(vocab::PRODUCTS[app.product as usize].1);
            let channel = rng.pick(vocab::CHANNELS[app.channel as usize].1);
            let mut term = if rng.chance(0.1) {
                format!("{}个月", app.term)
            } else {
                app.term.to_string()
            };
            let mut imei_s = imei(app.imei_dev);
            if rng.chance(0.1) {
                imei_s = format!(
                    "{}-{}-{}-{}",
                    &imei_s[..2],
                    &imei_s[2..8],
                    &imei_s[8..14],
                    &imei_s[14..]
                );
            }
            let mut iccid_s = iccid(app.iccid_dev, app.sim_carrier);
            let ip = format!("{}.{}.{}.{}", app.ip[0], app.ip[1], app.ip[2], app.ip[3]);
            let mut bad_utf8 = std::mem::take(&mut forced_here);
            let mut extra = false;
            let x = rng.f64();
            if x < 0.001 {
                id_card.clear();
            } else if x < 0.002 {
                code.clear();
            } else if x < 0.003 {
                id_card = break_check(&id_card);
            } else if x < 0.0035 {
                code = break_check(&code);
            } else if x < 0.0045 {
                imei_s = break_check(&imei_s);
            } else if x < 0.005 {
                iccid_s = break_check(&iccid_s);
            } else if x < 0.006 {
                amount = format!("-{amount}");
            } else if x < 0.007 {
                amount = "待定".into();
            } else if x < 0.0075 {
                apply_date = format!("{}-02-30", app.apply.year());
            } else if x < 0.0085 {
                extra = true;
            } else if x < 0.009 {
                bad_utf8 = true;
            } else if x < 0.0095 {
                term = "999".into();
            } else if x < 0.0097 {
                id.clear();
            }
            let updated = dt(app.updated_at(night));
            let fields = [
                id.as_str(),
                &code,
                &person.name,
                &id_card,
                &phone,
                &amount,
                &apply_date,
                product,
                channel,
                &term,
                &imei_s,
                &iccid_s,
                &ip,
                status_raw(status),
                &updated,
            ];
            let mut line = csv_line(&fields).into_bytes();
            if extra {
                line.pop();
                line.extend_from_slice(",备注：加急\n".as_bytes());
            }
            if bad_utf8 {
                // One byte that is not UTF-8, inside the applicant's name.
                let pos = line.iter().position(|b| *b == b',').unwrap_or(0);
                let pos = line[pos + 1..]
                    .iter()
                    .position(|b| *b == b',')
                    .map(|p| p + pos + 2)
                    .unwrap_or(0);
                line.insert(pos, 0xFF);
            }
            let dup = rng.chance(0.01);
            if dup {
                // An earlier state of the application, re-sent by the origination system.
                let mut old = fields;
                let old_updated = dt(app.apply - Duration::minutes(5));
                old[13] = status_raw(Status::Pending);
                old[14] = &old_updated;
                let old_line = csv_line(&old);
                if rng.chance(0.5) {
                    buf.extend_from_slice(old_line.as_bytes());
                    buf.extend_from_slice(&line);
                } else {
                    buf.extend_from_slice(&line);
                    buf.extend_from_slice(old_line.as_bytes());
                }
                rows += 2;
            } else {
                buf.extend_from_slice(&line);
                rows += 1;
            }
        }
        rows
    })
}

#[derive(Default)]
struct RepaymentCols {
    loan_id: Vec<Option<String>>,
    application_id: Vec<String>,
    credit_code: Vec<String>,
    period_no: Vec<i32>,
    period: Vec<String>,
    due_date: Vec<i32>,
    due_amount: Vec<f64>,
    paid_amount: Vec<Option<f64>>,
    paid_date: Vec<Option<i32>>,
    overdue_days: Vec<i32>,
}

fn epoch_days(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid")).num_days() as i32
}

impl RepaymentCols {
    fn into_frame(self) -> Result<polars::prelude::DataFrame> {
        use polars::prelude::*;
        let n = self.period_no.len();
        let due = Int32Chunked::from_vec("due_date".into(), self.due_date)
            .into_date()
            .into_series();
        let paid = Int32Chunked::from_iter_options("paid_date".into(), self.paid_date.into_iter())
            .into_date()
            .into_series();
        let cols: Vec<Column> = vec![
            Column::new("loan_id".into(), self.loan_id),
            Column::new("application_id".into(), self.application_id),
            Column::new("credit_code".into(), self.credit_code),
            Column::new("period_no".into(), self.period_no),
            Column::new("period".into(), self.period),
            due.into_column(),
            Column::new("due_amount".into(), self.due_amount),
            Column::new("paid_amount".into(), self.paid_amount),
            paid.into_column(),
            Column::new("overdue_days".into(), self.overdue_days),
        ];
        DataFrame::new(n, cols).ctx(|| "assembling repayments".into())
    }
}

pub fn repayments_parquet(w: &World, night: NaiveDate, path: &Path) -> Result<FileStat> {
    use crate::warehouse::parquet::PartWriter;
    let n = w.ents.len();
    let per_batch = 8 * CHUNK;
    let ranges: Vec<(usize, usize)> = (0..n)
        .step_by(per_batch)
        .map(|s| (s, (s + per_batch).min(n)))
        .collect();
    let mut writer: Option<PartWriter> = None;
    let mut rows = 0u64;
    let group = rayon::current_num_threads().max(1);
    for g in ranges.chunks(group) {
        let frames: Vec<Result<polars::prelude::DataFrame>> = g
            .par_iter()
            .map(|&(s, e)| {
                let mut c = RepaymentCols::default();
                for i in s..e {
                    repayment_rows(w, night, i, &mut c);
                }
                c.into_frame()
            })
            .collect();
        for df in frames {
            let df = df?;
            if writer.is_none() {
                writer = Some(PartWriter::create(path, df.schema(), &[])?);
            }
            rows += df.height() as u64;
            writer.as_mut().expect("created").write(&df)?;
        }
    }
    match writer {
        Some(wr) => {
            wr.finish()?;
        }
        None => {
            let mut df = RepaymentCols::default().into_frame()?;
            crate::warehouse::parquet::write_frame(path, &mut df, &[])?;
        }
    }
    let bytes = std::fs::metadata(path)
        .ctx(|| format!("reading {}", path.display()))?
        .len();
    Ok(FileStat { rows, bytes })
}

fn repayment_rows(w: &World, night: NaiveDate, i: usize, c: &mut RepaymentCols) {
    let e = &w.ents[i];
    for app in w
        .apps_of(i)
        .iter()
        .filter(|a| a.in_window(night) && a.approved && a.disbursed() <= night)
    {
        let loan = app.loan_id();
        let app_id = app.application_id();
        for inst in w.instalments(app, night) {
            let mut rng = mess_rng(w, TAG_REP, app.key(), inst.period as u64);
            let mut loan_id = Some(loan.clone());
            let mut due_amount = inst.due_amount;
            let mut overdue = inst.overdue_days as i32;
            let x = rng.f64();
            if x < 0.0005 {
                loan_id = None;
            } else if x < 0.001 {
                due_amount = -due_amount;
            } else if x < 0.0015 {
                overdue = 99_999;
            }
            let copies = if rng.chance(0.003) { 2 } else { 1 };
            for _ in 0..copies {
                c.loan_id.push(loan_id.clone());
                c.application_id.push(app_id.clone());
                c.credit_code.push(e.code_str().to_string());
                c.period_no.push(inst.period as i32);
                c.period.push(inst.due.format("%Y-%m").to_string());
                c.due_date.push(epoch_days(inst.due));
                c.due_amount.push(due_amount);
                c.paid_amount.push(inst.paid.map(|p| p.1));
                c.paid_date.push(inst.paid.map(|p| epoch_days(p.0)));
                c.overdue_days.push(overdue);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Bank transactions (NDJSON)
// ---------------------------------------------------------------------------------------

pub fn transactions_ndjson(w: &World, night: NaiveDate, path: &Path) -> Result<FileStat> {
    let start = night - Duration::days(TXN_WINDOW_DAYS - 1);
    let (m0, m1) = (month_index(start), month_index(night));
    write_entities(path, b"", b"", w.ents.len(), false, |i, buf| {
        let e = &w.ents[i];
        let pool: Vec<super::model::Counterparty> =
            (0..w.pool_size(i)).map(|k| w.counterparty(i, k)).collect();
        let account = e.account_str();
        let code = e.code_str();
        let serial = scramble(i as u64, 8);
        let mut rows = 0;
        let mut line = String::with_capacity(400);
        for m in m0..=m1 {
            for t in w.txns_of_month(i, m) {
                let d = t.ts.date();
                if d < start || d > night {
                    continue;
                }
                let mut rng = mess_rng(w, TAG_TXN, i as u64, ((m as u64) << 16) | t.k as u64);
                line.clear();
                let txn_id = format!("T{}{:08}{:03}", d.format("%Y%m%d"), serial, t.k);
                let (cp_account, cp_name, channel): (&str, &str, &str) = match t.cp {
                    Cp::Pool(k) => {
                        let cp = &pool[k as usize];
                        let ch = rng.pick(&[
                            "EBANK",
                            "EBANK",
                            "网银",
                            "MOBILE",
                            "手机银行",
                            "COUNTER",
                            "柜面",
                            "POS",
                        ]);
                        (&cp.account, &cp.name, ch)
                    }
                    Cp::Payroll => ("", "批量代发", rng.pick(&["PAYROLL", "代发"])),
                    Cp::Tax => ("", "国家金库", rng.pick(&["TAX", "税库"])),
                };
                let direction = if t.inflow {
                    rng.pick(&["in", "in", "in", "IN", "C", "CR", "贷"])
                } else {
                    rng.pick(&["out", "out", "out", "OUT", "D", "DR", "借"])
                };
                let ts = if rng.chance(0.1) {
                    t.ts.format("%Y-%m-%dT%H:%M:%S").to_string()
                } else {
                    dt(t.ts)
                };
                let mut amount = format!("{:.2}", t.amount);
                let mut code_v: Option<String> = Some(code.to_string());
                let mut ts_v = ts;
                let mut truncate = false;
                let x = rng.f64();
                if x < 0.02 {
                    // A string amount with thousands separators: valid, cleaned by `money`.
                    let mut s = String::new();
                    let cents = (t.amount * 100.0).round() as u64;
                    json_str(
                        &mut s,
                        &format!("{}.{:02}", with_commas(cents / 100), cents % 100),
                    );
                    amount = s;
                } else if x < 0.0205 {
                    amount = "null".into();
                } else if x < 0.021 {
                    code_v = None;
                } else if x < 0.0215 {
                    amount = format!("-{amount}");
                } else if x < 0.022 {
                    ts_v = format!("{}-31 25:61:00", d.format("%Y-%m"));
                } else if x < 0.023 {
                    truncate = true;
                } else if x < 0.0235 {
                    code_v = Some(break_check(code));
                }
                line.push('{');
                json_kv_str(&mut line, "txn_id", Some(&txn_id), true);
                json_kv_str(&mut line, "account", Some(&account), false);
                json_kv_str(&mut line, "credit_code", code_v.as_deref(), false);
                json_kv_str(&mut line, "ts", Some(&ts_v), false);
                json_kv_raw(&mut line, "amount", &amount, false);
                json_kv_str(&mut line, "currency", Some("CNY"), false);
                json_kv_str(&mut line, "direction", Some(direction), false);
                json_kv_str(
                    &mut line,
                    "counterparty_account",
                    (!cp_account.is_empty()).then_some(cp_account),
                    false,
                );
                json_kv_str(&mut line, "counterparty_name", Some(cp_name), false);
                json_kv_str(&mut line, "channel", Some(channel), false);
                json_kv_str(&mut line, "memo", Some(t.memo), false);
                line.push_str("}\n");
                if truncate {
                    // The export was cut mid-record (on a character boundary).
                    let mut cut = line.len() / 2;
                    while !line.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    line.truncate(cut);
                    line.push('\n');
                }
                buf.extend_from_slice(line.as_bytes());
                rows += 1;
                if rng.chance(0.003) {
                    // The core system re-sent the record.
                    buf.extend_from_slice(line.as_bytes());
                    rows += 1;
                }
            }
        }
        rows
    })
}

// ---------------------------------------------------------------------------------------
// Tax filings (fixed width)
// ---------------------------------------------------------------------------------------

/// `name,start,width` of the tax bureau's fixed-width VAT filing extract (1-based, characters).
pub const TAX_LAYOUT: &[(&str, usize, usize)] = &[
    ("credit_code", 1, 18),
    ("taxpayer_name", 19, 30),
    ("taxpayer_type", 49, 1),
    ("period", 50, 6),
    ("sales_amount", 56, 16),
    ("tax_payable", 72, 14),
    ("tax_paid", 86, 14),
    ("filing_date", 100, 8),
    ("status", 108, 4),
];

pub fn tax_layout_text() -> String {
    let mut s = String::from(
        "# VAT filings extract of the tax bureau: name,start,width (start is 1-based, in characters)\n",
    );
    for (n, st, wd) in TAX_LAYOUT {
        s.push_str(&format!("{n},{st},{wd}\n"));
    }
    s
}

pub fn tax_filings_txt(w: &World, night: NaiveDate, path: &Path) -> Result<FileStat> {
    let m_night = month_index(night);
    write_entities(path, b"", b"", w.ents.len(), false, |i, buf| {
        let e = &w.ents[i];
        let mut rows = 0;
        let mut line = String::with_capacity(160);
        for m in (m_night - 13)..m_night {
            let Some(f) = w.filing(i, m) else { continue };
            if f.filed > night {
                continue;
            }
            let mut rng = mess_rng(w, TAG_TAX, i as u64, m as u64);
            let render = |line: &mut String,
                          code: &str,
                          sales: &str,
                          payable: f64,
                          paid: f64,
                          filed: &str| {
                line.clear();
                pad_chars(line, code, 18, false);
                pad_chars(line, &e.name, 30, false);
                line.push(if f.general { 'G' } else { 'S' });
                line.push_str(&month_start(f.period).format("%Y%m").to_string());
                pad_chars(line, sales, 16, true);
                pad_chars(line, &format!("{payable:.2}"), 14, true);
                pad_chars(line, &format!("{paid:.2}"), 14, true);
                pad_chars(line, filed, 8, false);
                pad_chars(
                    line,
                    ["正常", "逾期申报", "零申报"][f.status as usize],
                    4,
                    false,
                );
                line.push('\n');
            };
            let mut code = e.code_str().to_string();
            let mut sales = format!("{:.2}", f.sales);
            let mut filed = f.filed.format("%Y%m%d").to_string();
            let mut truncate = false;
            let x = rng.f64();
            if x < 0.001 {
                truncate = true;
            } else if x < 0.002 {
                sales = "*".repeat(16);
            } else if x < 0.0025 {
                sales = format!("-{sales}");
            } else if x < 0.0035 {
                code = break_check(&code);
            } else if x < 0.004 {
                filed = "00000000".into();
            }
            render(&mut line, &code, &sales, f.payable, f.paid, &filed);
            if truncate {
                line = line.chars().take(60).collect();
                line.push('\n');
            }
            let mut out = line.clone();
            rows += 1;
            if rng.chance(0.005) {
                // An amended return (更正申报) filed later: the latest filing wins.
                let filed2 = f.filed + Duration::days(rng.range(20, 60));
                if filed2 <= night {
                    let k = 0.9 + 0.2 * rng.f64();
                    render(
                        &mut line,
                        e.code_str(),
                        &format!("{:.2}", f.sales * k),
                        (f.payable * k * 100.0).round() / 100.0,
                        f.paid,
                        &filed2.format("%Y%m%d").to_string(),
                    );
                    if rng.chance(0.3) {
                        out.insert_str(0, &line);
                    } else {
                        out.push_str(&line);
                    }
                    rows += 1;
                }
            }
            buf.extend_from_slice(out.as_bytes());
        }
        rows
    })
}

// ---------------------------------------------------------------------------------------
// Telecom operator data (JSON document with nested monthly usage)
// ---------------------------------------------------------------------------------------

pub fn telecom_json(w: &World, night: NaiveDate, path: &Path) -> Result<FileStat> {
    let head = format!(
        "{{\"provider\":\"运营商数据服务平台\",\"as_of\":\"{}\",\"records\":[",
        night.format("%Y-%m-%d")
    );
    let m_night = month_index(night);
    write_entities(
        path,
        head.as_bytes(),
        b"\n]}\n",
        w.ents.len(),
        true,
        |i, buf| {
            let apps = w.apps_of(i);
            let mut rows = 0;
            let mut rec = String::with_capacity(1024);
            for p in w.applicants(&apps, night) {
                let person = &w.persons[p as usize];
                for id in person.phone_ids() {
                    let prof = w.phone_profile(id, p);
                    let tenure = m_night - prof.activated;
                    if tenure < 0 {
                        continue;
                    }
                    let mut rng = mess_rng(w, TAG_TEL, id, 0);
                    let mut phone: Option<String> = Some(if rng.chance(0.1) {
                        phone_form(&mut rng, prof.number)
                    } else {
                        prof.number.to_string()
                    });
                    let mut tenure_v = tenure.to_string();
                    let mut negative = false;
                    let x = rng.f64();
                    if x < 0.001 {
                        phone = None;
                    } else if x < 0.002 {
                        negative = true;
                    } else if x < 0.003 {
                        tenure_v = "9999".into();
                    }
                    rec.clear();
                    rec.push_str(",\n{");
                    json_kv_str(&mut rec, "phone", phone.as_deref(), true);
                    json_kv_str(
                        &mut rec,
                        "carrier",
                        Some(rng.pick(vocab::CARRIER_SPELLINGS[prof.carrier as usize])),
                        false,
                    );
                    json_kv_raw(&mut rec, "tenure_months", &tenure_v, false);
                    let real = if rng.chance(0.05) {
                        if prof.real_name {
                            "\"是\""
                        } else {
                            "\"否\""
                        }
                    } else if prof.real_name {
                        "true"
                    } else {
                        "false"
                    };
                    json_kv_raw(&mut rec, "real_name", real, false);
                    json_kv_str(
                        &mut rec,
                        "status",
                        Some(if prof.suspended { "停机" } else { "正常" }),
                        false,
                    );
                    rec.push_str(",\"monthly\":[");
                    let mut first = true;
                    for m in (m_night - 6)..m_night {
                        if m < prof.activated {
                            continue;
                        }
                        let u = w.usage(id, &prof, m);
                        if !first {
                            rec.push(',');
                        }
                        let spend = if negative && first { -u.spend } else { u.spend };
                        first = false;
                        rec.push_str(&format!(
                        "{{\"month\":\"{}\",\"spend\":{:.2},\"calls_out\":{},\"calls_in\":{},\"sms\":{}}}",
                        month_start(u.month).format("%Y-%m"),
                        spend,
                        u.calls_out,
                        u.calls_in,
                        u.sms
                    ));
                    }
                    rec.push_str("]}");
                    buf.extend_from_slice(rec.as_bytes());
                    rows += 1;
                    if rng.chance(0.003) {
                        // The operator answered the same query twice.
                        buf.extend_from_slice(rec.as_bytes());
                        rows += 1;
                    }
                }
            }
            rows
        },
    )
}

// ---------------------------------------------------------------------------------------
// Contact lists (phone -> phone edges)
// ---------------------------------------------------------------------------------------

pub fn contacts_csv(w: &World, night: NaiveDate, path: &Path) -> Result<FileStat> {
    let head = "owner_phone,contact_phone,contact_name,relation,calls_90d\n";
    write_entities(path, head.as_bytes(), b"", w.ents.len(), false, |i, buf| {
        let apps = w.apps_of(i);
        let mut rows = 0;
        for p in w.applicants(&apps, night) {
            let person = &w.persons[p as usize];
            let owner_number = w.phone(person.phones[0]);
            for (k, c) in w.contacts_of(p).iter().enumerate() {
                let mut rng = mess_rng(w, TAG_CON, p as u64, k as u64);
                let mut owner = if rng.chance(0.9) {
                    owner_number.to_string()
                } else {
                    phone_form(&mut rng, owner_number)
                };
                let mut contact = phone_form(&mut rng, w.phone(c.phone_id));
                let calls = c.calls_90d.to_string();
                let mut extra = false;
                let x = rng.f64();
                if x < 0.001 {
                    owner.clear();
                } else if x < 0.003 {
                    // A landline in the address book: not a mobile number.
                    contact = format!(
                        "0{}-{}",
                        10 + rng.below(890),
                        10_000_000 + rng.below(89_999_999)
                    );
                } else if x < 0.0035 {
                    extra = true;
                }
                let mut line = csv_line(&[
                    &owner,
                    &contact,
                    &c.name,
                    vocab::RELATIONS[c.relation as usize],
                    &calls,
                ]);
                if extra {
                    line.insert_str(line.len() - 1, ",手机通讯录");
                }
                buf.extend_from_slice(line.as_bytes());
                rows += 1;
                if rng.chance(0.003) {
                    buf.extend_from_slice(line.as_bytes());
                    rows += 1;
                }
            }
        }
        rows
    })
}

// ---------------------------------------------------------------------------------------
// Court and blacklist records (JSON array)
// ---------------------------------------------------------------------------------------

pub fn court_records_json(w: &World, night: NaiveDate, path: &Path) -> Result<FileStat> {
    write_entities(path, b"[", b"\n]\n", w.ents.len(), true, |i, buf| {
        let mut rows = 0;
        let mut rec = String::with_capacity(600);
        for c in w.cases_of(i) {
            if c.filed > night {
                continue;
            }
            let mut rng = mess_rng(w, TAG_COURT, hash_str(&c.record_id), 0);
            let (ptype, pname, pcode, pid) = match c.party {
                Party::Enterprise(j) => {
                    let ent = &w.ents[j as usize];
                    (
                        "企业",
                        ent.name.clone(),
                        Some(ent.code_str().to_string()),
                        None,
                    )
                }
                Party::Person(p) => {
                    let person = &w.persons[p as usize];
                    (
                        "个人",
                        person.name.clone(),
                        None,
                        Some(person.id_card_str().to_string()),
                    )
                }
            };
            let mut case_no = Some(c.case_no.clone());
            let mut filed = if rng.chance(0.8) {
                c.filed.format("%Y-%m-%d").to_string()
            } else {
                date_form(&mut rng, c.filed)
            };
            let mut amount = money_form(&mut rng, c.amount);
            let x = rng.f64();
            if x < 0.005 {
                case_no = None;
            } else if x < 0.008 {
                filed = format!("{}-02-30", c.filed.year());
            } else if x < 0.01 {
                amount = "不详".into();
            }
            rec.clear();
            rec.push_str(",\n{");
            json_kv_str(&mut rec, "record_id", Some(&c.record_id), true);
            json_kv_str(&mut rec, "case_no", case_no.as_deref(), false);
            json_kv_str(&mut rec, "court", Some(&c.court), false);
            json_kv_str(&mut rec, "case_type", Some(c.case_type), false);
            json_kv_str(&mut rec, "party_type", Some(ptype), false);
            json_kv_str(&mut rec, "party_name", Some(&pname), false);
            json_kv_str(&mut rec, "party_credit_code", pcode.as_deref(), false);
            json_kv_str(&mut rec, "party_id_card", pid.as_deref(), false);
            json_kv_str(&mut rec, "role", Some(c.role), false);
            json_kv_str(
                &mut rec,
                "list_type",
                [None, Some("失信被执行人"), Some("限制高消费")][c.list as usize],
                false,
            );
            json_kv_str(&mut rec, "filing_date", Some(&filed), false);
            json_kv_str(&mut rec, "amount", Some(&amount), false);
            json_kv_str(&mut rec, "status", Some(c.status), false);
            rec.push('}');
            buf.extend_from_slice(rec.as_bytes());
            rows += 1;
            if rng.chance(0.01) {
                buf.extend_from_slice(rec.as_bytes());
                rows += 1;
            }
        }
        rows
    })
}
