//! A small deterministic PRNG: xoshiro256** seeded through SplitMix64.
//!
//! Every entity and event draws from its own *keyed* stream (`Rng::keyed(seed, stream, a, b)`),
//! so that a value depends only on the seed and what it describes — never on the order in
//! which things are generated, on the number of threads, or on which nights are written.
//! That is what makes the same day's transactions byte-identical in two nights' extracts.

/// The SplitMix64 finaliser: a fast, well-mixing bijection on `u64`.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Independent random streams; one per kind of thing generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Key = 1,
    Enterprise,
    Person,
    Ring,
    Application,
    Repayment,
    Transaction,
    Counterparty,
    Tax,
    Telecom,
    Contacts,
    Court,
    Mess,
}

#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            mix64(x)
        };
        let s = [next(), next(), next(), next()];
        Rng { s }
    }

    /// The stream of `(stream, a, b)` under `seed`: e.g. enterprise `a`, month `b`.
    pub fn keyed(seed: u64, stream: Stream, a: u64, b: u64) -> Rng {
        let k = mix64(
            seed ^ mix64(
                (stream as u64).wrapping_mul(0xd6e8_feb8_6659_fd93)
                    ^ mix64(a.wrapping_add(0x632b_e59b_d9b4_e019) ^ mix64(b)),
            ),
        );
        Rng::new(k)
    }

    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [0, n); 0 when n is 0.
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform in [lo, hi], inclusive.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        debug_assert!(lo <= hi);
        lo + self.below((hi - lo + 1) as u64) as i64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.f64(); // (0, 1]
        let u2 = self.f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    pub fn lognormal(&mut self, mu: f64, sigma: f64) -> f64 {
        (mu + sigma * self.normal()).exp()
    }

    /// Poisson: Knuth's method for small means, a rounded normal above 30.
    pub fn poisson(&mut self, lambda: f64) -> u32 {
        if lambda <= 0.0 {
            return 0;
        }
        if lambda > 30.0 {
            let x = lambda + lambda.sqrt() * self.normal();
            return x.round().max(0.0) as u32;
        }
        let l = (-lambda).exp();
        let mut k = 0u32;
        let mut p = 1.0;
        loop {
            p *= self.f64();
            if p <= l {
                return k;
            }
            k += 1;
        }
    }

    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }

    /// An index drawn with the given (non-negative) weights.
    pub fn weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut x = self.f64() * total;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }

    /// An index in [0, n) skewed towards 0 (the first entries of a list are the common ones).
    pub fn skewed(&mut self, n: usize, power: f64) -> usize {
        ((self.f64().powf(power) * n as f64) as usize).min(n.saturating_sub(1))
    }
}

pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// A bijection on [0, 10^digits): `i` to a scrambled serial that still never collides.
pub fn scramble(i: u64, digits: u32) -> u64 {
    let m = 10u64.pow(digits);
    // Multipliers coprime to 10 make `a*i + b mod 10^k` a permutation.
    const A: u64 = 7_368_787;
    const B: u64 = 2_718_281;
    ((i % m) as u128 * A as u128 % m as u128 + B as u128 % m as u128) as u64 % m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_streams_are_stable_and_distinct() {
        let a: Vec<u64> = (0..4)
            .map(|_| Rng::keyed(42, Stream::Person, 7, 0).next_u64())
            .collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        let mut x = Rng::keyed(42, Stream::Person, 7, 0);
        let mut y = Rng::keyed(42, Stream::Person, 8, 0);
        let mut z = Rng::keyed(43, Stream::Person, 7, 0);
        let (x, y, z) = (x.next_u64(), y.next_u64(), z.next_u64());
        assert!(x != y && x != z && y != z);
    }

    #[test]
    fn distributions_have_the_right_moments() {
        let mut r = Rng::new(1);
        let n = 20_000;
        let mean = (0..n).map(|_| r.normal()).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.05, "{mean}");
        let pm = (0..n).map(|_| r.poisson(3.0) as f64).sum::<f64>() / n as f64;
        assert!((pm - 3.0).abs() < 0.1, "{pm}");
        let u = (0..n).map(|_| r.f64()).fold(0.0f64, f64::max);
        assert!(u < 1.0);
        assert!((0..1000).all(|_| r.below(7) < 7));
    }

    #[test]
    fn scramble_is_a_permutation() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..1000 {
            assert!(seen.insert(scramble(i, 3)));
        }
        assert!(scramble(123_456, 8) < 100_000_000);
    }
}
