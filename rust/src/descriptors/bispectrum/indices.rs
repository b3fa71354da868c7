//! Index tables and memory layouts for one twojmax, in LAMMPS's labels: j = 2J and m = J + M,
//! so a level j of U is a (j+1) x (j+1) matrix of rows mb and columns ma.
//!
//! Complex arrays are stored as separate real and imaginary planes of f64 so that the kernels
//! run four columns at a time (`simd`). Every row is padded to a multiple of the lane width
//! (`stride[j]`); padding columns hold zeros or are multiplied by zero table entries, so the
//! kernels never branch on the edges of a row. Three layouts:
//!
//! - full (`full_start`): all rows of every level; the total U of an atom, which Z reads.
//! - half (`half_start`): rows mb <= (j+1)/2 of every level; one neighbor's U and dU/dr, and
//!   Y. The rows mb <= j/2 determine the rest through the symmetry
//!   X[j-mb][j-ma] = (-1)^(ma-mb) conj(X[mb][ma]) that U, Z and Y share; for odd j the
//!   recursion for level j+1 also reads row (j+1)/2, the mirror of row (j-1)/2.
//! - Z: for every coupling (j1 >= j2, j in |j1-j2|..=min(j1+j2, twojmax) step 2), rows
//!   mb <= j/2 of level j, pre-multiplied by `weight` so that every contraction over a level
//!   (B, dB/dr, dE/dr) is a plain dot product over those rows.
//!
//! Zeros before and after the full and half arrays (`full_slack`, `SLACK`) let the kernels
//! read columns outside a row, always into finite values that meet zero coefficients.

use super::clebsch_gordan::clebsch_gordan;
use super::simd::LANES;

/// Padding before and after the half arrays, in values.
pub const SLACK: usize = LANES;

/// One coupling (j1, j2, j) of the bispectrum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Triple {
    pub j1: usize,
    pub j2: usize,
    pub j: usize,
}

/// One output row mb of a Z block, as the Z kernel runs it: the products of rows
/// mb1 = mb1_first + k of U_{j1} with rows mb2 = mb + (j1 + j2 - j)/2 - mb1 of U_{j2}, times
/// `row_coefs[coefs + k]` for k < count: their Clebsch-Gordan coefficient, doubled where the
/// j1 = j2 symmetry folds two products into one.
#[derive(Debug, Clone, Copy)]
pub struct ZRow {
    pub j: usize,
    pub j1: usize,
    /// Row strides of levels j1, j2 and j.
    pub s1: usize,
    pub s2: usize,
    pub s: usize,
    /// Position in a full array of column 0 of row mb1_first of U_{j1}, and of column
    /// (j1 + j2 - j)/2 of the row of U_{j2} that goes with it.
    pub u1: usize,
    pub u2: usize,
    /// Position of the row in a Z array, of its weights in `weight`, of the block's table in
    /// `cg_columns`.
    pub z: usize,
    pub weight: usize,
    pub cg: usize,
    /// Columns formed: stride[j], or for the middle row of even j only those up to j/2 (the
    /// others have weight 0 and stay zero).
    pub columns: usize,
    pub coefs: usize,
    pub count: usize,
}

/// The Z block of one coupling: rows mb <= j/2 of `stride[j]` values from `start`.
#[derive(Debug, Clone, Copy)]
pub struct ZBlock {
    pub triple: Triple,
    pub start: usize,
    /// Offset in `cg_columns` of this coupling's Clebsch-Gordan table by output column: rows
    /// m1 = 0..=j1 of `stride[j]` values, column m holding C(j1 m1, j2 m1+offset-m | j m) with
    /// offset = (j1 + j2 - j)/2, zero where m2 = m + offset - m1 is outside 0..=j2 or m > j.
    pub cg_start: usize,
    /// The B components whose derivative contracts this block (see `y`): (slot, position in
    /// `b_triples`) for slot 0 (j of B_{j1 j2 j}), 1 (j1 of B_{j j2 j1}) and 2 (j2 of
    /// B_{j2 j j1}); `n_slots` of them are used.
    pub y_slots: [(usize, usize); 3],
    pub n_slots: usize,
}

#[derive(Debug, Clone)]
pub struct Indices {
    pub twojmax: usize,
    /// Row length of level j, padded to the lane width.
    pub stride: Vec<usize>,
    /// Start of level j in the full layout, and the length of a full array.
    pub full_start: Vec<usize>,
    pub full_len: usize,
    /// Start of level j in the half layout, and the length of a half array.
    pub half_start: Vec<usize>,
    pub half_len: usize,
    /// The B couplings in LAMMPS order.
    pub b_triples: Vec<Triple>,
    /// The Z blocks in LAMMPS order (j1, then j2 <= j1, then j).
    pub z_blocks: Vec<ZBlock>,
    /// Length of a Z array (all blocks).
    pub z_len: usize,
    z_lookup: Vec<usize>,
    pub cg_columns: Vec<f64>,
    /// The rows of Z: of all blocks or of those that B contracts (j >= j1, all that
    /// descriptors alone need), for two different total U-matrices or for one with itself,
    /// where for j1 = j2 the products of rows (mb1, mb2) and (mb2, mb1) are equal and only
    /// mb1 >= mb2 is kept.
    pub z_rows_all: Vec<ZRow>,
    pub z_rows_all_same: Vec<ZRow>,
    pub z_rows_b: Vec<ZRow>,
    pub z_rows_b_same: Vec<ZRow>,
    pub row_coefs: Vec<f64>,
    /// Half layout: the weight of each value in a contraction over a level, so that
    /// sum over all (mb, ma) of conj(X) Y = sum over the half rows of weight * Re(conj(X) Y):
    /// 2 on rows mb < j/2, for even j 2, 1, 0 left of, at and right of the middle of row j/2,
    /// and 0 on padding and on the extra row of odd levels.
    pub weight: Vec<f64>,
    /// Half layout, rows mb <= j/2: the factors of the U recursion (Varshalovich et al.
    /// 4.8.2), U_j[mb][ma] = conj(a) rec_a U_{j-1}[mb][ma] - conj(b) rec_b U_{j-1}[mb][ma-1]
    /// with rec_a = sqrt((j-ma)/(j-mb)) and rec_b = sqrt(ma/(j-mb)), zero where the term
    /// does not exist (ma = j, ma = 0, padding).
    pub rec_a: Vec<f64>,
    pub rec_b: Vec<f64>,
    /// Half layout, the extra row (j+1)/2 of odd levels: (-1)^(j - ma + (j-1)/2), the sign in
    /// X[(j+1)/2][ma] = sign conj(X[(j-1)/2][j-ma]); zero on padding.
    pub mirror_sign: Vec<f64>,
}

/// Rows of level j kept in the half layout.
pub fn half_rows(j: usize) -> usize {
    (j + 1) / 2 + 1
}

impl Indices {
    pub fn new(twojmax: usize) -> Self {
        let jdim = twojmax + 1;
        let stride: Vec<usize> = (0..=twojmax)
            .map(|j| (j + 1).div_ceil(LANES) * LANES)
            .collect();
        let layout = |rows: &dyn Fn(usize) -> usize, slack: usize| {
            let mut starts = Vec::with_capacity(jdim);
            let mut len = slack;
            for j in 0..=twojmax {
                starts.push(len);
                len += rows(j) * stride[j];
            }
            (starts, len + slack)
        };
        // the Z kernel reads rows of U_{j2} from up to j1 columns before their start to
        // stride[j] + offset columns after it
        let full_slack = stride[twojmax] + twojmax.next_multiple_of(LANES);
        let (full_start, full_len) = layout(&|j| j + 1, full_slack);
        let (half_start, half_len) = layout(&half_rows, SLACK);

        let couplings: Vec<Triple> = (0..=twojmax)
            .flat_map(|j1| {
                (0..=j1).flat_map(move |j2| {
                    (j1 - j2..=(j1 + j2).min(twojmax))
                        .step_by(2)
                        .map(move |j| Triple { j1, j2, j })
                })
            })
            .collect();
        let b_triples: Vec<Triple> = couplings.iter().copied().filter(|t| t.j >= t.j1).collect();
        let mut b_lookup = vec![usize::MAX; jdim * jdim * jdim];
        for (k, t) in b_triples.iter().enumerate() {
            b_lookup[(t.j1 * jdim + t.j2) * jdim + t.j] = k;
        }

        let mut z_blocks = Vec::with_capacity(couplings.len());
        let mut z_len = 0;
        let mut z_lookup = vec![usize::MAX; jdim * jdim * jdim];
        let mut cg_columns = Vec::new();
        for &t in &couplings {
            let Triple { j1, j2, j } = t;
            let offset = (j1 + j2 - j) / 2;
            // the coupled projection m follows from m1 and m2; out of range gives 0
            let cg = |m1: usize, m2: usize| {
                let m = (m1 + m2).checked_sub(offset).filter(|&m| m <= j);
                m.map_or(0.0, |m| clebsch_gordan(j1, m1, j2, m2, j, m))
            };
            z_lookup[(j1 * jdim + j2) * jdim + j] = z_blocks.len();
            let cg_start = cg_columns.len();
            for m1 in 0..=j1 {
                cg_columns.extend((0..stride[j]).map(|m| {
                    let m2 = (m + offset)
                        .checked_sub(m1)
                        .filter(|&m2| m2 <= j2 && m <= j);
                    m2.map_or(0.0, |m2| cg(m1, m2))
                }));
            }
            z_blocks.push(ZBlock {
                triple: t,
                start: z_len,
                cg_start,
                y_slots: [(0, 0); 3],
                n_slots: 0,
            });
            z_len += (j / 2 + 1) * stride[j];
        }
        for block in &mut z_blocks {
            let Triple { j1, j2, j } = block.triple;
            let slots = [
                (j >= j1, (j1, j2, j)),
                (j1 >= j && j >= j2, (j, j2, j1)),
                (j2 >= j, (j2, j, j1)),
            ];
            for (slot, &(used, (a, b, c))) in slots.iter().enumerate() {
                if used {
                    block.y_slots[block.n_slots] = (slot, b_lookup[(a * jdim + b) * jdim + c]);
                    block.n_slots += 1;
                }
            }
        }
        let mut weight = vec![0.0; half_len];
        let mut rec_a = vec![0.0; half_len];
        let mut rec_b = vec![0.0; half_len];
        let mut mirror_sign = vec![0.0; half_len];
        for j in (1..=twojmax).step_by(2) {
            for ma in 0..=j {
                let odd = (j - ma + (j - 1) / 2) % 2 == 1;
                mirror_sign[half_start[j] + (j + 1) / 2 * stride[j] + ma] =
                    if odd { -1.0 } else { 1.0 };
            }
        }
        for j in 0..=twojmax {
            for mb in 0..=j / 2 {
                for ma in 0..=j {
                    let at = half_start[j] + mb * stride[j] + ma;
                    weight[at] = match (2 * mb).cmp(&j) {
                        std::cmp::Ordering::Less => 2.0,
                        _ => match (2 * ma).cmp(&j) {
                            std::cmp::Ordering::Less => 2.0,
                            std::cmp::Ordering::Equal => 1.0,
                            std::cmp::Ordering::Greater => 0.0,
                        },
                    };
                    if j > 0 {
                        let q = (j - mb) as f64;
                        rec_a[at] = ((j - ma) as f64 / q).sqrt();
                        rec_b[at] = (ma as f64 / q).sqrt();
                    }
                }
            }
        }
        let mut row_coefs = Vec::new();
        let mut rows_of = |b_only: bool, same: bool| {
            let mut rows = Vec::new();
            for block in z_blocks
                .iter()
                .filter(|b| !b_only || b.triple.j >= b.triple.j1)
            {
                let Triple { j1, j2, j } = block.triple;
                let offset = (j1 + j2 - j) / 2;
                let fold = same && j1 == j2;
                for mb in 0..=j / 2 {
                    let t = mb + offset;
                    // mb1 >= mb2 = t - mb1 where folded
                    let lo = t
                        .saturating_sub(j2)
                        .max(if fold { t.div_ceil(2) } else { 0 });
                    let hi = j1.min(t);
                    let coefs = row_coefs.len();
                    for mb1 in lo..=hi {
                        let c = clebsch_gordan(j1, mb1, j2, t - mb1, j, mb);
                        row_coefs.push(if fold && 2 * mb1 > t { 2.0 * c } else { c });
                    }
                    rows.push(ZRow {
                        j,
                        j1,
                        s1: stride[j1],
                        s2: stride[j2],
                        s: stride[j],
                        u1: full_start[j1] + lo * stride[j1],
                        u2: full_start[j2] + (t - lo) * stride[j2] + offset,
                        z: block.start + mb * stride[j],
                        weight: half_start[j] + mb * stride[j],
                        cg: block.cg_start,
                        columns: if 2 * mb == j {
                            (j / 2 + 1).next_multiple_of(LANES)
                        } else {
                            stride[j]
                        },
                        coefs,
                        count: hi + 1 - lo,
                    });
                }
            }
            rows
        };
        let (z_rows_all, z_rows_all_same) = (rows_of(false, false), rows_of(false, true));
        let (z_rows_b, z_rows_b_same) = (rows_of(true, false), rows_of(true, true));
        Indices {
            twojmax,
            stride,
            full_start,
            full_len,
            half_start,
            half_len,
            b_triples,
            z_blocks,
            z_len,
            z_lookup,
            cg_columns,
            z_rows_all,
            z_rows_all_same,
            z_rows_b,
            z_rows_b_same,
            row_coefs,
            weight,
            rec_a,
            rec_b,
            mirror_sign,
        }
    }

    /// The Z block of coupling (j1, j2, j), which must have j1 >= j2.
    #[inline]
    pub fn z_block(&self, j1: usize, j2: usize, j: usize) -> &ZBlock {
        let jdim = self.twojmax + 1;
        &self.z_blocks[self.z_lookup[(j1 * jdim + j2) * jdim + j]]
    }

    /// Number of values in the rows mb <= j/2 of level j (of a Z block, or of a level in the
    /// full or half layout from its start).
    #[inline]
    pub fn half_level_len(&self, j: usize) -> usize {
        (j / 2 + 1) * self.stride[j]
    }

    /// Number of B components per element triple.
    pub fn n_b(&self) -> usize {
        self.b_triples.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_lammps_ncoeff() {
        // LAMMPS ncoeff for twojmax 2, 4, 6, 8: 5, 14, 30, 55
        for (twojmax, n) in [(2, 5), (4, 14), (6, 30), (8, 55)] {
            assert_eq!(Indices::new(twojmax).n_b(), n);
        }
    }

    #[test]
    fn lammps_order_for_twojmax_2() {
        let idx = Indices::new(2);
        let got: Vec<_> = idx.b_triples.iter().map(|t| (t.j1, t.j2, t.j)).collect();
        assert_eq!(
            got,
            vec![(0, 0, 0), (1, 0, 1), (1, 1, 2), (2, 0, 2), (2, 2, 2)]
        );
    }

    #[test]
    fn weights_count_every_element_of_a_level_once() {
        // summing the weights over a level counts each of its (j+1)^2 elements once, the
        // middle element of even levels (its own mirror) included
        let idx = Indices::new(7);
        for j in 0..=7 {
            let level =
                &idx.weight[idx.half_start[j]..idx.half_start[j] + half_rows(j) * idx.stride[j]];
            let total: f64 = level.iter().sum();
            assert_eq!(total, ((j + 1) * (j + 1)) as f64);
        }
    }
}
