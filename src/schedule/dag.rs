//! The job graph: explicit (`after`) and inferred (reads ← writes) dependencies, validated
//! before anything runs: unknown dependencies, cycles (with their path), duplicate names, two
//! jobs writing one table partition. All problems are listed at once.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use super::kind::{partitions_overlap, TableRef};
use super::spec::{is_wildcard, literal_prefix, wildcard_match, Job};

/// Why a job waits for another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// Named in `after`.
    After,
    /// Reads a table (partition) the other job writes.
    Reads(String),
}

impl std::fmt::Display for Why {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Why::After => f.write_str("after"),
            Why::Reads(t) => write!(f, "reads {t}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Dep {
    pub job: u32,
    pub why: Why,
}

/// The validated graph. Job indices (`u32`) follow the job files' sorted paths, then matrix order.
#[derive(Debug)]
pub struct Dag {
    pub jobs: Vec<Job>,
    pub by_name: HashMap<String, u32>,
    /// Family id (`kind.name`) to its instances.
    pub families: HashMap<String, Vec<u32>>,
    pub parents: Vec<Vec<Dep>>,
    pub children: Vec<Vec<u32>>,
    /// A deterministic topological order (a job after all its parents; ties by index).
    pub order: Vec<u32>,
    /// Not errors: reads of tables no job writes, and the like.
    pub warnings: Vec<String>,
}

const MAX_LISTED: usize = 50;

impl Dag {
    pub fn build(jobs: Vec<Job>) -> Result<Dag, Vec<String>> {
        let n = jobs.len();
        let mut problems = Vec::new();

        // Names.
        let mut by_name: HashMap<String, u32> = HashMap::with_capacity(n);
        let mut families: HashMap<String, Vec<u32>> = HashMap::new();
        for (i, j) in jobs.iter().enumerate() {
            if let Some(&first) = by_name.get(&j.name) {
                problems.push(format!(
                    "duplicate job name {}: in {} and {}",
                    j.name, jobs[first as usize].family.rel, j.family.rel
                ));
            } else {
                by_name.insert(j.name.clone(), i as u32);
            }
            let fam = families.entry(j.family.id.clone()).or_default();
            if fam.last() != Some(&(i as u32)) {
                fam.push(i as u32);
            }
        }
        let mut sorted: Vec<(&str, u32)> = jobs
            .iter()
            .enumerate()
            .map(|(i, j)| (j.name.as_str(), i as u32))
            .collect();
        sorted.sort_unstable();

        let mut parents: Vec<Vec<Dep>> = vec![Vec::new(); n];

        // Explicit dependencies.
        for (i, j) in jobs.iter().enumerate() {
            for pat in &j.after {
                let targets = resolve_pattern(pat, &by_name, &families, &sorted);
                let only_itself = targets.iter().all(|&t| t == i as u32) && !targets.is_empty();
                // A pattern that also matches the job itself (`sql.*` in a sql job) means the
                // others.
                let targets: Vec<u32> = targets.into_iter().filter(|&t| t != i as u32).collect();
                if only_itself {
                    problems.push(format!(
                        "{} ({}): `after` names {pat:?}, which is this job itself: a job cannot run after itself (remove it from `after`)",
                        j.name, j.family.rel
                    ));
                } else if targets.is_empty() {
                    let hint = suggest(pat, &sorted);
                    problems.push(format!(
                        "{} ({}): `after` names {pat:?}, which matches no job{hint}",
                        j.name, j.family.rel
                    ));
                }
                for t in targets {
                    parents[i].push(Dep {
                        job: t,
                        why: Why::After,
                    });
                }
            }
        }

        // Writers by table; two writers of one partition are an error.
        let mut writers: HashMap<(&str, &str), Vec<Writer<'_>>> = HashMap::new();
        for (i, j) in jobs.iter().enumerate() {
            for w in &j.writes {
                writers
                    .entry((w.layer.as_str(), w.table.as_str()))
                    .or_default()
                    .push((&w.partition, i as u32));
            }
        }
        let mut conflicts = Vec::new();
        let mut index: HashMap<(&str, &str), TableIndex> = HashMap::with_capacity(writers.len());
        for (key, list) in &writers {
            let ti = TableIndex::new(list);
            ti.conflicts(list, &mut conflicts);
            index.insert(*key, ti);
        }
        conflicts.sort_unstable();
        conflicts.dedup();
        for (a, b) in conflicts.iter().take(MAX_LISTED) {
            let (ja, jb) = (&jobs[*a as usize], &jobs[*b as usize]);
            let shared: Vec<String> = ja
                .writes
                .iter()
                .filter(|w| jb.writes.iter().any(|x| x.overlaps(w)))
                .map(|w| w.to_string())
                .collect();
            problems.push(format!(
                "{} and {} both write {} ({} and {})",
                ja.name,
                jb.name,
                shared.join(", "),
                ja.family.rel,
                jb.family.rel
            ));
        }
        if conflicts.len() > MAX_LISTED {
            problems.push(format!(
                "... and {} more pairs of jobs writing one partition",
                conflicts.len() - MAX_LISTED
            ));
        }

        // Inferred dependencies.
        let mut warnings = Vec::new();
        let mut unwritten = 0usize;
        for (i, j) in jobs.iter().enumerate() {
            for r in &j.reads {
                let Some(ti) = index.get(&(r.layer.as_str(), r.table.as_str())) else {
                    unwritten += 1;
                    if unwritten <= 10 {
                        warnings.push(format!(
                            "{} reads {r}, which no job writes (it must already be in the warehouse)",
                            j.name
                        ));
                    }
                    continue;
                };
                let list = &writers[&(r.layer.as_str(), r.table.as_str())];
                let before = parents[i].len();
                ti.matching(list, r, |w| {
                    if w != i as u32 {
                        parents[i].push(Dep {
                            job: w,
                            why: Why::Reads(r.to_string()),
                        });
                    }
                });
                if parents[i].len() == before
                    && !j.writes.iter().any(|w| w.overlaps(r))
                    && !r.partition.is_empty()
                {
                    unwritten += 1;
                    if unwritten <= 10 {
                        warnings.push(format!("{} reads {r}, which no job writes", j.name));
                    }
                }
            }
        }
        if unwritten > 10 {
            warnings.push(format!(
                "... and {} more reads of tables no job writes",
                unwritten - 10
            ));
        }

        // One edge per pair; the first reason wins (after before reads).
        for ps in parents.iter_mut() {
            if ps.len() > 1 {
                let mut seen = std::collections::HashSet::with_capacity(ps.len());
                ps.retain(|d| seen.insert(d.job));
                ps.sort_by_key(|d| d.job);
            }
        }
        let mut children: Vec<Vec<u32>> = vec![Vec::new(); n];
        for (i, ps) in parents.iter().enumerate() {
            for d in ps {
                children[d.job as usize].push(i as u32);
            }
        }

        // Topological order (Kahn, smallest index first); what is left holds cycles.
        let mut indeg: Vec<u32> = parents.iter().map(|p| p.len() as u32).collect();
        let mut heap: BinaryHeap<Reverse<u32>> = (0..n as u32)
            .filter(|&i| indeg[i as usize] == 0)
            .map(Reverse)
            .collect();
        let mut order = Vec::with_capacity(n);
        while let Some(Reverse(i)) = heap.pop() {
            order.push(i);
            for &c in &children[i as usize] {
                indeg[c as usize] -= 1;
                if indeg[c as usize] == 0 {
                    heap.push(Reverse(c));
                }
            }
        }
        if order.len() < n {
            for cycle in find_cycles(&indeg, &parents).into_iter().take(MAX_LISTED) {
                let path: Vec<&str> = cycle
                    .iter()
                    .map(|&c| jobs[c as usize].name.as_str())
                    .collect();
                problems.push(format!(
                    "dependency cycle: {} (each runs after the one before it)",
                    path.join(" -> ")
                ));
            }
        }

        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Dag {
            jobs,
            by_name,
            families,
            parents,
            children,
            order,
            warnings,
        })
    }

    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    pub fn job(&self, i: u32) -> &Job {
        &self.jobs[i as usize]
    }

    /// Jobs named by `pat`: an exact name, a family id, or a wildcard over names.
    pub fn resolve(&self, pat: &str) -> Vec<u32> {
        let mut sorted: Vec<(&str, u32)> = Vec::new();
        if is_wildcard(pat) {
            sorted = self
                .jobs
                .iter()
                .enumerate()
                .map(|(i, j)| (j.name.as_str(), i as u32))
                .collect();
            sorted.sort_unstable();
        }
        resolve_pattern(pat, &self.by_name, &self.families, &sorted)
    }

    /// Marks `seeds` and all their ancestors (`up`) or descendants (`!up`).
    pub fn closure(&self, seeds: &[u32], up: bool, mark: &mut [bool]) {
        let mut stack: Vec<u32> = seeds.to_vec();
        let mut seen = vec![false; self.len()];
        while let Some(i) = stack.pop() {
            if std::mem::replace(&mut seen[i as usize], true) {
                continue;
            }
            mark[i as usize] = true;
            if up {
                stack.extend(self.parents[i as usize].iter().map(|d| d.job));
            } else {
                stack.extend(self.children[i as usize].iter().copied());
            }
        }
    }
}

fn resolve_pattern(
    pat: &str,
    by_name: &HashMap<String, u32>,
    families: &HashMap<String, Vec<u32>>,
    sorted: &[(&str, u32)],
) -> Vec<u32> {
    if !is_wildcard(pat) {
        if let Some(&i) = by_name.get(pat) {
            return vec![i];
        }
        return families.get(pat).cloned().unwrap_or_default();
    }
    let prefix = literal_prefix(pat);
    let start = sorted.partition_point(|(n, _)| *n < prefix);
    let mut out: Vec<u32> = sorted[start..]
        .iter()
        .take_while(|(n, _)| n.starts_with(prefix))
        .filter(|(n, _)| wildcard_match(pat, n))
        .map(|&(_, i)| i)
        .collect();
    out.sort_unstable();
    out
}

/// A hint naming a job close to an unknown name.
fn suggest(pat: &str, sorted: &[(&str, u32)]) -> String {
    let base = pat.split('[').next().unwrap_or(pat);
    let tail = base.rsplit('.').next().unwrap_or(base);
    let close: Vec<&str> = sorted
        .iter()
        .map(|(n, _)| n.split('[').next().unwrap_or(n))
        .filter(|n| n.ends_with(tail) || (tail.len() >= 4 && n.contains(&tail[..tail.len() - 1])))
        .take(3)
        .collect();
    let mut close = close;
    close.dedup();
    if close.is_empty() {
        String::new()
    } else {
        format!(" (did you mean {}?)", close.join(" or "))
    }
}

/// The writers of one table, grouped by the set of partition keys they name, each group
/// indexed by its key values: reads and conflicts are found without comparing all pairs.
struct TableIndex {
    groups: Vec<KeyGroup>,
}

/// A writer's partition keys (besides `dt`) and its job.
type Writer<'a> = (&'a [(String, String)], u32);

/// Writers naming the same partition keys: the key names, and positions by key values.
type KeyGroup = (Vec<String>, HashMap<Vec<String>, Vec<usize>>);

impl TableIndex {
    fn new(list: &[Writer<'_>]) -> TableIndex {
        let mut groups: Vec<KeyGroup> = Vec::new();
        for (pos, (part, _)) in list.iter().enumerate() {
            let keys: Vec<String> = part.iter().map(|(k, _)| k.clone()).collect();
            let vals: Vec<String> = part.iter().map(|(_, v)| v.clone()).collect();
            let g = match groups.iter().position(|(k, _)| *k == keys) {
                Some(g) => g,
                None => {
                    groups.push((keys, HashMap::new()));
                    groups.len() - 1
                }
            };
            groups[g].1.entry(vals).or_default().push(pos);
        }
        TableIndex { groups }
    }

    /// Calls `f` with every writer whose partition overlaps `r`.
    fn matching(&self, list: &[Writer<'_>], r: &TableRef, mut f: impl FnMut(u32)) {
        for (keys, map) in &self.groups {
            // The reader names every key of the group: one lookup.
            let proj: Option<Vec<String>> = keys
                .iter()
                .map(|k| {
                    r.partition
                        .iter()
                        .find(|(rk, _)| rk == k)
                        .map(|(_, v)| v.clone())
                })
                .collect();
            if let Some(vals) = proj {
                if let Some(ps) = map.get(&vals) {
                    for &p in ps {
                        f(list[p].1);
                    }
                }
            } else {
                for ps in map.values() {
                    for &p in ps {
                        if partitions_overlap(list[p].0, &r.partition) {
                            f(list[p].1);
                        }
                    }
                }
            }
        }
    }

    /// Pairs of different jobs whose partitions overlap.
    fn conflicts(&self, list: &[Writer<'_>], out: &mut Vec<(u32, u32)>) {
        let pair = |a: u32, b: u32| if a < b { (a, b) } else { (b, a) };
        for (gi, (keys_a, map_a)) in self.groups.iter().enumerate() {
            for ps in map_a.values() {
                for x in 0..ps.len() {
                    for y in x + 1..ps.len() {
                        let (a, b) = (list[ps[x]].1, list[ps[y]].1);
                        if a != b {
                            out.push(pair(a, b));
                        }
                    }
                }
            }
            for (keys_b, map_b) in &self.groups[gi + 1..] {
                // Project both groups on their common keys; equal projections overlap.
                let common: Vec<&String> = keys_a.iter().filter(|k| keys_b.contains(k)).collect();
                let pos_a: Vec<usize> = common
                    .iter()
                    .map(|k| keys_a.iter().position(|x| x == *k).unwrap())
                    .collect();
                let pos_b: Vec<usize> = common
                    .iter()
                    .map(|k| keys_b.iter().position(|x| x == *k).unwrap())
                    .collect();
                let mut proj: HashMap<Vec<&String>, Vec<u32>> = HashMap::new();
                for (vals, ps) in map_a {
                    let key: Vec<&String> = pos_a.iter().map(|&p| &vals[p]).collect();
                    proj.entry(key)
                        .or_default()
                        .extend(ps.iter().map(|&p| list[p].1));
                }
                for (vals, ps) in map_b {
                    let key: Vec<&String> = pos_b.iter().map(|&p| &vals[p]).collect();
                    if let Some(others) = proj.get(&key) {
                        for &p in ps {
                            for &o in others {
                                if o != list[p].1 {
                                    out.push(pair(o, list[p].1));
                                }
                                if out.len() > 10 * MAX_LISTED {
                                    return;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One cycle per knot left after Kahn's algorithm: walk parents among the remaining nodes
/// until a node repeats. Returned in run order (`a -> b`: b runs after a), closed.
fn find_cycles(indeg: &[u32], parents: &[Vec<Dep>]) -> Vec<Vec<u32>> {
    let n = indeg.len();
    let left: Vec<bool> = indeg.iter().map(|&d| d > 0).collect();
    let mut state = vec![0u8; n]; // 0 unseen, 1 on the current walk, 2 done
    let mut cycles = Vec::new();
    for start in 0..n {
        if !left[start] || state[start] != 0 {
            continue;
        }
        let mut walk: Vec<u32> = Vec::new();
        let mut cur = start as u32;
        loop {
            match state[cur as usize] {
                1 => {
                    let pos = walk.iter().position(|&w| w == cur).unwrap();
                    // `walk` goes child -> parent; reverse for run order.
                    let mut cyc: Vec<u32> = walk[pos..].to_vec();
                    cyc.reverse();
                    cyc.push(cyc[0]);
                    cycles.push(cyc);
                    break;
                }
                2 => break,
                _ => {}
            }
            state[cur as usize] = 1;
            walk.push(cur);
            // Every remaining node has a remaining parent.
            match parents[cur as usize].iter().find(|d| left[d.job as usize]) {
                Some(d) => cur = d.job,
                None => break,
            }
        }
        for w in walk {
            state[w as usize] = 2;
        }
    }
    cycles
}
