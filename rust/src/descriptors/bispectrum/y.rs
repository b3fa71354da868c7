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
    assert!(zr.len() == n * n * zl && zi.len() == zr.len() && beta.len() == n * n * n * n_b);
    yr.fill(0.0);
    yi.fill(0.0);
    for p in 0..n {
        for q in 0..n {
            let pq = p * n + q;
            for block in &idx.z_blocks {
                let (j1, j) = (block.triple.j1, block.triple.j);
                let factor = if bnormflag {
                    1.0
                } else {
                    (j1 + 1) as f64 / (j + 1) as f64
                };
                let len = idx.half_level_len(j);
                let z = pq * zl + block.start;
                assert!(z + len <= zr.len());
                for e in 0..n {
                    let mut w = 0.0;
                    for &(slot, t) in &block.y_slots[..block.n_slots] {
                        let (triple, f) = match slot {
                            0 => ((p * n + q) * n + e, 1.0),
                            1 => ((e * n + q) * n + p, factor),
                            _ => ((q * n + e) * n + p, factor),
                        };
                        w += f * beta[triple * n_b + t];
                    }
                    if w == 0.0 {
                        continue;
                    }
                    let at = e * hl + idx.half_start[j];
                    assert!(at + len <= yr.len());
                    let w = S::splat(w);
                    for c in (0..len / LANES).map(|c| c * LANES) {
                        // SAFETY: c + 4 <= len and the asserts above
                        unsafe {
                            let (y0, y1) =
                                (yr.as_mut_ptr().add(at + c), yi.as_mut_ptr().add(at + c));
                            let (z0, z1) = (zr.as_ptr().add(z + c), zi.as_ptr().add(z + c));
                            S::store(y0, S::mul_add(w, S::load(z0), S::load(y0)));
                            S::store(y1, S::mul_add(w, S::load(z1), S::load(y1)));
                        }
                    }
                }
            }
        }
    }
}
