//! Stage dB/dr: the derivative of all B components of a central atom with respect to the
//! position of one neighbor (of element e), from that neighbor's weighted dU/dr and the Z
//! blocks. B is trilinear in (U_{j1}, U_{j2}, conj U_j); the symmetry
//! B_{j1 j2 j} / (j+1) = B_{j j2 j1} / (j1+1) (Thompson et al. 2015) writes each of the three
//! slots' derivative as a contraction of conj(dU) with a stored Z block:
//!   slot j  of B^{pqe}_{j1 j2 j}: conj(dU^e_j)    . Z^{pq}_{j1 j2 j}
//!   slot j1 of B^{eqp}_{j1 j2 j}: conj(dU^e_{j1}) . Z^{pq}_{j j2 j1} * (j+1)/(j1+1)
//!   slot j2 of B^{qep}_{j1 j2 j}: conj(dU^e_{j2}) . Z^{pq}_{j j1 j2} * (j+1)/(j2+1)
//! (with bnormflag the Z blocks carry 1/(j+1) and the factors are 1).

use num_complex::Complex64 as C;

use super::contract::half_dot3;
use super::indices::Indices;

/// Adds to `db` (n_features rows of [d/dx, d/dy, d/dz]) the derivative of B with respect to
/// r_ij for a neighbor of element `e` whose weighted dU/dr is `du`.
#[inline(always)]
pub fn add_db(
    idx: &Indices,
    du: &[[C; 3]],
    z: &[C],
    n_elements: usize,
    e: usize,
    bnormflag: bool,
    db: &mut [[f64; 3]],
) {
    let n = n_elements;
    let n_b = idx.n_b();
    let feature = |a: usize, b: usize, c: usize, t: usize| ((a * n + b) * n + c) * n_b + t;
    let add = |db: &mut [[f64; 3]], f: usize, v: [f64; 3], w: f64| {
        for k in 0..3 {
            db[f][k] += w * v[k];
        }
    };
    for p in 0..n {
        for q in 0..n {
            let zpq = &z[(p * n + q) * idx.z_len..(p * n + q + 1) * idx.z_len];
            for (t, tr) in idx.b_triples.iter().enumerate() {
                let (j1, j2, j) = (tr.j1, tr.j2, tr.j);
                let (f1, f2) = if bnormflag {
                    (1.0, 1.0)
                } else {
                    (
                        (j + 1) as f64 / (j1 + 1) as f64,
                        (j + 1) as f64 / (j2 + 1) as f64,
                    )
                };
                let slot_j = half_dot3(
                    j,
                    &du[idx.u_block[j]..],
                    &zpq[idx.z_block(j1, j2, j).start..],
                );
                add(db, feature(p, q, e, t), slot_j, 1.0);
                let slot_j1 = half_dot3(
                    j1,
                    &du[idx.u_block[j1]..],
                    &zpq[idx.z_block(j, j2, j1).start..],
                );
                add(db, feature(e, q, p, t), slot_j1, f1);
                let slot_j2 = half_dot3(
                    j2,
                    &du[idx.u_block[j2]..],
                    &zpq[idx.z_block(j, j1, j2).start..],
                );
                add(db, feature(q, e, p, t), slot_j2, f2);
            }
        }
    }
}
