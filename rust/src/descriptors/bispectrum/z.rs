//! Stage Z: the Clebsch-Gordan products of two total U-matrices,
//! Z^{pq}_{j1 j2 j}[mb][ma] = sum C(j1 mb1, j2 mb2 | j mb) C(j1 ma1, j2 ma2 | j ma)
//!                               U^p_{j1}[mb1][ma1] U^q_{j2}[mb2][ma2],
//! for every element pair (p, q) and every coupling with j1 >= j2, rows mb <= j/2, stored
//! times `Indices::weight` (see `indices`). With bnormflag each block is divided by j + 1
//! (Cusentino et al. 2020).
//!
//! Each output row is built in registers, up to twelve columns at a time: for a row pair
//! (mb1, mb2) every ma1 = 0..=j1 adds C(mb1, mb2) U1[mb1][ma1] times, for the output columns
//! ma, C(ma1, ma2) U2[mb2][ma2] with ma2 = ma + offset - ma1: consecutive values of a U2 row
//! and of a table of the Clebsch-Gordan coefficients by output column that is zero where ma2
//! is out of range. Running every ma1 for every column costs about a third more products
//! than the nonzero ones, but the loops have no bounds to compute and stay long. With
//! U1 = U2 and j1 = j2 the products of rows (mb1, mb2) and (mb2, mb1) are equal (the
//! Clebsch-Gordan symmetry under exchange of j1 and j2 gives the same sign twice), so only
//! mb1 >= mb2 runs, doubled.

use super::indices::{Indices, ZBlock};
use super::simd::{Simd, LANES};

/// Fills the given `blocks` of the Z arrays (`zr`, `zi`: n_elements^2 arrays of `idx.z_len`,
/// pair (p, q) at p * n_elements + q) from the total U (`ur`, `ui`: n_elements full-layout
/// arrays of `idx.full_len`).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn compute_z<S: Simd>(
    idx: &Indices,
    ur: &[f64],
    ui: &[f64],
    n_elements: usize,
    bnormflag: bool,
    blocks: &[ZBlock],
    zr: &mut [f64],
    zi: &mut [f64],
) {
    let (fl, zl) = (idx.full_len, idx.z_len);
    assert!(ur.len() == n_elements * fl && ui.len() == n_elements * fl);
    assert!(zr.len() == n_elements * n_elements * zl && zi.len() == zr.len());
    for p in 0..n_elements {
        for q in 0..n_elements {
            let u1 = (&ur[p * fl..(p + 1) * fl], &ui[p * fl..(p + 1) * fl]);
            let u2 = (&ur[q * fl..(q + 1) * fl], &ui[q * fl..(q + 1) * fl]);
            let pq = p * n_elements + q;
            let out = (
                &mut zr[pq * zl..(pq + 1) * zl],
                &mut zi[pq * zl..(pq + 1) * zl],
            );
            for block in blocks {
                z_block::<S>(
                    idx,
                    block,
                    p == q,
                    u1,
                    u2,
                    bnormflag,
                    (&mut *out.0, &mut *out.1),
                );
            }
        }
    }
}

#[inline(always)]
fn z_block<S: Simd>(
    idx: &Indices,
    block: &ZBlock,
    same: bool,
    u1: (&[f64], &[f64]),
    u2: (&[f64], &[f64]),
    bnormflag: bool,
    out: (&mut [f64], &mut [f64]),
) {
    let (j1, j2, j) = (block.triple.j1, block.triple.j2, block.triple.j);
    let offset = (j1 + j2 - j) / 2;
    let (s1, s2, s) = (idx.stride[j1], idx.stride[j2], idx.stride[j]);
    let norm = if bnormflag { 1.0 / (j + 1) as f64 } else { 1.0 };
    let spans = if same { block.spans_same } else { block.spans };
    let (row1, row2) = (idx.full_start[j1], idx.full_start[j2]);
    // bounds of everything the kernel reads or writes through raw pointers
    assert!(row1 + (j1 + 1) * s1 <= u1.0.len() && u1.0.len() == u1.1.len());
    assert!(row2 >= j1 && row2 + j2 * s2 + s + offset <= u2.0.len() && u2.0.len() == u2.1.len());
    assert!(block.start + idx.half_level_len(j) <= out.0.len() && out.0.len() == out.1.len());
    let weight = &idx.weight[idx.half_start[j]..idx.half_start[j] + idx.half_level_len(j)];
    let kernel = Kernel {
        j1,
        s1,
        s2,
        s,
        cg: idx.cg_columns[block.cg_start..block.cg_start + (j1 + 1) * s].as_ptr(),
        u1r: u1.0.as_ptr(),
        u1i: u1.1.as_ptr(),
        u2r: u2.0.as_ptr(),
        u2i: u2.1.as_ptr(),
    };
    for (mb, span) in idx.row_spans[spans..spans + j / 2 + 1].iter().enumerate() {
        let coefs = &idx.row_coefs[span.coefs..span.coefs + span.count];
        // row mb1 = span.mb1 of U1 and column 0 of row mb2 = mb + offset - mb1 of U2,
        // shifted by offset so that output column ma reads U2 column ma + offset - ma1
        let first = (
            row1 + span.mb1 * s1,
            row2 + (mb + offset - span.mb1) * s2 + offset,
        );
        let at = block.start + mb * s;
        let row = (&mut out.0[at..at + s], &mut out.1[at..at + s]);
        let weight = &weight[mb * s..(mb + 1) * s];
        // groups of up to three column vectors, their accumulators in registers
        let mut c = 0;
        while c < s {
            let (row, group) = ((&mut *row.0, &mut *row.1), (first.0, first.1 + c, c));
            match (s - c) / LANES {
                1 => kernel.columns::<S, 1>(group, coefs, norm, weight, row),
                2 => kernel.columns::<S, 2>(group, coefs, norm, weight, row),
                _ => kernel.columns::<S, 3>(group, coefs, norm, weight, row),
            }
            c += 3 * LANES;
        }
    }
}

/// What the rows of a Z block read: U1, U2 and the Clebsch-Gordan table by output column.
struct Kernel {
    j1: usize,
    s1: usize,
    s2: usize,
    s: usize,
    cg: *const f64,
    u1r: *const f64,
    u1i: *const f64,
    u2r: *const f64,
    u2i: *const f64,
}

impl Kernel {
    /// Output columns c..c + 4 G of one row; `at` = (position in U1 of the first product's
    /// row, position in U2 of its column c, c).
    #[inline(always)]
    fn columns<S: Simd, const G: usize>(
        &self,
        at: (usize, usize, usize),
        coefs: &[f64],
        norm: f64,
        weight: &[f64],
        out: (&mut [f64], &mut [f64]),
    ) {
        let (first1, first2, c) = at;
        assert!(c + G * LANES <= self.s && weight.len() == self.s);
        assert!(out.0.len() == self.s && out.1.len() == self.s);
        let mut re = [S::zero(); G];
        let mut im = [S::zero(); G];
        for (k, &coef) in coefs.iter().enumerate() {
            let coef = coef * norm;
            // SAFETY: `z_block`'s asserts and the layout's slack keep every read inside its
            // array: U1 row mb1 + k has j1 + 1 values; U2 reads at first2 - k s2 - ma1 + [0, 4 G)
            // stay in u2 (full_slack covers j1 columns before row 0 and s + offset after the
            // last row); the table has j1 + 1 rows of s values with c + 4 G <= s
            unsafe {
                let mut x = (
                    self.u1r.add(first1 + k * self.s1),
                    self.u1i.add(first1 + k * self.s1),
                );
                let mut p = (
                    self.u2r.add(first2 - k * self.s2),
                    self.u2i.add(first2 - k * self.s2),
                );
                let mut w = self.cg.add(c);
                for _ in 0..self.j1 + 1 {
                    let (ar, ai) = (S::splat(coef * *x.0), S::splat(coef * *x.1));
                    for g in 0..G {
                        let cw = S::load(w.add(g * LANES));
                        let (wr, wi) = (S::mul(cw, ar), S::mul(cw, ai));
                        let (br, bi) = (S::load(p.0.add(g * LANES)), S::load(p.1.add(g * LANES)));
                        re[g] = S::neg_mul_add(wi, bi, S::mul_add(wr, br, re[g]));
                        im[g] = S::mul_add(wi, br, S::mul_add(wr, bi, im[g]));
                    }
                    // next ma1: one U1 column on, one U2 column back, one table row on
                    x = (x.0.add(1), x.1.add(1));
                    p = (p.0.wrapping_sub(1), p.1.wrapping_sub(1));
                    w = w.wrapping_add(self.s);
                }
            }
        }
        for g in 0..G {
            let at = c + g * LANES;
            // SAFETY: at + 4 <= s, the length of the row and of its weights
            unsafe {
                let w = S::load(weight.as_ptr().add(at));
                S::store(out.0.as_mut_ptr().add(at), S::mul(w, re[g]));
                S::store(out.1.as_mut_ptr().add(at), S::mul(w, im[g]));
            }
        }
    }
}
