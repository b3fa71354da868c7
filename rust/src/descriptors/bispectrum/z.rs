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

use super::indices::{Indices, ZRow};
use super::simd::{Simd, LANES};

/// Fills the Z arrays (`zr`, `zi`: n_elements^2 arrays of `idx.z_len`, pair (p, q) at
/// p * n_elements + q) from the total U (`ur`, `ui`: n_elements full-layout arrays of
/// `idx.full_len`): every block, or with `b_only` those that B contracts. Values never
/// written (the other blocks, the right half of middle rows) keep the zeros the arrays
/// start with.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn compute_z<S: Simd>(
    idx: &Indices,
    ur: &[f64],
    ui: &[f64],
    n_elements: usize,
    bnormflag: bool,
    b_only: bool,
    zr: &mut [f64],
    zi: &mut [f64],
) {
    let (fl, zl) = (idx.full_len, idx.z_len);
    assert!(ur.len() == n_elements * fl && ui.len() == n_elements * fl);
    assert!(zr.len() == n_elements * n_elements * zl && zi.len() == zr.len());
    for p in 0..n_elements {
        for q in 0..n_elements {
            let rows = match (b_only, p == q) {
                (false, false) => &idx.z_rows_all,
                (false, true) => &idx.z_rows_all_same,
                (true, false) => &idx.z_rows_b,
                (true, true) => &idx.z_rows_b_same,
            };
            let u1 = (&ur[p * fl..(p + 1) * fl], &ui[p * fl..(p + 1) * fl]);
            let u2 = (&ur[q * fl..(q + 1) * fl], &ui[q * fl..(q + 1) * fl]);
            let pq = p * n_elements + q;
            let out = (
                &mut zr[pq * zl..(pq + 1) * zl],
                &mut zi[pq * zl..(pq + 1) * zl],
            );
            for row in rows {
                z_row::<S>(idx, row, u1, u2, bnormflag, (&mut *out.0, &mut *out.1));
            }
        }
    }
}

#[inline(always)]
fn z_row<S: Simd>(
    idx: &Indices,
    row: &ZRow,
    u1: (&[f64], &[f64]),
    u2: (&[f64], &[f64]),
    bnormflag: bool,
    out: (&mut [f64], &mut [f64]),
) {
    let norm = if bnormflag {
        1.0 / (row.j + 1) as f64
    } else {
        1.0
    };
    // bounds of everything the kernel reads or writes through raw pointers: the products
    // k < count read U1 row from u1 + k s1 (j1 + 1 values) and U2 from u2 - k s2 - j1 to
    // u2 - k s2 + columns (the full layout's slack covers the reads outside rows)
    let n = u1.0.len();
    assert!(u1.1.len() == n && u2.0.len() == n && u2.1.len() == n && row.count > 0);
    assert!(row.u1 + (row.count - 1) * row.s1 + row.j1 < n);
    assert!(row.u2 >= (row.count - 1) * row.s2 + row.j1 && row.u2 + row.columns <= n);
    assert!(row.z + row.s <= out.0.len() && out.0.len() == out.1.len());
    assert!(row.weight + row.s <= idx.weight.len() && row.columns <= row.s);
    assert!(row.cg + (row.j1 + 1) * row.s <= idx.cg_columns.len());
    let coefs = &idx.row_coefs[row.coefs..row.coefs + row.count];
    let mut c = 0;
    // groups of up to three column vectors, their accumulators in registers
    while c < row.columns {
        let out = (&mut *out.0, &mut *out.1);
        match (row.columns - c) / LANES {
            1 => columns::<S, 1>(idx, row, c, coefs, norm, u1, u2, out),
            2 => columns::<S, 2>(idx, row, c, coefs, norm, u1, u2, out),
            _ => columns::<S, 3>(idx, row, c, coefs, norm, u1, u2, out),
        }
        c += 3 * LANES;
    }
}

/// Output columns c..c + 4 G of one row.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn columns<S: Simd, const G: usize>(
    idx: &Indices,
    row: &ZRow,
    c: usize,
    coefs: &[f64],
    norm: f64,
    u1: (&[f64], &[f64]),
    u2: (&[f64], &[f64]),
    out: (&mut [f64], &mut [f64]),
) {
    let mut re = [S::zero(); G];
    let mut im = [S::zero(); G];
    // with fewer than three column vectors, the products of each term go to separate
    // accumulators, so that no chain of dependent additions sets the pace
    let split = G < 3;
    let mut re2 = [S::zero(); G];
    let mut im2 = [S::zero(); G];
    for (k, &coef) in coefs.iter().enumerate() {
        let coef = coef * norm;
        // SAFETY: `z_row`'s asserts: c + 4 G <= columns; U1 row k has j1 + 1 values; U2 is
        // read at u2 - k s2 - ma1 + c + [0, 4 G) for ma1 <= j1; table rows ma1 <= j1 have s
        // values
        unsafe {
            let mut x = (
                u1.0.as_ptr().add(row.u1 + k * row.s1),
                u1.1.as_ptr().add(row.u1 + k * row.s1),
            );
            let from = row.u2 - k * row.s2 + c;
            let mut p = (u2.0.as_ptr().add(from), u2.1.as_ptr().add(from));
            let mut w = idx.cg_columns.as_ptr().add(row.cg + c);
            for _ in 0..row.j1 + 1 {
                let (ar, ai) = (S::splat(coef * *x.0), S::splat(coef * *x.1));
                for g in 0..G {
                    let cw = S::load(w.add(g * LANES));
                    let (wr, wi) = (S::mul(cw, ar), S::mul(cw, ai));
                    let (br, bi) = (S::load(p.0.add(g * LANES)), S::load(p.1.add(g * LANES)));
                    if split {
                        re[g] = S::mul_add(wr, br, re[g]);
                        re2[g] = S::neg_mul_add(wi, bi, re2[g]);
                        im[g] = S::mul_add(wr, bi, im[g]);
                        im2[g] = S::mul_add(wi, br, im2[g]);
                    } else {
                        re[g] = S::neg_mul_add(wi, bi, S::mul_add(wr, br, re[g]));
                        im[g] = S::mul_add(wi, br, S::mul_add(wr, bi, im[g]));
                    }
                }
                // next ma1: one U1 column on, one U2 column back, one table row on
                x = (x.0.add(1), x.1.add(1));
                p = (p.0.wrapping_sub(1), p.1.wrapping_sub(1));
                w = w.wrapping_add(row.s);
            }
        }
    }
    if split {
        for g in 0..G {
            re[g] = S::add(re[g], re2[g]);
            im[g] = S::add(im[g], im2[g]);
        }
    }
    for g in 0..G {
        let at = c + g * LANES;
        // SAFETY: at + 4 <= s, inside the row and its weights
        unsafe {
            let w = S::load(idx.weight.as_ptr().add(row.weight + at));
            S::store(out.0.as_mut_ptr().add(row.z + at), S::mul(w, re[g]));
            S::store(out.1.as_mut_ptr().add(row.z + at), S::mul(w, im[g]));
        }
    }
}
