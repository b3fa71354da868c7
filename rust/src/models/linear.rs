//! The linear and quadratic model on any descriptor. SNAP (Thompson et al., J. Comput.
//! Phys. 285, 316 (2015)) and quadratic SNAP (Wood and Thompson, J. Chem. Phys. 148, 241721
//! (2018)) are this model on the bispectrum, with the coefficients and conventions of LAMMPS
//! `pair_style snap`. Atom i of element e has the energy
//!
//!   E_i = c_e0 + sum_k c_ek X_ik + sum_{k <= l} c_ekl q_kl(X_i),
//!   q_kk = X_k^2 / 2,  q_kl = X_k X_l (k < l),
//!
//! and one element's coefficients are stored as in a snapcoeff block: [c_0, c_1..c_K, then
//! c_kl for k = 0..K, l = k..K] (the quadratic part only with `quadratic`).
//!
//! Two jobs: the rows of the least-squares design matrix of one structure (the derivatives
//! of its energy, forces and virial by every coefficient, since all three are linear in the
//! coefficients), and prediction in one adjoint pass (dE_i/dX_i is formed from X_i between
//! the descriptor and its adjoint, so quadratic models need no second pass).

use std::sync::Arc;

use rayon::prelude::*;

use super::{Prediction, Rows, Term, TermPrediction};
use crate::descriptors::driver::{self, add_atom_forces, cutoff_by_number};
use crate::descriptors::{bytes_of, ensure_fits, zeros_checked, Descriptor};
use crate::error::{Error, Result};
use crate::neighbors::NeighborList;
use crate::structure::Structure;

/// Atoms whose per-atom results are alive at once during a prediction.
const CHUNK: usize = 1024;

/// Coefficients per element: the constant, K linear and, for quadratic SNAP, K(K+1)/2
/// quadratic terms (LAMMPS's ncoeffall).
pub fn columns_per_element(n_features: usize, quadratic: bool) -> usize {
    let k = n_features;
    1 + k + if quadratic { k * (k + 1) / 2 } else { 0 }
}

/// Coefficients of all elements, or `Error::OutOfMemory` when they cannot even be counted
/// (a quadratic model on a huge descriptor).
fn total_columns(d: &dyn Descriptor, quadratic: bool) -> Result<usize> {
    let per = columns_per_element(d.n_features(), quadratic);
    d.species().len().checked_mul(per).ok_or_else(|| {
        Error::OutOfMemory(format!(
            "{} elements x {per} coefficients per element is more than 2^64 coefficients",
            d.species().len()
        ))
    })
}

/// Adds `scale` times the derivative of the quadratic features q(B) along `db` (the
/// gradient or virial of B) to `out`, in snapcoeff order: d q_kk = B_k dB_k,
/// d q_kl = B_k dB_l + B_l dB_k. With `db = b` and `scale = 1/2` this adds q(B) itself.
#[inline]
fn add_quadratic(b: &[f64], db: &[f64], scale: f64, out: &mut [f64]) {
    let mut q = 0;
    for k in 0..b.len() {
        out[q] += scale * b[k] * db[k];
        q += 1;
        let (bk, dbk) = (b[k], db[k]);
        for ((o, &bl), &dbl) in out[q..].iter_mut().zip(&b[k + 1..]).zip(&db[k + 1..]) {
            *o += scale * (bk * dbl + bl * dbk);
        }
        q += b.len() - k - 1;
    }
}

/// The design rows of `structure` for the linear (or quadratic) model on descriptor `d`.
/// Columns: one block of `columns_per_element` per element of the descriptor, in its
/// element order; the energy row is the sum over the atoms of each element of [1, X, q(X)].
/// Gradients of one structure are formed and folded into per-atom force rows here; nothing
/// per pair is returned, so a fit holds one structure's derivatives at a time.
pub fn design_rows(
    d: &dyn Descriptor,
    structure: &Structure,
    list: &NeighborList,
    quadratic: bool,
) -> Result<Rows> {
    let elements = driver::types(d, structure)?;
    let k = d.n_features();
    let per = columns_per_element(k, quadratic);
    let n_columns = total_columns(d, quadratic)?;
    let n_atoms = structure.len();
    // the force rows, the largest output, are checked before the gradients are computed
    let describe = || {
        format!(
            "the linear-model (SNAP) design rows of {n_atoms} atoms ({n_columns} columns{})",
            if quadratic { ", quadratic" } else { "" }
        )
    };
    let force_values = (3 * n_atoms as u128) * n_columns as u128;
    ensure_fits(
        bytes_of::<f64>(force_values + 7 * n_columns as u128),
        describe,
    )?;
    let g = driver::gradients(d, structure, list)?;
    let b_of = |i: usize| &g.descriptors[i * k..(i + 1) * k];

    let mut energy = vec![0.0; n_columns];
    for (i, &e) in elements.iter().enumerate() {
        let block = &mut energy[e * per..(e + 1) * per];
        block[0] += 1.0;
        for (o, b) in block[1..=k].iter_mut().zip(b_of(i)) {
            *o += b;
        }
        if quadratic {
            add_quadratic(b_of(i), b_of(i), 0.5, &mut block[1 + k..]);
        }
    }

    // gradient rows grouped by the atom they differentiate by (a stable counting sort, so
    // each atom sums its rows in center order whatever the thread count)
    let mut offsets = vec![0usize; n_atoms + 1];
    for &j in &g.atoms {
        offsets[j + 1] += 1;
    }
    for j in 0..n_atoms {
        offsets[j + 1] += offsets[j];
    }
    let mut next = offsets[..n_atoms].to_vec();
    let mut rows_of_atom = vec![0usize; g.atoms.len()];
    for (r, &j) in g.atoms.iter().enumerate() {
        rows_of_atom[next[j]] = r;
        next[j] += 1;
    }

    let mut forces = zeros_checked(3 * n_atoms * n_columns, describe)?;
    forces
        .par_chunks_mut(3 * n_columns.max(1))
        .enumerate()
        .for_each(|(j, atom_rows)| {
            for &r in &rows_of_atom[offsets[j]..offsets[j + 1]] {
                let i = g.centers[r];
                let start = elements[i] * per;
                for a in 0..3 {
                    let db = &g.values[(r * 3 + a) * k..(r * 3 + a + 1) * k];
                    let row = &mut atom_rows[a * n_columns + start..a * n_columns + start + per];
                    for (o, d) in row[1..=k].iter_mut().zip(db) {
                        *o -= d;
                    }
                    if quadratic {
                        add_quadratic(b_of(i), db, -1.0, &mut row[1 + k..]);
                    }
                }
            }
        });

    // the virial is linear in dB_i/dr, so each center's quadratic virial is
    // B_ik W_il + B_il W_ik with W_i the per-atom virial of B_i
    let mut virial = vec![0.0; 6 * n_columns];
    virial
        .par_chunks_mut(n_columns.max(1))
        .enumerate()
        .for_each(|(v, row)| {
            for (i, &e) in elements.iter().enumerate() {
                let w = &g.virial[(i * 6 + v) * k..(i * 6 + v + 1) * k];
                let block = &mut row[e * per..(e + 1) * per];
                for (o, x) in block[1..=k].iter_mut().zip(w) {
                    *o += x;
                }
                if quadratic {
                    add_quadratic(b_of(i), w, 1.0, &mut block[1 + k..]);
                }
            }
        });

    Ok(Rows {
        n_columns,
        energy,
        forces,
        virial,
    })
}

/// The linear (or quadratic) model on a descriptor as a model term: its weights are the
/// coefficients, one snapcoeff block per element of the descriptor, in its order.
#[derive(Clone)]
pub struct LinearTerm {
    descriptor: Arc<dyn Descriptor>,
    quadratic: bool,
    n_columns: usize,
}

impl LinearTerm {
    pub fn new(descriptor: Arc<dyn Descriptor>, quadratic: bool) -> Result<Self> {
        let n_columns = total_columns(descriptor.as_ref(), quadratic)?;
        Ok(LinearTerm {
            descriptor,
            quadratic,
            n_columns,
        })
    }

    pub fn descriptor(&self) -> &dyn Descriptor {
        self.descriptor.as_ref()
    }

    pub fn quadratic(&self) -> bool {
        self.quadratic
    }

    fn per_element(&self) -> usize {
        columns_per_element(self.descriptor.n_features(), self.quadratic)
    }

    /// Checks the coefficients: one block per element, all finite.
    pub fn check_coefficients(&self, coefficients: &[f64]) -> Result<()> {
        let per = self.per_element();
        let n_elements = self.descriptor.species().len();
        if coefficients.len() != self.n_columns {
            return Err(Error::invalid(format!(
                "expected {n_elements} x {per} coefficients (elements x coefficients per \
                 element), got {}",
                coefficients.len()
            )));
        }
        if let Some(c) = coefficients.iter().position(|c| !c.is_finite()) {
            return Err(Error::invalid(format!(
                "coefficient {} of element {} is not finite",
                c % per,
                c / per
            )));
        }
        Ok(())
    }

    /// E_i and dE_i/dX_i (into `beta`) of an atom with X_i = `x` and coefficient block `c`.
    /// Quadratic: beta_i = c_lin + A X_i (A the symmetric matrix of the quadratic
    /// coefficients, A_kk = c_kk) and E_i = c0 + X.c_lin + X.A.X / 2 = c0 + X.(c_lin + beta) / 2.
    fn energy_and_slope(&self, c: &[f64], x: &[f64], beta: &mut [f64]) -> f64 {
        let k = x.len();
        let linear = &c[1..=k];
        beta.copy_from_slice(linear);
        if !self.quadratic {
            return c[0] + x.iter().zip(linear).map(|(b, w)| b * w).sum::<f64>();
        }
        let mut q = 1 + k;
        for a in 0..k {
            beta[a] += c[q] * x[a];
            q += 1;
            for l in a + 1..k {
                beta[a] += c[q] * x[l];
                beta[l] += c[q] * x[a];
                q += 1;
            }
        }
        let xx: f64 = (0..k).map(|a| x[a] * (linear[a] + beta[a])).sum();
        c[0] + 0.5 * xx
    }

    /// The energy row of one atom of element e: [1, X, q(X)] in block e.
    fn atom_energy_row(&self, e: usize, x: &[f64], out: &mut [f64]) {
        let (k, per) = (x.len(), self.per_element());
        let block = &mut out[e * per..(e + 1) * per];
        block[0] = 1.0;
        block[1..=k].copy_from_slice(x);
        if self.quadratic {
            add_quadratic(x, x, 0.5, &mut block[1 + k..]);
        }
    }
}

impl Term for LinearTerm {
    fn pair_cutoff(&self, zi: u32, zj: u32) -> f64 {
        cutoff_by_number(self.descriptor.as_ref(), zi, zj)
    }

    fn n_columns(&self) -> usize {
        self.n_columns
    }

    fn rows(&self, structure: &Structure, list: &NeighborList) -> Result<Rows> {
        design_rows(self.descriptor.as_ref(), structure, list, self.quadratic)
    }

    fn predict(
        &self,
        structure: &Structure,
        list: &NeighborList,
        coefficients: &[f64],
        per_atom_rows: bool,
    ) -> Result<TermPrediction> {
        self.check_coefficients(coefficients)?;
        let d = self.descriptor.as_ref();
        let elements = driver::types(d, structure)?;
        let n = structure.len();
        let per = self.per_element();
        let m = self.n_columns;
        let mut rows = if per_atom_rows {
            let what = || format!("the per-atom rows of {n} atoms ({m} coefficients)");
            Some(zeros_checked(n.saturating_mul(m), what)?)
        } else {
            None
        };
        let mut p = Prediction::zeros(n);
        driver::for_each_atom_forces(
            d,
            structure,
            list,
            CHUNK,
            |i, x, beta| {
                let e = elements[i];
                self.energy_and_slope(&coefficients[e * per..(e + 1) * per], x, beta)
            },
            |i, atom| {
                p.energies[i] = atom.result;
                add_atom_forces(&atom, &mut p.forces, &mut p.virial);
                if let Some(rows) = rows.as_mut() {
                    self.atom_energy_row(elements[i], &atom.values, &mut rows[i * m..(i + 1) * m]);
                }
            },
        )?;
        Ok(TermPrediction {
            prediction: p,
            per_atom_rows: rows,
        })
    }
}

#[cfg(test)]
mod tests;
