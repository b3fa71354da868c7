//! The atomic cluster expansion (Drautz, Phys. Rev. B 99, 014104 (2019)) with pacemaker's
//! conventions (Lysogorskiy et al., npj Comput. Mater. 7, 97 (2021); Bochkarev et al.,
//! Phys. Rev. Materials 6, 013804 (2022)), so that the values equal python-ace's B-basis
//! "projections" for the same basis. Lengths in Angstrom.
//!
//! For a central atom i of species c, per neighbour species mu (pairs r_ij = x_j - x_i with
//! r < r_c of bond (c, mu)):
//!
//! - A1[mu, n] = sum_j g_n(r_ij) (the rank-1 functions' one-particle basis),
//! - A[mu, n, l, m] = sum_j R_nl(r_ij) Y_lm(r_ij / r_ij) (`radial`, `ylm`),
//!
//! and a function (c; mu_1..mu_K; n_1..n_K; l_1..l_K; L_1..L_(K-2)) is
//! B = A1[mu_1, n_1 - 1] for K = 1 and otherwise
//! B = sum over m of C(ls, LS)_m prod_t A[mu_t, n_t - 1, l_t, m_t] (real; `coupling`).
//! n is 1-based in the parameters, as in pacemaker's files.
//!
//! Features: the functions of one centre species are its atoms' features, in the order of
//! `functions`; `n_features` is the largest number of functions of any species, and atoms
//! of a species with fewer get zeros in the rest.
//!
//! The adjoint (`atom_backprop`) contracts dE/dB with dB/dA into one weight per entry of A
//! and then reads each pair once: the cost of the forces is that of the values plus one pass
//! over the pairs, whatever the number of functions.

mod coupling;
mod kernel;
mod radial;
#[cfg(test)]
mod tests;
pub mod ylm;

use std::any::Any;

use serde::{Deserialize, Serialize};

pub use radial::{Bond, RadialBasis};

use crate::descriptors::{bytes_of, check_species, job_name, Descriptor, Env, Need};
use crate::error::{Error, Result};
use kernel::{Centre, Workspace};

/// The largest rank (body order - 1) of a function.
pub const MAX_RANK: usize = 8;

/// One basis function (pacemaker's (mu0, mus, ns, ls, LS)); species as indices into
/// `AceParams::species`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasisFunction {
    pub center: usize,
    pub mus: Vec<usize>,
    /// 1-based radial indices.
    pub ns: Vec<usize>,
    pub ls: Vec<usize>,
    /// The intermediate momenta, rank - 2 of them (pacemaker's LS).
    #[serde(default)]
    pub lint: Vec<usize>,
}

/// The parameters: species, one bond per ordered pair of species and the functions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AceParams {
    /// Atomic numbers, in the order of the species indices.
    pub species: Vec<u32>,
    /// (n_species x n_species), row-major by (centre, neighbour).
    pub bonds: Vec<Bond>,
    pub functions: Vec<BasisFunction>,
}

impl AceParams {
    fn validate(&self) -> Result<()> {
        let n = self.species.len();
        if n == 0 {
            return Err(Error::invalid("species must name at least one element"));
        }
        check_species(&self.species)?;
        if self.bonds.len() != n * n {
            return Err(Error::invalid(format!(
                "bonds must hold one bond per ordered pair of species ({} for {n} species), got {}",
                n * n,
                self.bonds.len()
            )));
        }
        for (k, b) in self.bonds.iter().enumerate() {
            b.validate().map_err(|m| {
                Error::invalid(format!(
                    "bonds[{k}] ({} -> {}): {m}",
                    self.species[k / n],
                    self.species[k % n]
                ))
            })?;
        }
        if self.functions.is_empty() {
            return Err(Error::invalid(
                "functions must hold at least one basis function",
            ));
        }
        for (k, f) in self.functions.iter().enumerate() {
            self.check_function(f)
                .map_err(|m| Error::invalid(format!("functions[{k}]: {m}")))?;
        }
        Ok(())
    }

    fn check_function(&self, f: &BasisFunction) -> std::result::Result<(), String> {
        let n = self.species.len();
        let rank = f.ns.len();
        if f.center >= n {
            return Err(format!(
                "center {} is not a species index (0 to {})",
                f.center,
                n - 1
            ));
        }
        if rank == 0 || rank > MAX_RANK {
            return Err(format!(
                "the rank (the length of ns) must be 1 to {MAX_RANK}, got {rank}"
            ));
        }
        if f.mus.len() != rank || f.ls.len() != rank {
            return Err(format!(
                "mus, ns and ls must have one entry each per rank, got {}, {rank} and {}",
                f.mus.len(),
                f.ls.len()
            ));
        }
        if f.lint.len() != rank.saturating_sub(2) {
            return Err(format!(
                "lint must hold rank - 2 = {} intermediate momenta, got {}",
                rank.saturating_sub(2),
                f.lint.len()
            ));
        }
        for t in 0..rank {
            let mu = f.mus[t];
            if mu >= n {
                return Err(format!("mus[{t}] = {mu} is not a species index"));
            }
            let bond = &self.bonds[f.center * n + mu];
            let (nmax, lmax) = if rank == 1 {
                (bond.nradbase, 0)
            } else {
                (bond.nradmax, bond.lmax)
            };
            if f.ns[t] == 0 || f.ns[t] > nmax {
                return Err(format!(
                    "ns[{t}] = {} must be 1 to {nmax} (the bond's {})",
                    f.ns[t],
                    if rank == 1 { "nradbase" } else { "nradmax" }
                ));
            }
            if f.ls[t] > lmax {
                return Err(format!(
                    "ls[{t}] = {} exceeds the bond's lmax {lmax}",
                    f.ls[t]
                ));
            }
        }
        if f.ls.iter().sum::<usize>() % 2 != 0 {
            return Err(format!(
                "the sum of ls {:?} must be even (an odd sum is not invariant under inversion)",
                f.ls
            ));
        }
        Ok(())
    }
}

/// A configured ACE descriptor.
#[derive(Debug, Clone)]
pub struct Ace {
    params: AceParams,
    /// Per centre species, its functions compiled for evaluation, in feature order.
    centres: Vec<Centre>,
    n_features: usize,
    layout: kernel::Layout,
    /// pair_cutoff table (n_species, n_species), symmetric.
    pair_cutoffs: Vec<f64>,
}

impl Ace {
    pub fn new(params: AceParams) -> Result<Self> {
        params.validate()?;
        let n = params.species.len();
        let layout = kernel::Layout::new(&params);
        let mut centres = Vec::with_capacity(n);
        for c in 0..n {
            let index: Vec<usize> = (0..params.functions.len())
                .filter(|&k| params.functions[k].center == c)
                .collect();
            let functions: Vec<&BasisFunction> =
                index.iter().map(|&k| &params.functions[k]).collect();
            let centre = Centre::new(&functions, &layout)
                .map_err(|(k, m)| Error::invalid(format!("functions[{}]: {m}", index[k])))?;
            centres.push(centre);
        }
        let n_features = centres.iter().map(|c| c.n_functions).max().unwrap_or(0);
        let mut pair_cutoffs = vec![0.0; n * n];
        for a in 0..n {
            for b in 0..n {
                pair_cutoffs[a * n + b] = params.bonds[a * n + b]
                    .rcut
                    .max(params.bonds[b * n + a].rcut);
            }
        }
        Ok(Ace {
            params,
            centres,
            n_features,
            layout,
            pair_cutoffs,
        })
    }

    pub fn params(&self) -> &AceParams {
        &self.params
    }

    fn bond(&self, centre: usize, neighbour: usize) -> &Bond {
        &self.params.bonds[centre * self.params.species.len() + neighbour]
    }
}

impl Descriptor for Ace {
    fn kind(&self) -> &'static str {
        "ace"
    }

    fn species(&self) -> &[u32] {
        &self.params.species
    }

    fn n_features(&self) -> usize {
        self.n_features
    }

    fn pair_cutoff(&self, a: usize, b: usize) -> f64 {
        self.pair_cutoffs[a * self.params.species.len() + b]
    }

    fn describe(&self, what: &str, n_atoms: usize) -> String {
        format!(
            "{} of {n_atoms} atoms ({} basis functions, {} features per atom)",
            job_name("ACE", what),
            self.params.functions.len(),
            self.n_features
        )
    }

    fn scratch_bytes(&self, _max_neighbors: usize, _need: Need) -> u128 {
        // nothing grows with the neighbours: A, its weights and one pair's derivatives
        let entries = self.layout.n_entries() as u128;
        let adjoint = self
            .centres
            .iter()
            .map(|c| c.n_adjoint() as u128)
            .max()
            .unwrap_or(0);
        bytes_of::<f64>(2 * (3 * 3 * entries + adjoint) + 4 * self.layout.n_a1() as u128 + 4096)
    }

    fn workspace(&self) -> Box<dyn Any + Send> {
        Box::new(Workspace::new(&self.layout, &self.centres))
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
