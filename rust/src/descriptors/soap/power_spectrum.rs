//! The power spectrum p^{s1 s2}_{l n1 n2} = k_l sum_m c^{s1}_{lm n1} c^{s2}_{lm n2} and its
//! derivatives, with featomic's normalisation and component order:
//!
//! - k_l = (-1)^l / sqrt(2l + 1) (consistent with a Clebsch-Gordan product), times sqrt(2)
//!   for s1 != s2, since only s1 <= s2 is stored and the dot product of two spectra must
//!   count the pair (s2, s1) as well;
//! - features ordered by species pair (s1 <= s2, species sorted by atomic number), then l,
//!   n1, n2, all n1, n2 kept (featomic's `keys_to_properties(["neighbor_1_type",
//!   "neighbor_2_type"])` order).

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
                self.outer(&mut acc, c1, c2, l);
                let k = self.factor(pair, l);
                let at = p * self.pair_block() + l * nn;
                for (o, a) in out[at..at + nn].iter_mut().zip(&acc) {
                    *o = k * a;
                }
            }
        }
    }

    /// Adds to `out` (n_features) the change of the power spectrum of `c` when the density
    /// coefficients of species `t` change by `d` ([lm][n]), to first order.
    pub fn derivative(&self, c: &[f64], d: &[f64], t: usize, out: &mut [f64], acc: &mut Vec<f64>) {
        let n = self.n_max;
        let nn = n * n;
        let db = self.density_block();
        acc.resize(nn, 0.0);
        for (p, &pair) in self.pairs.iter().enumerate() {
            if pair.0 != t && pair.1 != t {
                continue;
            }
            for l in 0..=self.l_max {
                acc.fill(0.0);
                let k = self.factor(pair, l);
                let at = p * self.pair_block() + l * nn;
                let block = &mut out[at..at + nn];
                if pair.0 == pair.1 {
                    // d(c.c) = d.c + c.d = X + X^T with X = d.c
                    self.outer(acc, d, &c[t * db..(t + 1) * db], l);
                    for n1 in 0..n {
                        for n2 in 0..n {
                            block[n1 * n + n2] += k * (acc[n1 * n + n2] + acc[n2 * n + n1]);
                        }
                    }
                    continue;
                }
                if pair.0 == t {
                    self.outer(acc, d, &c[pair.1 * db..(pair.1 + 1) * db], l);
                } else {
                    self.outer(acc, &c[pair.0 * db..(pair.0 + 1) * db], d, l);
                }
                for (o, a) in block.iter_mut().zip(acc.iter()) {
                    *o += k * a;
                }
            }
        }
    }

    /// acc[n1][n2] += sum over m of a[lm][n1] b[lm][n2] at angular channel l.
    #[inline]
    fn outer(&self, acc: &mut [f64], a: &[f64], b: &[f64], l: usize) {
        let n = self.n_max;
        for lm in l * l..(l + 1) * (l + 1) {
            let a = &a[lm * n..(lm + 1) * n];
            let b = &b[lm * n..(lm + 1) * n];
            for (n1, &x) in a.iter().enumerate() {
                for (o, &y) in acc[n1 * n..(n1 + 1) * n].iter_mut().zip(b) {
                    *o += x * y;
                }
            }
        }
    }
}
