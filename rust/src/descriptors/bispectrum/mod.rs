//! The SNAP bispectrum descriptor (Bartok et al., PRL 104, 136403 (2010); Thompson et al.,
//! J. Comput. Phys. 285, 316 (2015)) with the explicit multi-element variant (chemflag;
//! Cusentino, Wood and Thompson, J. Phys. Chem. A 124, 5456 (2020)), with the keywords,
//! values and ordering of LAMMPS `compute sna/atom`.
//!
//! The stages are LAMMPS's: index tables, memory layouts and Clebsch-Gordan coefficients
//! (`indices`), U per neighbor and its gradient (`u`), Z (`z`), B (`b`), dB/dr (`db`) and the
//! adjoint Y (`y`), run per central atom over its slice of the neighbor list (`atom`), atoms
//! in parallel; the kernels are written in four-wide lanes (`simd`).
//! Every atom's result depends only on its own neighbors, so the output is the same for any
//! number of threads.

mod atom;
mod b;
pub(crate) mod clebsch_gordan;
mod contract;
mod db;
mod indices;
mod simd;
mod u;
mod y;
mod z;

use std::any::Any;

use serde::{Deserialize, Serialize};

use crate::descriptors::driver::workspace_of;
use crate::descriptors::{bytes_of, check_species, job_name, Descriptor, Env, Need};
use crate::error::{Error, Result};
use atom::{Job, Neighbor, Workspace};
use indices::Indices;

pub use crate::descriptors::driver::Backprop as Adjoint;
pub use crate::descriptors::{Gradients, VOIGT};

/// Largest twojmax accepted: the Z tables grow as twojmax^5 and the Clebsch-Gordan
/// factorials stay accurate in f64 well beyond it.
pub const MAX_TWOJMAX: usize = 24;

/// The hyperparameters, with the names of LAMMPS `compute sna/atom`. Per-element lists are in
/// the order of `species`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BispectrumParams {
    pub twojmax: usize,
    pub rcutfac: f64,
    pub rfac0: f64,
    pub rmin0: f64,
    /// Atomic numbers of the elements, in the order that chemflag's element triples use.
    pub species: Vec<u32>,
    /// Per-element radius R: the pair cutoff is rcutfac * (R_i + R_j), Angstrom.
    pub radelem: Vec<f64>,
    /// Per-element neighbor weight.
    pub wj: Vec<f64>,
    pub switchflag: bool,
    pub bzeroflag: bool,
    pub chemflag: bool,
    pub bnormflag: bool,
    pub wselfallflag: bool,
}

/// A configured descriptor: parameters and the tables for their twojmax, built once.
#[derive(Debug, Clone)]
pub struct Bispectrum {
    params: BispectrumParams,
    indices: Indices,
    /// Density channels: the number of elements with chemflag, else 1.
    n_elements: usize,
    n_features: usize,
    /// rcutfac * (R_a + R_b) per element pair, row-major.
    cutoffs: Vec<f64>,
    /// Use the portable kernels even where AVX2+FMA ones could run (for tests of both).
    portable_only: bool,
}

impl BispectrumParams {
    fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::invalid(m));
        if self.twojmax % 2 != 0 || self.twojmax > MAX_TWOJMAX {
            return bad(format!(
                "twojmax must be even and at most {MAX_TWOJMAX}, got {}",
                self.twojmax
            ));
        }
        if !(self.rcutfac.is_finite() && self.rcutfac > 0.0) {
            return bad(format!(
                "rcutfac must be a positive finite number, got {}",
                self.rcutfac
            ));
        }
        if !(self.rfac0 > 0.0 && self.rfac0 <= 1.0) {
            return bad(format!("rfac0 must be in (0, 1], got {}", self.rfac0));
        }
        if !(self.rmin0.is_finite() && self.rmin0 >= 0.0) {
            return bad(format!(
                "rmin0 must be finite and >= 0 Angstrom, got {}",
                self.rmin0
            ));
        }
        let n = self.species.len();
        if n == 0 {
            return bad("at least one element is needed".into());
        }
        if self.radelem.len() != n || self.wj.len() != n {
            return bad(format!(
                "got {} elements, {} radelem values and {} wj values",
                n,
                self.radelem.len(),
                self.wj.len()
            ));
        }
        check_species(&self.species)?;
        for (k, &z) in self.species.iter().enumerate() {
            if !(self.radelem[k].is_finite() && self.radelem[k] > 0.0) {
                return bad(format!(
                    "radelem of element {z} must be positive and finite, got {}",
                    self.radelem[k]
                ));
            }
            if !self.wj[k].is_finite() {
                return bad(format!(
                    "wj of element {z} must be finite, got {}",
                    self.wj[k]
                ));
            }
        }
        let smallest =
            self.radelem.iter().cloned().fold(f64::INFINITY, f64::min) * 2.0 * self.rcutfac;
        if self.rmin0 >= smallest {
            return bad(format!(
                "rmin0 = {} must be smaller than every pair cutoff rcutfac * (R_i + R_j); the smallest is {smallest}",
                self.rmin0
            ));
        }
        Ok(())
    }
}

impl Bispectrum {
    pub fn new(params: BispectrumParams) -> Result<Self> {
        params.validate()?;
        let indices = Indices::new(params.twojmax);
        let n_species = params.species.len();
        let n_elements = if params.chemflag { n_species } else { 1 };
        let n_features = n_elements.pow(3) * indices.n_b();
        let cutoffs = (0..n_species * n_species)
            .map(|ab| {
                params.rcutfac * (params.radelem[ab / n_species] + params.radelem[ab % n_species])
            })
            .collect();
        Ok(Bispectrum {
            params,
            indices,
            n_elements,
            n_features,
            cutoffs,
            portable_only: false,
        })
    }

    pub fn params(&self) -> &BispectrumParams {
        &self.params
    }

    /// The pair cutoff rcutfac * (R_a + R_b) of element indices a and b, Angstrom.
    #[inline]
    pub fn type_pair_cutoff(&self, a: usize, b: usize) -> f64 {
        self.cutoffs[a * self.params.species.len() + b]
    }
}

/// One thread's scratch: the stages' workspace and the per-neighbor outputs.
struct Scratch {
    ws: Workspace,
    /// dB/dr (n_features per neighbor) or dE/dr (one per neighbor).
    per_neighbor: Vec<[f64; 3]>,
    /// beta = dE_i/dB_i of the adjoint.
    beta: Vec<f64>,
}

impl Descriptor for Bispectrum {
    fn kind(&self) -> &'static str {
        "bispectrum"
    }

    fn species(&self) -> &[u32] {
        &self.params.species
    }

    fn n_features(&self) -> usize {
        self.n_features
    }

    fn pair_cutoff(&self, a: usize, b: usize) -> f64 {
        self.type_pair_cutoff(a, b)
    }

    fn describe(&self, what: &str, n_atoms: usize) -> String {
        format!(
            "{} of {n_atoms} atoms (twojmax {}, {} features per atom)",
            job_name("bispectrum", what),
            self.params.twojmax,
            self.n_features
        )
    }

    fn scratch_bytes(&self, max_neighbors: usize, need: Need) -> u128 {
        let per_neighbor = match need {
            Need::Values => 0,
            Need::Gradients => bytes_of::<[f64; 3]>(self.n_features as u128),
            Need::Backprop => {
                bytes_of::<f64>(2 * self.indices.half_len as u128) + bytes_of::<[f64; 3]>(3)
            }
        };
        Workspace::bytes(self)
            + max_neighbors as u128 * (per_neighbor + std::mem::size_of::<Neighbor>() as u128)
    }

    fn workspace(&self) -> Box<dyn Any + Send> {
        Box::new(Scratch {
            ws: Workspace::new(self),
            per_neighbor: Vec::new(),
            beta: Vec::new(),
        })
    }

    fn atom_values(&self, env: &Env, i: usize, ws: &mut dyn Any, out: &mut [f64]) {
        let s = workspace_of::<Scratch>(ws);
        self.run_atom(&mut s.ws, env, i, out, Job::Descriptors);
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
        let s = workspace_of::<Scratch>(ws);
        let nf = self.n_features;
        self.run_atom(&mut s.ws, env, i, values, Job::Gradients(&mut s.per_neighbor));
        let self_row = rows.binary_search(&i).unwrap();
        for (k, nb) in s.ws.neighbors.iter().enumerate() {
            let db = &s.per_neighbor[k * nf..(k + 1) * nf];
            let row = rows.binary_search(&env.list.neighbors[nb.pair]).unwrap();
            for c in 0..3 {
                for f in 0..nf {
                    gradients[(row * 3 + c) * nf + f] += db[f][c];
                    gradients[(self_row * 3 + c) * nf + f] -= db[f][c];
                }
            }
            for (v, &(a, b)) in VOIGT.iter().enumerate() {
                for f in 0..nf {
                    virial[v * nf + f] -= db[f][a] * nb.rij[b];
                }
            }
        }
    }

    /// One pass through Y (`atom::atom_adjoint`): B, then beta from `slope`, then dE/dr per
    /// neighbor, emitted as (i, +g), (j, -g) per pair in list order.
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
        let s = workspace_of::<Scratch>(ws);
        let job = Job::Adjoint(slope, &mut s.beta, &mut s.per_neighbor);
        self.run_atom(&mut s.ws, env, i, values, job);
        for (nb, g) in s.ws.neighbors.iter().zip(s.per_neighbor.iter()) {
            let j = env.list.neighbors[nb.pair];
            forces.push((i, *g));
            forces.push((j, [-g[0], -g[1], -g[2]]));
            for (v, &(a, b)) in VOIGT.iter().enumerate() {
                virial[v] -= g[a] * nb.rij[b];
            }
        }
    }
}

#[cfg(test)]
mod tests;
