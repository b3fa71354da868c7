//! Stage Y, the adjoint: for E_i = sum_k beta_k B_k of one central atom, the matrices Y^e_j
//! with dE_i/dr_ij = sum_j conj(dU^e_j) . Y^e_j for a neighbor of element e, so forces never
//! need all of dB/dr. Each Z^{pq}_{J1 J2 J} block enters Y^e_J through every B component and
//! slot that contracts it (see `db`):
//!   slot j  of B^{pqe}_{J1 J2 J}  when J >= J1,
//!   slot j1 of B^{eqp}_{J J2 J1}  when J1 >= J >= J2, times (J1+1)/(J+1),
//!   slot j2 of B^{qep}_{J2 J J1}  when J2 >= J,       times (J1+1)/(J+1),
//! (factors 1 with bnormflag). Repeated j's add several slots of one component, which is the
//! multiplicity 2 or 3 of Thompson et al. Y is built from the weighted Z, so it carries the
//! weights of `Indices::weight` and dE/dr is a plain dot product with dU.

use super::indices::Indices;
use super::simd::{Simd, LANES};

/// Fills `yr`, `yi` (n_elements half-layout arrays; rows mb <= j/2 of each level, zero
/// elsewhere) from the weighted Z blocks and `beta` (dE/dB of this atom, n_features).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn compute_y<S: Simd>(
    idx: &Indices,
    zr: &[f64],
    zi: &[f64],
    beta: &[f64],
    n_elements: usize,
    bnormflag: bool,
    yr: &mut [f64],
    yi: &mut [f64],
) {
    let n = n_elements;
    let (n_b, zl, hl) = (idx.n_b(), idx.z_len, idx.half_len);
    assert!(yr.len() == n * hl && yi.len() == n * hl);
    yr.fill(0.0);
    yi.fill(0.0);
    let beta_of = |a: usize, b: usize, c: usize, j1: usize, j2: usize, j: usize| {
        beta[((a * n + b) * n + c) * n_b + idx.b_index(j1, j2, j)]
    };
    for p in 0..n {
        for q in 0..n {
            let pq = p * n + q;
            for block in &idx.z_blocks {
                let (j1, j2, j) = (block.triple.j1, block.triple.j2, block.triple.j);
                let factor = if bnormflag {
                    1.0
                } else {
                    (j1 + 1) as f64 / (j + 1) as f64
                };
                let len = idx.half_level_len(j);
                let z = pq * zl + block.start;
                let (zbr, zbi) = (&zr[z..z + len], &zi[z..z + len]);
                for e in 0..n {
                    let mut w = 0.0;
                    if j >= j1 {
                        w += beta_of(p, q, e, j1, j2, j);
                    }
                    if j1 >= j && j >= j2 {
                        w += factor * beta_of(e, q, p, j, j2, j1);
                    }
                    if j2 >= j {
                        w += factor * beta_of(q, e, p, j2, j, j1);
                    }
                    if w == 0.0 {
                        continue;
                    }
                    let at = e * hl + idx.half_start[j];
                    let (ybr, ybi) = (&mut yr[at..at + len], &mut yi[at..at + len]);
                    let w = S::splat(w);
                    for c in (0..len).step_by(LANES) {
                        // SAFETY: c + 4 <= len, a multiple of the lane width, for all four
                        unsafe {
                            for (z, y) in [(zbr, ybr.as_mut_ptr()), (zbi, ybi.as_mut_ptr())] {
                                let v =
                                    S::mul_add(w, S::load(z.as_ptr().add(c)), S::load(y.add(c)));
                                S::store(y.add(c), v);
                            }
                        }
                    }
                }
            }
        }
    }
}
