//! Reduction of the periodic lattice: a basis of the same lattice made of short, nearly
//! orthogonal vectors, and the integer unimodular matrix that relates it to the given cell.
//!
//! A cell sheared by a large factor (b -> b + 1000 a) describes the same lattice as the
//! unsheared one, but its lattice planes are 1000 times closer: searching it directly needs
//! thousands of periodic images and fractional coordinates that lose digits. The search runs
//! on the reduced basis instead, and every lattice translation found there, t (integer, in
//! reduced coordinates), is mapped back to the given cell's S = U^T t: both describe the same
//! Cartesian translation, S·cell = t·(U·cell), so the list keeps ASE's (i, j, S) on the cell
//! the user gave.

use crate::structure::dot;

/// A step must shorten a vector's squared length by more than this relative amount. Exact
/// ties (|v - w| = |v| in fcc, bcc and hexagonal cells, which are already reduced) then keep
/// the given basis, so ordinary cells are searched exactly as given.
const SHORTENING: f64 = 1e-12;

/// Every accepted step strictly shortens a vector, so the loop ends; a shear by a factor f is
/// undone in one step, so a handful of rounds suffice even for compound shears. The bound
/// only guards against rounding cycles: an unfinished reduction is still a valid basis.
const MAX_ROUNDS: usize = 200;

/// The reduced basis of the periodic directions.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Reduction {
    /// Row k holds the integer coefficients of reduced vector k over the cell vectors:
    /// reduced[k] = sum_l unimodular[k][l] · cell[l]. Rows and columns of open directions are
    /// those of the identity. Integer with determinant +-1, so its inverse is integer too.
    pub unimodular: [[i64; 3]; 3],
    /// The reduced vectors (rows); open directions keep the given cell vectors.
    pub vectors: [[f64; 3]; 3],
}

impl Reduction {
    /// Whether the given cell was kept: ordinary cells are searched as given.
    pub fn is_identity(&self) -> bool {
        self.unimodular == IDENTITY
    }

    /// The cell's lattice translation S of a translation t in reduced coordinates: S = U^T t.
    #[inline(always)]
    pub fn cell_shift(&self, t: [i64; 3]) -> [i64; 3] {
        let u = &self.unimodular;
        std::array::from_fn(|l| t[0] * u[0][l] + t[1] * u[1][l] + t[2] * u[2][l])
    }

    /// Bound on |S_l| over translations with |t_k| <= t_max[k]: sum_k |U_kl| t_max[k].
    pub fn cell_shift_bound(&self, t_max: [i64; 3]) -> i64 {
        (0..3)
            .map(|l| {
                (0..3)
                    .map(|k| {
                        self.unimodular[k][l]
                            .saturating_abs()
                            .saturating_mul(t_max[k])
                    })
                    .fold(0i64, i64::saturating_add)
            })
            .max()
            .unwrap_or(0)
    }
}

const IDENTITY: [[i64; 3]; 3] = [[1, 0, 0], [0, 1, 0], [0, 0, 1]];

/// Reduces the cell vectors of the periodic directions (greedy pairwise and three-term
/// reduction, in the spirit of Gauss's 2D algorithm and Nguyen & Stehle's greedy reduction):
/// a vector is replaced by v_k - q v_l (q the rounded projection coefficient) or by
/// v_k +- v_l +- v_m whenever that is shorter, until no such step shortens any vector.
/// The result has no vector that an integer multiple of another, or the sum or difference
/// of the other two, would shorten: in 2D and 3D a basis of nearly minimal lengths, whose
/// plane spacings are close to its vector lengths. Open directions are left as given.
pub(super) fn reduce(cell: &[[f64; 3]; 3], pbc: [bool; 3]) -> Reduction {
    let periodic: Vec<usize> = (0..3).filter(|&k| pbc[k]).collect();
    let mut u = IDENTITY;
    for _ in 0..MAX_ROUNDS {
        let mut shortened = false;
        for &k in &periodic {
            for &l in periodic.iter().filter(|&&l| l != k) {
                let (vk, vl) = (combination(cell, &u[k]), combination(cell, &u[l]));
                let q = (dot(vk, vl) / dot(vl, vl)).round();
                if q != 0.0 && q.abs() < 1e15 {
                    shortened |= shorten(cell, &mut u, k, &[(l, -(q as i64))]);
                }
            }
            if let &[a, b, c] = periodic.as_slice() {
                let others: Vec<usize> = [a, b, c].into_iter().filter(|&m| m != k).collect();
                for (x, y) in [(1, 1), (1, -1), (-1, 1), (-1, -1)] {
                    shortened |= shorten(cell, &mut u, k, &[(others[0], x), (others[1], y)]);
                }
            }
        }
        if !shortened {
            break;
        }
    }
    let mut vectors = *cell;
    for &k in &periodic {
        vectors[k] = combination(cell, &u[k]);
    }
    Reduction {
        unimodular: u,
        vectors,
    }
}

/// Replaces row k of `u` by row k + sum of coefficient · row l when the new vector is
/// shorter; false (and no change) when it is not, or when the coefficients would overflow.
fn shorten(cell: &[[f64; 3]; 3], u: &mut [[i64; 3]; 3], k: usize, terms: &[(usize, i64)]) -> bool {
    let mut row = u[k];
    for &(l, q) in terms {
        for c in 0..3 {
            match u[l][c].checked_mul(q).and_then(|x| row[c].checked_add(x)) {
                Some(x) => row[c] = x,
                None => return false,
            }
        }
    }
    let (old, new) = (combination(cell, &u[k]), combination(cell, &row));
    if dot(new, new) < (1.0 - SHORTENING) * dot(old, old) {
        u[k] = row;
        true
    } else {
        false
    }
}

/// The lattice vector sum_l coefficients[l] · cell[l].
fn combination(cell: &[[f64; 3]; 3], coefficients: &[i64; 3]) -> [f64; 3] {
    let [a, b, c] = coefficients.map(|x| x as f64);
    std::array::from_fn(|x| a * cell[0][x] + b * cell[1][x] + c * cell[2][x])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structure::det;

    fn det_i(u: &[[i64; 3]; 3]) -> i64 {
        u[0][0] * (u[1][1] * u[2][2] - u[1][2] * u[2][1])
            - u[0][1] * (u[1][0] * u[2][2] - u[1][2] * u[2][0])
            + u[0][2] * (u[1][0] * u[2][1] - u[1][1] * u[2][0])
    }

    fn lengths(v: &[[f64; 3]; 3]) -> [f64; 3] {
        v.map(|x| dot(x, x).sqrt())
    }

    #[test]
    fn ordinary_cells_are_kept_as_given() {
        let h = 1.8;
        let s3 = 3f64.sqrt();
        for cell in [
            [[3.0, 0.0, 0.0], [0.0, 4.0, 0.0], [0.0, 0.0, 9.0]],
            [[0.0, h, h], [h, 0.0, h], [h, h, 0.0]],
            [[-h, h, h], [h, -h, h], [h, h, -h]],
            [[3.2, 0.0, 0.0], [-1.6, 1.6 * s3, 0.0], [0.0, 0.0, 5.2]],
        ] {
            assert!(reduce(&cell, [true; 3]).is_identity(), "{cell:?}");
        }
    }

    #[test]
    fn shears_are_undone() {
        // b + 1000 a, then c + 700 b: the same lattice as the 3 A cube
        let cell = [[3.0, 0.0, 0.0], [3000.0, 3.0, 0.0], [2.1e6, 2100.0, 3.0]];
        let r = reduce(&cell, [true; 3]);
        assert_eq!(det_i(&r.unimodular).abs(), 1);
        for l in lengths(&r.vectors) {
            assert!((l - 3.0).abs() < 1e-6, "{:?}", r.vectors);
        }
        assert!((det(&r.vectors).abs() - 27.0).abs() < 1e-6);
    }

    #[test]
    fn only_periodic_directions_are_reduced() {
        let cell = [[3.0, 0.0, 0.0], [3000.0, 3.0, 0.0], [0.0, 5.0, 3.0]];
        let r = reduce(&cell, [true, true, false]);
        assert_eq!(r.unimodular, [[1, 0, 0], [-1000, 1, 0], [0, 0, 1]]);
        assert_eq!(r.vectors[2], cell[2]);
        let one = reduce(&cell, [false, true, false]);
        assert!(one.is_identity());
    }

    #[test]
    fn cell_shifts_map_back() {
        let cell = [[3.0, 0.0, 0.0], [3000.0, 3.0, 0.0], [0.0, 0.0, 3.0]];
        let r = reduce(&cell, [true; 3]);
        // the reduced (0, 1, 0) is b - 1000 a
        assert_eq!(r.cell_shift([0, 1, 0]), [-1000, 1, 0]);
        assert_eq!(r.cell_shift_bound([1, 1, 1]), 1001);
    }
}
