//! The orthonormal GTO radial basis and its exact radial integral against a Gaussian atom
//! density, with featomic's definitions (Musil et al., J. Chem. Phys. 154, 114109 (2021),
//! appendix A):
//!
//! - primitive GTOs phi_n(r) = N_n r^n exp(-r^2 / (2 s_n^2)), n = 0 .. n_max-1, with widths
//!   s_n = cutoff * max(sqrt(n), 1) / n_max and N_n normalising int phi_n^2 r^2 dr = 1;
//! - Lowdin orthonormalisation R_k = sum_n (S^{-1/2})_{kn} phi_n, S the overlap matrix;
//! - the density of one atom g(r) = (pi sigma^2)^{-3/4} exp(-r^2 / (2 sigma^2)) (unit L2
//!   norm), so that the expansion coefficient of a neighbor at distance r along u is
//!   I_lk(r) Y_lm(u) with I_lk(r) = 4 pi int R_k(x) x^2 exp(-c (x^2 + r^2)) i_l(2 c x r) dx,
//!   c = 1 / (2 sigma^2), which for GTOs is a confluent hypergeometric function 1F1.

use nalgebra::{DMatrix, SymmetricEigen};

use crate::error::{Error, Result};

/// Terms of the 1F1 series allowed before giving up: the series needs about z terms, and z
/// grows as (cutoff / atom_sigma)^2.
const MAX_SERIES_TERMS: usize = 2_000_000;

/// ln Gamma(x) for x a positive multiple of 1/2, exactly by the recurrence
/// Gamma(x + 1) = x Gamma(x) from Gamma(1) = 1 or Gamma(1/2) = sqrt(pi).
pub(crate) fn ln_gamma_half_integer(x: f64) -> f64 {
    debug_assert!(x > 0.0 && (2.0 * x).fract() == 0.0);
    let (mut y, mut acc) = if x.fract() == 0.0 {
        (1.0, 0.0)
    } else {
        (0.5, 0.5 * std::f64::consts::PI.ln())
    };
    while y < x {
        acc += y.ln();
        y += 1.0;
    }
    acc
}

/// exp(-z) 1F1(a; b; z) for a, b > 0 (multiples of 1/2) and z >= 0.
///
/// Written by hand because no maintained Rust crate provides 1F1. Large z use the asymptotic
/// expansion when it converges to full precision, everything else the Kummer series.
pub(crate) fn scaled_hyp1f1(a: f64, b: f64, z: f64) -> Result<f64> {
    if z > ASYMPTOTIC_FROM {
        if let Some(v) = scaled_hyp1f1_asymptotic(a, b, z) {
            return Ok(v);
        }
    }
    scaled_hyp1f1_series(a, b, z)
}

/// Smallest z for which the asymptotic expansion is tried.
const ASYMPTOTIC_FROM: f64 = 40.0;

/// The Kummer series. For these arguments every term is positive, so summing it loses no
/// precision; the running sum is rescaled when it grows large, so exp(z) may exceed the f64
/// range. It needs about z terms.
pub(crate) fn scaled_hyp1f1_series(a: f64, b: f64, z: f64) -> Result<f64> {
    const RESCALE: f64 = 1e200;
    let mut term = 1.0_f64;
    let mut sum = 1.0_f64;
    let mut log_scale = 0.0_f64;
    for k in 0..MAX_SERIES_TERMS {
        let k = k as f64;
        let ratio = (a + k) / (b + k) * z / (k + 1.0);
        term *= ratio;
        sum += term;
        // past the largest term the ratios decrease, so with ratio < 1/2 the tail is below
        // the last term
        if ratio < 0.5 && term <= 1e-18 * sum {
            return Ok(sum * (log_scale - z).exp());
        }
        if sum > RESCALE {
            sum /= RESCALE;
            term /= RESCALE;
            log_scale += RESCALE.ln();
        }
    }
    Err(Error::invalid(format!(
        "the radial integral does not converge (1F1({a}, {b}, {z})): atom_sigma is too small \
         for this cutoff"
    )))
}

/// exp(-z) 1F1(a; b; z) = Gamma(b) / Gamma(a) z^(a-b) sum_s (b-a)_s (1-a)_s / (s! z^s), the
/// large-z expansion (Abramowitz and Stegun 13.5.1; the exp(-z) branch is below 1e-17 here),
/// when its terms fall below 1e-17 of the sum before they start to grow; None otherwise.
fn scaled_hyp1f1_asymptotic(a: f64, b: f64, z: f64) -> Option<f64> {
    let mut term = 1.0_f64;
    let mut sum = 1.0_f64;
    for s in 0..200 {
        let s = s as f64;
        let next = term * (b - a + s) * (1.0 - a + s) / ((s + 1.0) * z);
        if next == 0.0 || next.abs() <= 1e-17 * sum.abs() {
            let log_prefactor =
                ln_gamma_half_integer(b) - ln_gamma_half_integer(a) + (a - b) * z.ln();
            return Some(sum * log_prefactor.exp());
        }
        if next.abs() > term.abs() {
            return None;
        }
        sum += next;
        term = next;
    }
    None
}

/// The orthonormalised GTO basis of one cutoff and n_max.
#[derive(Debug, Clone)]
pub struct GtoBasis {
    pub n_max: usize,
    /// b_n = 1 / (2 s_n^2), 1/Angstrom^2.
    pub exponents: Vec<f64>,
    /// S^{-1/2} diag(N): R_k = sum_n transform[k * n_max + n] r^n exp(-b_n r^2).
    pub transform: Vec<f64>,
}

impl GtoBasis {
    pub fn new(cutoff: f64, n_max: usize) -> Result<Self> {
        let widths: Vec<f64> = (0..n_max)
            .map(|n| cutoff * (n as f64).sqrt().max(1.0) / n_max as f64)
            .collect();
        let exponents: Vec<f64> = widths.iter().map(|s| 0.5 / (s * s)).collect();
        // ln N_n: int_0^inf r^{2n+2} exp(-r^2/s^2) dr = s^{2n+3} Gamma(n + 3/2) / 2
        let ln_norm: Vec<f64> = (0..n_max)
            .map(|n| {
                let nf = n as f64;
                0.5 * (2f64.ln()
                    - (2.0 * nf + 3.0) * widths[n].ln()
                    - ln_gamma_half_integer(nf + 1.5))
            })
            .collect();
        let overlap = DMatrix::from_fn(n_max, n_max, |n, m| {
            let p = 0.5 * (n + m + 3) as f64;
            (ln_norm[n] + ln_norm[m] + ln_gamma_half_integer(p)
                - 2f64.ln()
                - p * (exponents[n] + exponents[m]).ln())
            .exp()
        });
        let eigen = SymmetricEigen::new(overlap);
        if eigen.eigenvalues.iter().any(|&e| e <= f64::EPSILON) {
            return Err(Error::invalid(format!(
                "n_max = {n_max} makes the GTO radial basis linearly dependent (singular \
                 overlap matrix); use a smaller n_max"
            )));
        }
        let inv_sqrt = eigen.eigenvalues.map(|e| 1.0 / e.sqrt());
        let s_inv_half = &eigen.eigenvectors
            * DMatrix::from_diagonal(&inv_sqrt)
            * eigen.eigenvectors.transpose();
        let mut transform = vec![0.0; n_max * n_max];
        for k in 0..n_max {
            for n in 0..n_max {
                transform[k * n_max + n] = s_inv_half[(k, n)] * ln_norm[n].exp();
            }
        }
        Ok(GtoBasis {
            n_max,
            exponents,
            transform,
        })
    }
}

/// I_lk(r) and its first two derivatives in r, evaluated exactly.
#[derive(Debug, Clone)]
pub struct RadialIntegral {
    pub basis: GtoBasis,
    pub l_max: usize,
    /// c = 1 / (2 sigma^2)
    c: f64,
    /// ln of the r-independent factor of each primitive integral, [l][n]:
    /// (pi / sigma^2)^{3/4} c^l Gamma(a) / Gamma(b) (c + b_n)^{-a}
    ln_prefactor: Vec<f64>,
}

impl RadialIntegral {
    pub fn new(cutoff: f64, n_max: usize, l_max: usize, atom_sigma: f64) -> Result<Self> {
        let basis = GtoBasis::new(cutoff, n_max)?;
        let sigma2 = atom_sigma * atom_sigma;
        let c = 0.5 / sigma2;
        let global = 0.75 * (std::f64::consts::PI / sigma2).ln();
        let mut ln_prefactor = Vec::with_capacity((l_max + 1) * n_max);
        for l in 0..=l_max {
            for n in 0..n_max {
                let (a, b) = shape(n, l);
                ln_prefactor.push(
                    global + l as f64 * c.ln() + ln_gamma_half_integer(a)
                        - ln_gamma_half_integer(b)
                        - a * (c + basis.exponents[n]).ln(),
                );
            }
        }
        Ok(RadialIntegral {
            basis,
            l_max,
            c,
            ln_prefactor,
        })
    }

    /// Values per distance: (l_max + 1) * n_max, index l * n_max + k.
    pub fn size(&self) -> usize {
        (self.l_max + 1) * self.basis.n_max
    }

    /// I, dI/dr and d2I/dr2 at distance r (Angstrom), each `size()` long.
    pub fn compute(
        &self,
        r: f64,
        value: &mut [f64],
        first: &mut [f64],
        second: &mut [f64],
    ) -> Result<()> {
        let n_max = self.basis.n_max;
        let c = self.c;
        let mut g = vec![[0.0; 3]; n_max];
        for l in 0..=self.l_max {
            let lf = l as f64;
            let (p0, p1, p2) = (power(r, l, 0), power(r, l, 1), power(r, l, 2));
            for (n, g) in g.iter_mut().enumerate() {
                let bn = self.basis.exponents[n];
                let (a, b) = shape(n, l);
                // 1F1 and its z-derivatives, all times exp(-z) (the same factor at this r)
                let q = c * c / (c + bn);
                let z = q * r * r;
                let m0 = scaled_hyp1f1(a, b, z)?;
                let m1 = a / b * scaled_hyp1f1(a + 1.0, b + 1.0, z)?;
                let m2 = a * (a + 1.0) / (b * (b + 1.0)) * scaled_hyp1f1(a + 2.0, b + 2.0, z)?;
                // h(r) = 1F1(q r^2) and its r-derivatives
                let h0 = m0;
                let h1 = 2.0 * q * r * m1;
                let h2 = 2.0 * q * m1 + 4.0 * q * q * r * r * m2;
                // (exp(-c r^2) h)' = exp(-c r^2) f1, and f1' = exp(-c r^2) f2
                let f1 = h1 - 2.0 * c * r * h0;
                let f2 = h2 - 2.0 * c * h0 - 4.0 * c * r * h1 + 4.0 * c * c * r * r * h0;
                // exp(-c r^2) 1F1 = exp(z - c r^2) * [exp(-z) 1F1], and z - c r^2 <= 0
                let e = (self.ln_prefactor[l * n_max + n] - c * bn / (c + bn) * r * r).exp();
                g[0] = e * p0 * h0;
                g[1] = e * (lf * p1 * h0 + p0 * f1);
                g[2] = e * (lf * (lf - 1.0) * p2 * h0 + 2.0 * lf * p1 * f1 + p0 * f2);
            }
            for k in 0..n_max {
                let t = &self.basis.transform[k * n_max..(k + 1) * n_max];
                let dot = |d: usize| t.iter().zip(&g).map(|(t, g)| t * g[d]).sum::<f64>();
                value[l * n_max + k] = dot(0);
                first[l * n_max + k] = dot(1);
                second[l * n_max + k] = dot(2);
            }
        }
        Ok(())
    }
}

/// (a, b) = ((n + l + 3) / 2, l + 3/2) of the primitive integral of GTO n at angular l.
fn shape(n: usize, l: usize) -> (f64, f64) {
    (0.5 * (n + l + 3) as f64, l as f64 + 1.5)
}

/// r^(l - d), and 0 where l < d (those terms carry a factor that vanishes).
fn power(r: f64, l: usize, d: usize) -> f64 {
    if l < d {
        0.0
    } else {
        r.powi((l - d) as i32)
    }
}
