//! Optimal binning for scorecards: fine classing of a numeric feature by a CART tree (at most
//! `max_prebins` leaves of at least `min_prebin_size` of the rows), then coarse classing by
//! dynamic programming that merges adjacent pre-bins to maximise information value subject to a
//! monotonic event rate (ascending, descending, or whichever of the two gives more IV), a
//! minimum bin size and a maximum number of bins. Categorical features are ordered by event rate
//! (rare categories pooled into "other") and go through the same merge. Missing values and
//! declared special values get bins of their own.
//!
//! Conventions: event = 1 ("bad"). WoE = ln(%non-events / %events) with 0.5 added to each
//! count, so a higher WoE means lower risk; IV = sum over bins of (%non-events - %events) * WoE.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{invalid, Matrix, ModelError, ModelResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Monotonic {
    /// Ascending or descending, whichever gives more IV; a peak or a valley instead when it
    /// adds more than `auto_turn_gain` of that IV.
    Auto,
    /// Event rate rises with the value.
    Ascending,
    /// Event rate falls with the value.
    Descending,
    /// Event rate rises, then falls.
    Peak,
    /// Event rate falls, then rises (e.g. risk by age).
    Valley,
    /// No constraint on the event rate.
    None,
}

impl Monotonic {
    pub const NAMES: &'static str = "auto, ascending, descending, peak, valley, none";

    pub fn parse(s: &str) -> Option<Monotonic> {
        Some(match s {
            "auto" => Monotonic::Auto,
            "ascending" => Monotonic::Ascending,
            "descending" => Monotonic::Descending,
            "peak" => Monotonic::Peak,
            "valley" => Monotonic::Valley,
            "none" => Monotonic::None,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BinningParams {
    pub max_prebins: usize,
    /// Minimum share of rows in a pre-bin.
    pub min_prebin_size: f64,
    /// Minimum share of (non-missing, non-special) rows in a final bin.
    pub min_bin_size: f64,
    /// Maximum number of value bins (missing and special bins not counted).
    pub max_bins: usize,
    pub monotonic: Monotonic,
    /// Values binned apart (e.g. -999 "not applicable").
    pub special_values: Vec<f64>,
    /// Categories rarer than this share are pooled into "other".
    pub cat_min_share: f64,
    /// With `monotonic = "auto"`: relative IV gain a peak or valley needs over the best
    /// monotonic binning to be chosen.
    pub auto_turn_gain: f64,
}

impl Default for BinningParams {
    fn default() -> Self {
        BinningParams {
            max_prebins: 20,
            min_prebin_size: 0.05,
            min_bin_size: 0.05,
            max_bins: 10,
            monotonic: Monotonic::Auto,
            special_values: Vec::new(),
            cat_min_share: 0.01,
            auto_turn_gain: 0.1,
        }
    }
}

impl BinningParams {
    pub fn validate(&self) -> ModelResult<()> {
        if self.max_prebins < 2 {
            return Err(invalid("max_prebins", self.max_prebins, "an integer >= 2"));
        }
        if !(self.min_prebin_size > 0.0 && self.min_prebin_size <= 0.5) {
            return Err(invalid(
                "min_prebin_size",
                self.min_prebin_size,
                "a share in (0, 0.5]",
            ));
        }
        if !(self.min_bin_size > 0.0 && self.min_bin_size <= 0.5) {
            return Err(invalid(
                "min_bin_size",
                self.min_bin_size,
                "a share in (0, 0.5]",
            ));
        }
        if self.max_bins < 1 {
            return Err(invalid("max_bins", self.max_bins, "an integer >= 1"));
        }
        if !(self.auto_turn_gain >= 0.0) {
            return Err(invalid(
                "auto_turn_gain",
                self.auto_turn_gain,
                "a number >= 0",
            ));
        }
        if !(0.0..0.5).contains(&self.cat_min_share) {
            return Err(invalid(
                "cat_min_share",
                self.cat_min_share,
                "a share in [0, 0.5)",
            ));
        }
        Ok(())
    }
}

/// What a column holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FeatureKind {
    Numeric,
    /// Values are codes into `levels` (NaN = missing; a code outside `levels` is an unseen
    /// category).
    Categorical {
        levels: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BinRule {
    /// `lo < x <= hi` (infinite ends allowed; JSON has no infinity, so they are written as
    /// `null` and read back as -inf for `lo`, +inf for `hi`).
    Range {
        #[serde(deserialize_with = "neg_inf_if_null")]
        lo: f64,
        #[serde(deserialize_with = "inf_if_null")]
        hi: f64,
    },
    /// Category codes and their names; with `other`, also the categories rarer than
    /// `cat_min_share` and those never seen in training (pooled, then merged by event rate).
    Categories {
        codes: Vec<u32>,
        names: Vec<String>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        other: bool,
    },
    /// Unseen categories when no rare categories were pooled (an empty bin: WoE 0).
    Other,
    Missing,
    Special {
        value: f64,
    },
}

fn neg_inf_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NEG_INFINITY))
}

/// `null` (how serde_json writes NaN) read back as NaN.
pub(crate) fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

pub(crate) fn inf_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::INFINITY))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bin {
    pub label: String,
    pub rule: BinRule,
    pub count: u64,
    pub events: u64,
    pub event_rate: f64,
    pub woe: f64,
    pub iv: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureBinning {
    pub name: String,
    pub column: usize,
    pub kind: FeatureKind,
    /// The trend the value bins follow: ascending, descending or none.
    pub trend: String,
    pub bins: Vec<Bin>,
    pub iv: f64,
}

impl FeatureBinning {
    /// Index of the bin a value falls in.
    pub fn bin_of(&self, x: f64) -> usize {
        for (k, b) in self.bins.iter().enumerate() {
            match &b.rule {
                BinRule::Missing if x.is_nan() => return k,
                BinRule::Special { value } if *value == x => return k,
                _ => {}
            }
        }
        let mut other = None;
        for (k, b) in self.bins.iter().enumerate() {
            match &b.rule {
                BinRule::Range { lo, hi } if !x.is_nan() && x > *lo && x <= *hi => return k,
                BinRule::Categories { codes, .. } if !x.is_nan() && codes.contains(&(x as u32)) => {
                    return k
                }
                BinRule::Categories { other: true, .. } | BinRule::Other => other = Some(k),
                _ => {}
            }
        }
        // Unseen category, or a missing value when training had none: the "other" bin, else
        // the most populous bin.
        other.unwrap_or_else(|| {
            self.bins
                .iter()
                .enumerate()
                .max_by_key(|(_, b)| b.count)
                .map_or(0, |(k, _)| k)
        })
    }

    pub fn woe_of(&self, x: f64) -> f64 {
        self.bins[self.bin_of(x)].woe
    }
}

#[derive(Clone, Copy, Default, Debug)]
struct Counts {
    n: f64,
    e: f64,
}

fn woe_iv(c: Counts, tot: Counts) -> (f64, f64) {
    if c.n == 0.0 {
        return (0.0, 0.0);
    }
    let (te, tg) = (tot.e.max(1.0), (tot.n - tot.e).max(1.0));
    let de = (c.e + 0.5) / te;
    let dg = (c.n - c.e + 0.5) / tg;
    let woe = (dg / de).ln();
    (woe, (dg - de) * woe)
}

/// Bins every listed column (in parallel); `names` and `kinds` are per column of `x`.
pub fn bin_all(
    x: &Matrix,
    y: &[f64],
    names: &[String],
    kinds: &[FeatureKind],
    params: &BinningParams,
) -> ModelResult<Vec<FeatureBinning>> {
    params.validate()?;
    super::check_xy(x, y, None)?;
    super::check_binary(y)?;
    let cols = x.columns();
    cols.par_iter()
        .enumerate()
        .map(|(j, c)| bin_feature(c, y, &names[j], j, &kinds[j], params))
        .collect()
}

/// Bins one column.
pub fn bin_feature(
    x: &[f64],
    y: &[f64],
    name: &str,
    column: usize,
    kind: &FeatureKind,
    params: &BinningParams,
) -> ModelResult<FeatureBinning> {
    let tot = Counts {
        n: y.len() as f64,
        e: y.iter().sum(),
    };
    if tot.e == 0.0 || tot.e == tot.n {
        return Err(ModelError::Data(
            "binning needs both classes in the target".into(),
        ));
    }
    let mut missing = Counts::default();
    let mut specials: Vec<(f64, Counts)> = Vec::new();
    let mut vals: Vec<(f64, f64)> = Vec::with_capacity(x.len());
    let is_num = matches!(kind, FeatureKind::Numeric);
    for (&v, &t) in x.iter().zip(y) {
        if v.is_nan() {
            missing.n += 1.0;
            missing.e += t;
        } else if is_num && params.special_values.contains(&v) {
            match specials.iter_mut().find(|(s, _)| *s == v) {
                Some((_, c)) => {
                    c.n += 1.0;
                    c.e += t
                }
                None => specials.push((v, Counts { n: 1.0, e: t })),
            }
        } else {
            vals.push((v, t));
        }
    }
    let (mut bins, trend) = match kind {
        FeatureKind::Numeric => numeric_bins(&mut vals, tot, params),
        FeatureKind::Categorical { levels } => categorical_bins(&vals, levels, tot, params),
    };
    specials.sort_by(|a, b| a.0.total_cmp(&b.0));
    for (v, c) in specials {
        bins.push(make_bin(
            format!("special {v}"),
            BinRule::Special { value: v },
            c,
            tot,
        ));
    }
    bins.push(make_bin("missing".into(), BinRule::Missing, missing, tot));
    let iv = bins.iter().map(|b| b.iv).sum();
    Ok(FeatureBinning {
        name: name.to_string(),
        column,
        kind: kind.clone(),
        trend,
        bins,
        iv,
    })
}

fn make_bin(label: String, rule: BinRule, c: Counts, tot: Counts) -> Bin {
    let (woe, iv) = woe_iv(c, tot);
    Bin {
        label,
        rule,
        count: c.n as u64,
        events: c.e as u64,
        event_rate: if c.n > 0.0 { c.e / c.n } else { 0.0 },
        woe,
        iv,
    }
}

fn fmt_num(v: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

/// Rows beyond which the atoms of a numeric feature are quantile groups of a strided sample
/// rather than its exact distinct values.
const EXACT_ROWS: usize = 200_000;
/// At most this many atoms (candidate cut positions) per feature.
const MAX_ATOMS: usize = 4096;

/// The smallest units the pre-binning cuts between: runs of equal values (exact for up to
/// `EXACT_ROWS` values), or quantile groups from a sample beyond. Returns the cut that separates
/// atom `k` from atom `k + 1` (`x <= cut` falls left; midpoints of distinct values where exact)
/// and the counts of each atom.
fn numeric_atoms(vals: &mut [(f64, f64)]) -> (Vec<f64>, Vec<Counts>) {
    let n = vals.len();
    if n == 0 {
        return (Vec::new(), Vec::new());
    }
    if n <= EXACT_ROWS {
        vals.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        // Distinct values, grouped further to at most about MAX_ATOMS atoms.
        let per = n.div_ceil(MAX_ATOMS);
        let mut cuts = Vec::new();
        let mut atoms = Vec::new();
        let mut cur = Counts::default();
        for i in 0..n {
            cur.n += 1.0;
            cur.e += vals[i].1;
            let boundary = i + 1 == n || vals[i + 1].0 > vals[i].0;
            if boundary && (cur.n as usize >= per || i + 1 == n) {
                atoms.push(cur);
                cur = Counts::default();
                if i + 1 < n {
                    let (a, b) = (vals[i].0, vals[i + 1].0);
                    let mid = a + (b - a) / 2.0;
                    cuts.push(if mid < b { mid } else { a });
                }
            }
        }
        return (cuts, atoms);
    }
    let stride = n / EXACT_ROWS + 1;
    let mut sample: Vec<f64> = vals.iter().step_by(stride).map(|v| v.0).collect();
    sample.sort_unstable_by(|a, b| a.total_cmp(b));
    let m = sample.len();
    let mut edges: Vec<f64> = (1..MAX_ATOMS)
        .map(|k| sample[(k * m / MAX_ATOMS).min(m - 1)])
        .collect();
    edges.dedup();
    // The largest sample value closes the last atom: drop it as a cut.
    if edges.last() == sample.last() {
        edges.pop();
    }
    let mut atoms = vec![Counts::default(); edges.len() + 1];
    for &(v, t) in vals.iter() {
        let k = edges.partition_point(|&c| c < v);
        atoms[k].n += 1.0;
        atoms[k].e += t;
    }
    // Empty atoms (values the sample saw but the data between edges did not) are joined to
    // their left neighbour.
    let mut cuts = Vec::with_capacity(edges.len());
    let mut out = Vec::with_capacity(atoms.len());
    for (k, a) in atoms.iter().enumerate() {
        if a.n == 0.0 && k > 0 {
            continue;
        }
        if k > 0 {
            cuts.push(edges[k - 1]);
        }
        out.push(*a);
    }
    // A leading empty atom: drop it and its cut.
    if out.len() > 1 && out[0].n == 0.0 {
        out.remove(0);
        cuts.remove(0);
    }
    (cuts, out)
}

/// Fine classing: best-first CART on the target (Gini, which for a 0/1 target is squared error)
/// over contiguous atoms, every leaf at least `min_prebin_size` of the rows, at most
/// `max_prebins` leaves. Returns the indices `k` of the atoms after which a cut falls.
fn cart_prebins(atoms: &[Counts], params: &BinningParams) -> Vec<usize> {
    let m = atoms.len();
    if m < 2 {
        return Vec::new();
    }
    let mut prefix = vec![Counts::default(); m + 1];
    for i in 0..m {
        prefix[i + 1] = Counts {
            n: prefix[i].n + atoms[i].n,
            e: prefix[i].e + atoms[i].e,
        };
    }
    let total = prefix[m].n;
    let min_leaf = (params.min_prebin_size * total).ceil().max(1.0);
    let grp = |a: usize, b: usize| Counts {
        n: prefix[b + 1].n - prefix[a].n,
        e: prefix[b + 1].e - prefix[a].e,
    };
    // Best split of atoms a..=b: (gain, last atom of the left side).
    let best = |a: usize, b: usize| -> Option<(f64, usize)> {
        let all = grp(a, b);
        let mut top: Option<(f64, usize)> = None;
        for s in a..b {
            let l = grp(a, s);
            let r = Counts {
                n: all.n - l.n,
                e: all.e - l.e,
            };
            if l.n < min_leaf || r.n < min_leaf {
                continue;
            }
            let d = l.e / l.n - r.e / r.n;
            let gain = l.n * r.n / all.n * d * d;
            if gain > 1e-12 && top.is_none_or(|t| gain > t.0) {
                top = Some((gain, s));
            }
        }
        top
    };
    // (first atom, last atom, best split)
    type Leaf = (usize, usize, Option<(f64, usize)>);
    let mut leaves: Vec<Leaf> = vec![(0, m - 1, best(0, m - 1))];
    while leaves.len() < params.max_prebins {
        let Some((i, _)) = leaves
            .iter()
            .enumerate()
            .filter_map(|(i, l)| l.2.map(|g| (i, g.0)))
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
        else {
            break;
        };
        let (a, b, Some((_, s))) = leaves[i] else {
            unreachable!()
        };
        leaves[i] = (a, s, best(a, s));
        leaves.push((s + 1, b, best(s + 1, b)));
    }
    let mut cuts: Vec<usize> = leaves.iter().filter(|l| l.1 + 1 < m).map(|l| l.1).collect();
    cuts.sort_unstable();
    cuts
}

/// Pre-bins from atoms: the counts of each pre-bin and, for each pre-bin, its last atom.
fn prebins(atoms: &[Counts], params: &BinningParams) -> (Vec<Counts>, Vec<usize>) {
    let mut ends = cart_prebins(atoms, params);
    ends.push(atoms.len().saturating_sub(1));
    let mut pre = Vec::with_capacity(ends.len());
    let mut a = 0;
    for &b in &ends {
        pre.push(sum(&atoms[a..=b]));
        a = b + 1;
    }
    (pre, ends)
}

fn numeric_bins(
    vals: &mut [(f64, f64)],
    tot: Counts,
    params: &BinningParams,
) -> (Vec<Bin>, String) {
    let (atom_cuts, atoms) = numeric_atoms(vals);
    if atoms.is_empty() {
        let (lo, hi) = (f64::NEG_INFINITY, f64::INFINITY);
        let bin = make_bin(
            "(-inf, inf]".into(),
            BinRule::Range { lo, hi },
            Counts::default(),
            tot,
        );
        return (vec![bin], params_trend_name(params.monotonic));
    }
    let (pre, ends) = prebins(&atoms, params);
    // Cut after pre-bin k (all but the last).
    let cuts: Vec<f64> = ends[..ends.len() - 1]
        .iter()
        .map(|&k| atom_cuts[k])
        .collect();
    let n_vals = vals.len() as f64;
    let (groups, trend) = merge(&pre, tot, n_vals, params, params.monotonic);
    let bins = groups
        .iter()
        .map(|&(a, b)| {
            let lo = if a == 0 {
                f64::NEG_INFINITY
            } else {
                cuts[a - 1]
            };
            let hi = if b == cuts.len() {
                f64::INFINITY
            } else {
                cuts[b]
            };
            let c = sum(&pre[a..=b]);
            let label = format!("({}, {}]", fmt_num(lo), fmt_num(hi));
            make_bin(label, BinRule::Range { lo, hi }, c, tot)
        })
        .collect();
    (bins, trend)
}

fn params_trend_name(m: Monotonic) -> String {
    match m {
        Monotonic::Auto | Monotonic::Ascending => "ascending",
        Monotonic::Descending => "descending",
        Monotonic::Peak => "peak",
        Monotonic::Valley => "valley",
        Monotonic::None => "none",
    }
    .into()
}

/// Categorical: categories rarer than `cat_min_share` (and codes past the known levels) are
/// pooled into one "other" group; the categories and that group are ordered by event rate
/// (shrunk towards the overall rate, so that small groups do not land at the extremes on a
/// handful of rows), pre-binned by the same CART over that order (small categories join
/// neighbours of similar risk), then merged under an ascending event rate.
fn categorical_bins(
    vals: &[(f64, f64)],
    levels: &[String],
    tot: Counts,
    params: &BinningParams,
) -> (Vec<Bin>, String) {
    let mut by_code: std::collections::BTreeMap<u32, Counts> = Default::default();
    for &(v, t) in vals {
        let c = by_code.entry(v as u32).or_default();
        c.n += 1.0;
        c.e += t;
    }
    let n_vals = vals.len() as f64;
    let min_n = (params.cat_min_share * n_vals).max(1.0);
    let mut other = Counts::default();
    let mut other_codes = Vec::new();
    // (codes, counts, is the pooled group)
    let mut cats: Vec<(Vec<u32>, Counts, bool)> = Vec::new();
    for (code, c) in by_code {
        if c.n < min_n || (code as usize) >= levels.len() {
            other.n += c.n;
            other.e += c.e;
            if (code as usize) < levels.len() {
                other_codes.push(code);
            }
        } else {
            cats.push((vec![code], c, false));
        }
    }
    let pooled = other.n > 0.0;
    if pooled {
        cats.push((other_codes, other, true));
    }
    // Order by event rate shrunk towards the overall rate (m-estimate, m = 10), then by first
    // code for determinism (the pooled group last among equals).
    const M: f64 = 10.0;
    let p0 = tot.e / tot.n;
    let rate = |c: &Counts| (c.e + M * p0) / (c.n + M);
    cats.sort_by(|a, b| {
        rate(&a.1)
            .total_cmp(&rate(&b.1))
            .then(a.2.cmp(&b.2))
            .then(a.0.first().cmp(&b.0.first()))
    });
    let atoms: Vec<Counts> = cats.iter().map(|c| c.1).collect();
    let mut bins = Vec::new();
    if !atoms.is_empty() {
        let (pre, ends) = prebins(&atoms, params);
        let (groups, _) = merge(&pre, tot, n_vals, params, Monotonic::Ascending);
        let first_atom = |k: usize| if k == 0 { 0 } else { ends[k - 1] + 1 };
        for (a, b) in groups {
            let members = &cats[first_atom(a)..=ends[b]];
            let has_other = members.iter().any(|c| c.2);
            let codes: Vec<u32> = members.iter().flat_map(|c| c.0.iter().copied()).collect();
            let names: Vec<String> = codes.iter().map(|&c| levels[c as usize].clone()).collect();
            let shown: Vec<String> = members
                .iter()
                .filter(|c| !c.2)
                .map(|c| levels[c.0[0] as usize].clone())
                .collect();
            let mut label = if shown.len() > 4 {
                format!(
                    "{}, ... ({} categories)",
                    shown[..3].join(", "),
                    shown.len()
                )
            } else {
                shown.join(", ")
            };
            if has_other {
                label = if label.is_empty() {
                    "other".to_string()
                } else {
                    format!("{label}, other")
                };
            }
            bins.push(make_bin(
                label,
                BinRule::Categories {
                    codes,
                    names,
                    other: has_other,
                },
                sum(&pre[a..=b]),
                tot,
            ));
        }
    }
    if !pooled {
        bins.push(make_bin("other".into(), BinRule::Other, other, tot));
    }
    (bins, "by category".into())
}

fn sum(c: &[Counts]) -> Counts {
    c.iter().fold(Counts::default(), |a, b| Counts {
        n: a.n + b.n,
        e: a.e + b.e,
    })
}

/// Groups of contiguous pre-bins `[a, b]` maximising IV under the constraints.
fn merge(
    pre: &[Counts],
    tot: Counts,
    n_vals: f64,
    params: &BinningParams,
    mono: Monotonic,
) -> (Vec<(usize, usize)>, String) {
    let run = |shape: i32| merge_dp(pre, tot, n_vals, params, shape);
    match mono {
        Monotonic::Auto => {
            let (a, iva) = run(1);
            let (d, ivd) = run(-1);
            let (mono, ivm, name) = if ivd > iva {
                (d, ivd, "descending")
            } else {
                (a, iva, "ascending")
            };
            // A peak or a valley only when it adds a clear share of IV to the best monotonic
            // binning (it always adds some: it is the more flexible shape).
            let (p, ivp) = run(2);
            let (v, ivv) = run(-2);
            let (turn, ivt, tname) = if ivv > ivp {
                (v, ivv, "valley")
            } else {
                (p, ivp, "peak")
            };
            if ivt > ivm * (1.0 + params.auto_turn_gain) && ivt - ivm > 0.005 {
                (turn, tname.into())
            } else {
                (mono, name.into())
            }
        }
        Monotonic::Ascending => (run(1).0, "ascending".into()),
        Monotonic::Descending => (run(-1).0, "descending".into()),
        Monotonic::Peak => (run(2).0, "peak".into()),
        Monotonic::Valley => (run(-2).0, "valley".into()),
        Monotonic::None => (run(0).0, "none".into()),
    }
}

/// Dynamic programme over (last group [a, b], number of groups k, phase). `shape`: 1 ascending
/// event rate, -1 descending, 2 peak (ascending then descending), -2 valley, 0 free. The phase
/// (0 before the turn, 1 after) matters for peaks and valleys only. Always returns at least
/// one group covering everything.
fn merge_dp(
    pre: &[Counts],
    tot: Counts,
    n_vals: f64,
    params: &BinningParams,
    shape: i32,
) -> (Vec<(usize, usize)>, f64) {
    let m = pre.len();
    if m == 0 {
        return (Vec::new(), 0.0);
    }
    let mut prefix = vec![Counts::default(); m + 1];
    for i in 0..m {
        prefix[i + 1] = Counts {
            n: prefix[i].n + pre[i].n,
            e: prefix[i].e + pre[i].e,
        };
    }
    let grp = |a: usize, b: usize| Counts {
        n: prefix[b + 1].n - prefix[a].n,
        e: prefix[b + 1].e - prefix[a].e,
    };
    let rate = |c: Counts| if c.n > 0.0 { c.e / c.n } else { 0.0 };
    let min_n = (params.min_bin_size * n_vals).ceil();
    let kmax = params.max_bins.min(m);
    const NEG: f64 = f64::NEG_INFINITY;
    // state (a, b, k, phase) -> best IV of prebins 0..=b whose last group is [a, b]
    let idx = |a: usize, b: usize, k: usize, ph: usize| ((b * m + a) * (kmax + 1) + k) * 2 + ph;
    let size = m * m * (kmax + 1) * 2;
    let mut best = vec![NEG; size];
    let mut back = vec![(usize::MAX, 0usize); size];
    // Allowed phase after a step from rate `r0` to `r1` in phase `ph`, if any.
    let step = |ph: usize, r0: f64, r1: f64| -> Option<usize> {
        match shape {
            1 => (r0 < r1).then_some(0),
            -1 => (r0 > r1).then_some(0),
            0 => Some(0),
            2 => match ph {
                0 if r0 < r1 => Some(0),
                _ if r0 > r1 => Some(1),
                _ => None,
            },
            _ => match ph {
                0 if r0 > r1 => Some(0),
                _ if r0 < r1 => Some(1),
                _ => None,
            },
        }
    };
    for b in 0..m {
        for a in 0..=b {
            let g = grp(a, b);
            if g.n < min_n {
                continue;
            }
            let iv = woe_iv(g, tot).1;
            if a == 0 {
                best[idx(0, b, 1, 0)] = iv;
                continue;
            }
            let r = rate(g);
            for a2 in 0..a {
                let r0 = rate(grp(a2, a - 1));
                for ph in 0..2 {
                    let Some(ph2) = step(ph, r0, r) else {
                        continue;
                    };
                    for k in 2..=kmax {
                        let v = best[idx(a2, a - 1, k - 1, ph)];
                        if v > NEG && v + iv > best[idx(a, b, k, ph2)] {
                            best[idx(a, b, k, ph2)] = v + iv;
                            back[idx(a, b, k, ph2)] = (a2, ph);
                        }
                    }
                }
            }
        }
    }
    let mut top: Option<(f64, usize, usize, usize)> = None;
    for k in 1..=kmax {
        for a in 0..m {
            for ph in 0..2 {
                let v = best[idx(a, m - 1, k, ph)];
                // Prefer fewer bins on (near) ties.
                if v > NEG && top.is_none_or(|t| v > t.0 + 1e-12) {
                    top = Some((v, a, k, ph));
                }
            }
        }
    }
    let Some((iv, mut a, mut k, mut ph)) = top else {
        return (vec![(0, m - 1)], woe_iv(grp(0, m - 1), tot).1);
    };
    let mut groups = Vec::new();
    let mut b = m - 1;
    loop {
        groups.push((a, b));
        if a == 0 {
            break;
        }
        let (a2, ph2) = back[idx(a, b, k, ph)];
        b = a - 1;
        a = a2;
        ph = ph2;
        k -= 1;
    }
    groups.reverse();
    (groups, iv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::rng::Rng;

    #[test]
    fn woe_and_iv_by_hand() {
        // Two bins: A has 40 goods 10 bads, B has 10 goods 40 bads (of 50 goods, 50 bads).
        let tot = Counts { n: 100.0, e: 50.0 };
        let (wa, iva) = woe_iv(Counts { n: 50.0, e: 10.0 }, tot);
        let (dg, de): (f64, f64) = (40.5 / 50.0, 10.5 / 50.0);
        assert!((wa - (dg / de).ln()).abs() < 1e-12);
        assert!((iva - (dg - de) * (dg / de).ln()).abs() < 1e-12);
        let (wb, ivb) = woe_iv(Counts { n: 50.0, e: 40.0 }, tot);
        assert!((wb + wa).abs() < 1e-12 && (ivb - iva).abs() < 1e-12);
    }

    fn data(n: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
        let mut rng = Rng::new(seed);
        let mut x = Vec::new();
        let mut y = Vec::new();
        for _ in 0..n {
            let v = rng.uniform() * 100.0;
            // Mostly rising risk with a wiggle in the middle, plus missing and special values.
            let p = 0.05 + 0.004 * v + if (40.0..50.0).contains(&v) { -0.1 } else { 0.0 };
            let r = rng.uniform();
            x.push(if r < 0.05 {
                f64::NAN
            } else if r < 0.08 {
                -999.0
            } else {
                v
            });
            y.push(if rng.uniform() < p.max(0.01) {
                1.0
            } else {
                0.0
            });
        }
        (x, y)
    }

    #[test]
    fn monotonic_binning_is_monotonic_with_missing_and_special_apart() {
        let (x, y) = data(20_000, 1);
        let params = BinningParams {
            special_values: vec![-999.0],
            ..Default::default()
        };
        for mono in [Monotonic::Auto, Monotonic::Ascending, Monotonic::Descending] {
            let fb = bin_feature(
                &x,
                &y,
                "x",
                0,
                &FeatureKind::Numeric,
                &BinningParams {
                    monotonic: mono,
                    ..params.clone()
                },
            )
            .unwrap();
            let rates: Vec<f64> = fb
                .bins
                .iter()
                .filter(|b| matches!(b.rule, BinRule::Range { .. }))
                .map(|b| b.event_rate)
                .collect();
            let want_up = !matches!(mono, Monotonic::Descending);
            for w in rates.windows(2) {
                assert!(
                    if want_up { w[0] < w[1] } else { w[0] > w[1] },
                    "{mono:?} {rates:?}"
                );
            }
            let n_vals = fb
                .bins
                .iter()
                .filter(|b| matches!(b.rule, BinRule::Range { .. }))
                .map(|b| b.count)
                .sum::<u64>();
            for b in fb
                .bins
                .iter()
                .filter(|b| matches!(b.rule, BinRule::Range { .. }))
            {
                assert!(b.count as f64 >= 0.05 * n_vals as f64);
            }
            assert!(fb
                .bins
                .iter()
                .any(|b| matches!(b.rule, BinRule::Missing) && b.count > 0));
            assert!(fb
                .bins
                .iter()
                .any(|b| matches!(b.rule, BinRule::Special { value } if value == -999.0)));
            assert_eq!(fb.bins.iter().map(|b| b.count).sum::<u64>(), 20_000);
            if mono == Monotonic::Auto {
                assert_eq!(fb.trend, "ascending");
                assert!(rates.len() >= 3, "{rates:?}");
            }
        }
        let fb = bin_feature(&x, &y, "x", 0, &FeatureKind::Numeric, &params).unwrap();
        // Infinite ends are written as null and read back (a registered scorecard reloads).
        let json = serde_json::to_string(&fb).unwrap();
        let back: FeatureBinning = serde_json::from_str(&json).unwrap();
        assert_eq!(back, fb);
        assert_eq!(fb.bin_of(f64::NAN), fb.bins.len() - 1);
        assert!(matches!(
            fb.bins[fb.bin_of(-999.0)].rule,
            BinRule::Special { .. }
        ));
        assert!(
            matches!(fb.bins[fb.bin_of(1e9)].rule, BinRule::Range { hi, .. } if hi.is_infinite())
        );
    }

    #[test]
    fn auto_finds_a_valley_and_keeps_it_one_turn() {
        let mut rng = Rng::new(4);
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for _ in 0..20_000 {
            let age = 18.0 + rng.uniform() * 60.0;
            // Risk falls until 45, then rises: a valley.
            let p = 0.05 + 0.004 * (age - 45.0).abs();
            x.push(age);
            y.push(if rng.uniform() < p { 1.0 } else { 0.0 });
        }
        let fb = bin_feature(
            &x,
            &y,
            "age",
            0,
            &FeatureKind::Numeric,
            &BinningParams::default(),
        )
        .unwrap();
        assert_eq!(fb.trend, "valley");
        let rates: Vec<f64> = fb
            .bins
            .iter()
            .filter(|b| matches!(b.rule, BinRule::Range { .. }))
            .map(|b| b.event_rate)
            .collect();
        let turns = rates
            .windows(3)
            .filter(|w| (w[1] - w[0]).signum() != (w[2] - w[1]).signum())
            .count();
        assert_eq!(turns, 1, "{rates:?}");
        assert!(rates.windows(2).all(|w| w[0] != w[1]));
    }

    #[test]
    fn prebins_cut_between_exact_values_and_respect_the_minimum_size() {
        // Risk jumps between 30 and 31 on integer values: the cut falls at 30.5 exactly.
        let mut rng = Rng::new(9);
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for _ in 0..5000 {
            let v = (rng.uniform() * 60.0).floor();
            let p = if v <= 30.0 { 0.1 } else { 0.4 };
            x.push(v);
            y.push(if rng.uniform() < p { 1.0 } else { 0.0 });
        }
        let fb = bin_feature(
            &x,
            &y,
            "v",
            0,
            &FeatureKind::Numeric,
            &BinningParams::default(),
        )
        .unwrap();
        assert!(
            fb.bins
                .iter()
                .any(|b| matches!(b.rule, BinRule::Range { hi, .. } if hi == 30.5)),
            "{:?}",
            fb.bins
        );
        let mut vals: Vec<(f64, f64)> = x.iter().copied().zip(y.iter().copied()).collect();
        let (_, atoms) = numeric_atoms(&mut vals);
        assert_eq!(atoms.len(), 60);
        let (pre, _) = prebins(&atoms, &BinningParams::default());
        assert!(
            pre.len() <= 20 && pre.iter().all(|c| c.n >= 250.0),
            "{pre:?}"
        );
        // Beyond EXACT_ROWS, quantile groups of a sample: every row still counted once.
        let mut big: Vec<(f64, f64)> = (0..EXACT_ROWS + 1000)
            .map(|i| ((i % 977) as f64 * 0.37, (i % 3 == 0) as u8 as f64))
            .collect();
        let (cuts, atoms) = numeric_atoms(&mut big);
        assert_eq!(cuts.len() + 1, atoms.len());
        assert!(cuts.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(
            atoms.iter().map(|a| a.n).sum::<f64>(),
            (EXACT_ROWS + 1000) as f64
        );
        assert!(atoms.iter().all(|a| a.n > 0.0));
    }

    #[test]
    fn categorical_bins_pool_rare_and_unseen() {
        let levels: Vec<String> = ["a", "b", "c", "rare"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..3000 {
            let code = (i % 3) as f64;
            x.push(code);
            y.push(if (i % 10) < (code as usize + 1) * 2 {
                1.0
            } else {
                0.0
            });
        }
        x.push(3.0);
        y.push(1.0);
        let fb = bin_feature(
            &x,
            &y,
            "c",
            0,
            &FeatureKind::Categorical { levels },
            &BinningParams::default(),
        )
        .unwrap();
        // The rare category is pooled into "other", which joins the bin of similar risk
        // (rather than a bin of one row) and takes unseen categories too.
        assert!(!fb.bins.iter().any(|b| matches!(b.rule, BinRule::Other)));
        let other = fb
            .bins
            .iter()
            .position(|b| matches!(b.rule, BinRule::Categories { other: true, .. }))
            .unwrap();
        assert!(fb.bins[other].count > 1, "{:?}", fb.bins);
        assert!(
            matches!(&fb.bins[other].rule, BinRule::Categories { codes, .. } if codes.contains(&3))
        );
        assert!(fb.bins[other].label.ends_with("other"));
        assert_eq!(fb.bin_of(3.0), other);
        assert_eq!(fb.bin_of(17.0), other);
        assert_ne!(fb.bin_of(0.0), fb.bin_of(2.0));
    }
}
