//! A small seeded generator (SplitMix64) so that every fit is reproducible for a seed
//! without depending on a crate's stream staying stable across versions.

#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in 0..n.
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }

    /// `k` distinct indices of 0..n (all of them, shuffled, when k >= n).
    pub fn sample(&mut self, n: usize, k: usize) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..n).collect();
        if k >= n {
            self.shuffle(&mut idx);
            return idx;
        }
        for i in 0..k {
            let j = i + self.below(n - i);
            idx.swap(i, j);
        }
        idx.truncate(k);
        idx
    }
}

/// Stratified train/test split of a binary (or any discrete) target: the same share of each
/// class goes to the test set. Returns (train, test) row indices, each sorted.
pub fn stratified_split(y: &[f64], test_size: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut classes: Vec<f64> = y.to_vec();
    classes.sort_by(|a, b| a.total_cmp(b));
    classes.dedup();
    let mut rng = Rng::new(seed);
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for c in classes {
        let mut idx: Vec<usize> = (0..y.len()).filter(|&i| y[i] == c).collect();
        rng.shuffle(&mut idx);
        let k = ((idx.len() as f64) * test_size).round() as usize;
        test.extend_from_slice(&idx[..k]);
        train.extend_from_slice(&idx[k..]);
    }
    train.sort_unstable();
    test.sort_unstable();
    (train, test)
}

/// Plain random split (regression targets).
pub fn random_split(n: usize, test_size: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut idx: Vec<usize> = (0..n).collect();
    Rng::new(seed).shuffle(&mut idx);
    let k = ((n as f64) * test_size).round() as usize;
    let mut test = idx[..k].to_vec();
    let mut train = idx[k..].to_vec();
    train.sort_unstable();
    test.sort_unstable();
    (train, test)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_stratified_and_reproducible() {
        let y: Vec<f64> = (0..1000)
            .map(|i| if i % 10 == 0 { 1.0 } else { 0.0 })
            .collect();
        let (tr, te) = stratified_split(&y, 0.3, 7);
        assert_eq!(tr.len() + te.len(), 1000);
        assert_eq!(te.iter().filter(|&&i| y[i] == 1.0).count(), 30);
        assert_eq!(stratified_split(&y, 0.3, 7), (tr.clone(), te.clone()));
        assert_ne!(stratified_split(&y, 0.3, 8).1, te);
    }
}

/// A stable position in [0, 1) for `value` under `salt`: the same inputs give the same number
/// on every machine and in every release (BLAKE3, not the std hasher). Used for hold-out
/// membership and A/B arms, which must not move between nights.
pub fn hash_unit(salt: &str, value: &str) -> f64 {
    let mut h = blake3::Hasher::new();
    h.update(salt.as_bytes());
    h.update(&[0]);
    h.update(value.as_bytes());
    let b = h.finalize();
    let mut w = [0u8; 8];
    w.copy_from_slice(&b.as_bytes()[..8]);
    (u64::from_le_bytes(w) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod hash_tests {
    use super::hash_unit;

    #[test]
    fn hash_unit_is_stable_and_uniform() {
        // A fixed value: a change of hash would move every entity's arm and hold-out.
        assert_eq!(hash_unit("s", "AP1"), hash_unit("s", "AP1"));
        assert_ne!(hash_unit("s", "AP1"), hash_unit("t", "AP1"));
        let n = 20_000;
        let below = (0..n)
            .filter(|i| hash_unit("salt", &format!("E{i}")) < 0.2)
            .count() as f64
            / n as f64;
        assert!((below - 0.2).abs() < 0.01, "{below}");
    }
}
