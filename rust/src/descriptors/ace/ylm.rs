//! Complex spherical harmonics with the Condon-Shortley phase, normalised so that Y_00 = 1
//! (sqrt(4 pi) times the orthonormal ones, pacemaker's convention), for m >= 0, with their
//! gradients with respect to the pair vector. Y_l,-m = (-1)^m conj(Y_lm) gives the rest.
//!
//! Y_lm(u) = P_lm(z) (x + i y)^m for the unit vector u = (x, y, z), where P_lm is the
//! associated Legendre function divided by sin^m theta, by the stable recursions in l.
//! As a function of the vector r, grad Y = (I - u u^T) grad_u Y / |r|.

use num_complex::Complex64;

/// The largest l.
pub const MAX_L: usize = 20;

/// Entries for l <= lmax, m >= 0: index l (l + 1) / 2 + m.
pub const fn n_entries(lmax: usize) -> usize {
    (lmax + 1) * (lmax + 2) / 2
}

pub const fn index(l: usize, m: usize) -> usize {
    l * (l + 1) / 2 + m
}

/// Y_lm (m >= 0, l <= lmax) of the direction of `r` into `y`, and with `grad`, dY_lm/dr
/// (per Cartesian component) into it.
pub fn ylm(r: [f64; 3], lmax: usize, y: &mut [Complex64], grad: Option<&mut [[Complex64; 3]]>) {
    let norm = (r[0] * r[0] + r[1] * r[1] + r[2] * r[2]).sqrt();
    let u = [r[0] / norm, r[1] / norm, r[2] / norm];
    let z = u[2];
    let n = n_entries(lmax);
    let mut p = [0.0; n_entries(MAX_L)];
    let mut dp = [0.0; n_entries(MAX_L)];
    p[0] = 1.0;
    for m in 1..=lmax {
        p[index(m, m)] = -((2 * m + 1) as f64 / (2 * m) as f64).sqrt() * p[index(m - 1, m - 1)];
    }
    for m in 0..lmax {
        let c = ((2 * m + 3) as f64).sqrt();
        p[index(m + 1, m)] = c * z * p[index(m, m)];
        dp[index(m + 1, m)] = c * p[index(m, m)];
    }
    for m in 0..=lmax {
        for l in m + 2..=lmax {
            let (lf, mf) = (l as f64, m as f64);
            let a = ((4.0 * lf * lf - 1.0) / (lf * lf - mf * mf)).sqrt();
            let b = (((lf - 1.0).powi(2) - mf * mf) / (4.0 * (lf - 1.0).powi(2) - 1.0)).sqrt();
            let (k1, k2) = (index(l - 1, m), index(l - 2, m));
            p[index(l, m)] = a * (z * p[k1] - b * p[k2]);
            dp[index(l, m)] = a * (p[k1] + z * dp[k1] - b * dp[k2]);
        }
    }
    // (x + i y)^m and its m (x + i y)^(m-1)
    let w = Complex64::new(u[0], u[1]);
    let mut powers = [Complex64::new(0.0, 0.0); MAX_L + 1];
    powers[0] = Complex64::new(1.0, 0.0);
    for m in 1..=lmax {
        powers[m] = powers[m - 1] * w;
    }
    for l in 0..=lmax {
        for m in 0..=l {
            y[index(l, m)] = powers[m] * p[index(l, m)];
        }
    }
    if let Some(grad) = grad {
        let i = Complex64::new(0.0, 1.0);
        for l in 0..=lmax {
            for m in 0..=l {
                let k = index(l, m);
                let dw = if m == 0 {
                    Complex64::new(0.0, 0.0)
                } else {
                    powers[m - 1] * (m as f64)
                };
                let gu = [dw * p[k], dw * i * p[k], powers[m] * dp[k]];
                let radial = gu[0] * u[0] + gu[1] * u[1] + gu[2] * u[2];
                grad[k] = std::array::from_fn(|a| (gu[a] - radial * u[a]) / norm);
            }
        }
    }
    debug_assert!(y.len() >= n);
}
