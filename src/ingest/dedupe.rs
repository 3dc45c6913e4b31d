//! The de-duplication key index: which rows lose to a later (or earlier) row with the same key.
//!
//! The key pass feeds every row's key hash, order value and location in source order. The
//! winners so far sit in a hash table sized to a memory budget (`[ingest] dedupe_memory_mb`);
//! when the table is full its winners are appended to 256 partition files on disk (by the top
//! byte of the key hash) and the table starts empty again. At the end each partition is
//! reduced on its own, runs in source order, so the memory a source of any size needs is the
//! budget plus one partition's table. Nothing touches the disk when the keys fit.

use std::collections::HashMap;
use std::fs::{self, File};
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::PathBuf;

use crate::error::{Context, Result};

/// One row's key as the pre-pass saw it.
#[derive(Clone, Copy, Debug)]
pub(super) struct RowKey {
    pub hash: u64,
    /// 32 more bits of a second hash: two keys sharing `hash` but not `check` are different.
    pub check: u32,
    /// `Value::order_key` of the order column (0 without one).
    pub order: u64,
    pub line: u64,
    /// `seq << 32 | ordinal in the batch`.
    pub id: u64,
}

/// A superseded row: its id, and the file index and line of the row that won its key.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Loser {
    pub id: u64,
    pub line: u64,
    pub file: u32,
}

/// Every superseded row of a source, sorted by row id (24 bytes each).
#[derive(Debug, Default)]
pub(super) struct Losers(Vec<Loser>);

/// Where a batch's walk over `Losers` stands.
#[derive(Default)]
pub(super) struct LoserCursor {
    at: usize,
    end: usize,
}

impl Losers {
    /// The winner's (file index, line) when row `id` was superseded.
    #[cfg(test)]
    pub fn get(&self, id: u64) -> Option<(u32, u64)> {
        self.0
            .binary_search_by_key(&id, |l| l.id)
            .ok()
            .map(|i| (self.0[i].file, self.0[i].line))
    }

    /// A cursor over the superseded rows of batch `seq` (row ids `seq << 32 ..`).
    pub fn batch(&self, seq: u64) -> LoserCursor {
        LoserCursor {
            at: self.0.partition_point(|l| l.id < seq << 32),
            end: self.0.partition_point(|l| l.id < (seq + 1) << 32),
        }
    }

    /// As `get`, for rows asked in increasing order: the cursor walks the batch's losers
    /// instead of a binary search per row (a cache miss or two each, 5M rows per GB).
    pub fn next(&self, cursor: &mut LoserCursor, id: u64) -> Option<(u32, u64)> {
        while cursor.at < cursor.end && self.0[cursor.at].id < id {
            cursor.at += 1;
        }
        if cursor.at == cursor.end {
            return None;
        }
        let l = &self.0[cursor.at];
        (l.id == id).then_some((l.file, l.line))
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.len()
    }
}

/// The table's keys are seeded SipHash values already: they need mixing (one multiply spreads
/// the low bits into the top ones hashbrown probes with), not hashing again.
#[derive(Default)]
struct Premixed(u64);

impl Hasher for Premixed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = x.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type Table = HashMap<u64, Winner, BuildHasherDefault<Premixed>>;

#[derive(Clone, Copy, Debug)]
struct Winner {
    order: u64,
    id: u64,
    line: u64,
    file: u32,
    check: u32,
}

/// Bytes per hash-table bucket: key, winner and hashbrown's control byte.
const BUCKET_BYTES: usize = std::mem::size_of::<(u64, Winner)>() + 1;
/// Spill partitions, by the top byte of the key hash.
const PARTITIONS: usize = 256;
/// A spilled winner: hash, check, file, order, id, line (little-endian).
const RECORD_BYTES: usize = 40;

pub(super) struct KeyIndex {
    winners: Table,
    /// Most keys the table holds before it spills (its bucket count stays within the budget).
    limit: usize,
    /// Rows superseded inside one run, with their key hash; resolved at the end.
    superseded: Vec<(u64, u64)>,
    keep_latest: bool,
    source_bytes: u64,
    spill_dir: PathBuf,
    spill: Option<Vec<BufWriter<File>>>,
    /// Keys spilled so far (for the log and tests).
    pub spilled: u64,
}

impl KeyIndex {
    /// `budget` bytes for the table; spill files go into `spill_dir` (created when needed,
    /// removed by `finish`).
    pub fn new(keep_latest: bool, source_bytes: u64, budget: usize, spill_dir: PathBuf) -> Self {
        // hashbrown keeps a power-of-two bucket count at most 8/7 of its capacity.
        let buckets = (budget / BUCKET_BYTES).max(16);
        let buckets = 1usize << (usize::BITS - 1 - buckets.leading_zeros());
        KeyIndex {
            winners: Table::default(),
            limit: buckets / 8 * 7,
            superseded: Vec::new(),
            keep_latest,
            source_bytes,
            spill_dir,
            spill: None,
            spilled: 0,
        }
    }

    /// Takes a batch's keys, in source order. `bytes` is the batch's size in the source (to
    /// size the table once from the first batch).
    pub fn take(&mut self, keys: &[RowKey], file: u32, bytes: usize) -> Result<()> {
        if self.winners.capacity() == 0 && !keys.is_empty() {
            // Growing by doubling would hold two tables at once, at the largest size.
            let per_byte = keys.len() as f64 / bytes.max(1) as f64;
            let estimate = (per_byte * self.source_bytes as f64 * 1.05) as usize;
            self.winners
                .reserve(estimate.max(keys.len()).min(self.limit));
        }
        for k in keys {
            if self.winners.len() >= self.limit && !self.winners.contains_key(&k.hash) {
                self.spill_run()?;
            }
            let new = Winner {
                order: k.order,
                id: k.id,
                line: k.line,
                file,
                check: k.check,
            };
            if let Some(loser) = merge(&mut self.winners, k.hash, new, self.keep_latest) {
                self.superseded.push((loser.id, k.hash));
            }
        }
        Ok(())
    }

    /// Appends the table's winners to the partition files and empties it (its memory stays).
    fn spill_run(&mut self) -> Result<()> {
        if self.spill.is_none() {
            fs::create_dir_all(&self.spill_dir)
                .ctx(|| format!("creating {}", self.spill_dir.display()))?;
            let mut files = Vec::with_capacity(PARTITIONS);
            for p in 0..PARTITIONS {
                let path = self.partition_path(p);
                let f = File::create(&path).ctx(|| format!("creating {}", path.display()))?;
                files.push(BufWriter::with_capacity(1 << 16, f));
            }
            self.spill = Some(files);
        }
        let files = self.spill.as_mut().expect("created above");
        for (hash, w) in self.winners.drain() {
            let mut rec = [0u8; RECORD_BYTES];
            rec[0..8].copy_from_slice(&hash.to_le_bytes());
            rec[8..12].copy_from_slice(&w.check.to_le_bytes());
            rec[12..16].copy_from_slice(&w.file.to_le_bytes());
            rec[16..24].copy_from_slice(&w.order.to_le_bytes());
            rec[24..32].copy_from_slice(&w.id.to_le_bytes());
            rec[32..40].copy_from_slice(&w.line.to_le_bytes());
            let p = (hash >> 56) as usize;
            files[p]
                .write_all(&rec)
                .ctx(|| format!("writing {}", self.spill_dir.display()))?;
            self.spilled += 1;
        }
        Ok(())
    }

    fn partition_path(&self, p: usize) -> PathBuf {
        self.spill_dir.join(format!("keys-{p:03}.bin"))
    }

    /// Each superseded row with the location of the row that finally won its key.
    pub fn finish(mut self) -> Result<Losers> {
        let mut losers = Vec::with_capacity(self.superseded.len());
        if self.spill.is_none() {
            resolve(&self.winners, &self.superseded, &mut losers);
        } else {
            self.spill_run()?;
            for f in self.spill.take().expect("spilled").iter_mut() {
                f.flush()
                    .ctx(|| format!("writing {}", self.spill_dir.display()))?;
            }
            self.winners = Table::default();
            let mut superseded = std::mem::take(&mut self.superseded);
            superseded.sort_unstable_by_key(|&(_, hash)| hash >> 56);
            let mut rest = &superseded[..];
            for p in 0..PARTITIONS {
                let n = rest.partition_point(|&(_, hash)| (hash >> 56) as usize == p);
                let (mine, later) = rest.split_at(n);
                rest = later;
                self.reduce_partition(p, mine, &mut losers)?;
            }
            fs::remove_dir_all(&self.spill_dir)
                .ctx(|| format!("removing {}", self.spill_dir.display()))?;
        }
        losers.sort_unstable_by_key(|l| l.id);
        Ok(Losers(losers))
    }

    /// Merges one partition's runs (in source order) and resolves its superseded rows.
    fn reduce_partition(
        &self,
        p: usize,
        superseded: &[(u64, u64)],
        losers: &mut Vec<Loser>,
    ) -> Result<()> {
        let path = self.partition_path(p);
        let len = fs::metadata(&path)
            .ctx(|| format!("reading {}", path.display()))?
            .len() as usize;
        let mut reader = BufReader::with_capacity(
            1 << 16,
            File::open(&path).ctx(|| format!("reading {}", path.display()))?,
        );
        let mut table = Table::with_capacity_and_hasher(len / RECORD_BYTES, Default::default());
        let mut across: Vec<(u64, u64)> = Vec::new();
        let mut rec = [0u8; RECORD_BYTES];
        for _ in 0..len / RECORD_BYTES {
            reader
                .read_exact(&mut rec)
                .ctx(|| format!("reading {}", path.display()))?;
            let u32_at = |a: usize| u32::from_le_bytes(rec[a..a + 4].try_into().expect("4 bytes"));
            let u64_at = |a: usize| u64::from_le_bytes(rec[a..a + 8].try_into().expect("8 bytes"));
            let hash = u64_at(0);
            let w = Winner {
                check: u32_at(8),
                file: u32_at(12),
                order: u64_at(16),
                id: u64_at(24),
                line: u64_at(32),
            };
            if let Some(loser) = merge(&mut table, hash, w, self.keep_latest) {
                across.push((loser.id, hash));
            }
        }
        resolve(&table, superseded, losers);
        resolve(&table, &across, losers);
        Ok(())
    }
}

/// Each superseded `(row id, key hash)` with the location of its key's final winner.
fn resolve(winners: &Table, superseded: &[(u64, u64)], losers: &mut Vec<Loser>) {
    losers.extend(superseded.iter().map(|&(id, hash)| {
        let w = winners[&hash];
        Loser {
            id,
            line: w.line,
            file: w.file,
        }
    }));
}

/// Puts `new` (later in the source than what `table` holds) against the winner of its key;
/// returns the row that lost, if any. Latest by the order column wins, the later row on ties;
/// with only a unique key the first row stays. Two keys sharing 64 bits of hash but not the
/// other 32 are not duplicates: the later one stays out (odds about n^2 / 2^97).
fn merge(table: &mut Table, hash: u64, new: Winner, keep_latest: bool) -> Option<Winner> {
    match table.get_mut(&hash) {
        None => {
            table.insert(hash, new);
            None
        }
        Some(old) if old.check != new.check => None,
        Some(old) => Some(if keep_latest && new.order >= old.order {
            std::mem::replace(old, new)
        } else {
            new
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows with few distinct keys, orders with ties, and ids in source order.
    fn rows(n: u64, distinct: u64) -> Vec<RowKey> {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        (0..n)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let key = state % distinct;
                // Spread the keys over every partition; `check` is a function of the key.
                let hash = key.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
                RowKey {
                    hash,
                    check: (key as u32).wrapping_mul(2_654_435_761),
                    order: (state >> 20) % 5,
                    line: i + 2,
                    id: ((i / 100) << 32) | (i % 100),
                }
            })
            .collect()
    }

    fn losers(keys: &[RowKey], keep_latest: bool, budget: usize, dir: PathBuf) -> (Losers, u64) {
        let mut index = KeyIndex::new(keep_latest, 1 << 20, budget, dir);
        for (i, chunk) in keys.chunks(100).enumerate() {
            index.take(chunk, (i % 3) as u32, 4096).unwrap();
        }
        let spilled = index.spilled;
        (index.finish().unwrap(), spilled)
    }

    #[test]
    fn spilling_gives_the_same_losers_as_one_table() {
        let dir = tempfile::tempdir().unwrap();
        for keep_latest in [true, false] {
            let keys = rows(20_000, 3_000);
            let (whole, spilled) = losers(&keys, keep_latest, 64 << 20, dir.path().join("a"));
            assert_eq!(spilled, 0);
            // 16 buckets: a run of 14 keys at most, so nearly every key crosses runs.
            let (small, spilled) = losers(&keys, keep_latest, 1, dir.path().join("b"));
            assert!(spilled > 10_000, "spilled {spilled}");
            let distinct: std::collections::HashSet<u64> = keys.iter().map(|k| k.hash).collect();
            assert_eq!(whole.len(), 20_000 - distinct.len());
            assert_eq!(whole.0, small.0);
            assert!(!dir.path().join("b").exists(), "spill files removed");
        }
    }

    #[test]
    fn latest_wins_and_ties_go_to_the_later_row() {
        let dir = tempfile::tempdir().unwrap();
        let key = |hash: u64, order: u64, line: u64| RowKey {
            hash: hash << 56,
            check: 1,
            order,
            line,
            id: line,
        };
        // Orders one apart near the top of the range: exact in memory and through the spill
        // files (as f64 they tied, and row 6 beat the newer row 5).
        let top = u64::MAX - 10;
        let keys = [
            key(7, top + 1, 1),
            key(7, top + 3, 2),
            key(7, top + 2, 3),
            key(7, top + 3, 4),
            key(8, top + 2, 5),
            key(8, top + 1, 6),
        ];
        for budget in [1 << 20, 1] {
            let mut index = KeyIndex::new(true, 100, budget, dir.path().join("s"));
            for k in &keys {
                // One key per batch, and a full table of other keys in between when spilling.
                index.take(std::slice::from_ref(k), 0, 10).unwrap();
                let filler: Vec<RowKey> = (0..20)
                    .map(|i| RowKey {
                        hash: (k.line << 8) | i,
                        check: 0,
                        order: 0,
                        line: 100,
                        id: 1000 + k.line * 100 + i,
                    })
                    .collect();
                index.take(&filler, 1, 10).unwrap();
            }
            let losers = index.finish().unwrap();
            assert_eq!(losers.len(), 4);
            for id in [1, 2, 3] {
                assert_eq!(losers.get(id), Some((0, 4)), "budget {budget}, row {id}");
            }
            assert_eq!(losers.get(4), None);
            assert_eq!(losers.get(5), None, "budget {budget}");
            assert_eq!(losers.get(6), Some((0, 5)), "budget {budget}");
        }
    }
}
