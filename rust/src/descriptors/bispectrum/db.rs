//! Stage dB/dr: the derivative of all B components of a central atom with respect to the
//! position of one neighbor (of element e), from that neighbor's weighted dU/dr and the Z
//! blocks. B is trilinear in (U_{j1}, U_{j2}, conj U_j); the symmetry
//! B_{j1 j2 j} / (j+1) = B_{j j2 j1} / (j1+1) (Thompson et al. 2015) writes each of the three
//! slots' derivative as a contraction of conj(dU) with a stored Z block:
//!   slot j  of B^{pqe}_{j1 j2 j}: conj(dU^e_j)    . Z^{pq}_{j1 j2 j}
//!   slot j1 of B^{eqp}_{j1 j2 j}: conj(dU^e_{j1}) . Z^{pq}_{j j2 j1} * (j+1)/(j1+1)
//!   slot j2 of B^{qep}_{j1 j2 j}: conj(dU^e_{j2}) . Z^{pq}_{j j1 j2} * (j+1)/(j2+1)
//! (with bnormflag the Z blocks carry 1/(j+1) and the factors are 1).

use super::contract::dot;
use super::indices::Indices;
use super::simd::Simd;

/// Adds to `db` (n_features rows of [d/dx, d/dy, d/dz]) the derivative of B with respect to
/// r_ij for a neighbor of element `e` whose weighted dU/dr is `du` (six half-layout planes).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn add_db<S: Simd>(
    idx: &Indices,
    du: &[f64],
    zr: &[f64],
    zi: &[f64],
    n_elements: usize,
    e: usize,
    bnormflag: bool,
    db: &mut [[f64; 3]],
) {
    let n = n_elements;
    let (n_b, zl, hl) = (idx.n_b(), idx.z_len, idx.half_len);
    let feature = |a: usize, b: usize, c: usize, t: usize| ((a * n + b) * n + c) * n_b + t;
    // the three components of conj(dU_level) . Z_block
    let slot = |pq: usize, level: usize, block: usize| -> [f64; 3] {
        let len = idx.half_level_len(level);
        let (u, z) = (idx.half_start[level], pq * zl + block);
        std::array::from_fn(|k| {
            let (gr, gi) = (
                &du[2 * k * hl + u..][..len],
                &du[(2 * k + 1) * hl + u..][..len],
            );
            dot::<S>(gr, gi, &zr[z..z + len], &zi[z..z + len])
        })
    };
    let add = |db: &mut [[f64; 3]], f: usize, v: [f64; 3], w: f64| {
        for k in 0..3 {
            db[f][k] += w * v[k];
        }
    };
    for p in 0..n {
        for q in 0..n {
            let pq = p * n + q;
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
                add(
                    db,
                    feature(p, q, e, t),
                    slot(pq, j, idx.z_block(j1, j2, j).start),
                    1.0,
                );
                add(
                    db,
                    feature(e, q, p, t),
                    slot(pq, j1, idx.z_block(j, j2, j1).start),
                    f1,
                );
                add(
                    db,
                    feature(q, e, p, t),
                    slot(pq, j2, idx.z_block(j, j1, j2).start),
                    f2,
                );
            }
        }
    }
}
