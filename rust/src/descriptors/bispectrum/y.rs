//! Stage Y, the adjoint: for E_i = sum_k beta_k B_k of one central atom, the matrices Y^e_j
//! with dE_i/dr_ij = sum_j conj(dU^e_j) . Y^e_j for a neighbor of element e, so forces never
//! need all of dB/dr. Each Z^{pq}_{J1 J2 J} block enters Y^e_J through every B component and
//! slot that contracts it (see `db`):
//!   slot j  of B^{pqe}_{J1 J2 J}  when J >= J1,
//!   slot j1 of B^{eqp}_{J J2 J1}  when J1 >= J >= J2, times (J1+1)/(J+1),
//!   slot j2 of B^{qep}_{J2 J J1}  when J2 >= J,       times (J1+1)/(J+1),
//! (factors 1 with bnormflag). Repeated j's add several slots of one component, which is the
//! multiplicity 2 or 3 of Thompson et al.

use num_complex::Complex64 as C;

use super::indices::Indices;

/// Fills `y` (n_elements blocks of `idx.u_len`; rows mb <= j/2 of each level are set) from the
/// Z blocks and `beta` (dE/dB of this atom, n_features).
#[inline(always)]
pub fn compute_y(
    idx: &Indices,
    z: &[C],
    beta: &[f64],
    n_elements: usize,
    bnormflag: bool,
    y: &mut [C],
) {
    let n = n_elements;
    let n_b = idx.n_b();
    y.fill(C::new(0.0, 0.0));
    let beta_of = |a: usize, b: usize, c: usize, j1: usize, j2: usize, j: usize| {
        beta[((a * n + b) * n + c) * n_b + idx.b_index(j1, j2, j)]
    };
    for p in 0..n {
        for q in 0..n {
            let zpq = &z[(p * n + q) * idx.z_len..(p * n + q + 1) * idx.z_len];
            for block in &idx.z_blocks {
                let (j1, j2, j) = (block.triple.j1, block.triple.j2, block.triple.j);
                let factor = if bnormflag {
                    1.0
                } else {
                    (j1 + 1) as f64 / (j + 1) as f64
                };
                let len = (j / 2 + 1) * (j + 1);
                let zb = &zpq[block.start..block.start + len];
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
                    let ye = &mut y[e * idx.u_len + idx.u_block[j]..][..len];
                    for (out, zv) in ye.iter_mut().zip(zb) {
                        *out += zv * w;
                    }
                }
            }
        }
    }
}
