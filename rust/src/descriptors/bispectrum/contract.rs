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
