//! Champion/challenger: which model of a family is in production, how tonight's challengers
//! compare with it on the same hold-out and out-of-time rows, the promotion policy, and the
//! history of champions and decisions.
//!
//! The state of a family lives in `warehouse/models/_champions/<family>.json`, written to a
//! temporary sibling and renamed, so a reader sees the old state or the new one. The decision
//! logic ([`decide`], [`promote`], [`rollback`]) is pure: it takes a state and evidence and
//! returns the next state, which is what the tests exercise.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::metrics;
use crate::error::{Context, Error, Result};

/// When a challenger replaces the champion. Every rule must hold on `nights` consecutive
/// decisions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Hold-out AUC of the challenger minus the champion's, at least.
    pub min_auc_gain: f64,
    /// The challenger's hold-out KS may be lower than the champion's by at most this.
    pub max_ks_drop: f64,
    /// The challenger's out-of-time AUC may be lower than the champion's by at most this.
    pub max_oot_auc_drop: f64,
    /// PSI of the challenger's predictions, out-of-time against hold-out, at most.
    pub max_score_psi: f64,
    /// Consecutive nights the rules must hold before a promotion.
    pub nights: u32,
    /// Fewer events than this in the hold-out is not evidence: nobody is promoted.
    pub min_events: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            min_auc_gain: 0.005,
            max_ks_drop: 0.0,
            max_oot_auc_drop: 0.0,
            max_score_psi: 0.25,
            nights: 2,
            min_events: 20,
        }
    }
}

impl Policy {
    pub fn validate(&self) -> std::result::Result<(), String> {
        let mut p = Vec::new();
        for (k, v) in [
            ("max_ks_drop", self.max_ks_drop),
            ("max_oot_auc_drop", self.max_oot_auc_drop),
            ("max_score_psi", self.max_score_psi),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                p.push(format!("`policy.{k}` = {v}: must be a number >= 0"));
            }
        }
        if !self.min_auc_gain.is_finite() || self.min_auc_gain.abs() > 1.0 {
            p.push(format!(
                "`policy.min_auc_gain` = {}: must be in [-1, 1]",
                self.min_auc_gain
            ));
        }
        if self.nights == 0 {
            p.push("`policy.nights`: at least 1".into());
        }
        if p.is_empty() {
            Ok(())
        } else {
            Err(p.join("; "))
        }
    }
}

/// A model version in the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelRef {
    pub model: String,
    pub version: String,
}

impl std::fmt::Display for ModelRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.model, self.version)
    }
}

/// Rank metrics of one model on one sample. `None` where a class is absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SampleMetrics {
    pub rows: u64,
    pub events: u64,
    pub auc: Option<f64>,
    pub ks: Option<f64>,
    pub gini: Option<f64>,
}

impl SampleMetrics {
    pub fn compute(y: &[f64], p: &[f64]) -> SampleMetrics {
        let events = y.iter().filter(|&&v| v == 1.0).count() as u64;
        let both = events > 0 && (events as usize) < y.len();
        SampleMetrics {
            rows: y.len() as u64,
            events,
            auc: both.then(|| metrics::auc(y, p)),
            ks: both.then(|| metrics::ks(y, p)),
            gini: both.then(|| metrics::gini(y, p)),
        }
    }
}

/// One policy rule applied to a challenger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleCheck {
    pub rule: String,
    /// The observed value (gain, drop, PSI, events); None when it could not be computed.
    pub value: Option<f64>,
    pub bound: f64,
    pub pass: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Champion,
    Challenger,
}

/// What one model showed tonight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub model: ModelRef,
    pub role: Role,
    pub holdout: SampleMetrics,
    pub oot: Option<SampleMetrics>,
    /// PSI of the model's predictions, out-of-time rows against hold-out rows.
    pub score_psi: Option<f64>,
    /// The policy rules (challengers only).
    #[serde(default)]
    pub checks: Vec<RuleCheck>,
    #[serde(default)]
    pub passes: bool,
    /// Consecutive nights this challenger (by model name) has passed, tonight included.
    #[serde(default)]
    pub streak: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The first night of a family: its first model becomes champion.
    Initial,
    Keep,
    Promote,
    ManualPromote,
    Rollback,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Initial => "initial",
            Action::Keep => "keep",
            Action::Promote => "promote",
            Action::ManualPromote => "manual_promote",
            Action::Rollback => "rollback",
        }
    }
}

/// A recorded decision with its evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub dt: String,
    pub run_id: String,
    pub at: String,
    /// `policy` for the nightly, `user:<name>` for a human.
    pub by: String,
    pub action: Action,
    pub champion_before: Option<ModelRef>,
    pub champion_after: ModelRef,
    /// The challenger routed to the B arm after this decision.
    pub challenger: Option<ModelRef>,
    pub reason: String,
    #[serde(default)]
    pub evidence: Vec<Evidence>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reign {
    pub model: ModelRef,
    /// The night it became champion.
    pub since: String,
}

/// Everything recorded about a family.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FamilyState {
    pub family: String,
    pub champion: Option<Reign>,
    pub challenger: Option<ModelRef>,
    /// Earlier champions, the most recent last: what `rollback` returns to.
    #[serde(default)]
    pub previous: Vec<Reign>,
    #[serde(default)]
    pub decisions: Vec<Decision>,
}

impl FamilyState {
    pub fn new(family: &str) -> FamilyState {
        FamilyState {
            family: family.to_string(),
            champion: None,
            challenger: None,
            previous: Vec::new(),
            decisions: Vec::new(),
        }
    }

    /// Undoes the policy decision already recorded for `dt`, so that re-running a night
    /// decides again from the same starting point instead of counting the night twice.
    fn undo_policy_decision_of(&mut self, dt: &str) {
        let Some(last) = self.decisions.last() else {
            return;
        };
        if last.dt != dt || last.by != "policy" {
            return;
        }
        let last = self.decisions.pop().expect("checked");
        match last.action {
            Action::Initial => self.champion = None,
            Action::Promote => self.champion = self.previous.pop(),
            _ => {}
        }
        self.challenger = self.decisions.last().and_then(|d| d.challenger.clone());
    }

    /// Consecutive nights before `dt`, in date order, on which `model` (a challenger) passed.
    /// A night recorded twice counts once (its latest record); a human decision ends the
    /// streak.
    fn streak_before(&self, model: &str, dt: &str) -> u32 {
        let since_human = self
            .decisions
            .iter()
            .rposition(|d| d.by != "policy")
            .map_or(0, |i| i + 1);
        let mut nights: BTreeMap<&str, &Decision> = BTreeMap::new();
        for d in &self.decisions[since_human..] {
            if d.dt.as_str() < dt {
                nights.insert(d.dt.as_str(), d);
            }
        }
        let mut n = 0;
        for d in nights.values().rev() {
            match d
                .evidence
                .iter()
                .find(|e| e.role == Role::Challenger && e.model.model == model)
            {
                Some(e) if e.passes => n += 1,
                _ => break,
            }
        }
        n
    }

    /// Whether a policy decision of a night after `dt` is recorded: deciding `dt` then
    /// rewrites history rather than moving the family forward.
    fn decided_after(&self, dt: &str) -> bool {
        self.decisions
            .iter()
            .any(|d| d.by == "policy" && d.dt.as_str() > dt)
    }

    /// The policy decision recorded for `dt`, if any.
    pub fn policy_decision_of(&self, dt: &str) -> Option<&Decision> {
        self.decisions
            .iter()
            .rev()
            .find(|d| d.dt == dt && d.by == "policy")
    }

    /// The champion the night `dt` is decided against: the one its recorded decision started
    /// from, else (an earlier night not decided yet) the one the nights before it left (or the
    /// first recorded night started from), else the current champion.
    pub fn champion_for(&self, dt: &str) -> Option<ModelRef> {
        if let Some(d) = self.policy_decision_of(dt) {
            return d.champion_before.clone();
        }
        if self.decided_after(dt) {
            let before = self
                .decisions
                .iter()
                .filter(|d| d.dt.as_str() < dt)
                .max_by(|a, b| a.dt.cmp(&b.dt));
            return match before {
                Some(d) => Some(d.champion_after.clone()),
                // Before the first recorded night: what that night started from.
                None => self
                    .decisions
                    .iter()
                    .filter(|d| d.by == "policy")
                    .min_by(|a, b| a.dt.cmp(&b.dt))
                    .and_then(|d| d.champion_before.clone()),
            };
        }
        self.champion.as_ref().map(|c| c.model.clone())
    }
}

/// Applies the policy to tonight's evidence. `candidates` are the challengers' evidence (any
/// order); `champion` the evidence of the champion the night is decided against
/// ([`FamilyState::champion_for`]; None on the first night, when the first of `candidates`
/// becomes champion). Returns the decision, also recorded in `state`.
///
/// A night already decided is decided again in place of its record. When later nights are
/// recorded (a backfill, or a forced re-run of an old night), only the record is replaced:
/// the champion stays where the later nights left it, since they were decided against it.
pub fn decide(
    state: &mut FamilyState,
    policy: &Policy,
    champion: Option<Evidence>,
    candidates: Vec<Evidence>,
    dt: &str,
    run_id: &str,
) -> Decision {
    let recorded_not_last = state
        .decisions
        .iter()
        .rposition(|d| d.dt == dt && d.by == "policy")
        .is_some_and(|i| i + 1 != state.decisions.len());
    if !state.decided_after(dt) && !recorded_not_last {
        state.undo_policy_decision_of(dt);
        return decide_next(state, policy, champion, candidates, dt, run_id);
    }
    // Decide on a copy of the family as it stood before that night.
    let mut past = FamilyState {
        family: state.family.clone(),
        champion: champion.as_ref().map(|e| Reign {
            model: e.model.clone(),
            since: String::new(),
        }),
        challenger: None,
        previous: Vec::new(),
        decisions: state
            .decisions
            .iter()
            .filter(|d| d.dt.as_str() < dt)
            .cloned()
            .collect(),
    };
    let d = decide_next(&mut past, policy, champion, candidates, dt, run_id);
    // The new record takes the old one's place: at the end it would be taken for the latest
    // decision, and the next re-run would undo it over a promote or rollback made by hand
    // after it (the champion went back to the policy's).
    let old_at = state
        .decisions
        .iter()
        .position(|x| x.dt == dt && x.by == "policy");
    state
        .decisions
        .retain(|x| !(x.dt == dt && x.by == "policy"));
    let at = old_at.unwrap_or_else(|| {
        state
            .decisions
            .iter()
            .position(|x| x.by == "policy" && x.dt.as_str() > dt)
            .unwrap_or(state.decisions.len())
    });
    state.decisions.insert(at, d.clone());
    d
}

/// [`decide`] for a night after every recorded one: the decision is appended and moves the
/// family's champion and challenger.
fn decide_next(
    state: &mut FamilyState,
    policy: &Policy,
    champion: Option<Evidence>,
    mut candidates: Vec<Evidence>,
    dt: &str,
    run_id: &str,
) -> Decision {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let best_by_auc = |c: &[Evidence]| -> Option<ModelRef> {
        c.iter()
            .max_by(|a, b| {
                a.holdout
                    .auc
                    .unwrap_or(0.0)
                    .total_cmp(&b.holdout.auc.unwrap_or(0.0))
                    .then(b.model.model.cmp(&a.model.model))
            })
            .map(|e| e.model.clone())
    };
    let (champ_ev, current) = match (champion, &state.champion) {
        (Some(c), Some(reign)) => (c, reign.model.clone()),
        _ => {
            // First night: the first candidate is the champion, the best other the challenger.
            let first = candidates.remove(0);
            let mut first = first;
            first.role = Role::Champion;
            let challenger = best_by_auc(&candidates);
            let d = Decision {
                dt: dt.to_string(),
                run_id: run_id.to_string(),
                at: now,
                by: "policy".into(),
                action: Action::Initial,
                champion_before: None,
                champion_after: first.model.clone(),
                challenger: challenger.clone(),
                reason: format!(
                    "no champion yet: {} becomes champion (the family's first model)",
                    first.model
                ),
                evidence: std::iter::once(first.clone())
                    .chain(candidates.iter().cloned().map(|mut e| {
                        e.role = Role::Challenger;
                        e
                    }))
                    .collect(),
            };
            state.champion = Some(Reign {
                model: first.model,
                since: dt.to_string(),
            });
            state.challenger = challenger;
            state.decisions.push(d.clone());
            return d;
        }
    };
    for c in candidates.iter_mut() {
        c.role = Role::Challenger;
        c.checks = rules(policy, &champ_ev, c);
        c.passes = c.checks.iter().all(|r| r.pass);
        c.streak = if c.passes {
            state.streak_before(&c.model.model, dt) + 1
        } else {
            0
        };
    }
    let winner = candidates
        .iter()
        .filter(|c| c.passes && c.streak >= policy.nights)
        .max_by(|a, b| {
            a.holdout
                .auc
                .unwrap_or(0.0)
                .total_cmp(&b.holdout.auc.unwrap_or(0.0))
        })
        .map(|c| c.model.clone());
    let (action, after, reason) = match &winner {
        Some(w) => (
            Action::Promote,
            w.clone(),
            format!(
                "{w} met every rule on {} consecutive night(s) (policy: {})",
                policy.nights, policy.nights
            ),
        ),
        None => {
            let why = candidates
                .iter()
                .map(|c| {
                    let failed: Vec<&str> = c
                        .checks
                        .iter()
                        .filter(|r| !r.pass)
                        .map(|r| r.rule.as_str())
                        .collect();
                    if failed.is_empty() {
                        format!(
                            "{} passed ({} of {} nights)",
                            c.model, c.streak, policy.nights
                        )
                    } else {
                        format!("{} failed {}", c.model, failed.join(", "))
                    }
                })
                .collect::<Vec<_>>()
                .join("; ");
            (
                Action::Keep,
                current.clone(),
                if why.is_empty() {
                    "no challenger tonight".to_string()
                } else {
                    why
                },
            )
        }
    };
    let mut champ_ev = champ_ev;
    champ_ev.role = Role::Champion;
    let others: Vec<Evidence> = candidates
        .iter()
        .filter(|c| c.model != after)
        .cloned()
        .collect();
    let challenger = best_by_auc(&others);
    let d = Decision {
        dt: dt.to_string(),
        run_id: run_id.to_string(),
        at: now,
        by: "policy".into(),
        action,
        champion_before: Some(current.clone()),
        champion_after: after.clone(),
        challenger: challenger.clone(),
        reason,
        evidence: std::iter::once(champ_ev).chain(candidates).collect(),
    };
    if action == Action::Promote {
        if let Some(old) = state.champion.take() {
            state.previous.push(old);
        }
        state.champion = Some(Reign {
            model: after,
            since: dt.to_string(),
        });
    }
    state.challenger = challenger;
    state.decisions.push(d.clone());
    d
}

/// The policy's rules for one challenger against the champion.
fn rules(policy: &Policy, champ: &Evidence, c: &Evidence) -> Vec<RuleCheck> {
    let diff = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a - b);
    let mut out = Vec::new();
    let events = c.holdout.events.min(champ.holdout.events) as f64;
    out.push(RuleCheck {
        rule: "min_events".into(),
        value: Some(events),
        bound: policy.min_events as f64,
        pass: events >= policy.min_events as f64,
    });
    let gain = diff(c.holdout.auc, champ.holdout.auc);
    out.push(RuleCheck {
        rule: "min_auc_gain".into(),
        value: gain,
        bound: policy.min_auc_gain,
        pass: gain.is_some_and(|g| g >= policy.min_auc_gain - 1e-12),
    });
    let ks_drop = diff(champ.holdout.ks, c.holdout.ks);
    out.push(RuleCheck {
        rule: "max_ks_drop".into(),
        value: ks_drop,
        bound: policy.max_ks_drop,
        pass: ks_drop.is_some_and(|d| d <= policy.max_ks_drop + 1e-12),
    });
    // Out-of-time: judged when both models could be measured there; a family without an
    // out-of-time sample is judged on the hold-out alone.
    let oot_drop = diff(
        champ.oot.as_ref().and_then(|m| m.auc),
        c.oot.as_ref().and_then(|m| m.auc),
    );
    if c.oot.is_some() {
        out.push(RuleCheck {
            rule: "max_oot_auc_drop".into(),
            value: oot_drop,
            bound: policy.max_oot_auc_drop,
            pass: oot_drop.is_none_or(|d| d <= policy.max_oot_auc_drop + 1e-12),
        });
    }
    out.push(RuleCheck {
        rule: "max_score_psi".into(),
        value: c.score_psi,
        bound: policy.max_score_psi,
        pass: c.score_psi.is_none_or(|p| p <= policy.max_score_psi),
    });
    out
}

/// A human makes `model` champion.
pub fn promote(
    state: &mut FamilyState,
    model: ModelRef,
    by: &str,
    reason: &str,
    dt: &str,
) -> Result<Decision> {
    if state.champion.as_ref().is_some_and(|c| c.model == model) {
        return Err(Error::config(format!(
            "{model} is already the champion of {}",
            state.family
        )));
    }
    let before = state.champion.as_ref().map(|c| c.model.clone());
    if let Some(old) = state.champion.take() {
        state.previous.push(old);
    }
    state.champion = Some(Reign {
        model: model.clone(),
        since: dt.to_string(),
    });
    if state.challenger.as_ref() == Some(&model) {
        state.challenger = None;
    }
    let d = Decision {
        dt: dt.to_string(),
        run_id: String::new(),
        at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        by: format!("user:{by}"),
        action: Action::ManualPromote,
        champion_before: before,
        champion_after: model,
        challenger: state.challenger.clone(),
        reason: reason.to_string(),
        evidence: Vec::new(),
    };
    state.decisions.push(d.clone());
    Ok(d)
}

/// A human puts the previous champion back.
pub fn rollback(state: &mut FamilyState, by: &str, reason: &str, dt: &str) -> Result<Decision> {
    let Some(prev) = state.previous.pop() else {
        return Err(Error::config(format!(
            "{} has no earlier champion to roll back to",
            state.family
        )));
    };
    let before = state.champion.take().map(|c| c.model);
    let after = prev.model.clone();
    state.champion = Some(Reign {
        model: prev.model,
        since: dt.to_string(),
    });
    let d = Decision {
        dt: dt.to_string(),
        run_id: String::new(),
        at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        by: format!("user:{by}"),
        action: Action::Rollback,
        champion_before: before,
        champion_after: after,
        challenger: state.challenger.clone(),
        reason: reason.to_string(),
        evidence: Vec::new(),
    };
    state.decisions.push(d.clone());
    Ok(d)
}

pub fn families_root(warehouse_root: &Path) -> PathBuf {
    super::registry::models_root(warehouse_root).join("_champions")
}

fn state_path(warehouse_root: &Path, family: &str) -> PathBuf {
    families_root(warehouse_root).join(format!("{family}.json"))
}

/// The recorded state of `family`, or a fresh one.
pub fn load(warehouse_root: &Path, family: &str) -> Result<FamilyState> {
    let p = state_path(warehouse_root, family);
    match std::fs::read_to_string(&p) {
        Ok(t) => serde_json::from_str(&t)
            .map_err(|e| Error::input(&p, format!("not a champion/challenger state: {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(FamilyState::new(family)),
        Err(e) => Err(e).ctx(|| format!("reading {}", p.display())),
    }
}

/// Every family with a recorded state.
pub fn list(warehouse_root: &Path) -> Vec<FamilyState> {
    let mut names: Vec<String> = std::fs::read_dir(families_root(warehouse_root))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".json"))
                .map(str::to_string)
        })
        .collect();
    names.sort();
    names
        .iter()
        .filter_map(|n| load(warehouse_root, n).ok())
        .collect()
}

/// Writes the state whole (temporary sibling, fsync, rename).
pub fn save(warehouse_root: &Path, state: &FamilyState) -> Result<PathBuf> {
    use std::io::Write;
    let dir = families_root(warehouse_root);
    std::fs::create_dir_all(&dir).ctx(|| format!("creating {}", dir.display()))?;
    let p = state_path(warehouse_root, &state.family);
    let tmp = dir.join(format!(".{}.json.tmp-{}", state.family, std::process::id()));
    let text = serde_json::to_vec_pretty(state).map_err(|e| Error::Other(e.to_string()))?;
    let mut f = std::fs::File::create(&tmp).ctx(|| format!("creating {}", tmp.display()))?;
    f.write_all(&text)
        .and_then(|_| f.sync_all())
        .ctx(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &p).ctx(|| format!("renaming {} to {}", tmp.display(), p.display()))?;
    Ok(p)
}

/// Champions by family (for scoring and reports).
pub fn champions(warehouse_root: &Path) -> BTreeMap<String, ModelRef> {
    list(warehouse_root)
        .into_iter()
        .filter_map(|s| s.champion.map(|c| (s.family, c.model)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(model: &str, version: &str) -> ModelRef {
        ModelRef {
            model: model.into(),
            version: version.into(),
        }
    }

    fn ev(model: &str, version: &str, auc: f64, ks: f64, psi: f64) -> Evidence {
        Evidence {
            model: m(model, version),
            role: Role::Challenger,
            holdout: SampleMetrics {
                rows: 1000,
                events: 100,
                auc: Some(auc),
                ks: Some(ks),
                gini: Some(2.0 * auc - 1.0),
            },
            oot: Some(SampleMetrics {
                rows: 300,
                events: 30,
                auc: Some(auc - 0.01),
                ks: Some(ks),
                gini: None,
            }),
            score_psi: Some(psi),
            checks: Vec::new(),
            passes: false,
            streak: 0,
        }
    }

    fn night(
        s: &mut FamilyState,
        p: &Policy,
        dt: &str,
        champ: (f64, f64),
        chal: (f64, f64, f64),
    ) -> Decision {
        let c = s.champion_for(dt).map(|r| {
            let mut e = ev(&r.model, &r.version, champ.0, champ.1, 0.01);
            e.role = Role::Champion;
            e
        });
        let v = format!("v{:04}", s.decisions.len() + 1);
        decide(
            s,
            p,
            c,
            vec![ev("gbdt", &v, chal.0, chal.1, chal.2)],
            dt,
            "run",
        )
    }

    #[test]
    fn first_night_makes_the_first_model_champion() {
        let mut s = FamilyState::new("f");
        let d = decide(
            &mut s,
            &Policy::default(),
            None,
            vec![
                ev("card", "v0001", 0.70, 0.3, 0.0),
                ev("gbdt", "v0001", 0.75, 0.35, 0.0),
            ],
            "2026-11-01",
            "r1",
        );
        assert_eq!(d.action, Action::Initial);
        assert_eq!(s.champion.as_ref().unwrap().model, m("card", "v0001"));
        assert_eq!(s.challenger, Some(m("gbdt", "v0001")));
    }

    #[test]
    fn promotion_needs_k_consecutive_passing_nights() {
        let p = Policy {
            nights: 3,
            ..Policy::default()
        };
        let mut s = FamilyState::new("f");
        s.champion = Some(Reign {
            model: m("card", "v0001"),
            since: "2026-10-31".into(),
        });
        // Passes, passes, fails (KS drop), passes, passes, passes -> promoted on night 6.
        let nights = [
            (0.75, 0.35, 0.05),
            (0.75, 0.35, 0.05),
            (0.75, 0.20, 0.05),
            (0.75, 0.35, 0.05),
            (0.75, 0.35, 0.05),
            (0.75, 0.35, 0.05),
        ];
        let mut actions = Vec::new();
        for (k, n) in nights.iter().enumerate() {
            let d = night(&mut s, &p, &format!("2026-11-0{}", k + 1), (0.70, 0.30), *n);
            actions.push((d.action, d.evidence[1].streak));
        }
        assert_eq!(
            actions,
            vec![
                (Action::Keep, 1),
                (Action::Keep, 2),
                (Action::Keep, 0),
                (Action::Keep, 1),
                (Action::Keep, 2),
                (Action::Promote, 3)
            ]
        );
        assert_eq!(s.champion.as_ref().unwrap().model.model, "gbdt");
        assert_eq!(s.previous.len(), 1);
    }

    #[test]
    fn each_rule_blocks_a_promotion() {
        let p = Policy {
            nights: 1,
            ..Policy::default()
        };
        let cases = [
            ((0.70, 0.30), (0.702, 0.35, 0.01), "min_auc_gain"),
            ((0.70, 0.30), (0.75, 0.29, 0.01), "max_ks_drop"),
            ((0.70, 0.30), (0.75, 0.35, 0.40), "max_score_psi"),
        ];
        for (champ, chal, rule) in cases {
            let mut s = FamilyState::new("f");
            s.champion = Some(Reign {
                model: m("card", "v0001"),
                since: "x".into(),
            });
            let d = night(&mut s, &p, "2026-11-01", champ, chal);
            assert_eq!(d.action, Action::Keep, "{rule}");
            let failed: Vec<&str> = d.evidence[1]
                .checks
                .iter()
                .filter(|r| !r.pass)
                .map(|r| r.rule.as_str())
                .collect();
            assert_eq!(failed, vec![rule]);
        }
        // Too few events: no evidence, no promotion.
        let mut s = FamilyState::new("f");
        s.champion = Some(Reign {
            model: m("card", "v0001"),
            since: "x".into(),
        });
        let mut champ = ev("card", "v0001", 0.6, 0.2, 0.0);
        champ.holdout.events = 5;
        let d = decide(
            &mut s,
            &p,
            Some(champ),
            vec![ev("gbdt", "v0002", 0.8, 0.4, 0.0)],
            "d",
            "r",
        );
        assert_eq!(d.action, Action::Keep);
        assert!(d.evidence[1]
            .checks
            .iter()
            .any(|r| r.rule == "min_events" && !r.pass));
    }

    #[test]
    fn a_rerun_of_the_same_night_does_not_count_twice() {
        let p = Policy {
            nights: 2,
            ..Policy::default()
        };
        let mut s = FamilyState::new("f");
        s.champion = Some(Reign {
            model: m("card", "v0001"),
            since: "x".into(),
        });
        let good = (0.75, 0.35, 0.05);
        night(&mut s, &p, "2026-11-01", (0.70, 0.30), good);
        let d = night(&mut s, &p, "2026-11-01", (0.70, 0.30), good);
        assert_eq!((d.action, d.evidence[1].streak), (Action::Keep, 1));
        assert_eq!(s.decisions.len(), 1);
        let d = night(&mut s, &p, "2026-11-02", (0.70, 0.30), good);
        assert_eq!(d.action, Action::Promote);
        // Re-running the promoting night undoes and redoes the promotion: one champion change.
        let d = night(&mut s, &p, "2026-11-02", (0.70, 0.30), good);
        assert_eq!(d.action, Action::Promote);
        assert_eq!(s.previous.len(), 1);
        assert_eq!(s.previous[0].model, m("card", "v0001"));
    }

    #[test]
    fn rerunning_an_earlier_night_replaces_its_decision() {
        let p = Policy {
            nights: 2,
            ..Policy::default()
        };
        let mut s = FamilyState::new("f");
        s.champion = Some(Reign {
            model: m("card", "v0001"),
            since: "x".into(),
        });
        let good = (0.75, 0.35, 0.05);
        let bad_ks = (0.75, 0.20, 0.05);
        night(&mut s, &p, "2026-11-01", (0.70, 0.30), good);
        night(&mut s, &p, "2026-11-02", (0.70, 0.30), bad_ks);
        // A backfill of night 1 (passing again) is still one passing night, not a second one.
        let d = night(&mut s, &p, "2026-11-01", (0.70, 0.30), good);
        assert_eq!((d.action, d.evidence[1].streak), (Action::Keep, 1));
        let dts: Vec<&str> = s.decisions.iter().map(|d| d.dt.as_str()).collect();
        assert_eq!(dts, vec!["2026-11-01", "2026-11-02"]);
        assert_eq!(s.champion.as_ref().unwrap().model, m("card", "v0001"));
        // Night 2 re-run, passing now: the streak counts night 1 once, so two nights promote.
        let d = night(&mut s, &p, "2026-11-02", (0.70, 0.30), good);
        assert_eq!((d.action, d.evidence[1].streak), (Action::Promote, 2));
        // An earlier night would promote: its record says so, but the champion stays where
        // the later nights left it (they were decided against the old one).
        let before = s.champion.clone();
        let d = night(&mut s, &p, "2026-10-31", (0.70, 0.30), good);
        assert_eq!(d.action, Action::Keep);
        assert_eq!(d.champion_before, Some(m("card", "v0001")));
        assert_eq!(s.champion, before);
        let dts: Vec<&str> = s.decisions.iter().map(|d| d.dt.as_str()).collect();
        assert_eq!(dts, vec!["2026-10-31", "2026-11-01", "2026-11-02"]);
    }

    /// The family's first night (2026-11-19): card and gbdt, card first.
    fn first_night(s: &mut FamilyState, p: &Policy) -> Decision {
        let champ = s
            .champion_for("2026-11-19")
            .map(|r| ev(&r.model, &r.version, 0.7, 0.3, 0.0));
        decide(
            s,
            p,
            champ,
            vec![
                ev("card", "v0001", 0.70, 0.3, 0.0),
                ev("gbdt", "v0001", 0.75, 0.35, 0.0),
            ],
            "2026-11-19",
            "r",
        )
    }

    #[test]
    fn rerunning_the_first_night_keeps_the_state() {
        let p = Policy::default();
        let mut s = FamilyState::new("f");
        let first = |s: &mut FamilyState| first_night(s, &p);
        first(&mut s);
        let d = night(&mut s, &p, "2026-11-20", (0.70, 0.30), (0.75, 0.35, 0.05));
        assert_eq!((d.action, d.evidence[1].streak), (Action::Keep, 1));
        let d = first(&mut s);
        assert_eq!(d.action, Action::Initial);
        assert_eq!(s.decisions.len(), 2);
        assert_eq!(s.decisions[0].dt, "2026-11-19");
        assert_eq!(s.champion.as_ref().unwrap().model, m("card", "v0001"));
        // Night 20 again: night 19 (the first night) judged nobody, so still one night.
        let d = night(&mut s, &p, "2026-11-20", (0.70, 0.30), (0.75, 0.35, 0.05));
        assert_eq!((d.action, d.evidence[1].streak), (Action::Keep, 1));
    }

    /// Regression: a re-run of a night after a promote by hand put the night's record last;
    /// the next re-run undid it and the champion went back to the policy's.
    #[test]
    fn rerunning_a_night_keeps_a_later_promote_by_hand() {
        let p = Policy::default();
        let mut s = FamilyState::new("f");
        let first = |s: &mut FamilyState| first_night(s, &p);
        first(&mut s);
        promote(&mut s, m("gbdt", "v0001"), "ana", "by hand", "2026-11-19").unwrap();
        for _ in 0..3 {
            first(&mut s);
            assert_eq!(s.champion.as_ref().unwrap().model, m("gbdt", "v0001"));
            assert_eq!(s.decisions.len(), 2);
            assert_eq!(s.decisions[1].by, "user:ana");
        }
    }

    #[test]
    fn promote_and_rollback_by_hand() {
        let mut s = FamilyState::new("f");
        assert!(rollback(&mut s, "ana", "r", "d").is_err());
        promote(&mut s, m("card", "v0001"), "ana", "first", "d1").unwrap();
        promote(&mut s, m("gbdt", "v0003"), "ana", "better", "d2").unwrap();
        assert!(promote(&mut s, m("gbdt", "v0003"), "ana", "again", "d2").is_err());
        let d = rollback(&mut s, "bo", "bad limits", "d3").unwrap();
        assert_eq!(d.action, Action::Rollback);
        assert_eq!(d.by, "user:bo");
        assert_eq!(s.champion.as_ref().unwrap().model, m("card", "v0001"));
        assert_eq!(s.decisions.len(), 3);
        // The state survives a save and a load unchanged.
        let dir = std::env::temp_dir().join(format!("pano-champ-{}", std::process::id()));
        save(&dir, &s).unwrap();
        assert_eq!(load(&dir, "f").unwrap(), s);
        assert_eq!(champions(&dir).get("f"), Some(&m("card", "v0001")));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
