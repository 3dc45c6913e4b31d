//! Events of the world: loan applications and their repayments, bank transactions, tax
//! filings, telecom usage, contact lists and court cases. Each is drawn from a stream keyed
//! by what it describes (enterprise and month, loan and instalment, phone and month), so a
//! night's extract is a window over events that do not depend on which nights are written.

use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime};

use super::rng::{scramble, sigmoid, Rng, Stream};
use super::vocab;
use super::world::{add_months, days_in_month, month_index, month_start, World, NO_RING};

/// Applications in a night's extract: those of the last three years.
pub const APP_WINDOW_DAYS: i64 = 1095;
/// Transactions in a night's extract: the last 180 days.
pub const TXN_WINDOW_DAYS: i64 = 180;
/// Label rule: a loan is bad when an instalment due in its first 12 months reaches 90 days
/// past due; the label is known for loans disbursed at least this many months before the night.
pub const LABEL_MATURITY_MONTHS: i32 = 16;

#[derive(Debug, Clone)]
pub struct App {
    pub enterprise: u32,
    pub month: i32,
    pub apply: NaiveDateTime,
    pub decided: NaiveDateTime,
    pub applicant: u32,
    pub amount: f64,
    pub product: u8,
    pub channel: u8,
    pub term: u8,
    pub imei_dev: u64,
    pub iccid_dev: u64,
    pub sim_carrier: u8,
    pub ip: [u8; 4],
    pub approved: bool,
    /// The first missed instalment of a loan that defaults; 0 when the loan performs.
    pub default_period: u8,
    /// The probability of default the loan was drawn with (read by the calibration tests).
    #[cfg_attr(not(test), allow(dead_code))]
    pub pd: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pending,
    Approved,
    Rejected,
}

impl App {
    fn digits(&self) -> String {
        let d = month_start(self.month);
        format!(
            "{}{:08}",
            d.format("%Y%m"),
            scramble(self.enterprise as u64, 8)
        )
    }
    pub fn application_id(&self) -> String {
        format!("AP{}", self.digits())
    }
    pub fn loan_id(&self) -> String {
        format!("LN{}", self.digits())
    }
    /// A number unique per application, to key its own random streams.
    pub fn key(&self) -> u64 {
        ((self.enterprise as u64) << 24) | self.month as u64
    }
    pub fn status_at(&self, night: NaiveDate) -> Status {
        if self.decided.date() > night {
            Status::Pending
        } else if self.approved {
            Status::Approved
        } else {
            Status::Rejected
        }
    }
    pub fn updated_at(&self, night: NaiveDate) -> NaiveDateTime {
        if self.decided.date() > night {
            self.apply
        } else {
            self.decided
        }
    }
    pub fn disbursed(&self) -> NaiveDate {
        self.decided.date()
    }
    pub fn instalment(&self) -> f64 {
        let rate = 0.055 * self.term as f64 / 12.0;
        (self.amount * (1.0 + rate) / self.term as f64 * 100.0).round() / 100.0
    }
    /// In the night's three-year window.
    pub fn in_window(&self, night: NaiveDate) -> bool {
        let d = self.apply.date();
        d <= night && d > night - Duration::days(APP_WINDOW_DAYS)
    }
}

#[derive(Debug, Clone)]
pub struct Instalment {
    pub period: u8,
    pub due: NaiveDate,
    pub due_amount: f64,
    pub paid: Option<(NaiveDate, f64)>,
    pub overdue_days: i64,
}

#[derive(Debug, Clone, Copy)]
pub enum Cp {
    /// Index into the enterprise's pool of trading partners.
    Pool(u32),
    Payroll,
    Tax,
}

#[derive(Debug, Clone)]
pub struct Txn {
    pub ts: NaiveDateTime,
    pub amount: f64,
    pub inflow: bool,
    pub cp: Cp,
    pub memo: &'static str,
    /// Serial within the month (for the transaction id).
    pub k: u32,
}

#[derive(Debug, Clone)]
pub struct Counterparty {
    pub account: String,
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct Filing {
    /// Month index of the (last month of the) period.
    pub period: i32,
    pub general: bool,
    pub sales: f64,
    pub payable: f64,
    pub paid: f64,
    pub filed: NaiveDate,
    /// 0 正常, 1 逾期申报 (late), 2 零申报 (zero).
    pub status: u8,
}

#[derive(Debug, Clone)]
pub struct PhoneProfile {
    pub number: u64,
    pub activated: i32,
    pub carrier: u8,
    pub real_name: bool,
    pub suspended: bool,
    pub spend: f64,
    pub cv: f64,
}

#[derive(Debug, Clone)]
pub struct Usage {
    pub month: i32,
    pub spend: f64,
    pub calls_out: u32,
    pub calls_in: u32,
    pub sms: u32,
}

#[derive(Debug, Clone)]
pub struct Contact {
    pub phone_id: u64,
    pub name: String,
    pub relation: u8,
    pub calls_90d: u32,
}

#[derive(Debug, Clone, Copy)]
pub enum Party {
    Enterprise(u32),
    Person(u32),
}

#[derive(Debug, Clone)]
pub struct Case {
    pub record_id: String,
    pub case_no: String,
    pub court: String,
    pub party: Party,
    pub filed: NaiveDate,
    pub case_type: &'static str,
    pub role: &'static str,
    /// 0 none, 1 失信被执行人, 2 限制高消费.
    pub list: u8,
    pub amount: f64,
    pub status: &'static str,
}

impl World {
    /// Every application of enterprise `i` up to the last night (and three years before the first).
    pub fn apps_of(&self, i: usize) -> Vec<App> {
        let e = &self.ents[i];
        let r = e.risk as f64;
        let ring = e.ring != NO_RING;
        let last = self.last_night();
        let m0 = month_index(self.first_night()) - 37;
        let m1 = month_index(last);
        let mut bad_seen: Option<NaiveDate> = None;
        let mut out = Vec::new();
        for m in m0..=m1 {
            let mut rng = Rng::keyed(self.seed, Stream::Application, i as u64, m as u64);
            let p = (0.05 * (0.25 * r).exp() * if ring { 2.0 } else { 1.0 }).min(0.5);
            if !rng.chance(p) {
                continue;
            }
            let day = rng.range(1, days_in_month(m) as i64);
            let date = month_start(m) + Duration::days(day - 1);
            if date > last || date <= e.founded {
                continue;
            }
            let hour = if ring && rng.chance(0.3) {
                rng.range(0, 5)
            } else {
                rng.range(8, 22)
            };
            let apply = date.and_time(
                NaiveTime::from_hms_opt(hour as u32, rng.below(60) as u32, rng.below(60) as u32)
                    .expect("valid time"),
            );
            let applicant = (2 * i + usize::from(rng.chance(0.15))) as u32;
            let p_idx = applicant as u64;
            // Own handset, sometimes the replacement one, sometimes the partner's (legit sharing).
            let mut imei_dev = 2 * p_idx + u64::from(rng.chance(0.2));
            if rng.chance(0.03) {
                imei_dev = 2 * (p_idx ^ 1);
            }
            let mut iccid_dev = imei_dev;
            let person = &self.persons[applicant as usize];
            let mut sim_carrier = super::world::phone_carrier(self.phone(person.phones[0]));
            let mut ip = [
                rng.pick(vocab::IP_FIRST),
                rng.below(256) as u8,
                rng.below(256) as u8,
                rng.range(1, 254) as u8,
            ];
            if ring {
                let rg = &self.rings[e.ring as usize];
                if rng.chance(0.75) {
                    imei_dev = rng.pick(&rg.devices);
                    iccid_dev = if rng.chance(0.7) {
                        imei_dev
                    } else {
                        rng.pick(&rg.devices)
                    };
                    sim_carrier = (iccid_dev % 3) as u8;
                }
                if rng.chance(0.7) {
                    ip = [rg.ip[0], rg.ip[1], rg.ip[2], rng.range(1, 254) as u8];
                }
            }
            let amount_raw =
                rng.lognormal(11.9 + 0.5 * e.size as f64, 0.45) * if ring { 1.5 } else { 1.0 };
            let amount = (amount_raw.clamp(20_000.0, 3_000_000.0) / 1000.0).round() * 1000.0;
            let product = rng.below(vocab::PRODUCTS.len() as u64) as u8;
            let channel = rng.weighted(&[5.0, 2.0, 2.0, 1.5]) as u8;
            let term = rng.pick(if ring {
                &[12u8, 12, 24][..]
            } else {
                &[6u8, 12, 12, 24, 36][..]
            });
            let lag = Duration::minutes(rng.range(90, 72 * 60));
            let decided = apply + lag;
            let approve_p = if bad_seen.is_some_and(|b| date > b) {
                0.05
            } else {
                sigmoid(1.6 - 0.9 * r + if ring { 1.2 } else { 0.0 })
            };
            let approved = rng.chance(approve_p);
            let pd = sigmoid(-3.4 + 1.55 * r + e.industry().risk + if ring { 1.8 } else { 0.0 });
            let mut default_period = 0u8;
            if approved && rng.chance(pd) {
                let last_k = term.min(12) as i64;
                // Most defaults come early in the loan's life.
                default_period = (1 + rng.skewed(last_k as usize, 1.6) as i64).min(last_k) as u8;
                let seen = add_months(decided.date(), default_period as i32) + Duration::days(30);
                bad_seen = Some(bad_seen.map_or(seen, |b| b.min(seen)));
            }
            out.push(App {
                enterprise: i as u32,
                month: m,
                apply,
                decided,
                applicant,
                amount,
                product,
                channel,
                term,
                imei_dev,
                iccid_dev,
                sim_carrier,
                ip,
                approved,
                default_period,
                pd,
            });
        }
        out
    }

    /// The loan's instalments due by the night, as the core system sees them that night.
    pub fn instalments(&self, app: &App, night: NaiveDate) -> Vec<Instalment> {
        let r = self.ents[app.enterprise as usize].risk as f64;
        let q_late = sigmoid(-2.8 + 0.8 * r);
        let amount = app.instalment();
        let mut out = Vec::new();
        for k in 1..=app.term {
            let due = add_months(app.disbursed(), k as i32);
            if due > night {
                break;
            }
            let mut rng = Rng::keyed(self.seed, Stream::Repayment, app.key(), k as u64);
            let missed = app.default_period > 0 && k >= app.default_period;
            let late = if rng.chance(q_late) {
                rng.range(1, 25)
            } else if rng.chance(q_late / 6.0) {
                rng.range(31, 60)
            } else {
                -rng.range(0, 3)
            };
            let paid_on = due + Duration::days(late);
            let (paid, overdue_days) = if missed || paid_on > night {
                (None, (night - due).num_days())
            } else {
                (Some((paid_on, amount)), late.max(0))
            };
            out.push(Instalment {
                period: k,
                due,
                due_amount: amount,
                paid,
                overdue_days,
            });
        }
        out
    }

    fn monthly_base(&self, i: usize, m: i32) -> f64 {
        let e = &self.ents[i];
        let trend = (e.growth as f64 * (m - self.anchor_month()) as f64).exp();
        (11.0 + 0.9 * e.size as f64 - 0.25 * e.risk as f64).exp() * trend
    }

    pub fn pool_size(&self, i: usize) -> u32 {
        let e = &self.ents[i];
        let mut rng = Rng::keyed(self.seed, Stream::Counterparty, i as u64, u64::MAX);
        2 + rng.poisson(4.0 * (0.3 * e.size as f64 - 0.25 * e.risk as f64).exp())
    }

    /// Trading partner `k` of enterprise `i`: another enterprise, an outside company or a person.
    pub fn counterparty(&self, i: usize, k: u32) -> Counterparty {
        let mut rng = Rng::keyed(self.seed, Stream::Counterparty, i as u64, k as u64);
        let n = self.ents.len() as u64;
        let x = rng.f64();
        if x < 0.65 && n > 1 {
            let mut j = rng.below(n) as usize;
            if j == i {
                j = (j + 1) % n as usize;
            }
            let other = &self.ents[j];
            Counterparty {
                account: other.account_str(),
                name: other.name.clone(),
            }
        } else if x < 0.9 {
            let reg = &vocab::REGIONS[rng.below(vocab::REGIONS.len() as u64) as usize];
            let ind = &vocab::INDUSTRIES[rng.below(18) as usize];
            let name = super::world::company_name(&mut rng, reg.city, ind, false);
            Counterparty {
                account: format!("9{:019}", rng.below(10u64.pow(19))),
                name,
            }
        } else {
            // A personal bank card (with its Luhn digit): personal data.
            let body = format!("622848{:012}", rng.below(10u64.pow(12)));
            let d = crate::ids::luhn_check_digit(body.as_bytes()).expect("digits") as char;
            let male = rng.chance(0.5);
            Counterparty {
                account: format!("{body}{d}"),
                name: super::world::person_name(&mut rng, male),
            }
        }
    }

    /// Enterprise `i`'s transactions in month `m`, in time order.
    pub fn txns_of_month(&self, i: usize, m: i32) -> Vec<Txn> {
        let e = &self.ents[i];
        let r = e.risk as f64;
        let s = e.size as f64;
        let first_day = month_start(m);
        if first_day + Duration::days(days_in_month(m) as i64) <= e.founded {
            return Vec::new();
        }
        let mut rng = Rng::keyed(self.seed, Stream::Transaction, i as u64, m as u64);
        let vin = self.monthly_base(i, m) * rng.lognormal(0.0, e.volatility as f64);
        let lam_in = (0.9 * (0.45 * s).exp() + 0.2).min(25.0);
        let n_in = rng.poisson(lam_in);
        let n_out = rng.poisson(lam_in * 1.2);
        let vout = vin * e.outflow_ratio as f64 * rng.lognormal(0.0, 0.15);
        let pool = self.pool_size(i);
        let concentration = 1.5 + 0.6 * r.max(0.0);
        let dim = days_in_month(m) as i64;
        let mut out = Vec::with_capacity((n_in + n_out + 2) as usize);
        let mut push = |rng: &mut Rng,
                        amount: f64,
                        inflow: bool,
                        cp: Cp,
                        memo: &'static str,
                        day: Option<i64>| {
            let day = day.unwrap_or_else(|| rng.range(1, dim));
            let t = NaiveTime::from_hms_opt(
                rng.range(7, 21) as u32,
                rng.below(60) as u32,
                rng.below(60) as u32,
            )
            .expect("valid time");
            let amount = (amount.max(0.01) * 100.0).round() / 100.0;
            out.push(Txn {
                ts: (first_day + Duration::days(day - 1)).and_time(t),
                amount,
                inflow,
                cp,
                memo,
                k: 0,
            });
        };
        for _ in 0..n_in {
            let a = vin / n_in.max(1) as f64 * rng.lognormal(0.0, 0.5);
            let cp = Cp::Pool(rng.skewed(pool as usize, concentration) as u32);
            let memo = rng.pick(vocab::MEMO_IN);
            push(&mut rng, a, true, cp, memo, None);
        }
        for _ in 0..n_out {
            let a = vout / n_out.max(1) as f64 * rng.lognormal(0.0, 0.5);
            let cp = Cp::Pool(rng.skewed(pool as usize, 1.2) as u32);
            let memo = rng.pick(vocab::MEMO_OUT);
            push(&mut rng, a, false, cp, memo, None);
        }
        if e.employees >= 5 {
            let a = e.employees as f64 * 5_200.0 * rng.lognormal(0.0, 0.08);
            let day = rng.range(8, 15);
            push(&mut rng, a, false, Cp::Payroll, "代发工资", Some(day));
        }
        if e.general_taxpayer || m.rem_euclid(3) == 0 {
            // About 3% of a month's volume: 13% VAT on the value added monthly, or 1% of a
            // quarter's sales for small-scale taxpayers.
            let a = vin * 0.03 * rng.lognormal(0.0, 0.2);
            let day = rng.range(10, 15);
            push(&mut rng, a, false, Cp::Tax, "税费", Some(day));
        }
        out.sort_by_key(|t| t.ts);
        for (k, t) in out.iter_mut().enumerate() {
            t.k = k as u32;
        }
        out
    }

    /// The VAT return of enterprise `i` for the period ending in month `m`, if it files one.
    pub fn filing(&self, i: usize, m: i32) -> Option<Filing> {
        let e = &self.ents[i];
        let r = e.risk as f64;
        // Small-scale taxpayers file quarterly: periods end in Mar, Jun, Sep, Dec.
        if !e.general_taxpayer && m.rem_euclid(3) != 2 {
            return None;
        }
        let months = if e.general_taxpayer { 1 } else { 3 };
        if month_start(m - months + 1) <= e.founded {
            return None;
        }
        let mut rng = Rng::keyed(self.seed, Stream::Tax, i as u64, m as u64);
        let mut sales: f64 = (0..months)
            .map(|k| {
                self.monthly_base(i, m - k) * 1.2 * rng.lognormal(0.0, e.volatility as f64 * 0.8)
            })
            .sum();
        let zero = rng.chance(sigmoid(-3.8 + 1.0 * r));
        if zero {
            sales = 0.0;
        }
        sales = (sales * 100.0).round() / 100.0;
        let payable = if e.general_taxpayer {
            sales * 0.13 * (0.15 + 0.2 * rng.f64())
        } else {
            sales * 0.01
        };
        let payable = (payable * 100.0).round() / 100.0;
        let paid = if rng.chance(sigmoid(-4.0 + 1.2 * r)) {
            (payable * 0.5 * rng.f64() * 100.0).round() / 100.0
        } else {
            payable
        };
        let late = rng.chance(sigmoid(-3.0 + 0.9 * r));
        let filed = month_start(m + 1)
            + Duration::days(if late {
                rng.range(15, 75)
            } else {
                rng.range(0, 14)
            });
        let status = if zero {
            2
        } else if late {
            1
        } else {
            0
        };
        Some(Filing {
            period: m,
            general: e.general_taxpayer,
            sales,
            payable,
            paid,
            filed,
            status,
        })
    }

    pub fn phone_profile(&self, phone_id: u64, owner: u32) -> PhoneProfile {
        let e = &self.ents[self.persons[owner as usize].enterprise as usize];
        let r = e.risk as f64;
        let mut rng = Rng::keyed(self.seed, Stream::Telecom, phone_id, u64::MAX);
        let number = self.phone(phone_id);
        let second = phone_id >= self.persons.len() as u64;
        let tenure = if e.ring != NO_RING && rng.chance(0.6) {
            rng.range(1, 8) as f64
        } else {
            rng.lognormal(3.9 - 0.4 * r - if second { 0.5 } else { 0.0 }, 0.6)
                .clamp(1.0, 300.0)
        };
        let mut carrier = super::world::phone_carrier(number);
        if rng.chance(0.03) {
            carrier = (carrier + 1) % 3; // ported to another operator (携号转网)
        }
        PhoneProfile {
            number,
            activated: self.anchor_month() - tenure.round() as i32,
            carrier,
            real_name: rng.chance(if e.ring != NO_RING { 0.8 } else { 0.985 }),
            suspended: rng.chance(sigmoid(-4.5 + 0.8 * r)),
            spend: rng.lognormal(4.1 + 0.15 * e.size as f64, 0.4),
            cv: 0.08 + 0.3 * sigmoid(1.3 * r - 0.5),
        }
    }

    pub fn usage(&self, phone_id: u64, profile: &PhoneProfile, m: i32) -> Usage {
        let mut rng = Rng::keyed(self.seed, Stream::Telecom, phone_id, m as u64);
        let spend = profile.spend * rng.lognormal(0.0, profile.cv);
        let calls = profile.spend * 1.6 * rng.lognormal(0.0, profile.cv);
        Usage {
            month: m,
            spend: (spend * 100.0).round() / 100.0,
            calls_out: rng.poisson(calls.min(400.0)),
            calls_in: rng.poisson((calls * 0.9).min(400.0)),
            sms: rng.poisson(4.0),
        }
    }

    /// The persons who applied for enterprise `i` within the night's window (telecom and
    /// contact data are pulled for applicants).
    pub fn applicants(&self, apps: &[App], night: NaiveDate) -> Vec<u32> {
        let mut ps: Vec<u32> = apps
            .iter()
            .filter(|a| a.in_window(night))
            .map(|a| a.applicant)
            .collect();
        ps.sort_unstable();
        ps.dedup();
        ps
    }

    pub fn contacts_of(&self, p: u32) -> Vec<Contact> {
        let person = &self.persons[p as usize];
        let e = &self.ents[person.enterprise as usize];
        let r = e.risk as f64;
        let mut rng = Rng::keyed(self.seed, Stream::Contacts, p as u64, 0);
        let np = self.persons.len() as u64;
        let ext_base = self.external_phone_base();
        let ext_span = 100_000_000u64.saturating_sub(ext_base).max(1);
        let mut out = Vec::new();
        let name_of = |rng: &mut Rng, known: Option<u32>| -> String {
            match known {
                Some(q) if rng.chance(0.7) => self.persons[q as usize].name.clone(),
                _ => {
                    let male = rng.chance(0.5);
                    let full = super::world::person_name(rng, male);
                    if rng.chance(0.4) {
                        let surname: String = full.chars().take(1).collect();
                        format!("{surname}{}", rng.pick(vocab::CONTACT_REMARKS))
                    } else {
                        full
                    }
                }
            }
        };
        let partner = p ^ 1;
        let nm = name_of(&mut rng, Some(partner));
        out.push(Contact {
            phone_id: self.persons[partner as usize].phones[0],
            name: nm,
            relation: 2,
            calls_90d: rng.poisson(25.0),
        });
        for _ in 0..rng.range(1, 2) {
            let id = ext_base + rng.below(ext_span);
            let nm = name_of(&mut rng, None);
            out.push(Contact {
                phone_id: id,
                name: nm,
                relation: 0,
                calls_90d: rng.poisson(40.0),
            });
        }
        for _ in 0..rng.poisson(5.0) {
            if rng.chance(0.6) {
                let q = rng.below(np) as u32;
                let nm = name_of(&mut rng, Some(q));
                out.push(Contact {
                    phone_id: self.persons[q as usize].phones[0],
                    name: nm,
                    relation: if rng.chance(0.5) { 1 } else { 3 },
                    calls_90d: rng.poisson(6.0),
                });
            } else {
                let id = ext_base + rng.below(ext_span);
                let nm = name_of(&mut rng, None);
                out.push(Contact {
                    phone_id: id,
                    name: nm,
                    relation: rng.pick(&[1u8, 3, 4]),
                    calls_90d: rng.poisson(4.0),
                });
            }
        }
        if !self.blacklist.is_empty() {
            for _ in 0..rng.poisson(0.12 * (0.9 * r).exp()) {
                let q = rng.pick(&self.blacklist);
                if q == p {
                    continue;
                }
                let nm = name_of(&mut rng, Some(q));
                out.push(Contact {
                    phone_id: self.persons[q as usize].phones[0],
                    name: nm,
                    relation: rng.pick(&[1u8, 4]),
                    calls_90d: rng.poisson(5.0),
                });
            }
        }
        if e.ring != NO_RING {
            let ring = &self.rings[e.ring as usize];
            for h in &ring.hubs {
                let nm = name_of(&mut rng, None);
                out.push(Contact {
                    phone_id: *h,
                    name: nm,
                    relation: 4,
                    calls_90d: rng.poisson(15.0),
                });
            }
            for _ in 0..rng.range(2, 4) {
                let j = rng.pick(&ring.members);
                if j == person.enterprise {
                    continue;
                }
                let q = 2 * j;
                let nm = name_of(&mut rng, Some(q));
                out.push(Contact {
                    phone_id: self.persons[q as usize].phones[0],
                    name: nm,
                    relation: 1,
                    calls_90d: rng.poisson(10.0),
                });
            }
        }
        // One edge per contact phone (the first relation found).
        let mut seen = std::collections::HashSet::new();
        out.retain(|c| c.phone_id != person.phones[0] && seen.insert(c.phone_id));
        out
    }

    fn court_name(&self, region: usize, rng: &mut Rng) -> (String, u32) {
        let reg = &vocab::REGIONS[region];
        let d = rng.pick(reg.districts);
        let name = if rng.chance(0.3) {
            format!("{}中级人民法院", reg.city)
        } else {
            format!(
                "{}第{}人民法院",
                reg.city,
                ["一", "二", "三"][(d % 3) as usize]
            )
        };
        (name, d % 10_000)
    }

    /// Court and blacklist records of enterprise `i` and of its two persons.
    pub fn cases_of(&self, i: usize) -> Vec<Case> {
        let e = &self.ents[i];
        let r = e.risk as f64;
        let anchor = self.last_night();
        let mut out = Vec::new();
        let mut rng = Rng::keyed(self.seed, Stream::Court, i as u64, 0);
        let n = rng.poisson((-3.0 + 1.0 * r).exp() + if e.ring != NO_RING { 0.3 } else { 0.0 });
        let statuses = ["审理中", "已结案", "已结案", "执行中"];
        for k in 0..n.min(20) {
            let filed = anchor - Duration::days(rng.range(0, 5 * 365));
            if filed <= e.founded {
                continue;
            }
            let (court, code) = self.court_name(e.region as usize, &mut rng);
            let list = if rng.chance(0.15) { 1 } else { 0 };
            let kind = if list > 0 { "执" } else { "民初" };
            out.push(Case {
                record_id: format!("CR{:08}{:02}", scramble(i as u64, 8), k),
                case_no: format!(
                    "({}){}{:04}{}{}号",
                    filed.format("%Y"),
                    e.region().abbr,
                    code,
                    kind,
                    rng.range(100, 29_999)
                ),
                court,
                party: Party::Enterprise(i as u32),
                filed,
                case_type: rng.pick(vocab::CASE_TYPES),
                role: if list > 0 {
                    "被执行人"
                } else {
                    rng.pick(vocab::COURT_ROLES)
                },
                list,
                amount: (rng.lognormal(11.5, 1.0) / 100.0).round() * 100.0,
                status: rng.pick(&statuses),
            });
        }
        for p in [2 * i, 2 * i + 1] {
            let person = &self.persons[p];
            let mut rng = Rng::keyed(self.seed, Stream::Court, p as u64, 1);
            let n = if person.blacklisted {
                rng.range(1, 2) as u32
            } else {
                u32::from(rng.chance(0.01))
            };
            for k in 0..n {
                let filed = anchor - Duration::days(rng.range(0, 4 * 365));
                let (court, code) = self.court_name(e.region as usize, &mut rng);
                let list = if person.blacklisted {
                    if k == 0 || rng.chance(0.5) {
                        1
                    } else {
                        2
                    }
                } else {
                    0
                };
                let kind = if list > 0 { "执" } else { "民初" };
                out.push(Case {
                    record_id: format!("CP{:09}{:01}", scramble(p as u64, 9), k),
                    case_no: format!(
                        "({}){}{:04}{}{}号",
                        filed.format("%Y"),
                        e.region().abbr,
                        code,
                        kind,
                        rng.range(100, 29_999)
                    ),
                    court,
                    party: Party::Person(p as u32),
                    filed,
                    case_type: if list > 0 {
                        "民间借贷纠纷"
                    } else {
                        rng.pick(vocab::CASE_TYPES)
                    },
                    role: if list > 0 { "被执行人" } else { "被告" },
                    list,
                    amount: (rng.lognormal(11.0, 1.0) / 100.0).round() * 100.0,
                    status: if list > 0 {
                        "执行中"
                    } else {
                        rng.pick(&statuses)
                    },
                });
            }
        }
        out
    }
}
