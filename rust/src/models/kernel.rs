//! Sparse Gaussian-process regression (GAP; Bartok et al., Phys. Rev. Lett. 104, 136403
//! (2010), and QUIP's gap_fit) as kernel terms against fixed sparse points. Each term gives
//! the two things the Python fit and prediction need:
//!
//! - the kernel rows of one structure: the derivatives of its total energy, forces and virial
//!   by the weight alpha_m of every sparse point (all three are linear in alpha), formed one
//!   atom's neighborhood at a time;
//! - prediction for given alpha: energies, forces and virial, chaining the kernel's gradient
//!   with the descriptor gradients one atom at a time, and optionally each atom's row of
//!   kernel values (for the predicted variance, solved in Python).
//!
//! Terms:
//! - `DotProductKernel`: k(i, m) = delta^2 (p_i . x_m)^zeta on any descriptor (GAP uses
//!   normalised SOAP), zero between atoms of different central species (gap_fit's
//!   add_species: one GP per species with shared hyperparameters). The energy is the sum of
//!   local energies e_i = sum_m alpha_m k(i, m).
//! - `PairKernel` (gap_fit's distance_2b): as in QUIP, every ordered pair (i, j) within the
//!   cutoff is one descriptor with the local energy f_c(r) f(r), so an unordered pair counts
//!   twice; f is a GP of squared-exponential covariance delta^2 exp(-(r - r')^2 /
//!   (2 theta^2)); against sparse distance x_m, k(r, m) = delta^2 f_c(r) f_c(x_m)
//!   exp(-(r - x_m)^2 / (2 theta^2)), f_c QUIP's cosine switch of width
//!   `cutoff_transition_width` below the cutoff. Atom i's energy is that of its pairs (i, j).
//!
//! Output conventions as `models::Rows`: forces are -dE/dr (eV/Angstrom per unit
//! alpha), the virial has LAMMPS's sign (ASE's stress is -virial / volume), Voigt order xx yy
//! zz yz xz xy.

use std::sync::Arc;

use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewMut2};
use rayon::prelude::*;

use super::{check_weights, Prediction, Rows, Term, TermPrediction};
use crate::descriptors::driver::{self, add_atom_forces, check_list, cutoff_by_number};
use crate::descriptors::{bytes_of, calloc_checked, ensure_fits, Descriptor, VOIGT};
use crate::error::{Error, Result};
use crate::linalg::{dot, row_dots, rows_combination};
use crate::neighbors::NeighborList;
use crate::structure::Structure;

/// Atoms whose gradients are alive at once during a fit or prediction.
const CHUNK: usize = 64;

/// Kernel rows: see `models::Rows`.
pub type KernelRows = Rows;
/// A prediction with the per-atom kernel values (n_atoms, n_sparse) on request.
pub type KernelPrediction = TermPrediction;

fn check_alpha(alpha: &[f64], n: usize) -> Result<()> {
    check_weights(alpha, n, "one per sparse point")
}

/// "the GAP {what} of n atoms (m sparse points)", for memory errors.
fn describe(what: &str, n_atoms: usize, n_sparse: usize) -> String {
    format!("the GAP {what} of {n_atoms} atoms ({n_sparse} sparse points)")
}

/// n_atoms x n_sparse x `per_pair`, or `Error::OutOfMemory` if that overflows.
fn rows_len(n_atoms: usize, n_sparse: usize, per_pair: usize, what: &str) -> Result<usize> {
    n_atoms
        .checked_mul(n_sparse)
        .and_then(|x| x.checked_mul(per_pair))
        .ok_or_else(|| {
            Error::OutOfMemory(format!(
                "{} needs more than 2^64 values",
                describe(what, n_atoms, n_sparse)
            ))
        })
}

fn check_positive(name: &str, v: f64) -> Result<()> {
    if !(v.is_finite() && v > 0.0) {
        return Err(Error::invalid(format!(
            "{name} must be positive and finite, got {v}"
        )));
    }
    Ok(())
}

// ------------------------------------------------------------------ dot product

/// Dot-product kernel to the power zeta on any descriptor.
#[derive(Clone)]
pub struct DotProductKernel {
    descriptor: Arc<dyn Descriptor>,
    zeta: f64,
    delta: f64,
    /// The features the kernel reads (`Descriptor::dot_product_columns`): dot products with
    /// the sparse points need only these.
    columns: Vec<usize>,
    /// (n_sparse, columns.len()), sorted by species: the sparse points at `columns`, times
    /// the column weights.
    sparse: Vec<f64>,
    /// The sparse points of species index t are rows ranges[t].
    ranges: Vec<std::ops::Range<usize>>,
}

impl DotProductKernel {
    /// `sparse_species[m]` is the central atomic number of sparse point m; the points must be
    /// grouped by species in the descriptor's species order.
    pub fn new(
        descriptor: Arc<dyn Descriptor>,
        zeta: f64,
        delta: f64,
        sparse: Vec<f64>,
        sparse_species: &[u32],
    ) -> Result<Self> {
        check_positive("zeta", zeta)?;
        check_positive("delta", delta)?;
        let nf = descriptor.n_features();
        if sparse.len() != sparse_species.len() * nf {
            return Err(Error::invalid(format!(
                "sparse points must have shape ({}, {nf}), got {} values",
                sparse_species.len(),
                sparse.len()
            )));
        }
        if sparse.iter().any(|x| !x.is_finite()) {
            return Err(Error::invalid(
                "sparse points contain NaN or infinite values",
            ));
        }
        let species = descriptor.species();
        let mut ranges = Vec::with_capacity(species.len());
        let mut start = 0;
        for z in species {
            let count = sparse_species[start..]
                .iter()
                .take_while(|s| *s == z)
                .count();
            ranges.push(start..start + count);
            start += count;
        }
        if start != sparse_species.len() {
            return Err(Error::invalid(format!(
                "sparse point species must be grouped in the order {species:?}, got {:?}",
                &sparse_species[start..start.saturating_add(1).min(sparse_species.len())]
            )));
        }
        let (columns, weights) = descriptor
            .dot_product_columns()
            .unwrap_or_else(|| ((0..nf).collect(), vec![1.0; nf]));
        let sparse = sparse
            .chunks(nf.max(1))
            .flat_map(|x| columns.iter().zip(&weights).map(|(&k, w)| w * x[k]))
            .collect();
        Ok(DotProductKernel {
            descriptor,
            zeta,
            delta,
            columns,
            sparse,
            ranges,
        })
    }

    pub fn n_sparse(&self) -> usize {
        self.ranges.last().map_or(0, |r| r.end)
    }

    /// X of species t at the kernel's columns, weighted, as an (n_t, columns) view.
    fn block(&self, t: usize) -> ArrayView2<'_, f64> {
        let nc = self.columns.len();
        let r = &self.ranges[t];
        ArrayView2::from_shape((r.len(), nc), &self.sparse[r.start * nc..r.end * nc]).unwrap()
    }

    /// Rows of n_features-long vectors reduced to the kernel's columns.
    fn gather(&self, rows: &[f64]) -> Vec<f64> {
        let nf = self.descriptor.n_features();
        rows.chunks(nf.max(1))
            .flat_map(|row| self.columns.iter().map(move |&k| row[k]))
            .collect()
    }

    /// (c^zeta, zeta c^(zeta-1)) times delta^2 for c = p . x_m over the sparse points of
    /// species t.
    fn kernel_and_slope(&self, t: usize, p: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let x = self.block(t);
        let p = self.gather(p);
        let d2 = self.delta * self.delta;
        let integer = self.zeta.fract() == 0.0 && self.zeta <= 64.0;
        let power = |c: f64, e: f64| {
            if integer {
                c.powi(e as i32)
            } else if c > 0.0 {
                c.powf(e)
            } else {
                0.0
            }
        };
        let mut c = vec![0.0; x.nrows()];
        row_dots(x.as_slice().expect("row-major"), &p, &mut c);
        let k = c.iter().map(|&c| d2 * power(c, self.zeta)).collect();
        let s = c
            .iter()
            .map(|&c| d2 * self.zeta * power(c, self.zeta - 1.0))
            .collect();
        (k, s)
    }
}

impl Term for DotProductKernel {
    fn pair_cutoff(&self, zi: u32, zj: u32) -> f64 {
        cutoff_by_number(self.descriptor.as_ref(), zi, zj)
    }

    fn n_columns(&self) -> usize {
        self.n_sparse()
    }

    /// The kernel rows of one structure.
    fn rows(&self, structure: &Structure, list: &NeighborList) -> Result<KernelRows> {
        let types = driver::types(self.descriptor.as_ref(), structure)?;
        let m = self.n_sparse();
        let n = structure.len();
        let what = "dot-product kernel rows";
        let mut forces = calloc_checked(rows_len(n, m, 3, what)?, || describe(what, n, m))?;
        let mut energy = vec![0.0; m];
        let mut virial = vec![0.0; 6 * m];
        // per atom: its kernel values, gradient-row atoms, and -d k / d r_j rows and virial
        // rows over its species' columns: G_i X^T and W_i X^T scaled by the kernel slope
        driver::for_each_atom_gradients(
            self.descriptor.as_ref(),
            structure,
            list,
            CHUNK,
            |atom| {
                let t = types[atom.center];
                let (k, slope) = self.kernel_and_slope(t, atom.values);
                let x = self.block(t);
                let nt = x.nrows();
                let n_rows = atom.rows.len();
                let nc = self.columns.len();
                let (g, w) = (self.gather(atom.gradients), self.gather(atom.virial));
                let g = ArrayView2::from_shape((3 * n_rows, nc), &g).unwrap();
                let w = ArrayView2::from_shape((6, nc), &w).unwrap();
                let mut gx = vec![0.0; 3 * n_rows * nt];
                let mut wx = vec![0.0; 6 * nt];
                general_mat_mul(
                    1.0,
                    &g,
                    &x.t(),
                    0.0,
                    &mut ArrayViewMut2::from_shape((3 * n_rows, nt), &mut gx).unwrap(),
                );
                general_mat_mul(
                    1.0,
                    &w,
                    &x.t(),
                    0.0,
                    &mut ArrayViewMut2::from_shape((6, nt), &mut wx).unwrap(),
                );
                for row in gx.chunks_mut(nt.max(1)) {
                    row.iter_mut().zip(&slope).for_each(|(v, s)| *v *= -s);
                }
                for row in wx.chunks_mut(nt.max(1)) {
                    row.iter_mut().zip(&slope).for_each(|(v, s)| *v *= s);
                }
                (t, k, atom.rows.to_vec(), gx, wx)
            },
            |_, (t, k, rows, gx, wx)| {
                let cols = self.ranges[t].clone();
                let nt = cols.len();
                if nt == 0 {
                    return;
                }
                energy[cols.clone()]
                    .iter_mut()
                    .zip(&k)
                    .for_each(|(e, v)| *e += v);
                for (r, &j) in rows.iter().enumerate() {
                    for a in 0..3 {
                        let out = &mut forces[(3 * j + a) * m..(3 * j + a + 1) * m][cols.clone()];
                        let src = &gx[(3 * r + a) * nt..(3 * r + a + 1) * nt];
                        out.iter_mut().zip(src).for_each(|(o, s)| *o += s);
                    }
                }
                for v in 0..6 {
                    let out = &mut virial[v * m..(v + 1) * m][cols.clone()];
                    out.iter_mut()
                        .zip(&wx[v * nt..(v + 1) * nt])
                        .for_each(|(o, s)| *o += s);
                }
            },
        )?;
        Ok(KernelRows {
            n_columns: m,
            energy,
            forces,
            virial,
        })
    }

    /// Energies, forces and virial for weights `alpha` (one per sparse point): per atom,
    /// dE_i/dX_i = sum_m alpha_m dk(i, m)/dX_i, pulled back through the descriptor's adjoint
    /// (`driver::for_each_atom_forces`), so dX/dr is never formed.
    fn predict(
        &self,
        structure: &Structure,
        list: &NeighborList,
        alpha: &[f64],
        with_kernel: bool,
    ) -> Result<KernelPrediction> {
        check_alpha(alpha, self.n_sparse())?;
        let types = driver::types(self.descriptor.as_ref(), structure)?;
        let m = self.n_sparse();
        let n = structure.len();
        let mut prediction = Prediction::zeros(n);
        let what = "dot-product kernel values";
        let mut kernel = if with_kernel {
            Some(calloc_checked(rows_len(n, m, 1, what)?, || {
                describe(what, n, m)
            })?)
        } else {
            None
        };
        driver::for_each_atom_forces(
            self.descriptor.as_ref(),
            structure,
            list,
            CHUNK,
            |i, values, de| {
                let t = types[i];
                let (k, slope) = self.kernel_and_slope(t, values);
                let a = &alpha[self.ranges[t].clone()];
                let e: f64 = k.iter().zip(a).map(|(k, a)| k * a).sum();
                // dE_i/dX_i = X^T (alpha * slope) at the kernel's columns; the weights carry
                // the dropped columns' share, so those stay zero
                let w: Vec<f64> = slope.iter().zip(a).map(|(s, a)| s * a).collect();
                let mut dx = vec![0.0; self.columns.len()];
                rows_combination(self.block(t).as_slice().expect("row-major"), &w, &mut dx);
                for (&k, v) in self.columns.iter().zip(dx) {
                    de[k] = v;
                }
                (t, e, if with_kernel { k } else { Vec::new() })
            },
            |i, atom| {
                let (t, e, k) = &atom.result;
                prediction.energies[i] = *e;
                add_atom_forces(&atom, &mut prediction.forces, &mut prediction.virial);
                if let Some(kernel) = kernel.as_mut() {
                    kernel[i * m..(i + 1) * m][self.ranges[*t].clone()].copy_from_slice(k);
                }
            },
        )?;
        Ok(TermPrediction {
            prediction,
            per_atom_rows: kernel,
        })
    }

}

// ------------------------------------------------------------------------ two-body

/// gap_fit's distance_2b with a squared-exponential kernel.
#[derive(Debug, Clone)]
pub struct PairKernel {
    cutoff: f64,
    width: f64,
    theta: f64,
    delta: f64,
    /// Sparse distances, Angstrom.
    sparse: Vec<f64>,
    /// Restrict to pairs of these two atomic numbers (either order); None: every pair.
    species: Option<(u32, u32)>,
}

impl PairKernel {
    pub fn new(
        cutoff: f64,
        cutoff_transition_width: f64,
        theta: f64,
        delta: f64,
        sparse: Vec<f64>,
        species: Option<(u32, u32)>,
    ) -> Result<Self> {
        check_positive("cutoff", cutoff)?;
        check_positive("theta", theta)?;
        check_positive("delta", delta)?;
        let w = cutoff_transition_width;
        if !(w.is_finite() && (0.0..=cutoff).contains(&w)) {
            return Err(Error::invalid(format!(
                "cutoff_transition_width must be in [0, cutoff], got {w}"
            )));
        }
        if sparse.iter().any(|x| !x.is_finite() || *x < 0.0) {
            return Err(Error::invalid("sparse distances must be finite and >= 0"));
        }
        Ok(PairKernel {
            cutoff,
            width: w,
            theta,
            delta,
            sparse,
            species,
        })
    }

    pub fn n_sparse(&self) -> usize {
        self.sparse.len()
    }

    /// QUIP's coordination function: 1 below cutoff - width, a cosine switch to 0 at the
    /// cutoff; and its derivative.
    fn switch(&self, r: f64) -> (f64, f64) {
        let (rc, w) = (self.cutoff, self.width);
        if r >= rc {
            (0.0, 0.0)
        } else if r <= rc - w || w == 0.0 {
            (1.0, 0.0)
        } else {
            let s = std::f64::consts::PI * (r - rc + w) / w;
            (
                0.5 * (1.0 + s.cos()),
                -0.5 * std::f64::consts::PI * s.sin() / w,
            )
        }
    }

    /// Fails with `Error::OutOfMemory` unless the per-atom rows (10 n_sparse values per
    /// atom) and `extra` floats per atom and sparse point fit.
    fn ensure_rows_fit(&self, n_atoms: usize, extra: usize, what: &str) -> Result<()> {
        let m = self.n_sparse();
        let floats = n_atoms as u128 * m as u128 * (10 + extra as u128);
        ensure_fits(bytes_of::<f64>(floats), || describe(what, n_atoms, m))
    }

    fn counts(&self, zi: u32, zj: u32) -> bool {
        match self.species {
            None => true,
            Some((a, b)) => (zi == a && zj == b) || (zi == b && zj == a),
        }
    }

    /// k(r, m) and dk/dr for every sparse point.
    fn kernel(&self, r: f64, k: &mut [f64], dk: &mut [f64]) {
        let d2 = self.delta * self.delta;
        let (fc, dfc) = self.switch(r);
        let inv = 1.0 / (self.theta * self.theta);
        for ((x, k), dk) in self.sparse.iter().zip(k.iter_mut()).zip(dk.iter_mut()) {
            let (fx, _) = self.switch(*x);
            let e = d2 * fx * (-0.5 * (r - x) * (r - x) * inv).exp();
            *k = fc * e;
            *dk = dfc * e - fc * e * (r - x) * inv;
        }
    }

    /// Per atom: the kernel rows of its pairs (i, j) (its energy), its force rows
    /// F_i = 2 sum_j dk(r_ij)/dr r^_ij (a gather: E counts each pair from both atoms, and
    /// both directions are listed) and its pairs' virial rows.
    fn atom_rows(
        &self,
        structure: &Structure,
        list: &NeighborList,
    ) -> Result<Vec<(Vec<f64>, Vec<f64>, Vec<f64>)>> {
        check_list(structure, list)?;
        let m = self.n_sparse();
        let numbers = structure.numbers();
        Ok((0..structure.len()).into_par_iter().map(|i| {
            let (mut e, mut f, mut w) = (vec![0.0; m], vec![0.0; 3 * m], vec![0.0; 6 * m]);
            let (mut k, mut dk) = (vec![0.0; m], vec![0.0; m]);
            for p in list.pairs_of(i) {
                let j = list.neighbors[p];
                let (r, v) = (list.distances[p], list.vectors[p]);
                // the list may reach further than the cutoff (shared with other terms)
                if r >= self.cutoff || !self.counts(numbers[i], numbers[j]) {
                    continue;
                }
                self.kernel(r, &mut k, &mut dk);
                let u = [v[0] / r, v[1] / r, v[2] / r];
                for c in 0..m {
                    e[c] += k[c];
                    for a in 0..3 {
                        f[a * m + c] += 2.0 * dk[c] * u[a];
                    }
                    for (s, &(a, b)) in VOIGT.iter().enumerate() {
                        w[s * m + c] -= dk[c] * u[a] * v[b];
                    }
                }
            }
            (e, f, w)
        }).collect())
    }
}

impl Term for PairKernel {
    fn pair_cutoff(&self, zi: u32, zj: u32) -> f64 {
        if self.counts(zi, zj) {
            self.cutoff
        } else {
            0.0
        }
    }

    fn n_columns(&self) -> usize {
        self.n_sparse()
    }

    fn rows(&self, structure: &Structure, list: &NeighborList) -> Result<KernelRows> {
        let m = self.n_sparse();
        let n = structure.len();
        let what = "distance_2b kernel rows";
        self.ensure_rows_fit(n, 3, what)?;
        let mut forces = calloc_checked(rows_len(n, m, 3, what)?, || describe(what, n, m))?;
        let per_atom = self.atom_rows(structure, list)?;
        let mut energy = vec![0.0; m];
        let mut virial = vec![0.0; 6 * m];
        for (i, (e, f, w)) in per_atom.into_iter().enumerate() {
            energy.iter_mut().zip(&e).for_each(|(o, x)| *o += x);
            forces[3 * i * m..3 * (i + 1) * m].copy_from_slice(&f);
            virial.iter_mut().zip(&w).for_each(|(o, x)| *o += x);
        }
        Ok(KernelRows {
            n_columns: m,
            energy,
            forces,
            virial,
        })
    }

    /// Atom i's energy is the sum over its pairs (i, j) of f_c(r) f(r).
    fn predict(
        &self,
        structure: &Structure,
        list: &NeighborList,
        alpha: &[f64],
        with_kernel: bool,
    ) -> Result<KernelPrediction> {
        check_alpha(alpha, self.n_sparse())?;
        let m = self.n_sparse();
        let by_alpha = |v: &[f64]| -> f64 { dot(v, alpha) };
        let what = "distance_2b prediction";
        self.ensure_rows_fit(structure.len(), usize::from(with_kernel), what)?;
        rows_len(structure.len(), m, 10, what)?;
        let per_atom = self.atom_rows(structure, list)?;
        let mut prediction = Prediction {
            energies: Vec::with_capacity(per_atom.len()),
            forces: Vec::with_capacity(per_atom.len()),
            virial: [0.0; 6],
        };
        let mut kernel = with_kernel.then(|| Vec::with_capacity(per_atom.len() * m));
        for (e, f, w) in per_atom {
            prediction.energies.push(by_alpha(&e));
            prediction.forces.push([
                by_alpha(&f[..m]),
                by_alpha(&f[m..2 * m]),
                by_alpha(&f[2 * m..]),
            ]);
            for v in 0..6 {
                prediction.virial[v] += by_alpha(&w[v * m..(v + 1) * m]);
            }
            if let Some(k) = kernel.as_mut() {
                k.extend_from_slice(&e);
            }
        }
        Ok(TermPrediction {
            prediction,
            per_atom_rows: kernel,
        })
    }

}
