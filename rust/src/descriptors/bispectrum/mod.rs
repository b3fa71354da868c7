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
mod clebsch_gordan;
mod contract;
mod db;
mod indices;
mod simd;
mod u;
mod y;
mod z;

use crate::descriptors::{
    bytes_of, calloc_checked, check_species, descriptor_neighbors, ensure_work_fits, max_neighbors,
    split_by_offsets, zeros_checked,
};
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::neighbors::{Cutoff, NeighborList};
use crate::structure::Structure;
use atom::{Job, Neighbor, Workspace};
use indices::Indices;

/// Largest twojmax accepted: the Z tables grow as twojmax^5 and the Clebsch-Gordan
/// factorials stay accurate in f64 well beyond it.
pub const MAX_TWOJMAX: usize = 24;

/// Voigt order (xx, yy, zz, yz, xz, xy) as (gradient component, position component).
pub const VOIGT: [(usize, usize); 6] = [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)];

/// The hyperparameters, with the names of LAMMPS `compute sna/atom`. Per-element lists are in
/// the order of `species`.
#[derive(Debug, Clone, PartialEq)]
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

/// Per-atom descriptors with their derivatives.
#[derive(Debug, Clone)]
pub struct Gradients {
    /// (n_atoms, n_features)
    pub descriptors: Vec<f64>,
    /// Per gradient row: the central atom i and the atom j it is differentiated by. The rows
    /// of atom i are the distinct j among its neighbors and i itself, sorted by j; periodic
    /// images of one atom are summed into its row.
    pub centers: Vec<usize>,
    pub atoms: Vec<usize>,
    /// dB_i/dr_j, (n_rows, 3, n_features), 1/Angstrom times the units of B.
    pub values: Vec<f64>,
    /// Per-atom virial of B_i, (n_atoms, 6, n_features) in Voigt order:
    /// W_i[ab] = -sum_j (dB_i/dr_ij)_a (r_ij)_b, the convention of LAMMPS `compute snav/atom`
    /// summed over atoms.
    pub virial: Vec<f64>,
}

/// The result of the adjoint pass for E = sum_i beta_i . B_i.
#[derive(Debug, Clone)]
pub struct Adjoint {
    /// (n_atoms, n_features), computed on the way.
    pub descriptors: Vec<f64>,
    /// -dE/dr_k per atom.
    pub forces: Vec<[f64; 3]>,
    /// -sum over pairs of (dE/dr_ij)_a (r_ij)_b, Voigt order.
    pub virial: [f64; 6],
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

    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// The pair cutoff rcutfac * (R_a + R_b) of element indices a and b, Angstrom.
    pub fn pair_cutoff(&self, a: usize, b: usize) -> f64 {
        self.cutoffs[a * self.params.species.len() + b]
    }

    /// The element index (position in `species`) of every atom.
    fn types(&self, structure: &Structure) -> Result<Vec<usize>> {
        structure
            .numbers()
            .iter()
            .enumerate()
            .map(|(i, z)| {
                self.params.species.iter().position(|s| s == z).ok_or_else(|| {
                    Error::invalid(format!(
                        "atom {i} has atomic number {z}, which has no radelem and wj in this descriptor"
                    ))
                })
            })
            .collect()
    }

    /// The neighbor list; coincident atoms are an error.
    fn neighbors(&self, structure: &Structure, types: &[usize]) -> Result<NeighborList> {
        let cutoff = Cutoff::TypePairs {
            types: types.to_vec(),
            n_types: self.params.species.len(),
            table: self.cutoffs.clone(),
        };
        descriptor_neighbors(structure, &cutoff)
    }

    /// Bytes of one thread's scratch for the atoms of `list`: a workspace, with
    /// `per_neighbor` bytes for each neighbor of the busiest atom.
    fn scratch_bytes(&self, list: &NeighborList, per_neighbor: u128) -> u128 {
        let neighbors = max_neighbors(list) as u128;
        Workspace::bytes(self)
            + neighbors * (per_neighbor + std::mem::size_of::<Neighbor>() as u128)
    }

    /// "{what} of n atoms (twojmax .., .. features per atom)", for memory errors.
    fn describe(&self, what: &str, n_atoms: usize) -> String {
        format!(
            "{what} of {n_atoms} atoms (twojmax {}, {} features per atom)",
            self.params.twojmax, self.n_features
        )
    }

    /// Per-atom B, (n_atoms, n_features) row-major.
    pub fn compute(&self, structure: &Structure) -> Result<Vec<f64>> {
        let types = self.types(structure)?;
        let list = self.neighbors(structure, &types)?;
        let nf = self.n_features;
        let n = structure.len();
        let size = bytes_of::<f64>(n as u128 * nf as u128);
        ensure_work_fits(size, self.scratch_bytes(&list, 0), || {
            self.describe("the bispectrum", n)
        })?;
        let mut out = zeros_checked(n * nf, || self.describe("the bispectrum", n))?;
        out.par_chunks_mut(nf.max(1)).enumerate().for_each_init(
            || Workspace::new(self),
            |ws, (i, row)| self.run_atom(ws, &list, &types, i, row, Job::Descriptors),
        );
        Ok(out)
    }

    /// Per-atom B with dB_i/dr_j and the per-atom virials.
    pub fn compute_with_gradients(&self, structure: &Structure) -> Result<Gradients> {
        let types = self.types(structure)?;
        let list = self.neighbors(structure, &types)?;
        let n_atoms = structure.len();
        let nf = self.n_features;
        let what = "the bispectrum gradients";
        // dB/dr of the rows of atom i are at most its neighbors and itself
        let rows_bound = (list.n_pairs() + n_atoms) as u128;
        let floats = (3 * rows_bound + 7 * n_atoms as u128) * nf as u128;
        let size = bytes_of::<f64>(floats) + bytes_of::<usize>(3 * rows_bound);
        let scratch = self.scratch_bytes(&list, bytes_of::<[f64; 3]>(nf as u128));
        ensure_work_fits(size, scratch, || self.describe(what, n_atoms))?;

        // rows of atom i: the distinct neighbors and i itself, sorted
        let row_atoms: Vec<Vec<usize>> = (0..n_atoms)
            .into_par_iter()
            .map(|i| {
                let mut js: Vec<usize> = list.neighbors[list.pairs_of(i)].to_vec();
                js.push(i);
                js.sort_unstable();
                js.dedup();
                js
            })
            .collect();
        let mut row_offsets = Vec::with_capacity(n_atoms + 1);
        row_offsets.push(0);
        for js in &row_atoms {
            row_offsets.push(row_offsets.last().unwrap() + js.len());
        }
        let n_rows = row_offsets[n_atoms];
        let mut centers = Vec::with_capacity(n_rows);
        let mut atoms = Vec::with_capacity(n_rows);
        for (i, js) in row_atoms.iter().enumerate() {
            centers.resize(centers.len() + js.len(), i);
            atoms.extend_from_slice(js);
        }

        let describe = || self.describe(what, n_atoms);
        let mut descriptors = calloc_checked(n_atoms * nf, describe)?;
        let mut values = zeros_checked(n_rows * 3 * nf, describe)?;
        let mut virial = calloc_checked(n_atoms * 6 * nf, describe)?;
        let value_rows = split_by_offsets(&mut values, &row_offsets, 3 * nf);
        descriptors
            .par_chunks_mut(nf)
            .zip(virial.par_chunks_mut(6 * nf))
            .zip(value_rows)
            .enumerate()
            .for_each_init(
                || (Workspace::new(self), Vec::new()),
                |(ws, pair_db), (i, ((b_row, w_row), g_rows))| {
                    self.run_atom(ws, &list, &types, i, b_row, Job::Gradients(pair_db));
                    let js = &row_atoms[i];
                    let self_row = js.binary_search(&i).unwrap();
                    for (k, nb) in ws.neighbors.iter().enumerate() {
                        let db = &pair_db[k * nf..(k + 1) * nf];
                        let row = js.binary_search(&list.neighbors[nb.pair]).unwrap();
                        for c in 0..3 {
                            for f in 0..nf {
                                g_rows[(row * 3 + c) * nf + f] += db[f][c];
                                g_rows[(self_row * 3 + c) * nf + f] -= db[f][c];
                            }
                        }
                        for (v, &(a, b)) in VOIGT.iter().enumerate() {
                            for f in 0..nf {
                                w_row[v * nf + f] -= db[f][a] * nb.rij[b];
                            }
                        }
                    }
                },
            );
        Ok(Gradients {
            descriptors,
            centers,
            atoms,
            values,
            virial,
        })
    }

    /// Forces and virial of E = sum_i beta_i . B_i (beta: (n_atoms, n_features)) through the
    /// adjoint Y, without forming dB/dr.
    pub fn adjoint(&self, structure: &Structure, beta: &[f64]) -> Result<Adjoint> {
        let n_atoms = structure.len();
        let nf = self.n_features;
        if beta.len() != n_atoms * nf {
            return Err(Error::invalid(format!(
                "beta must have shape (n_atoms, n_features) = ({n_atoms}, {nf}), got {} values",
                beta.len()
            )));
        }
        if let Some(k) = beta.iter().position(|b| !b.is_finite()) {
            return Err(Error::invalid(format!(
                "beta of atom {} is not finite",
                k / nf.max(1)
            )));
        }
        let types = self.types(structure)?;
        let list = self.neighbors(structure, &types)?;
        let what = "the bispectrum forces";
        let size = bytes_of::<f64>(n_atoms as u128 * (nf as u128 + 9) + 3 * list.n_pairs() as u128);
        let u_bytes = bytes_of::<f64>(2 * self.indices.half_len as u128);
        let scratch = self.scratch_bytes(&list, u_bytes + bytes_of::<[f64; 3]>(1));
        ensure_work_fits(size, scratch, || self.describe(what, n_atoms))?;
        let mut descriptors = calloc_checked(n_atoms * nf, || self.describe(what, n_atoms))?;
        let mut dedr = vec![[0.0; 3]; list.n_pairs()];
        let pair_rows = split_by_offsets(&mut dedr, &list.offsets, 1);
        let atom_virials: Vec<[f64; 6]> = descriptors
            .par_chunks_mut(nf)
            .zip(pair_rows)
            .enumerate()
            .map_init(
                || (Workspace::new(self), Vec::new()),
                |(ws, per_neighbor), (i, (b_row, pair_out))| {
                    self.run_atom(
                        ws,
                        &list,
                        &types,
                        i,
                        b_row,
                        Job::Adjoint(&beta[i * nf..(i + 1) * nf], per_neighbor),
                    );
                    let first = list.offsets[i];
                    let mut w = [0.0; 6];
                    for (nb, g) in ws.neighbors.iter().zip(per_neighbor.iter()) {
                        pair_out[nb.pair - first] = *g;
                        for (v, &(a, b)) in VOIGT.iter().enumerate() {
                            w[v] -= g[a] * nb.rij[b];
                        }
                    }
                    w
                },
            )
            .collect();
        // the scatter to neighbors runs in pair order, so the sums never depend on threads
        let mut forces = vec![[0.0; 3]; n_atoms];
        for i in 0..n_atoms {
            for pair in list.pairs_of(i) {
                let j = list.neighbors[pair];
                for c in 0..3 {
                    forces[i][c] += dedr[pair][c];
                    forces[j][c] -= dedr[pair][c];
                }
            }
        }
        let mut virial = [0.0; 6];
        for w in &atom_virials {
            for v in 0..6 {
                virial[v] += w[v];
            }
        }
        Ok(Adjoint {
            descriptors,
            forces,
            virial,
        })
    }
}

#[cfg(test)]
mod tests;
