//! The simulated world: enterprises with a latent credit risk, the persons behind them,
//! fraud rings, and the identifiers they carry (credit codes, ID cards, phones, devices).
//!
//! Everything here is a function of the seed and the last night; the per-night sources
//! (`model.rs`, `sources.rs`) derive their events from it through keyed random streams.

use std::collections::HashSet;

use chrono::{Datelike, Duration, NaiveDate};

use super::rng::{mix64, scramble, sigmoid, Rng, Stream};
use super::vocab::{self, REGIONS};
use crate::ids;

pub const NO_RING: u32 = u32::MAX;

/// Months as one number: `year * 12 + month0`.
pub fn month_index(d: NaiveDate) -> i32 {
    d.year() * 12 + d.month0() as i32
}

pub fn month_start(m: i32) -> NaiveDate {
    NaiveDate::from_ymd_opt(m.div_euclid(12), m.rem_euclid(12) as u32 + 1, 1).expect("valid month")
}

pub fn days_in_month(m: i32) -> u32 {
    (month_start(m + 1) - month_start(m)).num_days() as u32
}

/// `d` plus `k` months, the day clamped to 28 so that every month has it.
pub fn add_months(d: NaiveDate, k: i32) -> NaiveDate {
    let m = month_index(d) + k;
    month_start(m) + Duration::days(d.day().min(28) as i64 - 1)
}

#[derive(Debug, Clone)]
pub struct Enterprise {
    pub code: [u8; 18],
    pub name: String,
    /// 个体工商户 (individual business, credit code 92...) rather than a company.
    pub sole: bool,
    pub region: u16,
    pub district: u32,
    pub industry: u8,
    /// The latent credit risk (standard normal, higher is worse; ring members shifted up).
    pub risk: f32,
    /// The latent size (standard normal): volumes, capital, staff.
    pub size: f32,
    /// Monthly revenue growth: negative for risky firms (the tax and inflow trend).
    pub growth: f32,
    /// Outflows over inflows: above 1 for firms burning cash.
    pub outflow_ratio: f32,
    /// Month-to-month volatility of volumes (log scale).
    pub volatility: f32,
    pub ring: u32,
    pub founded: NaiveDate,
    pub capital: f64,
    pub employees: u32,
    /// Onboarded at a branch: has a row in the KYC workbook.
    pub kyc: bool,
    /// VAT general taxpayer (files monthly) rather than small-scale (files quarterly).
    pub general_taxpayer: bool,
    /// Corporate settlement account (14-digit serial after the bank's prefix).
    pub account: u64,
}

impl Enterprise {
    pub fn code_str(&self) -> &str {
        std::str::from_utf8(&self.code).expect("ASCII")
    }
    pub fn account_str(&self) -> String {
        format!("31{:04}{:014}", self.district % 10_000, self.account)
    }
    pub fn region(&self) -> &'static vocab::Region {
        &REGIONS[self.region as usize]
    }
    pub fn industry(&self) -> &'static vocab::Industry {
        &vocab::INDUSTRIES[self.industry as usize]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    LegalRep,
    Shareholder,
    Finance,
}

impl Role {
    pub fn zh(self) -> &'static str {
        match self {
            Role::LegalRep => "法定代表人",
            Role::Shareholder => "股东",
            Role::Finance => "财务负责人",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Person {
    pub name: String,
    pub male: bool,
    pub birth: NaiveDate,
    pub id_card: [u8; 18],
    /// Phone ids (see `World::phone`); the second is `u64::MAX` when the person has one phone.
    pub phones: [u64; 2],
    pub enterprise: u32,
    pub role: Role,
    /// On the court blacklist (失信被执行人 or 限制高消费).
    pub blacklisted: bool,
    pub education: u8,
    pub marital: u8,
}

impl Person {
    pub fn id_card_str(&self) -> &str {
        std::str::from_utf8(&self.id_card).expect("ASCII")
    }
    pub fn phone_ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.phones.iter().copied().filter(|p| *p != u64::MAX)
    }
}

/// A fraud ring: enterprises whose applicants share devices, SIMs, an IP range and contacts.
#[derive(Debug, Clone)]
pub struct Ring {
    pub members: Vec<u32>,
    /// Device ids of the shared handsets (IMEIs) and SIMs (ICCIDs).
    pub devices: Vec<u64>,
    /// Phone ids of the organisers every member has in their contacts.
    pub hubs: Vec<u64>,
    pub ip: [u8; 3],
}

/// Mobile number: prefix chosen by the carrier mix, eight scrambled digits from the phone id.
pub fn phone_number(seed: u64, id: u64, carrier: Option<u8>) -> u64 {
    let h = mix64(seed ^ id.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let carrier = carrier.unwrap_or(match h % 100 {
        0..=59 => 0,
        60..=81 => 1,
        _ => 2,
    });
    let list = [vocab::CMCC, vocab::CUCC, vocab::CTCC][carrier as usize];
    let prefix = list[((h >> 16) % list.len() as u64) as usize] as u64;
    prefix * 100_000_000 + scramble(id, 8)
}

pub fn phone_carrier(number: u64) -> u8 {
    vocab::carrier_of_prefix((number / 100_000_000) as u16)
}

const TACS: u64 = 200;

/// A 15-digit IMEI (TAC + serial + Luhn) unique per device id below 2e8.
pub fn imei(device: u64) -> String {
    let k = device % TACS;
    let tac = if k.is_multiple_of(5) {
        35_000_000 + k * 4_999
    } else {
        86_000_000 + k * 4_999
    };
    let body = format!("{tac:08}{:06}", scramble(device / TACS, 6));
    let d = ids::luhn_check_digit(body.as_bytes()).expect("digits") as char;
    format!("{body}{d}")
}

/// A 19- or 20-digit ICCID (89 86 issuer serial Luhn) unique per device id.
pub fn iccid(device: u64, carrier: u8) -> String {
    let h = mix64(device ^ 0x1cc1d);
    let issuers = vocab::ICCID_ISSUERS[carrier as usize];
    let issuer = issuers[(h % issuers.len() as u64) as usize];
    let body = if h % 10 < 3 {
        format!("8986{issuer}{:012}{}", scramble(device, 12), (h >> 8) % 10)
    } else {
        format!("8986{issuer}{:012}", scramble(device, 12))
    };
    let d = ids::luhn_check_digit(body.as_bytes()).expect("digits") as char;
    format!("{body}{d}")
}

fn credit_code(rng: &mut Rng, i: u64, district: u32, sole: bool) -> [u8; 18] {
    const ALPHA: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
    let mut org = [b'0'; 8];
    if rng.chance(0.6) {
        // New-style organisation codes start with MA; the rest from the serial in base 31.
        org[0] = b'M';
        org[1] = b'A';
        let mut x = scramble(i, 8);
        for c in org[2..].iter_mut().rev() {
            *c = ALPHA[(x % 31) as usize];
            x /= 31;
        }
    } else {
        // Old-style all-digit codes; they never collide with the MA ones.
        let s = format!("{:08}", scramble(i, 8));
        org.copy_from_slice(s.as_bytes());
    }
    // GB 11714 check character of the organisation code.
    const W: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];
    let val = |c: u8| -> u32 {
        if c.is_ascii_digit() {
            (c - b'0') as u32
        } else {
            (c - b'A') as u32 + 10
        }
    };
    let sum: u32 = org.iter().zip(W).map(|(c, w)| val(*c) * w).sum();
    let c9 = match 11 - sum % 11 {
        10 => b'X',
        11 => b'0',
        v => b'0' + v as u8,
    };
    let mut code = [0u8; 18];
    code[0] = b'9';
    code[1] = if sole { b'2' } else { b'1' };
    code[2..8].copy_from_slice(format!("{district:06}").as_bytes());
    code[8..16].copy_from_slice(&org);
    code[16] = c9;
    code[17] = ids::credit_code_check_char(&code[..17]).expect("valid alphabet");
    code
}

pub fn person_name(rng: &mut Rng, male: bool) -> String {
    let mut name = String::with_capacity(9);
    name.push_str(vocab::SURNAMES[rng.skewed(vocab::SURNAMES.len(), 1.8)]);
    let given = if male {
        vocab::GIVEN_MALE
    } else {
        vocab::GIVEN_FEMALE
    };
    name.push_str(rng.pick(given));
    if rng.chance(0.7) {
        name.push_str(rng.pick(given));
    }
    name
}

pub fn company_name(rng: &mut Rng, city: &str, industry: &vocab::Industry, sole: bool) -> String {
    let mut name = String::with_capacity(40);
    name.push_str(city);
    name.push_str(rng.pick(vocab::BRAND_CHARS));
    name.push_str(rng.pick(vocab::BRAND_CHARS));
    name.push_str(rng.pick(industry.words));
    if sole {
        name.push_str(rng.pick(vocab::SOLE_SUFFIX));
    } else {
        name.push_str(vocab::COMPANY_SUFFIX[rng.skewed(vocab::COMPANY_SUFFIX.len(), 2.0)]);
    }
    name
}

pub struct World {
    pub seed: u64,
    /// The nights to write, ascending.
    pub nights: Vec<NaiveDate>,
    pub ents: Vec<Enterprise>,
    /// Persons `2i` (legal representative) and `2i + 1` (shareholder or finance) of enterprise `i`.
    pub persons: Vec<Person>,
    pub rings: Vec<Ring>,
    /// Persons on the court blacklist, for contact links to bad actors.
    pub blacklist: Vec<u32>,
}

impl World {
    pub fn first_night(&self) -> NaiveDate {
        self.nights[0]
    }
    pub fn last_night(&self) -> NaiveDate {
        *self.nights.last().expect("at least one night")
    }
    /// The month every trend is anchored at (so that it does not move between nights).
    pub fn anchor_month(&self) -> i32 {
        month_index(self.last_night())
    }

    pub fn phone(&self, id: u64) -> u64 {
        let p = self.persons.len() as u64;
        // Second phones are on another carrier than the first (multi-carrier customers).
        if id >= p && id < 2 * p {
            let first = phone_number(self.seed, id - p, None);
            let c = (phone_carrier(first) + 1 + (mix64(id) % 2) as u8) % 3;
            return phone_number(self.seed, id, Some(c));
        }
        phone_number(self.seed, id, None)
    }

    /// The first phone id outside the population (external contacts).
    pub fn external_phone_base(&self) -> u64 {
        2 * self.persons.len() as u64 + 8 * self.rings.len() as u64 + 16
    }

    pub fn build(seed: u64, n: usize, nights: Vec<NaiveDate>) -> World {
        let first = nights[0];
        let mut ents = Vec::with_capacity(n);
        let region_w: Vec<f64> = REGIONS.iter().map(|r| r.weight).collect();
        let industry_w: Vec<f64> = vocab::INDUSTRIES.iter().map(|i| i.weight).collect();

        // Fraud rings first: they shift the members' risk and age.
        let ring_of = assign_rings(seed, n);
        for (i, &ring) in ring_of.iter().enumerate() {
            let mut rng = Rng::keyed(seed, Stream::Enterprise, i as u64, 0);
            let region = rng.weighted(&region_w) as u16;
            let reg = &REGIONS[region as usize];
            let district = rng.pick(reg.districts);
            let industry = rng.weighted(&industry_w) as u8;
            let ind = &vocab::INDUSTRIES[industry as usize];
            let sole = rng.chance(0.25);
            let in_ring = ring != NO_RING;
            let mut risk = rng.normal();
            if in_ring {
                risk += 0.7;
            }
            let size = rng.normal() - if sole { 0.6 } else { 0.0 };
            let growth = 0.004 - 0.012 * risk + 0.008 * rng.normal();
            let outflow_ratio = 0.93 + 0.04 * risk + 0.04 * rng.normal();
            let volatility = 0.15 + 0.09 * (1.0 + risk.exp()).ln() + 0.04 * rng.normal().abs();
            let age_years = if in_ring && rng.chance(0.7) {
                0.4 + 1.6 * rng.f64()
            } else {
                rng.lognormal(1.7 - 0.3 * risk, 0.7).clamp(0.4, 30.0)
            };
            let founded = first - Duration::days((age_years * 365.25) as i64 + 30);
            let capital_log =
                if sole { 4.6 } else { 5.6 } + 0.45 * size - 0.08 * risk + 0.35 * rng.normal();
            let capital = ((10f64.powf(capital_log) / 10_000.0).round().max(1.0)) * 10_000.0;
            let employees = if sole {
                rng.range(1, 6) as u32
            } else {
                rng.lognormal(1.9 + 0.8 * size, 0.5)
                    .round()
                    .clamp(1.0, 950.0) as u32
            };
            let code = credit_code(&mut rng, i as u64, district, sole);
            let name = company_name(&mut rng, reg.city, ind, sole);
            let kyc = rng.chance(0.25);
            let general_taxpayer = !sole && (size + 0.5 * rng.normal()) > 0.4;
            ents.push(Enterprise {
                code,
                name,
                sole,
                region,
                district,
                industry,
                risk: risk as f32,
                size: size as f32,
                growth: growth as f32,
                outflow_ratio: outflow_ratio as f32,
                volatility: volatility as f32,
                ring,
                founded,
                capital,
                employees,
                kyc,
                general_taxpayer,
                account: scramble(i as u64, 14),
            });
        }

        let mut persons = Vec::with_capacity(2 * n);
        let mut seen_ids: HashSet<u64> = HashSet::with_capacity(2 * n);
        let mut blacklist = Vec::new();
        let np = 2 * n as u64;
        for p in 0..np {
            let i = (p / 2) as usize;
            let e = &ents[i];
            let r = e.risk as f64;
            let mut rng = Rng::keyed(seed, Stream::Person, p, 0);
            let role = if p % 2 == 0 {
                Role::LegalRep
            } else if rng.chance(0.6) {
                Role::Shareholder
            } else {
                Role::Finance
            };
            let male = rng.chance(if role == Role::LegalRep { 0.72 } else { 0.5 });
            let age = (rng.range(24, 62) as f64 - 2.0 * r).clamp(20.0, 70.0);
            let birth = first - Duration::days((age * 365.25) as i64 + rng.range(0, 364));
            let born_local = rng.chance(0.7);
            let district = if born_local {
                e.district
            } else {
                let k = rng.below(REGIONS.len() as u64) as usize;
                rng.pick(REGIONS[k].districts)
            };
            let mut seq = rng.range(0, 499) as u64 * 2 + if male { 1 } else { 0 };
            let base = district as u64 * 100_000_000_000
                + (birth.year() as u64 * 10_000 + birth.month() as u64 * 100 + birth.day() as u64)
                    * 1_000;
            while !seen_ids.insert(base + seq) {
                seq = (seq + 2) % 1000;
            }
            let first17 = format!(
                "{:06}{:04}{:02}{:02}{:03}",
                district,
                birth.year(),
                birth.month(),
                birth.day(),
                seq
            );
            let mut id_card = [0u8; 18];
            id_card[..17].copy_from_slice(first17.as_bytes());
            id_card[17] = ids::id_card_check_char(&id_card[..17]).expect("digits");
            let second = rng.chance(sigmoid(-1.6 + 0.5 * r));
            let phones = [p, if second { np + p } else { u64::MAX }];
            let blacklisted = match role {
                Role::LegalRep => {
                    rng.chance(sigmoid(-4.2 + 1.1 * r) + if e.ring != NO_RING { 0.15 } else { 0.0 })
                }
                _ => rng.chance(sigmoid(-5.2 + 0.8 * r)),
            };
            if blacklisted {
                blacklist.push(p as u32);
            }
            persons.push(Person {
                name: person_name(&mut rng, male),
                male,
                birth,
                id_card,
                phones,
                enterprise: i as u32,
                role,
                blacklisted,
                education: rng.skewed(vocab::EDUCATION.len(), 1.6) as u8,
                marital: rng.below(vocab::MARITAL.len() as u64) as u8,
            });
        }

        let mut rings: Vec<Ring> = Vec::new();
        for (i, e) in ents.iter().enumerate() {
            if e.ring == NO_RING {
                continue;
            }
            let r = e.ring as usize;
            while rings.len() <= r {
                let k = rings.len() as u64;
                let mut rng = Rng::keyed(seed, Stream::Ring, k, 1);
                rings.push(Ring {
                    members: Vec::new(),
                    devices: Vec::new(),
                    hubs: Vec::new(),
                    ip: [
                        rng.pick(vocab::IP_FIRST),
                        rng.below(256) as u8,
                        rng.below(256) as u8,
                    ],
                });
            }
            rings[r].members.push(i as u32);
        }
        // Device ids: `2p + v` for person `p`'s handsets (v = 0, 1), ring devices after them.
        let p2 = 2 * np;
        for (k, ring) in rings.iter_mut().enumerate() {
            let mut rng = Rng::keyed(seed, Stream::Ring, k as u64, 2);
            let nd = rng.range(2, 4) as u64;
            ring.devices = (0..nd).map(|d| p2 + 4 * k as u64 + d).collect();
            let nh = rng.range(1, 2) as u64;
            ring.hubs = (0..nh).map(|h| p2 + 4 * k as u64 + h).collect();
        }
        World {
            seed,
            nights,
            ents,
            persons,
            rings,
            blacklist,
        }
    }
}

/// Picks ~1.5% of enterprises (at least one ring when N >= 50) and groups them in rings of 3-12.
fn assign_rings(seed: u64, n: usize) -> Vec<u32> {
    let mut ring_of = vec![NO_RING; n];
    let target = ((n as f64) * 0.015).round() as usize;
    let target = if n >= 50 { target.max(4) } else { target };
    if target == 0 {
        return ring_of;
    }
    let mut keyed: Vec<(u64, u32)> = (0..n as u64)
        .map(|i| (Rng::keyed(seed, Stream::Ring, i, 0).next_u64(), i as u32))
        .collect();
    keyed.select_nth_unstable(target - 1);
    let mut members: Vec<(u64, u32)> = keyed[..target].to_vec();
    members.sort_unstable();
    let mut rng = Rng::keyed(seed, Stream::Ring, u64::MAX, 0);
    let mut ring = 0u32;
    let mut at = 0;
    while at < members.len() {
        let mut size = rng.range(3, 12) as usize;
        if members.len() - at < size + 3 {
            size = members.len() - at;
        }
        for (_, i) in &members[at..at + size] {
            ring_of[*i as usize] = ring;
        }
        at += size;
        ring += 1;
    }
    ring_of
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world(n: usize) -> World {
        World::build(7, n, vec![NaiveDate::from_ymd_opt(2026, 11, 26).unwrap()])
    }

    #[test]
    fn identifiers_are_valid_and_unique() {
        let w = world(3000);
        let mut codes = HashSet::new();
        for e in &w.ents {
            assert!(ids::is_valid_credit_code(e.code_str()), "{}", e.code_str());
            assert!(codes.insert(e.code));
        }
        let mut cards = HashSet::new();
        let mut phones = HashSet::new();
        for p in &w.persons {
            assert!(
                ids::is_valid_id_card(p.id_card_str()),
                "{}",
                p.id_card_str()
            );
            assert!(cards.insert(p.id_card));
            for id in p.phone_ids() {
                let ph = w.phone(id);
                assert!((13_000_000_000..20_000_000_000).contains(&ph), "{ph}");
                assert!(phones.insert(ph));
            }
        }
        let mut imeis = HashSet::new();
        for d in 0..5000 {
            let m = imei(d);
            assert!(ids::is_valid_imei(&m), "{m}");
            assert!(imeis.insert(m));
            let c = iccid(d, (d % 3) as u8);
            assert!(ids::is_valid_iccid(&c), "{c}");
        }
    }

    #[test]
    fn second_phones_are_on_another_carrier() {
        let w = world(500);
        for p in w.persons.iter().filter(|p| p.phones[1] != u64::MAX) {
            assert_ne!(
                phone_carrier(w.phone(p.phones[0])),
                phone_carrier(w.phone(p.phones[1]))
            );
        }
    }

    #[test]
    fn rings_cover_about_one_and_a_half_percent() {
        let w = world(4000);
        let members: usize = w.rings.iter().map(|r| r.members.len()).sum();
        assert_eq!(members, 60);
        assert!(w.rings.iter().all(|r| r.members.len() >= 3));
        assert!(!world(60).rings.is_empty());
    }

    #[test]
    fn month_arithmetic() {
        let d = NaiveDate::from_ymd_opt(2026, 1, 31).unwrap();
        assert_eq!(
            add_months(d, 1),
            NaiveDate::from_ymd_opt(2026, 2, 28).unwrap()
        );
        assert_eq!(
            add_months(d, -2),
            NaiveDate::from_ymd_opt(2025, 11, 28).unwrap()
        );
        assert_eq!(days_in_month(month_index(d) + 1), 28);
        assert_eq!(
            month_start(month_index(d)),
            NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()
        );
    }
}
