//! Models over any descriptor, as terms of one interface, `Term`: the linear/quadratic
//! model (SNAP on the bispectrum, or a linear model on any descriptor), the dot-product
//! kernel (GAP), the distance_2b pair kernel, the fixed ZBL baseline and Behler-Parrinello
//! atomic neural networks (`network`). The linear terms give the two things a fit and a
//! prediction need: the rows of one structure (the derivatives of its energy, forces and
//! virial by every weight) and the prediction for given weights. A nonlinear term (the
//! neural networks) owns its parameters: it has no columns and no rows, and predicts with an
//! empty weight vector. A model is a list of terms sharing one neighbor list per structure
//! (`shared_list`), built at the largest cutoff of all of them.
//!
//! Conventions: forces are -dE/dr (eV/Angstrom, per unit weight in rows), the virial has
//! LAMMPS's sign (ASE's stress is -virial / volume), Voigt order xx yy zz yz xz xy.

pub mod kernel;
pub mod linear;
pub mod network;
pub mod zbl;

use crate::error::{Error, Result};
use crate::neighbors::NeighborList;
use crate::structure::Structure;

/// Derivatives of one structure's energy, forces and virial by the weights of a term (one
/// column each).
#[derive(Debug, Clone)]
pub struct Rows {
    pub n_columns: usize,
    /// (n_columns,): dE/dw.
    pub energy: Vec<f64>,
    /// (3 n_atoms, n_columns): row 3 j + a is -dE/dr_ja per unit weight.
    pub forces: Vec<f64>,
    /// (6, n_columns).
    pub virial: Vec<f64>,
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

impl Prediction {
    pub fn zeros(n_atoms: usize) -> Self {
        Prediction {
            energies: vec![0.0; n_atoms],
            forces: vec![[0.0; 3]; n_atoms],
            virial: [0.0; 6],
        }
    }

    /// Adds another term's prediction.
    pub fn add(&mut self, other: &Prediction) {
        for (e, o) in self.energies.iter_mut().zip(&other.energies) {
            *e += o;
        }
        for (f, o) in self.forces.iter_mut().zip(&other.forces) {
            for a in 0..3 {
                f[a] += o[a];
            }
        }
        for v in 0..6 {
            self.virial[v] += other.virial[v];
        }
    }
}

/// A prediction with, on request, the per-atom rows (n_atoms, n_columns): the derivative of
/// each atom's energy by the weights, for the predicted variance.
#[derive(Debug, Clone)]
pub struct TermPrediction {
    pub prediction: Prediction,
    pub per_atom_rows: Option<Vec<f64>>,
}

/// One term of a model. Object safe: models hold `Box<dyn Term>`.
///
/// A linear term's weights are its columns: `rows` gives the derivatives by them and
/// `predict` takes them. A fixed term (ZBL) has no columns and empty rows. A nonlinear term
/// (`network::NetworkTerm`) owns its parameters: it has no columns, `rows` is an error (it
/// is not linear in its parameters), and `predict` takes an empty weight vector and refuses
/// per-atom rows.
pub trait Term: Send + Sync {
    /// The cutoff between atomic numbers zi and zj, Angstrom (0: those never interact).
    fn pair_cutoff(&self, zi: u32, zj: u32) -> f64;
    /// Weights a fit solves for (0 for a fixed or a nonlinear term).
    fn n_columns(&self) -> usize;
    /// The rows of `structure`, from a neighbor list reaching at least `pair_cutoff`.
    fn rows(&self, structure: &Structure, list: &NeighborList) -> Result<Rows>;
    /// The prediction for `weights` (n_columns), with the per-atom rows on request.
    fn predict(
        &self,
        structure: &Structure,
        list: &NeighborList,
        weights: &[f64],
        per_atom_rows: bool,
    ) -> Result<TermPrediction>;
}

/// The one neighbor list of `structure` for all `terms`: at every pair of elements, the
/// largest cutoff of any term.
pub fn shared_list(structure: &Structure, terms: &[&dyn Term]) -> Result<NeighborList> {
    crate::descriptors::driver::shared_list(structure, &|zi, zj| {
        terms
            .iter()
            .map(|t| t.pair_cutoff(zi, zj))
            .fold(0.0, f64::max)
    })
}

/// The rows of every term, from one neighbor list.
pub fn rows_terms(terms: &[&dyn Term], structure: &Structure) -> Result<Vec<Rows>> {
    let list = shared_list(structure, terms)?;
    terms.iter().map(|t| t.rows(structure, &list)).collect()
}

/// The summed prediction of every term (`weights[k]` for term k), from one neighbor list,
/// and each term's per-atom rows on request.
pub fn predict_terms(
    terms: &[&dyn Term],
    structure: &Structure,
    weights: &[&[f64]],
    per_atom_rows: bool,
) -> Result<(Prediction, Vec<Option<Vec<f64>>>)> {
    if weights.len() != terms.len() {
        return Err(Error::invalid(format!(
            "got {} weight vectors for {} terms",
            weights.len(),
            terms.len()
        )));
    }
    let list = shared_list(structure, terms)?;
    let mut total = Prediction::zeros(structure.len());
    let mut rows = Vec::with_capacity(terms.len());
    for (t, w) in terms.iter().zip(weights) {
        let p = t.predict(structure, &list, w, per_atom_rows)?;
        total.add(&p.prediction);
        rows.push(p.per_atom_rows);
    }
    Ok((total, rows))
}

/// Checks a term's weights: `n` of them, all finite.
pub(crate) fn check_weights(weights: &[f64], n: usize, what: &str) -> Result<()> {
    if weights.len() != n {
        return Err(Error::invalid(format!(
            "expected {n} weights ({what}), got {}",
            weights.len()
        )));
    }
    if let Some(k) = weights.iter().position(|a| !a.is_finite()) {
        return Err(Error::invalid(format!("weight {k} ({what}) is not finite")));
    }
    Ok(())
}
