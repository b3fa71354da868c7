//! The power spectrum p^{s1 s2}_{l n1 n2} = k_l sum_m c^{s1}_{lm n1} c^{s2}_{lm n2} and its
//! derivatives, with featomic's normalisation and component order:
//!
//! - k_l = (-1)^l / sqrt(2l + 1) (consistent with a Clebsch-Gordan product), times sqrt(2)
//!   for s1 != s2, since only s1 <= s2 is stored and the dot product of two spectra must
//!   count the pair (s2, s1) as well;
//! - features ordered by species pair (s1 <= s2, species sorted by atomic number), then l,
//!   n1, n2, all n1, n2 kept (featomic's `keys_to_properties(["neighbor_1_type",
//!   "neighbor_2_type"])` order).

use multiversion::multiversion;

/// The layout of the features and the contractions that produce them.
#[derive(Debug, Clone)]
pub struct PowerSpectrum {
    n_max: usize,
    l_max: usize,
    /// Species pairs s1 <= s2 in feature order.
    pairs: Vec<(usize, usize)>,
    /// k_l for s1 == s2, per l.
    scale: Vec<f64>,
}

impl PowerSpectrum {
    pub fn new(n_species: usize, n_max: usize, l_max: usize) -> Self {
        let pairs = (0..n_species)
            .flat_map(|a| (a..n_species).map(move |b| (a, b)))
            .collect();
        let scale = (0..=l_max)
            .map(|l| {
                let sign = if l % 2 == 0 { 1.0 } else { -1.0 };
                sign / ((2 * l + 1) as f64).sqrt()
            })
            .collect();
        PowerSpectrum {
            n_max,
            l_max,
            pairs,
            scale,
        }
    }

    pub fn n_features(&self) -> usize {
        self.pairs.len() * self.pair_block()
    }

    fn pair_block(&self) -> usize {
        (self.l_max + 1) * self.n_max * self.n_max
    }

    fn density_block(&self) -> usize {
        (self.l_max + 1) * (self.l_max + 1) * self.n_max
    }

    fn factor(&self, pair: (usize, usize), l: usize) -> f64 {
        if pair.0 == pair.1 {
            self.scale[l]
        } else {
            std::f64::consts::SQRT_2 * self.scale[l]
        }
    }

    /// A shorter vector with the same dot products: the blocks of one species with itself
    /// are symmetric in (n1, n2), so p . x = sum over the returned `columns` k of
    /// p[k] (weight[k] x[k]), weight 2 for n1 < n2 and 1 otherwise (n1 > n2 dropped). Kernel
    /// models contract n_features-long vectors with every sparse point, so this is
    /// (n_max + 1) / (2 n_max) of the work for one species.
    pub fn symmetric_columns(&self) -> (Vec<usize>, Vec<f64>) {
        let n = self.n_max;
        let (mut columns, mut weights) = (Vec::new(), Vec::new());
        for (p, &pair) in self.pairs.iter().enumerate() {
            for l in 0..=self.l_max {
                for n1 in 0..n {
                    for n2 in 0..n {
                        let same = pair.0 == pair.1;
                        if same && n1 > n2 {
                            continue;
                        }
                        columns.push(p * self.pair_block() + l * n * n + n1 * n + n2);
                        weights.push(if same && n1 < n2 { 2.0 } else { 1.0 });
                    }
                }
            }
        }
        (columns, weights)
    }

    /// The power spectrum of coefficients `c` ([species][lm][n]) into `out` (n_features).
    pub fn values(&self, c: &[f64], out: &mut [f64]) {
        let nn = self.n_max * self.n_max;
        let db = self.density_block();
        let mut acc = vec![0.0; nn];
        for (p, &pair) in self.pairs.iter().enumerate() {
            let c1 = &c[pair.0 * db..(pair.0 + 1) * db];
            let c2 = &c[pair.1 * db..(pair.1 + 1) * db];
            for l in 0..=self.l_max {
                acc.fill(0.0);
                outer(&mut acc, c1, c2, l, self.n_max);
                let k = self.factor(pair, l);
                let at = p * self.pair_block() + l * nn;
                for (o, a) in out[at..at + nn].iter_mut().zip(&acc) {
                    *o = k * a;
                }
            }
        }
    }

    /// The adjoint of `values`: dE/dc ([species][lm][n], written into `out`) from dE/dP
    /// (n_features), for coefficients `c`. Contracting dE/dc with dc/dr costs
    /// O(n_max (l_max + 1)^2) per neighbor instead of the O(n_max^2 (l_max + 1)^2) of
    /// forming dP/dr, which is why a model's forces go this way.
    pub fn adjoint(&self, c: &[f64], de: &[f64], out: &mut [f64]) {
        let n = self.n_max;
        let nn = n * n;
        let db = self.density_block();
        out.fill(0.0);
        for (p, &pair) in self.pairs.iter().enumerate() {
            for l in 0..=self.l_max {
                let k = self.factor(pair, l);
                let at = p * self.pair_block() + l * nn;
                let g = &de[at..at + nn];
                for lm in l * l..(l + 1) * (l + 1) {
                    let (a, b) = (pair.0 * db + lm * n, pair.1 * db + lm * n);
                    for n1 in 0..n {
                        let row = &g[n1 * n..(n1 + 1) * n];
                        // dE/dc_a[n1] += k sum_n2 G[n1][n2] c_b[n2]; dE/dc_b[n2] += k G[n1][n2] c_a[n1]
                        let along: f64 = row.iter().zip(&c[b..b + n]).map(|(g, x)| g * x).sum();
                        out[a + n1] += k * along;
                        let ca = k * c[a + n1];
                        for (o, g) in out[b..b + n].iter_mut().zip(row) {
                            *o += ca * g;
                        }
                    }
                }
            }
        }
    }

    /// The change of the power spectrum of `c` when the density coefficients of species `t`
    /// change by each of the k blocks of `d` ((k, lm, n)), to first order, into `out` (k,
    /// n_features): added to it with `accumulate`, else written over the blocks that involve
    /// species t (the others are left alone: they do not change).
    pub fn derivatives(
        &self,
        c: &[f64],
        d: &[f64],
        t: usize,
        out: &mut [f64],
        accumulate: bool,
        acc: &mut Vec<f64>,
    ) {
        derivatives_kernel(self, c, d, t, out, accumulate, acc)
    }
}

/// `PowerSpectrum::derivatives`, compiled for the vector extensions the CPU has: these
/// contractions are most of the gradient time, and the default x86-64 target has only SSE2.
/// Common n_max get a kernel with n_max known at compile time, whose n x n accumulator
/// lives in vector registers.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma", "aarch64+neon"))]
fn derivatives_kernel(
    ps: &PowerSpectrum,
    c: &[f64],
    d: &[f64],
    t: usize,
    out: &mut [f64],
    accumulate: bool,
    acc: &mut Vec<f64>,
) {
    macro_rules! fixed {
        ($($n:literal)*) => {
            match ps.n_max {
                $($n => derivatives_n::<$n>(ps, c, d, t, out, accumulate, acc),)*
                _ => derivatives_n::<0>(ps, c, d, t, out, accumulate, acc),
            }
        };
    }
    fixed!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16)
}

/// The blocks (pair index, l, factor, which side t is on) that a change of species t touches.
#[inline(always)]
fn touched(ps: &PowerSpectrum, t: usize) -> impl Iterator<Item = (usize, (usize, usize))> + '_ {
    ps.pairs
        .iter()
        .cloned()
        .enumerate()
        .filter(move |(_, pair)| pair.0 == t || pair.1 == t)
}

/// `derivatives_kernel` for n_max = N, or for any n_max with N = 0. With N > 0 the n x n
/// accumulator is a local array the compiler keeps in registers.
#[inline(always)]
fn derivatives_n<const N: usize>(
    ps: &PowerSpectrum,
    c: &[f64],
    d: &[f64],
    t: usize,
    out: &mut [f64],
    accumulate: bool,
    heap: &mut Vec<f64>,
) {
    let n = if N == 0 { ps.n_max } else { N };
    let nn = n * n;
    let db = ps.density_block();
    let nf = ps.n_features();
    let species_block = |s: usize| &c[s * db..(s + 1) * db];
    let mut stack = [[0.0; N]; N];
    heap.resize(if N == 0 { nn } else { 0 }, 0.0);
    for (d, out) in d.chunks_exact(db).zip(out.chunks_exact_mut(nf)) {
        for (p, pair) in touched(ps, t) {
            for l in 0..=ps.l_max {
                let acc = if N == 0 {
                    &mut heap[..]
                } else {
                    stack.as_flattened_mut()
                };
                acc.fill(0.0);
                if pair.0 == pair.1 {
                    // d(c.c) = d.c + c.d = X + X^T with X = d.c
                    outer(acc, d, species_block(t), l, n);
                    for n1 in 0..n {
                        for n2 in 0..n1 {
                            let sym = acc[n1 * n + n2] + acc[n2 * n + n1];
                            acc[n1 * n + n2] = sym;
                            acc[n2 * n + n1] = sym;
                        }
                        acc[n1 * n + n1] *= 2.0;
                    }
                } else if pair.0 == t {
                    outer(acc, d, species_block(pair.1), l, n);
                } else {
                    outer(acc, species_block(pair.0), d, l, n);
                }
                let at = p * ps.pair_block() + l * nn;
                store(&mut out[at..at + nn], acc, ps.factor(pair, l), accumulate);
            }
        }
    }
}

/// acc[n1][n2] += sum over m of a[lm][n1] b[lm][n2] at angular channel l.
#[inline(always)]
fn outer(acc: &mut [f64], a: &[f64], b: &[f64], l: usize, n: usize) {
    for lm in l * l..(l + 1) * (l + 1) {
        let a = &a[lm * n..(lm + 1) * n];
        let b = &b[lm * n..(lm + 1) * n];
        for n1 in 0..n {
            let x = a[n1];
            for n2 in 0..n {
                acc[n1 * n + n2] += x * b[n2];
            }
        }
    }
}

/// block = f acc, or block += f acc.
#[inline(always)]
fn store(block: &mut [f64], acc: &[f64], f: f64, accumulate: bool) {
    if accumulate {
        block.iter_mut().zip(acc).for_each(|(o, a)| *o += f * a);
    } else {
        block.iter_mut().zip(acc).for_each(|(o, a)| *o = f * a);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    /// The fixed-n_max kernels against the generic one (used beyond n_max 16).
    #[test]
    fn fixed_and_generic_kernels_agree() {
        let mut rng = SmallRng::seed_from_u64(1);
        for n_max in [1, 3, 8] {
            let ps = PowerSpectrum::new(3, n_max, 4);
            let db = ps.density_block();
            let c: Vec<f64> = (0..3 * db).map(|_| rng.random_range(-1.0..1.0)).collect();
            let d: Vec<f64> = (0..2 * db).map(|_| rng.random_range(-1.0..1.0)).collect();
            for t in 0..3 {
                for accumulate in [false, true] {
                    let start: Vec<f64> = (0..2 * ps.n_features()).map(|k| k as f64).collect();
                    let (mut fixed, mut any) = (start.clone(), start);
                    ps.derivatives(&c, &d, t, &mut fixed, accumulate, &mut Vec::new());
                    derivatives_n::<0>(&ps, &c, &d, t, &mut any, accumulate, &mut Vec::new());
                    for (a, b) in fixed.iter().zip(&any) {
                        assert!((a - b).abs() < 1e-13 * (1.0 + b.abs()), "{a} vs {b}");
                    }
                }
            }
        }
    }

    /// Dot products of two power spectra over `symmetric_columns` (one side weighted) equal
    /// the full ones, for one and for several species; the column count is as stated.
    #[test]
    fn symmetric_columns_keep_dot_products() {
        let mut rng = SmallRng::seed_from_u64(3);
        for (n_species, n_max, l_max) in [(1, 8, 8), (2, 3, 4), (3, 4, 2)] {
            let ps = PowerSpectrum::new(n_species, n_max, l_max);
            let db = ps.density_block();
            let mut spectra = [vec![0.0; ps.n_features()], vec![0.0; ps.n_features()]];
            for p in spectra.iter_mut() {
                let c: Vec<f64> = (0..n_species * db)
                    .map(|_| rng.random_range(-1.0..1.0))
                    .collect();
                ps.values(&c, p);
            }
            let full: f64 = spectra[0].iter().zip(&spectra[1]).map(|(a, b)| a * b).sum();
            let (columns, weights) = ps.symmetric_columns();
            let short: f64 = columns
                .iter()
                .zip(&weights)
                .map(|(&k, w)| spectra[0][k] * w * spectra[1][k])
                .sum();
            assert!(
                (full - short).abs() < 1e-12 * full.abs().max(1.0),
                "{full} vs {short}"
            );
            let same = n_species * (l_max + 1) * n_max * (n_max + 1) / 2;
            let cross = n_species * (n_species - 1) / 2 * (l_max + 1) * n_max * n_max;
            assert_eq!(columns.len(), same + cross);
        }
    }

    /// The adjoint is the transpose of `derivatives`: de . (dP/dc d) = (dE/dc) . d for any
    /// slope de and coefficient change d of each species (pairs of equal and of different
    /// species, so both factors k_l).
    #[test]
    fn adjoint_is_the_transpose_of_derivatives() {
        let mut rng = SmallRng::seed_from_u64(2);
        let ps = PowerSpectrum::new(2, 5, 3);
        let db = ps.density_block();
        let c: Vec<f64> = (0..2 * db).map(|_| rng.random_range(-1.0..1.0)).collect();
        let de: Vec<f64> = (0..ps.n_features())
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let mut dc = vec![0.0; 2 * db];
        ps.adjoint(&c, &de, &mut dc);
        for t in 0..2 {
            let d: Vec<f64> = (0..db).map(|_| rng.random_range(-1.0..1.0)).collect();
            let mut dp = vec![0.0; ps.n_features()];
            ps.derivatives(&c, &d, t, &mut dp, true, &mut Vec::new());
            let forward: f64 = de.iter().zip(&dp).map(|(a, b)| a * b).sum();
            let back: f64 = dc[t * db..(t + 1) * db]
                .iter()
                .zip(&d)
                .map(|(a, b)| a * b)
                .sum();
            assert!(
                (forward - back).abs() < 1e-12 * forward.abs().max(1.0),
                "{forward} vs {back}"
            );
        }
    }
}
