//! Contractions over levels: sum over (mb, ma) of Re(conj(X[mb][ma]) Y[mb][ma]), which for
//! two arrays with the symmetry of U is real and, with one of them weighted by
//! `Indices::weight` (as Z and Y are), the plain dot product of their half rows. The kernels
//! of B, dB/dr and dE/dr.

use super::simd::{Simd, LANES};

/// sum of xr * yr + xi * yi over slices of one length, a multiple of the lane width.
#[inline(always)]
pub fn dot<S: Simd>(xr: &[f64], xi: &[f64], yr: &[f64], yi: &[f64]) -> f64 {
    let n = xr.len();
    assert!(n % LANES == 0 && xi.len() == n && yr.len() == n && yi.len() == n);
    let (mut re, mut im) = (S::zero(), S::zero());
    for c in (0..n).step_by(LANES) {
        // SAFETY: c + 4 <= n for all four slices
        unsafe {
            re = S::mul_add(S::load(xr.as_ptr().add(c)), S::load(yr.as_ptr().add(c)), re);
            im = S::mul_add(S::load(xi.as_ptr().add(c)), S::load(yi.as_ptr().add(c)), im);
        }
    }
    S::sum(S::add(re, im))
}

/// `dot` of one array (yr, yi) with four others at once: x0 and the three pairs of planes of
/// `dx` (six planes of the same length, as dU/dr is stored).
#[inline(always)]
pub fn dot4<S: Simd>(
    yr: &[f64],
    yi: &[f64],
    xr: &[f64],
    xi: &[f64],
    dx: &[f64],
) -> (f64, [f64; 3]) {
    let n = yr.len();
    assert!(n % LANES == 0 && yi.len() == n && xr.len() == n && xi.len() == n && dx.len() == 6 * n);
    let mut acc = [S::zero(); 8];
    for c in (0..n).step_by(LANES) {
        // SAFETY: c + 4 <= n for every plane
        unsafe {
            let (a, b) = (S::load(yr.as_ptr().add(c)), S::load(yi.as_ptr().add(c)));
            acc[0] = S::mul_add(a, S::load(xr.as_ptr().add(c)), acc[0]);
            acc[1] = S::mul_add(b, S::load(xi.as_ptr().add(c)), acc[1]);
            for k in 0..3 {
                let g = dx.as_ptr().add(2 * k * n + c);
                acc[2 + 2 * k] = S::mul_add(a, S::load(g), acc[2 + 2 * k]);
                acc[3 + 2 * k] = S::mul_add(b, S::load(g.add(n)), acc[3 + 2 * k]);
            }
        }
    }
    let total = |k: usize| S::sum(S::add(acc[k], acc[k + 1]));
    (total(0), [total(2), total(4), total(6)])
}
