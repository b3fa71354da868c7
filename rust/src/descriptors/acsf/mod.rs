//! Atom-centred symmetry functions (Behler and Parrinello, Phys. Rev. Lett. 98, 146401
//! (2007); Behler, J. Chem. Phys. 134, 074106 (2011)) with the definitions of n2p2
//! (Singraber, Behler and Dellago, J. Chem. Theory Comput. 15, 1827 (2019)), so that values
//! agree with n2p2's to rounding. Lengths in Angstrom, eta in 1/Angstrom^2.
//!
//! With E(r) = exp(-eta (r - r_s)^2) f_c(r), sums over the neighbour entries j, k of atom i
//! (periodic images are separate entries, an atom's own images included), r < r_c each:
//!
//! - type 2 (radial): G = sum_{j, element e1} E(r_ij);
//! - type 3 (angular narrow): G = 2^(1-zeta) sum_{j<k, elements {e1, e2}}
//!   (1 + lambda cos theta_ijk)^zeta E(r_ij) E(r_ik) E(r_jk), with r_jk < r_c as well;
//! - type 9 (angular wide): as type 3 without E(r_jk) (and no condition on r_jk);
//! - type 12 (weighted radial, Gastegger et al., J. Chem. Phys. 148, 241709 (2018)):
//!   G = sum_j Z_j E(r_ij) over every neighbour element;
//! - type 13 (weighted angular narrow): type 3 over every pair of neighbour elements, each
//!   term weighted by Z_j Z_k.
//!
//! A term of an angular function counts 0 where 1 + lambda cos theta <= 0. "j < k" is each
//! unordered pair of entries once.
//!
//! Features: the functions of one centre element are its atoms' features, in the order of
//! `functions`; `n_features` is the largest number of functions of any centre element, and
//! an atom whose element has fewer gets zeros in the remaining features (an element that is
//! the centre of no function, all zeros). n2p2 sorts each element's functions internally;
//! this order is the order of the parameters (input.nn's lines), not n2p2's.
//!
//! Speed: functions of one centre that differ only in (lambda, zeta) share their radial
//! part (a group, like n2p2's symmetry-function groups), and the angular factors
//! (1 + lambda cos)^zeta of each distinct (lambda, zeta) are computed once per pair of
//! neighbours for all groups (`kernel`).

mod cutoff;
mod kernel;
#[cfg(test)]
mod tests;

use std::any::Any;

use serde::{Deserialize, Serialize};

pub use cutoff::{CutoffFunction, CutoffKind};

use crate::descriptors::{bytes_of, check_species, job_name, Descriptor, Env, Need};
use crate::error::{Error, Result};
use kernel::{Centre, Workspace};

/// One symmetry function, n2p2's `symfunction_short` line with named fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SymmetryFunction {
    /// Atomic number of the central atoms.
    pub center: u32,
    /// n2p2's type: 2, 3, 9, 12 or 13.
    #[serde(rename = "type")]
    pub kind: u32,
    /// Neighbour elements (atomic numbers): one for type 2, two for 3 and 9 (in either
    /// order); none for 12 and 13, which see every element.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub neighbors: Option<Vec<u32>>,
    /// 1/Angstrom^2.
    pub eta: f64,
    /// Angstrom.
    #[serde(default)]
    pub r_s: f64,
    /// Angstrom.
    pub cutoff: f64,
    /// Types 3, 9, 13.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lambda: Option<f64>,
    /// Types 3, 9, 13.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zeta: Option<f64>,
}

/// The parameters: elements, n2p2's `cutoff_type` (shape and inner-cutoff alpha, shared by
/// every function, as in n2p2) and the functions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcsfParams {
    /// Atomic numbers, in the order of the species indices.
    pub species: Vec<u32>,
    pub cutoff_function: CutoffKind,
    /// Inner cutoff r_ci = alpha r_c, 0 <= alpha < 1 (ignored by "hard", "tanhu", "tanh",
    /// as in n2p2).
    #[serde(default)]
    pub cutoff_alpha: f64,
    pub functions: Vec<SymmetryFunction>,
}

impl AcsfParams {
    fn validate(&self) -> Result<()> {
        if self.species.is_empty() {
            return Err(Error::invalid("species must name at least one element"));
        }
        check_species(&self.species)?;
        let alpha = self.cutoff_alpha;
        if !(alpha.is_finite() && (0.0..1.0).contains(&alpha)) {
            return Err(Error::invalid(format!(
                "cutoff_alpha must be in [0, 1), got {alpha}"
            )));
        }
        if self.functions.is_empty() {
            return Err(Error::invalid(
                "functions must hold at least one symmetry function",
            ));
        }
        for (n, f) in self.functions.iter().enumerate() {
            f.validate(&self.species)
                .map_err(|m| Error::invalid(format!("functions[{n}] (type {}): {m}", f.kind)))?;
        }
        Ok(())
    }
}

impl SymmetryFunction {
    fn validate(&self, species: &[u32]) -> std::result::Result<(), String> {
        let known = |z: u32| species.contains(&z);
        if !known(self.center) {
            return Err(format!(
                "center {} is not in species {species:?}",
                self.center
            ));
        }
        let (neighbors, angular) = match self.kind {
            2 => (Some(1), false),
            3 | 9 => (Some(2), true),
            12 => (None, false),
            13 => (None, true),
            t => return Err(format!("type must be 2, 3, 9, 12 or 13, got {t}")),
        };
        match (neighbors, &self.neighbors) {
            (Some(n), Some(e)) if e.len() != n => {
                return Err(format!("neighbors must name {n} element(s), got {e:?}"))
            }
            (Some(_), Some(e)) => {
                if let Some(z) = e.iter().find(|z| !known(**z)) {
                    return Err(format!("neighbor {z} is not in species {species:?}"));
                }
            }
            (Some(n), None) => return Err(format!("neighbors ({n} element(s)) is required")),
            (None, Some(_)) => {
                return Err(
                    "neighbors is not a parameter of this type (it sees every element)".into(),
                )
            }
            (None, None) => {}
        }
        if !(self.eta.is_finite() && self.eta >= 0.0) {
            return Err(format!(
                "eta must be finite and >= 0 (1/Angstrom^2), got {}",
                self.eta
            ));
        }
        if !(self.cutoff.is_finite() && self.cutoff > 0.0) {
            return Err(format!(
                "cutoff must be a positive finite number of Angstrom, got {}",
                self.cutoff
            ));
        }
        if !self.r_s.is_finite() {
            return Err(format!("r_s must be finite, got {}", self.r_s));
        }
        if angular {
            let lambda = self.lambda.ok_or("lambda is required")?;
            if !(lambda.is_finite() && lambda.abs() <= 1.0) {
                return Err(format!(
                    "lambda must be finite with |lambda| <= 1, got {lambda}"
                ));
            }
            let zeta = self.zeta.ok_or("zeta is required")?;
            // (1 + lambda cos)^zeta has an unbounded derivative where 1 + lambda cos -> 0
            // for zeta < 1 (infinite forces at collinear triples)
            if !(zeta.is_finite() && zeta >= 1.0) {
                return Err(format!("zeta must be finite and >= 1, got {zeta}"));
            }
        } else if self.lambda.is_some() || self.zeta.is_some() {
            return Err(
                "lambda and zeta are parameters of the angular types (3, 9, 13) only".into(),
            );
        }
        Ok(())
    }
}

/// A configured ACSF descriptor: the parameters and, per centre element, its functions
/// grouped for evaluation.
#[derive(Debug, Clone)]
pub struct Acsf {
    params: AcsfParams,
    centres: Vec<Centre>,
    n_features: usize,
    /// pair_cutoff table, (n_species, n_species), symmetric.
    pair_cutoffs: Vec<f64>,
}

impl Acsf {
    pub fn new(params: AcsfParams) -> Result<Self> {
        params.validate()?;
        let n_species = params.species.len();
        let centres: Vec<Centre> = (0..n_species).map(|c| Centre::new(&params, c)).collect();
        let n_features = centres.iter().map(|c| c.n_functions).max().unwrap_or(0);
        // the list is shared and symmetric in (a, b): a pair within either element's reach
        let mut pair_cutoffs = vec![0.0; n_species * n_species];
        for a in 0..n_species {
            for b in 0..n_species {
                pair_cutoffs[a * n_species + b] = centres[a].reach[b].max(centres[b].reach[a]);
            }
        }
        Ok(Acsf {
            params,
            centres,
            n_features,
            pair_cutoffs,
        })
    }

    pub fn params(&self) -> &AcsfParams {
        &self.params
    }
}

impl Descriptor for Acsf {
    fn kind(&self) -> &'static str {
        "acsf"
    }

    fn species(&self) -> &[u32] {
        &self.params.species
    }

    fn n_features(&self) -> usize {
        self.n_features
    }

    /// The larger of the reaches of a's functions to b and of b's to a: the neighbor list
    /// must be symmetric. Each function still reads only pairs within its own cutoff.
    fn pair_cutoff(&self, a: usize, b: usize) -> f64 {
        self.pair_cutoffs[a * self.params.species.len() + b]
    }

    fn describe(&self, what: &str, n_atoms: usize) -> String {
        format!(
            "{} of {n_atoms} atoms ({} symmetry functions, {} features per atom)",
            job_name("ACSF", what),
            self.params.functions.len(),
            self.n_features
        )
    }

    fn scratch_bytes(&self, max_neighbors: usize, need: Need) -> u128 {
        let nf = self.n_features as u128;
        let per_centre = self
            .centres
            .iter()
            .map(|c| c.scratch_floats(max_neighbors as u128, nf, need))
            .max()
            .unwrap_or(0);
        bytes_of::<f64>(per_centre)
    }

    fn workspace(&self) -> Box<dyn Any + Send> {
        Box::new(Workspace::default())
    }

    fn atom_values(&self, env: &Env, i: usize, ws: &mut dyn Any, out: &mut [f64]) {
        kernel::values(
            self,
            env,
            i,
            crate::descriptors::driver::workspace_of(ws),
            out,
        )
    }

    fn atom_gradients(
        &self,
        env: &Env,
        i: usize,
        ws: &mut dyn Any,
        rows: &[usize],
        values: &mut [f64],
        gradients: &mut [f64],
        virial: &mut [f64],
    ) {
        let ws = crate::descriptors::driver::workspace_of(ws);
        kernel::gradients(self, env, i, ws, rows, values, gradients, virial)
    }

    /// The values, `slope`, then one more pass over the neighbour pairs in which each
    /// group's functions are contracted with dE/dG into two scalars before any vector work:
    /// dG/dr is never formed, and the workspace is reused (no allocation per atom).
    fn atom_backprop(
        &self,
        env: &Env,
        i: usize,
        ws: &mut dyn Any,
        values: &mut [f64],
        slope: &mut dyn FnMut(&[f64], &mut [f64]),
        forces: &mut Vec<(usize, [f64; 3])>,
        virial: &mut [f64; 6],
    ) {
        let ws = crate::descriptors::driver::workspace_of(ws);
        kernel::backprop(self, env, i, ws, values, slope, forces, virial)
    }
}
