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

use std::any::Any;

use serde::{Deserialize, Serialize};

use crate::descriptors::driver::workspace_of;
use crate::descriptors::{bytes_of, check_species, job_name, Descriptor, Env, Need};
use crate::error::{Error, Result};
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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

    /// Bytes of one thread's scratch for atoms of up to `max_neighbors` neighbors.
    fn workspace_bytes(&self, max_neighbors: usize, need: Need) -> u128 {
        let p = &self.params;
        let (n_max, lm) = (p.n_max as u128, (p.l_max as u128 + 1).pow(2));
        let block = lm * n_max;
        let rows = max_neighbors as u128 + 1;
        let mut floats = p.species.len() as u128 * block + 8 * (p.l_max as u128 + 1) * n_max;
        if need != Need::Values {
            floats += (3 * rows + 6 * p.species.len() as u128) * block;
        }
        if need == Need::Gradients {
            floats += (3 * rows + 7) * self.spectrum.n_features() as u128;
        }
        bytes_of::<f64>(floats)
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

/// One thread's scratch.
struct Scratch {
    ws: Workspace,
    acc: Vec<f64>,
    /// dE/dP and its pull-back to the density coefficients.
    de: Vec<f64>,
    dc: Vec<f64>,
}

impl Descriptor for Soap {
    fn kind(&self) -> &'static str {
        "soap"
    }

    /// Sorted by atomic number: the order of the species pairs.
    fn species(&self) -> &[u32] {
        &self.params.species
    }

    fn n_features(&self) -> usize {
        self.spectrum.n_features()
    }

    fn pair_cutoff(&self, _: usize, _: usize) -> f64 {
        self.params.cutoff
    }

    fn describe(&self, what: &str, n_atoms: usize) -> String {
        let p = &self.params;
        format!(
            "{} of {n_atoms} atoms (n_max {}, l_max {}, {} species: {} features per atom)",
            job_name("SOAP", what),
            p.n_max,
            p.l_max,
            p.species.len(),
            self.n_features()
        )
    }

    fn scratch_bytes(&self, max_neighbors: usize, need: Need) -> u128 {
        self.workspace_bytes(max_neighbors, need)
    }

    fn workspace(&self) -> Box<dyn Any + Send> {
        Box::new(Scratch {
            ws: Workspace::new(self),
            acc: Vec::new(),
            de: Vec::new(),
            dc: Vec::new(),
        })
    }

    fn atom_values(&self, env: &Env, i: usize, ws: &mut dyn Any, row: &mut [f64]) {
        let s = workspace_of::<Scratch>(ws);
        s.ws.expand(self, env, i, false);
        self.spectrum.values(&s.ws.c, row);
        if self.params.normalize {
            let norm = norm(row);
            if norm > 0.0 {
                row.iter_mut().for_each(|p| *p /= norm);
            }
        }
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
        s.ws.expand(self, env, i, true);
        debug_assert_eq!(rows, &s.ws.rows[..], "the driver's rows are the expansion's");
        self.atom_gradients(&s.ws, &mut s.acc, i, values, virial, gradients);
    }

    /// The slope dE/dP is pulled back to the density coefficients
    /// (`PowerSpectrum::adjoint`) and contracted with dc/dr there, so dP/dr is never formed.
    fn atom_backprop(
        &self,
        env: &Env,
        i: usize,
        ws: &mut dyn Any,
        p: &mut [f64],
        slope: &mut dyn FnMut(&[f64], &mut [f64]),
        forces: &mut Vec<(usize, [f64; 3])>,
        virial: &mut [f64; 6],
    ) {
        let Scratch { ws, de, dc, .. } = workspace_of::<Scratch>(ws);
        let n_species = self.params.species.len();
        ws.expand(self, env, i, true);
        self.spectrum.values(&ws.c, p);
        let norm = if self.params.normalize { norm(p) } else { 1.0 };
        let scale = if norm > 0.0 { norm } else { 1.0 };
        p.iter_mut().for_each(|x| *x /= scale);
        de.clear();
        de.resize(p.len(), 0.0);
        slope(p, de);
        if self.params.normalize && norm > 0.0 {
            // through p -> p / |p|: dE/dp = (de - p^ (p^ . de)) / |p|
            let along: f64 = de.iter().zip(p.iter()).map(|(d, x)| d * x).sum();
            de.iter_mut()
                .zip(p.iter())
                .for_each(|(d, x)| *d = (*d - x * along) / norm);
        }
        dc.resize(ws.c.len(), 0.0);
        self.spectrum.adjoint(&ws.c, de, dc);
        let block = ws.c.len() / n_species;
        let dot =
            |t: usize, d: &[f64]| -> f64 { crate::linalg::dot(&dc[t * block..(t + 1) * block], d) };
        let self_row = ws.rows.binary_search(&i).unwrap();
        let first = forces.len();
        let mut centre = [0.0; 3];
        for (row, &t) in ws.row_species.iter().enumerate() {
            let mut f = [0.0; 3];
            if row != self_row {
                let d = &ws.d_rows[row * 3 * block..(row + 1) * 3 * block];
                for a in 0..3 {
                    f[a] = -dot(t, &d[a * block..(a + 1) * block]);
                    centre[a] -= f[a];
                }
            }
            forces.push((ws.rows[row], f));
        }
        // translation invariance: the centre's force is minus the sum of the others
        forces[first + self_row].1 = centre;
        for t in 0..n_species {
            let d = &ws.d_virial[t * 6 * block..(t + 1) * 6 * block];
            for (v, wv) in virial.iter_mut().enumerate() {
                *wv -= dot(t, &d[v * block..(v + 1) * block]);
            }
        }
    }

    fn dot_product_columns(&self) -> Option<(Vec<usize>, Vec<f64>)> {
        Some(self.spectrum.symmetric_columns())
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
