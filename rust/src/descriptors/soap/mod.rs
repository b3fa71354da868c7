//! The SOAP power spectrum (Bartok, Kondor and Csanyi, Phys. Rev. B 87, 184115 (2013)) for
//! any number of species, with the definitions, normalisation and component order of
//! featomic's `SoapPowerSpectrum` (GTO radial basis, Gaussian density, shifted-cosine
//! cutoff), so that values agree with featomic's to rounding.
//!
//! Stages, one module each: the GTO radial basis and its exact radial integral (`radial`),
//! its quintic-spline table (`spline`), real spherical harmonics (`spherical_harmonics`),
//! the density expansion coefficients of one atom and their derivatives (`expansion`), and
//! the power spectrum with its derivatives (`power_spectrum`). Atoms run in parallel; each
//! atom's result depends only on its own neighbors, so the output is the same for any number
//! of threads.

mod expansion;
mod power_spectrum;
mod radial;
mod spherical_harmonics;
mod spline;

use crate::descriptors::{
    bytes_of, calloc_checked, check_species, descriptor_neighbors, ensure_work_fits, max_neighbors,
    split_by_offsets, zeros_checked,
};
use rayon::prelude::*;

use crate::descriptors::bispectrum::Gradients;
use crate::error::{Error, Result};
use crate::neighbors::{Cutoff, NeighborList};
use crate::structure::Structure;
use expansion::Workspace;
use power_spectrum::PowerSpectrum;
use spline::RadialSpline;

/// Largest l_max accepted: the tables grow as l_max^2 and the spherical harmonics
/// recurrences stay accurate well beyond it.
pub const MAX_L_MAX: usize = 30;

/// Largest n_max accepted. Fits use n_max <= 12; the GTO basis becomes numerically linearly
/// dependent near n_max = 30 for any cutoff (its overlap matrix is singular in f64, an error
/// when the basis is built), so 64 refuses nothing that could work while keeping the
/// n_max^2-sized tables bounded before anything is allocated.
pub const MAX_N_MAX: usize = 64;

/// The radial table resolves the narrowest feature, the atom Gaussian, with a few intervals:
/// atom_sigma below cutoff / MAX_CUTOFF_OVER_SIGMA would need more than the finest grid the
/// spline tries (`spline::MAX_INTERVALS`), and an allocation that grows as cutoff / atom_sigma.
pub const MAX_CUTOFF_OVER_SIGMA: f64 = (spline::MAX_INTERVALS / 4) as f64;

/// The hyperparameters, with QUIP's names. featomic's are: cutoff.radius = cutoff,
/// max_radial = n_max - 1, max_angular = l_max, density width = atom_sigma, ShiftedCosine
/// width = cutoff_transition_width (Step when it is 0), center_atom_weight.
#[derive(Debug, Clone, PartialEq)]
pub struct SoapParams {
    /// Angstrom.
    pub cutoff: f64,
    /// Number of radial basis functions.
    pub n_max: usize,
    pub l_max: usize,
    /// Width of the Gaussian on each atom, Angstrom.
    pub atom_sigma: f64,
    /// Width of the shifted-cosine switch below the cutoff, Angstrom; 0 for a hard cutoff.
    pub cutoff_transition_width: f64,
    /// Atomic numbers; sorted on construction (the order of the species pairs).
    pub species: Vec<u32>,
    /// Weight of the central atom's own Gaussian in its density.
    pub center_atom_weight: f64,
    /// Divide each atom's spectrum by its Euclidean norm.
    pub normalize: bool,
}

impl SoapParams {
    fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::invalid(m));
        if !(self.cutoff.is_finite() && self.cutoff > 0.0) {
            return bad(format!(
                "cutoff must be a positive finite number of Angstrom, got {}",
                self.cutoff
            ));
        }
        if !(1..=MAX_N_MAX).contains(&self.n_max) {
            return bad(format!(
                "n_max must be >= 1 and <= {MAX_N_MAX}, got {}",
                self.n_max
            ));
        }
        if self.l_max > MAX_L_MAX {
            return bad(format!(
                "l_max must be >= 0 and <= {MAX_L_MAX}, got {}",
                self.l_max
            ));
        }
        if !(self.atom_sigma.is_finite() && self.atom_sigma > 0.0) {
            return bad(format!(
                "atom_sigma must be a positive finite number of Angstrom, got {}",
                self.atom_sigma
            ));
        }
        let smallest_sigma = self.cutoff / MAX_CUTOFF_OVER_SIGMA;
        if self.atom_sigma < smallest_sigma {
            return bad(format!(
                "atom_sigma must be at least cutoff / {MAX_CUTOFF_OVER_SIGMA} = {smallest_sigma:e} \
                 Angstrom (the radial table resolves the atom Gaussians), got {}",
                self.atom_sigma
            ));
        }
        let w = self.cutoff_transition_width;
        if !(w.is_finite() && w >= 0.0 && w < self.cutoff) {
            return bad(format!(
                "cutoff_transition_width must be in [0, cutoff) = [0, {}) Angstrom, got {w}",
                self.cutoff
            ));
        }
        if !self.center_atom_weight.is_finite() {
            return bad(format!(
                "center_atom_weight must be finite, got {}",
                self.center_atom_weight
            ));
        }
        if self.species.is_empty() {
            return bad("species must name at least one element".into());
        }
        check_species(&self.species)
    }
}

/// What one thread holds per atom besides the density coefficients, for memory estimates.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Scratch {
    Values,
    /// dc/dr of the atom's rows.
    DensityGradients,
    /// dc/dr and dP/dr of the atom's rows.
    PowerSpectrumGradients,
}

/// A configured descriptor: parameters and the radial table, built once.
#[derive(Debug, Clone)]
pub struct Soap {
    params: SoapParams,
    spline: RadialSpline,
    spectrum: PowerSpectrum,
}

impl Soap {
    pub fn new(mut params: SoapParams) -> Result<Self> {
        params.validate()?;
        params.species.sort_unstable();
        let integral = radial::RadialIntegral::new(
            params.cutoff,
            params.n_max,
            params.l_max,
            params.atom_sigma,
        )?;
        let spline = RadialSpline::new(&integral, params.cutoff, params.atom_sigma)?;
        let spectrum = PowerSpectrum::new(params.species.len(), params.n_max, params.l_max);
        Ok(Soap {
            params,
            spline,
            spectrum,
        })
    }

    pub fn params(&self) -> &SoapParams {
        &self.params
    }

    pub fn n_features(&self) -> usize {
        self.spectrum.n_features()
    }

    /// See `PowerSpectrum::symmetric_columns`.
    pub fn symmetric_columns(&self) -> (Vec<usize>, Vec<f64>) {
        self.spectrum.symmetric_columns()
    }

    /// The cutoff function f_c(r) and its derivative.
    fn smoothing(&self, r: f64) -> (f64, f64) {
        let rc = self.params.cutoff;
        let w = self.params.cutoff_transition_width;
        if r <= rc - w {
            (1.0, 0.0)
        } else if r >= rc {
            (0.0, 0.0)
        } else {
            let s = std::f64::consts::PI * (r - rc + w) / w;
            (
                0.5 * (1.0 + s.cos()),
                -0.5 * std::f64::consts::PI * s.sin() / w,
            )
        }
    }

    /// The species index (position in the sorted `species`) of every atom.
    fn types(&self, structure: &Structure) -> Result<Vec<usize>> {
        structure
            .numbers()
            .iter()
            .enumerate()
            .map(|(i, z)| {
                self.params.species.binary_search(z).map_err(|_| {
                    Error::invalid(format!(
                        "atom {i} has atomic number {z}, which is not in species {:?}",
                        self.params.species
                    ))
                })
            })
            .collect()
    }

    /// The neighbor list; coincident atoms are an error.
    fn neighbors(&self, structure: &Structure) -> Result<NeighborList> {
        descriptor_neighbors(structure, &Cutoff::Uniform(self.params.cutoff))
    }

    /// Bytes of one thread's scratch for the atoms of `list`, sized by its busiest atom.
    fn workspace_bytes(&self, list: &NeighborList, scratch: Scratch) -> u128 {
        let p = &self.params;
        let (n_max, lm) = (p.n_max as u128, (p.l_max as u128 + 1).pow(2));
        let block = lm * n_max;
        let rows = max_neighbors(list) as u128 + 1;
        let mut floats = p.species.len() as u128 * block + 8 * (p.l_max as u128 + 1) * n_max;
        if scratch != Scratch::Values {
            floats += (3 * rows + 6 * p.species.len() as u128) * block;
        }
        if scratch == Scratch::PowerSpectrumGradients {
            floats += (3 * rows + 7) * self.n_features() as u128;
        }
        bytes_of::<f64>(floats)
    }

    /// "{what} of n atoms (n_max .., l_max .., .. species, .. features per atom)".
    pub(crate) fn describe(&self, what: &str, n_atoms: usize) -> String {
        let p = &self.params;
        format!(
            "{what} of {n_atoms} atoms (n_max {}, l_max {}, {} species: {} features per atom)",
            p.n_max,
            p.l_max,
            p.species.len(),
            self.n_features()
        )
    }

    /// Per-atom power spectra, (n_atoms, n_features) row-major.
    pub fn compute(&self, structure: &Structure) -> Result<Vec<f64>> {
        let types = self.types(structure)?;
        let list = self.neighbors(structure)?;
        let nf = self.n_features();
        let n = structure.len();
        let what = "the SOAP power spectrum";
        let size = bytes_of::<f64>(n as u128 * nf as u128);
        ensure_work_fits(size, self.workspace_bytes(&list, Scratch::Values), || {
            self.describe(what, list.n_atoms())
        })?;
        let mut out = zeros_checked(n * nf, || self.describe(what, n))?;
        out.par_chunks_mut(nf).enumerate().for_each_init(
            || Workspace::new(self),
            |ws, (i, row)| {
                ws.expand(self, &list, &types, i, false);
                self.spectrum.values(&ws.c, row);
                if self.params.normalize {
                    let norm = norm(row);
                    if norm > 0.0 {
                        row.iter_mut().for_each(|p| *p /= norm);
                    }
                }
            },
        );
        Ok(out)
    }

    /// Per-atom power spectra with dP_i/dr_j and the per-atom virials.
    pub fn compute_with_gradients(&self, structure: &Structure) -> Result<Gradients> {
        let types = self.types(structure)?;
        let list = self.neighbors(structure)?;
        let n_atoms = structure.len();
        let nf = self.n_features();
        let what = "the SOAP gradients";
        // atom i has at most its neighbors and itself as gradient rows
        let rows_bound = (list.n_pairs() + n_atoms) as u128;
        let floats = (3 * rows_bound + 7 * n_atoms as u128) * nf as u128;
        let size = bytes_of::<f64>(floats) + bytes_of::<usize>(3 * rows_bound);
        ensure_work_fits(
            size,
            self.workspace_bytes(&list, Scratch::PowerSpectrumGradients),
            || self.describe(what, list.n_atoms()),
        )?;

        // rows of atom i: its distinct neighbors and itself, sorted (as Workspace::expand)
        let row_counts: Vec<usize> = (0..n_atoms)
            .into_par_iter()
            .map(|i| {
                let mut js: Vec<usize> = list.neighbors[list.pairs_of(i)].to_vec();
                js.push(i);
                js.sort_unstable();
                js.dedup();
                js.len()
            })
            .collect();
        let mut row_offsets = Vec::with_capacity(n_atoms + 1);
        row_offsets.push(0);
        for count in &row_counts {
            row_offsets.push(row_offsets.last().unwrap() + count);
        }
        let n_rows = row_offsets[n_atoms];

        // zeroed allocations come from fresh OS pages without a memset: the pages are first
        // touched by the parallel loop below, and so cleared by the kernel in parallel
        let describe = || self.describe(what, n_atoms);
        let mut descriptors = calloc_checked(n_atoms * nf, describe)?;
        let mut values = calloc_checked(n_rows * 3 * nf, describe)?;
        let mut virial = calloc_checked(n_atoms * 6 * nf, describe)?;
        let mut centers = calloc_checked(n_rows, describe)?;
        let mut atoms = calloc_checked(n_rows, describe)?;
        let value_rows = split_by_offsets(&mut values, &row_offsets, 3 * nf);
        let center_rows = split_by_offsets(&mut centers, &row_offsets, 1);
        let atom_rows = split_by_offsets(&mut atoms, &row_offsets, 1);
        descriptors
            .par_chunks_mut(nf)
            .zip(virial.par_chunks_mut(6 * nf))
            .zip(value_rows)
            .zip(center_rows.into_par_iter().zip(atom_rows))
            .enumerate()
            .for_each_init(
                || (Workspace::new(self), Vec::new()),
                |(ws, acc), (i, (((p, w), g), (centers, atoms)))| {
                    ws.expand(self, &list, &types, i, true);
                    centers.fill(i);
                    atoms.copy_from_slice(&ws.rows);
                    self.atom_gradients(ws, acc, i, p, w, g);
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

    /// P (nf), its virial W (6, nf) and gradient rows g (rows, 3, nf) of one expanded atom.
    fn atom_gradients(
        &self,
        ws: &Workspace,
        acc: &mut Vec<f64>,
        i: usize,
        p: &mut [f64],
        w: &mut [f64],
        g: &mut [f64],
    ) {
        let nf = self.n_features();
        let block = ws.c.len() / self.params.species.len();
        self.spectrum.values(&ws.c, p);
        let self_row = ws.rows.binary_search(&i).unwrap();
        for (row, &t) in ws.row_species.iter().enumerate() {
            if row == self_row {
                continue;
            }
            let d = &ws.d_rows[row * 3 * block..(row + 1) * 3 * block];
            let out = &mut g[row * 3 * nf..(row + 1) * 3 * nf];
            self.spectrum.derivatives(&ws.c, d, t, out, false, acc);
        }
        // translation invariance: the centre's row is minus the sum of the others
        let (before, rest) = g.split_at_mut(self_row * 3 * nf);
        let (centre, after) = rest.split_at_mut(3 * nf);
        for other in before.chunks(3 * nf).chain(after.chunks(3 * nf)) {
            for (c, o) in centre.iter_mut().zip(other) {
                *c -= o;
            }
        }
        for t in 0..self.params.species.len() {
            let d = &ws.d_virial[t * 6 * block..(t + 1) * 6 * block];
            self.spectrum.derivatives(&ws.c, d, t, w, true, acc);
        }
        // W = -sum over pairs of dP/dr_ij (x) r_ij
        w.iter_mut().for_each(|x| *x = -*x);
        if self.params.normalize {
            normalize_with_derivatives(p, g.chunks_mut(nf).chain(w.chunks_mut(nf)));
        }
    }
}

/// One atom's power spectrum and derivatives, laid out as `compute_with_gradients` lays
/// out that atom's part.
pub struct AtomGradients<'a> {
    pub center: usize,
    /// The atoms of the gradient rows: the distinct neighbors and the centre, sorted.
    pub rows: &'a [usize],
    /// P_i, (n_features).
    pub values: &'a [f64],
    /// dP_i/dr_j, (rows, 3, n_features).
    pub gradients: &'a [f64],
    /// W_i = -sum_j (dP_i/dr_ij) (x) r_ij in Voigt order, (6, n_features).
    pub virial: &'a [f64],
}

impl Soap {
    /// Streams the atoms of `structure` with their gradients, so that a model can contract
    /// them as they come instead of storing the gradients of the whole structure: `map`
    /// runs on `chunk` atoms at a time in parallel, and `consume` receives its results in
    /// atom order (so reductions in `consume` do not depend on the thread count).
    pub fn for_each_atom_gradients<T: Send>(
        &self,
        structure: &Structure,
        chunk: usize,
        map: impl Fn(AtomGradients<'_>) -> T + Sync,
        mut consume: impl FnMut(usize, T),
    ) -> Result<()> {
        let types = self.types(structure)?;
        let list = self.neighbors(structure)?;
        ensure_work_fits(
            0,
            self.workspace_bytes(&list, Scratch::PowerSpectrumGradients),
            || self.describe("the SOAP gradients", list.n_atoms()),
        )?;
        let nf = self.n_features();
        let n = structure.len();
        let chunk = chunk.max(1);
        for start in (0..n).step_by(chunk) {
            let end = (start + chunk).min(n);
            let results: Vec<T> = (start..end)
                .into_par_iter()
                .map_init(
                    || {
                        (
                            Workspace::new(self),
                            Vec::new(),
                            vec![0.0; nf],
                            Vec::new(),
                            vec![0.0; 6 * nf],
                        )
                    },
                    |(ws, acc, p, g, w), i| {
                        ws.expand(self, &list, &types, i, true);
                        // atom_gradients accumulates into g and w
                        g.clear();
                        g.resize(ws.rows.len() * 3 * nf, 0.0);
                        w.fill(0.0);
                        self.atom_gradients(ws, acc, i, p, w, g);
                        map(AtomGradients {
                            center: i,
                            rows: &ws.rows,
                            values: p,
                            gradients: g,
                            virial: w,
                        })
                    },
                )
                .collect();
            for (k, r) in results.into_iter().enumerate() {
                consume(start + k, r);
            }
        }
        Ok(())
    }
}

/// What `Soap::for_each_atom_forces` hands back per atom: the model's own result, the
/// atoms of the rows, -dE_i/dr_j per row (eV/Angstrom) and the virial of E_i (Voigt, eV).
pub type AtomForces<T> = (T, Vec<usize>, Vec<[f64; 3]>, [f64; 6]);

impl Soap {
    /// Streams, for a model whose local energy E_i depends on P_i alone, each atom's
    /// contribution to the forces and virial: `energy_slope` maps (atom, P_i) to its own
    /// result and dE_i/dP_i (n_features); the slope is pulled back to the density
    /// coefficients (`PowerSpectrum::adjoint`) and contracted with dc/dr there, so dP/dr is
    /// never formed. `consume` receives atoms in order (thread-count independent sums).
    pub fn for_each_atom_forces<T: Send>(
        &self,
        structure: &Structure,
        chunk: usize,
        energy_slope: impl Fn(usize, &[f64]) -> (T, Vec<f64>) + Sync,
        mut consume: impl FnMut(usize, AtomForces<T>),
    ) -> Result<()> {
        let types = self.types(structure)?;
        let list = self.neighbors(structure)?;
        ensure_work_fits(
            0,
            self.workspace_bytes(&list, Scratch::DensityGradients),
            || self.describe("the SOAP forces", list.n_atoms()),
        )?;
        let nf = self.n_features();
        let n_species = self.params.species.len();
        let n = structure.len();
        let chunk = chunk.max(1);
        for start in (0..n).step_by(chunk) {
            let end = (start + chunk).min(n);
            let results: Vec<AtomForces<T>> = (start..end)
                .into_par_iter()
                .map_init(
                    || (Workspace::new(self), vec![0.0; nf], Vec::new()),
                    |(ws, p, dc), i| {
                        ws.expand(self, &list, &types, i, true);
                        self.spectrum.values(&ws.c, p);
                        let norm = if self.params.normalize { norm(p) } else { 1.0 };
                        let scale = if norm > 0.0 { norm } else { 1.0 };
                        p.iter_mut().for_each(|x| *x /= scale);
                        let (result, mut de) = energy_slope(i, p);
                        if self.params.normalize && norm > 0.0 {
                            // through p -> p / |p|: dE/dp = (de - p^ (p^ . de)) / |p|
                            let along: f64 = de.iter().zip(p.iter()).map(|(d, x)| d * x).sum();
                            de.iter_mut()
                                .zip(p.iter())
                                .for_each(|(d, x)| *d = (*d - x * along) / norm);
                        }
                        dc.resize(ws.c.len(), 0.0);
                        self.spectrum.adjoint(&ws.c, &de, dc);
                        let block = ws.c.len() / n_species;
                        let dot = |t: usize, d: &[f64]| -> f64 {
                            crate::linalg::dot(&dc[t * block..(t + 1) * block], d)
                        };
                        let self_row = ws.rows.binary_search(&i).unwrap();
                        let mut f = vec![[0.0; 3]; ws.rows.len()];
                        let mut centre = [0.0; 3];
                        for (row, &t) in ws.row_species.iter().enumerate() {
                            if row == self_row {
                                continue;
                            }
                            let d = &ws.d_rows[row * 3 * block..(row + 1) * 3 * block];
                            for a in 0..3 {
                                f[row][a] = -dot(t, &d[a * block..(a + 1) * block]);
                                centre[a] -= f[row][a];
                            }
                        }
                        f[self_row] = centre;
                        let mut w = [0.0; 6];
                        for t in 0..n_species {
                            let d = &ws.d_virial[t * 6 * block..(t + 1) * 6 * block];
                            for (v, wv) in w.iter_mut().enumerate() {
                                *wv -= dot(t, &d[v * block..(v + 1) * block]);
                            }
                        }
                        (result, ws.rows.clone(), f, w)
                    },
                )
                .collect();
            for (k, r) in results.into_iter().enumerate() {
                consume(start + k, r);
            }
        }
        Ok(())
    }
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// p -> p / |p|, and each derivative dp -> (dp - p^ (p^ . dp)) / |p|. A zero spectrum (an
/// atom with no density at all) is left at zero.
fn normalize_with_derivatives<'a>(p: &mut [f64], derivatives: impl Iterator<Item = &'a mut [f64]>) {
    let norm = norm(p);
    if norm == 0.0 {
        return;
    }
    p.iter_mut().for_each(|x| *x /= norm);
    for d in derivatives {
        let along: f64 = d.iter().zip(p.iter()).map(|(d, p)| d * p).sum();
        for (d, p) in d.iter_mut().zip(p.iter()) {
            *d = (*d - p * along) / norm;
        }
    }
}

#[cfg(test)]
mod tests;
