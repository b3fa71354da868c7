//! Index tables for one twojmax, in LAMMPS's labels: j = 2J and ma = J + m, so a level j of U
//! is a (j+1) x (j+1) matrix stored row by row (row mb, column ma).
//!
//! - U: all levels 0..=twojmax, level j starting at `u_block[j]`.
//! - Z (and Y): for every coupling (j1 >= j2, j in |j1-j2|..=min(j1+j2, twojmax) step 2) only
//!   the rows mb <= j/2; the others follow from the symmetry
//!   X[j-ma][j-mb] = (-1)^(ma-mb) conj(X[ma][mb]) that U, Z and Y share.
//! - B: the couplings with j >= j1, in the order of LAMMPS `compute sna/atom`.

use super::clebsch_gordan::clebsch_gordan;

/// One coupling (j1, j2, j) of the bispectrum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Triple {
    pub j1: usize,
    pub j2: usize,
    pub j: usize,
}

/// The Z block of one coupling: rows mb <= j/2 of j + 1 elements, `(j/2 + 1) * (j + 1)`
/// elements from `start`.
#[derive(Debug, Clone, Copy)]
pub struct ZBlock {
    pub triple: Triple,
    pub start: usize,
    /// Offset of this coupling's Clebsch-Gordan table ((j1+1) x (j2+1), row m1) in `cg`.
    pub cg_start: usize,
}

#[derive(Debug, Clone)]
pub struct Indices {
    pub twojmax: usize,
    /// Start of level j in a U array.
    pub u_block: Vec<usize>,
    /// Length of a U array (all levels).
    pub u_len: usize,
    /// The B couplings in LAMMPS order.
    pub b_triples: Vec<Triple>,
    /// The Z blocks in LAMMPS order (j1, then j2 <= j1, then j).
    pub z_blocks: Vec<ZBlock>,
    /// The Z blocks that B contracts (j >= j1): all that descriptors alone need.
    pub z_blocks_for_b: Vec<ZBlock>,
    /// Length of a Z array (all blocks).
    pub z_len: usize,
    z_lookup: Vec<usize>,
    b_lookup: Vec<usize>,
    /// Clebsch-Gordan coefficients of all couplings.
    pub cg: Vec<f64>,
    /// sqrt(p / q) for the U recursion, indexed [p * (twojmax + 1) + q].
    pub rootpq: Vec<f64>,
}

impl Indices {
    pub fn new(twojmax: usize) -> Self {
        let jdim = twojmax + 1;
        let mut u_block = Vec::with_capacity(jdim);
        let mut u_len = 0;
        for j in 0..=twojmax {
            u_block.push(u_len);
            u_len += (j + 1) * (j + 1);
        }

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
        let mut cg = Vec::new();
        for &t in &couplings {
            let Triple { j1, j2, j } = t;
            z_lookup[(j1 * jdim + j2) * jdim + j] = z_blocks.len();
            z_blocks.push(ZBlock {
                triple: t,
                start: z_len,
                cg_start: cg.len(),
            });
            z_len += (j / 2 + 1) * (j + 1);
            for m1 in 0..=j1 {
                for m2 in 0..=j2 {
                    // the coupled projection m follows from m1 and m2; out of range gives 0
                    let twice_m = (2 * m1 + 2 * m2 + j) as i64 - (j1 + j2) as i64;
                    let c = if twice_m >= 0 && twice_m % 2 == 0 && (twice_m / 2) as usize <= j {
                        clebsch_gordan(j1, m1, j2, m2, j, (twice_m / 2) as usize)
                    } else {
                        0.0
                    };
                    cg.push(c);
                }
            }
        }
        let z_blocks_for_b = z_blocks
            .iter()
            .copied()
            .filter(|b| b.triple.j >= b.triple.j1)
            .collect();

        let mut rootpq = vec![0.0; jdim * jdim];
        for p in 1..=twojmax {
            for q in 1..=twojmax {
                rootpq[p * jdim + q] = (p as f64 / q as f64).sqrt();
            }
        }
        Indices {
            twojmax,
            u_block,
            u_len,
            b_triples,
            z_blocks,
            z_blocks_for_b,
            z_len,
            z_lookup,
            b_lookup,
            cg,
            rootpq,
        }
    }

    /// The Z block of coupling (j1, j2, j), which must have j1 >= j2.
    #[inline]
    pub fn z_block(&self, j1: usize, j2: usize, j: usize) -> &ZBlock {
        let jdim = self.twojmax + 1;
        &self.z_blocks[self.z_lookup[(j1 * jdim + j2) * jdim + j]]
    }

    /// Position of coupling (j1, j2, j), which must have j >= j1 >= j2, in `b_triples`.
    #[inline]
    pub fn b_index(&self, j1: usize, j2: usize, j: usize) -> usize {
        let jdim = self.twojmax + 1;
        self.b_lookup[(j1 * jdim + j2) * jdim + j]
    }

    #[inline]
    pub fn rootpq(&self, p: usize, q: usize) -> f64 {
        self.rootpq[p * (self.twojmax + 1) + q]
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
}
