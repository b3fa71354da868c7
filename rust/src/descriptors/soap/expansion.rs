//! Density expansion coefficients of one central atom, c^s_{lmn} = sum over neighbors j of
//! species s of f_c(r_ij) I_ln(r_ij) Y_lm(r_ij / |r_ij|), plus the central atom's own
//! Gaussian (l = 0 only), and their derivatives with respect to the neighbor positions.
//!
//! Layout: c is [species][lm][n] with n fastest, so that the power spectrum sums over m of
//! products of contiguous n-vectors.

use multiversion::multiversion;

use super::spherical_harmonics::SphericalHarmonics;
use super::Soap;
use crate::descriptors::Env;

use crate::descriptors::VOIGT;

/// Below this distance (Angstrom) a neighbor sits on the centre and its direction is taken
/// along z, as featomic does.
const COINCIDENT: f64 = 1e-6;

/// Per-thread buffers for one central atom at a time.
pub struct Workspace {
    /// c, [species][lm][n].
    pub c: Vec<f64>,
    /// Gradient rows of the current atom: the distinct neighbor atoms and the atom itself,
    /// sorted, with their species index.
    pub rows: Vec<usize>,
    pub row_species: Vec<usize>,
    /// dc/dr_j per row, [row][xyz][lm][n], only for the species of the row's atom. The row
    /// of the central atom is left at zero (it is minus the sum of the others).
    pub d_rows: Vec<f64>,
    /// sum over pairs of dc/dr_ij (x) r_ij in Voigt order, [species][6][lm][n].
    pub d_virial: Vec<f64>,
    /// The pairs of the current atom within the cutoff (the list may reach further).
    pairs: Vec<usize>,
    /// Row index of each of those pairs.
    pair_rows: Vec<usize>,
    radial: Vec<f64>,
    d_radial: Vec<f64>,
    ylm: Vec<f64>,
    d_ylm: Vec<f64>,
    harmonics: SphericalHarmonics,
    /// The central atom's own contribution to c^{own species}_{00n}.
    centre: Vec<f64>,
}

impl Workspace {
    pub fn new(soap: &Soap) -> Self {
        let width = soap.spline.width();
        let harmonics = SphericalHarmonics::new(soap.params.l_max);
        let lm = harmonics.size();
        let n_max = soap.params.n_max;
        // the centre's Gaussian sits at r = 0, where only Y_00 = 1/sqrt(4 pi) survives
        let mut at_zero = vec![0.0; width];
        soap.spline.evaluate(0.0, &mut at_zero, None);
        let y00 = 0.5 / std::f64::consts::PI.sqrt();
        let centre = at_zero[..n_max]
            .iter()
            .map(|v| soap.params.center_atom_weight * y00 * v)
            .collect();
        Workspace {
            c: vec![0.0; soap.params.species.len() * lm * n_max],
            rows: Vec::new(),
            row_species: Vec::new(),
            d_rows: Vec::new(),
            d_virial: Vec::new(),
            pairs: Vec::new(),
            pair_rows: Vec::new(),
            radial: vec![0.0; width],
            d_radial: vec![0.0; width],
            ylm: vec![0.0; lm],
            d_ylm: vec![0.0; 3 * lm],
            harmonics,
            centre,
        }
    }

    /// Fills c for atom i and, with `gradients`, the rows, d_rows and d_virial.
    pub fn expand(
        &mut self,
        soap: &Soap,
        env: &Env,
        i: usize,
        gradients: bool,
    ) {
        let (list, types) = (env.list, env.types);
        let n_max = soap.params.n_max;
        let l_max = soap.params.l_max;
        let lm_size = self.ylm.len();
        let block = lm_size * n_max;
        let n_species = soap.params.species.len();
        self.c.fill(0.0);
        let own = types[i] * block;
        for (c, v) in self.c[own..own + n_max].iter_mut().zip(&self.centre) {
            *c += v;
        }
        let cutoff = soap.params.cutoff;
        self.pairs.clear();
        self.pairs
            .extend(list.pairs_of(i).filter(|&p| list.distances[p] < cutoff));
        if gradients {
            self.rows.clear();
            self.rows
                .extend(self.pairs.iter().map(|&p| list.neighbors[p]));
            self.rows.push(i);
            self.rows.sort_unstable();
            self.rows.dedup();
            self.row_species.clear();
            self.row_species.extend(self.rows.iter().map(|&j| types[j]));
            self.pair_rows.clear();
            for &p in &self.pairs {
                let j = list.neighbors[p];
                self.pair_rows.push(self.rows.binary_search(&j).unwrap());
            }
            self.d_rows.clear();
            self.d_rows.resize(self.rows.len() * 3 * block, 0.0);
            self.d_virial.clear();
            self.d_virial.resize(n_species * 6 * block, 0.0);
        }
        for k in 0..self.pairs.len() {
            let pair = self.pairs[k];
            let j = list.neighbors[pair];
            let r = list.distances[pair];
            let vector = list.vectors[pair];
            let (u, inv_r) = if r < COINCIDENT {
                ([0.0, 0.0, 1.0], 0.0)
            } else {
                let inv = 1.0 / r;
                ([vector[0] * inv, vector[1] * inv, vector[2] * inv], inv)
            };
            let (fc, dfc) = soap.smoothing(r);
            let t = types[j];
            soap.spline.evaluate(
                r,
                &mut self.radial,
                gradients.then_some(&mut self.d_radial[..]),
            );
            self.harmonics.compute(
                u,
                &mut self.ylm,
                gradients.then_some((&mut self.d_ylm[..], inv_r)),
            );
            if gradients {
                // (f_c I)' = f_c' I + f_c I', before I is scaled in place below
                for (d, v) in self.d_radial.iter_mut().zip(&self.radial) {
                    *d = dfc * v + fc * *d;
                }
            }
            for v in self.radial.iter_mut() {
                *v *= fc;
            }
            let c = &mut self.c[t * block..(t + 1) * block];
            let terms = PairTerms {
                n_max,
                l_max,
                radial: &self.radial,
                d_radial: &self.d_radial,
                ylm: &self.ylm,
                d_ylm: &self.d_ylm,
                u,
                vector,
            };
            if !gradients {
                add_pair(&terms, c, None);
                continue;
            }
            let row = self.pair_rows[k];
            // a periodic image of the centre moves with it: no row
            let row_block =
                (j != i).then(|| &mut self.d_rows[row * 3 * block..(row + 1) * 3 * block]);
            let virial = &mut self.d_virial[t * 6 * block..(t + 1) * 6 * block];
            add_pair(&terms, c, Some((row_block, virial)));
        }
    }
}

/// What one pair contributes, for `add_pair`.
struct PairTerms<'a> {
    n_max: usize,
    l_max: usize,
    /// f_c I and (f_c I)', [l][n].
    radial: &'a [f64],
    d_radial: &'a [f64],
    /// Y_lm and dY_lm/dr_a, [lm] and [a][lm].
    ylm: &'a [f64],
    d_ylm: &'a [f64],
    u: [f64; 3],
    vector: [f64; 3],
}

/// c[lm][n] += f_c I_ln Y_lm; with `gradients = (row, virial)`, also
/// dc/dr_ij,a = (f_c I)' u_a Y + f_c I dY/dr_a into the row ([a][lm][n]), when there is one,
/// and dc/dr_ij,a (r_ij)_b into the virial ([voigt][lm][n]).
///
/// Compiled for the CPU's vector extensions, with n_max fixed at compile time for common
/// values: after the contractions this is the largest cost of the gradients.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma", "aarch64+neon"))]
fn add_pair(terms: &PairTerms, c: &mut [f64], gradients: Option<(Option<&mut [f64]>, &mut [f64])>) {
    macro_rules! fixed {
        ($($n:literal)*) => {
            match terms.n_max {
                $($n => add_pair_n::<$n>(terms, c, gradients),)*
                _ => add_pair_n::<0>(terms, c, gradients),
            }
        };
    }
    fixed!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16)
}

/// `add_pair` for n_max = N, or for any n_max with N = 0.
#[inline(always)]
fn add_pair_n<const N: usize>(
    terms: &PairTerms,
    c: &mut [f64],
    gradients: Option<(Option<&mut [f64]>, &mut [f64])>,
) {
    let n_max = if N == 0 { terms.n_max } else { N };
    let lm_size = terms.ylm.len();
    let block = lm_size * n_max;
    for l in 0..=terms.l_max {
        let radial = &terms.radial[l * n_max..(l + 1) * n_max];
        for lm in l * l..(l + 1) * (l + 1) {
            let y = terms.ylm[lm];
            for (c, r) in c[lm * n_max..(lm + 1) * n_max].iter_mut().zip(radial) {
                *c += y * r;
            }
        }
    }
    let Some((mut row_block, virial)) = gradients else {
        return;
    };
    for l in 0..=terms.l_max {
        let radial = &terms.radial[l * n_max..(l + 1) * n_max];
        let d_radial = &terms.d_radial[l * n_max..(l + 1) * n_max];
        for lm in l * l..(l + 1) * (l + 1) {
            let y = terms.ylm[lm];
            let alpha = terms.u.map(|u| u * y);
            let beta = [0, 1, 2].map(|a| terms.d_ylm[a * lm_size + lm]);
            let at = lm * n_max;
            for n in 0..n_max {
                let dc = [0, 1, 2].map(|a| alpha[a] * d_radial[n] + beta[a] * radial[n]);
                if let Some(row_block) = row_block.as_deref_mut() {
                    for a in 0..3 {
                        row_block[a * block + at + n] += dc[a];
                    }
                }
                for (v, &(a, b)) in VOIGT.iter().enumerate() {
                    virial[v * block + at + n] += dc[a] * terms.vector[b];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    /// The fixed-n_max pair kernels against the generic one (used beyond n_max 16).
    #[test]
    fn fixed_and_generic_kernels_agree() {
        let mut rng = SmallRng::seed_from_u64(2);
        let mut random =
            |n: usize| -> Vec<f64> { (0..n).map(|_| rng.random_range(-1.0..1.0)).collect() };
        let (n_max, l_max) = (5, 3);
        let lm = (l_max + 1) * (l_max + 1);
        let (radial, d_radial) = (random((l_max + 1) * n_max), random((l_max + 1) * n_max));
        let (ylm, d_ylm) = (random(lm), random(3 * lm));
        let terms = PairTerms {
            n_max,
            l_max,
            radial: &radial,
            d_radial: &d_radial,
            ylm: &ylm,
            d_ylm: &d_ylm,
            u: [0.6, 0.0, 0.8],
            vector: [1.2, 0.0, 1.6],
        };
        let block = lm * n_max;
        let run = |fixed: bool| {
            let (mut c, mut row, mut virial) =
                (vec![0.5; block], vec![0.1; 3 * block], vec![0.2; 6 * block]);
            let grads = Some((Some(&mut row[..]), &mut virial[..]));
            if fixed {
                add_pair_n::<5>(&terms, &mut c, grads);
            } else {
                add_pair_n::<0>(&terms, &mut c, grads);
            }
            (c, row, virial)
        };
        assert_eq!(run(true), run(false));
    }
}
