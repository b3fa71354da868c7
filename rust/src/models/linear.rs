//! Linear and quadratic SNAP (Thompson et al., J. Comput. Phys. 285, 316 (2015); Wood and
//! Thompson, J. Chem. Phys. 148, 241721 (2018)), with the coefficients and conventions of
//! LAMMPS `pair_style snap`. Atom i of element e has the energy
//!
//!   E_i = c_e0 + sum_k c_ek B_ik + sum_{k <= l} c_ekl q_kl(B_i),
//!   q_kk = B_k^2 / 2,  q_kl = B_k B_l (k < l),
//!
//! and one element's coefficients are stored as in a snapcoeff block: [c_0, c_1..c_K, then
//! c_kl for k = 0..K, l = k..K] (the quadratic part only with `quadratic`).
//!
//! Two jobs: the rows of the least-squares design matrix of one structure (the derivatives
//! of its energy, forces and virial by every coefficient, since all three are linear in the
//! coefficients), and prediction through the adjoint of the bispectrum.

use rayon::prelude::*;

use crate::descriptors::bispectrum::Bispectrum;
use crate::descriptors::{bytes_of, calloc_checked, ensure_fits, zeros_checked};
use crate::error::{Error, Result};
use crate::structure::Structure;

/// Coefficients per element: the constant, K linear and, for quadratic SNAP, K(K+1)/2
/// quadratic terms (LAMMPS's ncoeffall).
pub fn columns_per_element(n_features: usize, quadratic: bool) -> usize {
    let k = n_features;
    1 + k + if quadratic { k * (k + 1) / 2 } else { 0 }
}

/// Coefficients of all elements, or `Error::OutOfMemory` when they cannot even be counted
/// (a quadratic SNAP on a huge chemflag descriptor).
fn total_columns(bs: &Bispectrum, quadratic: bool) -> Result<usize> {
    let per = columns_per_element(bs.n_features(), quadratic);
    bs.params().species.len().checked_mul(per).ok_or_else(|| {
        Error::OutOfMemory(format!(
            "{} elements x {per} coefficients per element is more than 2^64 coefficients",
            bs.params().species.len()
        ))
    })
}

/// The position of every atom's element in the descriptor's element list.
fn element_indices(bs: &Bispectrum, structure: &Structure) -> Result<Vec<usize>> {
    let species = &bs.params().species;
    structure
        .numbers()
        .iter()
        .enumerate()
        .map(|(i, z)| {
            species.iter().position(|s| s == z).ok_or_else(|| {
                Error::invalid(format!(
                    "atom {i} has atomic number {z}, which the model has no coefficients for"
                ))
            })
        })
        .collect()
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

/// Rows of the design matrix of one structure. Columns: one block of
/// `columns_per_element` per element of the descriptor, in its element order.
#[derive(Debug, Clone)]
pub struct DesignRows {
    /// Columns in all (n_elements blocks).
    pub n_columns: usize,
    /// (n_columns,): d E / d c, the sum over the atoms of each element of [1, B, q(B)].
    pub energy: Vec<f64>,
    /// (3 n_atoms, n_columns): row 3 j + a is -d/d r_ja of the energy row, the force on atom
    /// j per unit coefficient (eV/Angstrom per eV).
    pub forces: Vec<f64>,
    /// (6, n_columns): the virial of each column in Voigt order (xx, yy, zz, yz, xz, xy)
    /// with LAMMPS's sign, W_ab = -sum over pairs of (dE/dr_ij)_a (r_ij)_b; ASE's stress
    /// is -W / volume.
    pub virial: Vec<f64>,
}

/// The design rows of `structure` for SNAP (or quadratic SNAP) on descriptor `bs`.
/// Gradients of one structure are formed and folded into per-atom force rows here; nothing
/// per pair is returned, so a fit holds one structure's derivatives at a time.
pub fn design_rows(bs: &Bispectrum, structure: &Structure, quadratic: bool) -> Result<DesignRows> {
    let elements = element_indices(bs, structure)?;
    let k = bs.n_features();
    let per = columns_per_element(k, quadratic);
    let n_columns = total_columns(bs, quadratic)?;
    let n_atoms = structure.len();
    // the force rows, the largest output, are checked before the gradients are computed
    let describe = || {
        format!(
            "the SNAP design rows of {n_atoms} atoms ({n_columns} columns{})",
            if quadratic { ", quadratic" } else { "" }
        )
    };
    let force_values = (3 * n_atoms as u128) * n_columns as u128;
    ensure_fits(
        bytes_of::<f64>(force_values + 7 * n_columns as u128),
        describe,
    )?;
    let g = bs.compute_with_gradients(structure)?;
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

    Ok(DesignRows {
        n_columns,
        energy,
        forces,
        virial,
    })
}

/// A SNAP or quadratic SNAP potential ready to evaluate.
#[derive(Debug, Clone)]
pub struct SnapModel {
    bispectrum: Bispectrum,
    quadratic: bool,
    /// (n_elements, columns_per_element), snapcoeff order per element.
    coefficients: Vec<f64>,
}

/// Energies, forces and virial of one structure.
#[derive(Debug, Clone)]
pub struct Prediction {
    /// Per-atom energies E_i, eV.
    pub energies: Vec<f64>,
    /// -dE/dr, eV/Angstrom.
    pub forces: Vec<[f64; 3]>,
    /// Virial in Voigt order with LAMMPS's sign, eV (ASE's stress is -virial / volume).
    pub virial: [f64; 6],
}

impl SnapModel {
    /// `coefficients` holds one snapcoeff block per element of `bispectrum`, in its order.
    pub fn new(bispectrum: Bispectrum, quadratic: bool, coefficients: Vec<f64>) -> Result<Self> {
        let per = columns_per_element(bispectrum.n_features(), quadratic);
        let n_elements = bispectrum.params().species.len();
        if coefficients.len() != total_columns(&bispectrum, quadratic)? {
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
        Ok(SnapModel {
            bispectrum,
            quadratic,
            coefficients,
        })
    }

    pub fn bispectrum(&self) -> &Bispectrum {
        &self.bispectrum
    }

    fn block(&self, element: usize) -> &[f64] {
        let per = columns_per_element(self.bispectrum.n_features(), self.quadratic);
        &self.coefficients[element * per..(element + 1) * per]
    }

    /// Energies, forces and virial. Linear SNAP has beta_i = dE_i/dB_i fixed per element, so
    /// one adjoint pass gives everything. Quadratic SNAP first needs B_i for
    /// beta_i = c_lin + A B_i (A the symmetric matrix of the quadratic coefficients, with
    /// A_kk = c_kk); the bispectrum module exposes no per-atom hook between B and the
    /// adjoint, so that is a B-only pass before the adjoint pass.
    pub fn predict(&self, structure: &Structure) -> Result<Prediction> {
        let elements = element_indices(&self.bispectrum, structure)?;
        let k = self.bispectrum.n_features();
        let n_atoms = structure.len();
        let mut beta = calloc_checked(n_atoms * k, || {
            format!("the SNAP prediction of {n_atoms} atoms ({k} bispectrum components)")
        })?;
        let energies: Vec<f64> = if self.quadratic {
            let b = self.bispectrum.compute(structure)?;
            beta.par_chunks_mut(k.max(1))
                .zip(b.par_chunks(k.max(1)))
                .zip(elements.par_iter())
                .map(|((beta_i, b_i), &e)| {
                    let c = self.block(e);
                    let linear = &c[1..=k];
                    beta_i.copy_from_slice(linear);
                    let mut q = 1 + k;
                    for a in 0..k {
                        beta_i[a] += c[q] * b_i[a];
                        q += 1;
                        for l in a + 1..k {
                            beta_i[a] += c[q] * b_i[l];
                            beta_i[l] += c[q] * b_i[a];
                            q += 1;
                        }
                    }
                    // E_i = c0 + B.c_lin + B.A.B / 2 = c0 + B.(c_lin + beta_i) / 2
                    let bb: f64 = (0..k).map(|a| b_i[a] * (linear[a] + beta_i[a])).sum();
                    c[0] + 0.5 * bb
                })
                .collect()
        } else {
            for (beta_i, &e) in beta.chunks_mut(k.max(1)).zip(&elements) {
                beta_i.copy_from_slice(&self.block(e)[1..=k]);
            }
            Vec::new()
        };
        let adjoint = self.bispectrum.adjoint(structure, &beta)?;
        let energies = if self.quadratic {
            energies
        } else {
            adjoint
                .descriptors
                .par_chunks(k.max(1))
                .zip(elements.par_iter())
                .map(|(b_i, &e)| {
                    let c = self.block(e);
                    c[0] + b_i.iter().zip(&c[1..=k]).map(|(b, w)| b * w).sum::<f64>()
                })
                .collect()
        };
        Ok(Prediction {
            energies,
            forces: adjoint.forces,
            virial: adjoint.virial,
        })
    }
}

#[cfg(test)]
mod tests;
