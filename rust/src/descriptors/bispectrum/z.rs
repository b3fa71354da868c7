//! Stage Z: the Clebsch-Gordan products of two total U-matrices,
//! Z^{pq}_{j1 j2 j}[ma][mb] = sum C(j1 ma1, j2 ma2 | j ma) C(j1 mb1, j2 mb2 | j mb)
//!                               U^p_{j1}[mb1][ma1] U^q_{j2}[mb2][ma2],
//! for every element pair (p, q) and every coupling with j1 >= j2, rows mb <= j/2.
//! With bnormflag each block is divided by j + 1 (Cusentino et al. 2020).

use num_complex::Complex64 as C;

use super::indices::{Indices, ZBlock};

/// Fills `z` (n_elements^2 blocks of `idx.z_len`, pair (p, q) at p * n_elements + q) from
/// `utot` (n_elements blocks of `idx.u_len`).
pub fn compute_z(idx: &Indices, utot: &[C], n_elements: usize, bnormflag: bool, z: &mut [C]) {
    for p in 0..n_elements {
        for q in 0..n_elements {
            let up = &utot[p * idx.u_len..(p + 1) * idx.u_len];
            let uq = &utot[q * idx.u_len..(q + 1) * idx.u_len];
            let out = &mut z[(p * n_elements + q) * idx.z_len..(p * n_elements + q + 1) * idx.z_len];
            for block in &idx.z_blocks {
                z_block(idx, block, up, uq, bnormflag, out);
            }
        }
    }
}

fn z_block(idx: &Indices, block: &ZBlock, u1: &[C], u2: &[C], bnormflag: bool, out: &mut [C]) {
    let (j1, j2, j) = (block.triple.j1, block.triple.j2, block.triple.j);
    let cg = &idx.cg[block.cg_start..block.cg_start + (j1 + 1) * (j2 + 1)];
    let (u1, u2) = (&u1[idx.u_block[j1]..], &u2[idx.u_block[j2]..]);
    let norm = if bnormflag { 1.0 / (j + 1) as f64 } else { 1.0 };
    let len = (j / 2 + 1) * (j + 1);
    for (e, term) in idx.z_terms[block.start..block.start + len].iter().enumerate() {
        let mut total = C::new(0.0, 0.0);
        for ib in 0..term.nb {
            let (mb1, mb2) = (term.mb1min + ib, term.mb2max - ib);
            let row1 = &u1[mb1 * (j1 + 1)..(mb1 + 1) * (j1 + 1)];
            let row2 = &u2[mb2 * (j2 + 1)..(mb2 + 1) * (j2 + 1)];
            let mut inner = C::new(0.0, 0.0);
            for ia in 0..term.na {
                let (ma1, ma2) = (term.ma1min + ia, term.ma2max - ia);
                inner += row1[ma1] * row2[ma2] * cg[ma1 * (j2 + 1) + ma2];
            }
            total += inner * cg[mb1 * (j2 + 1) + mb2];
        }
        out[block.start + e] = total * norm;
    }
}
