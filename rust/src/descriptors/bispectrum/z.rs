//! Stage Z: the Clebsch-Gordan products of two total U-matrices,
//! Z^{pq}_{j1 j2 j}[mb][ma] = sum C(j1 mb1, j2 mb2 | j mb) C(j1 ma1, j2 ma2 | j ma)
//!                               U^p_{j1}[mb1][ma1] U^q_{j2}[mb2][ma2],
//! for every element pair (p, q) and every coupling with j1 >= j2, rows mb <= j/2.
//! With bnormflag each block is divided by j + 1 (Cusentino et al. 2020).
//!
//! The double sum runs as a scatter: for each pair of rows (mb1, mb2) and each ma1, the row
//! of U^q times one complex scalar is added into a contiguous run of the output row
//! (ma = ma1 + ma2 - (j1 + j2 - j)/2). Unlike a dot product per output element, no
//! accumulator carries from one step to the next, so the loop runs at throughput rather
//! than at the latency of one chain of additions.

use num_complex::Complex64 as C;

use super::indices::{Indices, ZBlock};

/// Fills the given `blocks` of `z` (n_elements^2 arrays of `idx.z_len`, pair (p, q) at
/// p * n_elements + q) from `utot` (n_elements full U arrays of `idx.u_len`).
#[inline(always)]
pub fn compute_z(
    idx: &Indices,
    utot: &[C],
    n_elements: usize,
    bnormflag: bool,
    blocks: &[ZBlock],
    z: &mut [C],
) {
    for p in 0..n_elements {
        for q in 0..n_elements {
            let up = &utot[p * idx.u_len..(p + 1) * idx.u_len];
            let uq = &utot[q * idx.u_len..(q + 1) * idx.u_len];
            let out =
                &mut z[(p * n_elements + q) * idx.z_len..(p * n_elements + q + 1) * idx.z_len];
            for block in blocks {
                z_block(idx, block, up, uq, bnormflag, out);
            }
        }
    }
}

#[inline(always)]
fn z_block(idx: &Indices, block: &ZBlock, u1: &[C], u2: &[C], bnormflag: bool, out: &mut [C]) {
    let (j1, j2, j) = (block.triple.j1, block.triple.j2, block.triple.j);
    let (n1, n2, n) = (j1 + 1, j2 + 1, j + 1);
    let cg = &idx.cg[block.cg_start..block.cg_start + n1 * n2];
    let u1 = &u1[idx.u_block[j1]..idx.u_block[j1] + n1 * n1];
    let u2 = &u2[idx.u_block[j2]..idx.u_block[j2] + n2 * n2];
    let norm = if bnormflag { 1.0 / n as f64 } else { 1.0 };
    // output index m = m1 + m2 - offset
    let offset = (j1 + j2 - j) / 2;
    let rows = &mut out[block.start..block.start + (j / 2 + 1) * n];
    rows.fill(C::new(0.0, 0.0));
    for (mb, zrow) in rows.chunks_exact_mut(n).enumerate() {
        let t = mb + offset;
        for mb1 in t.saturating_sub(j2)..=j1.min(t) {
            let mb2 = t - mb1;
            let cb = cg[mb1 * n2 + mb2] * norm;
            if cb == 0.0 {
                continue;
            }
            let row1 = &u1[mb1 * n1..(mb1 + 1) * n1];
            let row2 = &u2[mb2 * n2..(mb2 + 1) * n2];
            for (ma1, &x) in row1.iter().enumerate() {
                // ma2 such that 0 <= ma1 + ma2 - offset <= j
                let lo = offset.saturating_sub(ma1);
                let hi = j2.min(j + offset - ma1);
                if lo > hi {
                    continue;
                }
                let a = x * cb;
                let cga = &cg[ma1 * n2 + lo..=ma1 * n2 + hi];
                let zs = &mut zrow[ma1 + lo - offset..=ma1 + hi - offset];
                for ((zv, &c), &u) in zs.iter_mut().zip(cga).zip(&row2[lo..=hi]) {
                    *zv += C::new(a.re * c, a.im * c) * u;
                }
            }
        }
    }
}
