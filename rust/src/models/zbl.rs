//! The Ziegler-Biersack-Littmark (ZBL) screened nuclear repulsion, exactly as LAMMPS
//! `pair_style zbl inner outer` (J. F. Ziegler, J. P. Biersack, U. Littmark, "The Stopping and
//! Range of Ions in Solids", Pergamon, 1985).
//!
//! For atoms i, j at distance r, with nuclear charges Z_i, Z_j (the atomic numbers):
//!
//!   E(r) = k_e Z_i Z_j / r * phi(r / a) + S(r),   a = 0.46850 / (Z_i^0.23 + Z_j^0.23)
//!   phi(x) = 0.18175 e^{-3.19980 x} + 0.50986 e^{-0.94229 x}
//!          + 0.28022 e^{-0.40290 x} + 0.02817 e^{-0.20162 x}
//!
//! S(r) is the switching function of LAMMPS `pair_style lj/gromacs`: a constant C for
//! r <= inner and C + A/3 t^3 + B/4 t^4 (t = r - inner) up to outer, with A, B, C chosen so that
//! the energy, its first and its second derivative vanish at r = outer. Pairs at r >= outer do
//! not interact. Units: Angstrom, eV.

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::neighbors::{neighbor_list, Cutoff, ListOptions, NeighborList};
use crate::structure::{Structure, MAX_ATOMIC_NUMBER};

/// e^2 / (4 pi epsilon_0) in eV Angstrom: the value of LAMMPS metal units (`force->qqr2e`),
/// kept identical so that energies match LAMMPS to rounding.
pub const COULOMB_CONSTANT: f64 = 14.399645;

/// Screening length prefactor (Angstrom) and exponent of the universal screening length.
const SCREENING_LENGTH: f64 = 0.46850;
const SCREENING_EXPONENT: f64 = 0.23;

/// (c_k, d_k) of the universal screening function phi(x) = sum_k c_k exp(-d_k x).
const SCREENING: [(f64, f64); 4] = [
    (0.18175, 3.19980),
    (0.50986, 0.94229),
    (0.28022, 0.40290),
    (0.02817, 0.20162),
];

/// ZBL repulsion between every pair of atoms closer than `outer`, switched off smoothly
/// between `inner` and `outer` (Angstrom).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Zbl {
    inner: f64,
    outer: f64,
}

/// Per-atom energies (eV), forces (eV/Angstrom) and virials (eV, Voigt order xx yy zz yz xz
/// xy; each pair's virial -dE/dr r_a r_b / r split half to each atom, as LAMMPS
/// `compute stress/atom` before its volume and sign conventions).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ZblOutput {
    pub energies: Vec<f64>,
    pub forces: Vec<[f64; 3]>,
    pub virials: Vec<[f64; 6]>,
}

/// The ZBL interaction of one pair of elements: screened Coulomb and switching coefficients.
#[derive(Debug, Clone, Copy)]
struct PairTerms {
    /// k_e Z_i Z_j, eV Angstrom.
    charge: f64,
    /// 1 / a, 1/Angstrom.
    inverse_screening: f64,
    /// S'(r) = a t^2 + b t^3 for t = r - inner > 0; S = c + a/3 t^3 + b/4 t^4.
    a: f64,
    b: f64,
    c: f64,
}

impl PairTerms {
    fn new(zi: u32, zj: u32, inner: f64, outer: f64) -> Self {
        let (zi, zj) = (f64::from(zi), f64::from(zj));
        let mut terms = PairTerms {
            // Z_i Z_j first: exact and symmetric, so both atoms of a pair get the same energy
            charge: COULOMB_CONSTANT * (zi * zj),
            inverse_screening: (zi.powf(SCREENING_EXPONENT) + zj.powf(SCREENING_EXPONENT))
                / SCREENING_LENGTH,
            a: 0.0,
            b: 0.0,
            c: 0.0,
        };
        let (e, de, d2e) = terms.screened(outer);
        let t = outer - inner;
        terms.a = (-3.0 * de + t * d2e) / (t * t);
        terms.b = (2.0 * de - t * d2e) / (t * t * t);
        terms.c = -e + 0.5 * t * de - t * t / 12.0 * d2e;
        terms
    }

    /// The unswitched screened Coulomb energy and its first two r-derivatives.
    fn screened(&self, r: f64) -> (f64, f64, f64) {
        let (mut phi, mut dphi, mut d2phi) = (0.0, 0.0, 0.0);
        for (c, d) in SCREENING {
            let k = d * self.inverse_screening;
            let term = c * (-k * r).exp();
            phi += term;
            dphi -= k * term;
            d2phi += k * k * term;
        }
        let q = self.charge / r;
        let e = q * phi;
        let de = q * (dphi - phi / r);
        let d2e = q * (d2phi - 2.0 * dphi / r + 2.0 * phi / (r * r));
        (e, de, d2e)
    }

    /// Switched energy and dE/dr at r < outer.
    #[inline]
    fn energy(&self, r: f64, inner: f64) -> (f64, f64) {
        let (mut e, mut de, _) = self.screened(r);
        e += self.c;
        if r > inner {
            let t = r - inner;
            e += t * t * t * (self.a / 3.0 + self.b / 4.0 * t);
            de += t * t * (self.a + self.b * t);
        }
        (e, de)
    }
}

impl Zbl {
    /// Checks that 0 < inner < outer, both finite (Angstrom).
    pub fn new(inner: f64, outer: f64) -> Result<Self> {
        if !(inner.is_finite() && inner > 0.0) {
            return Err(Error::invalid(format!(
                "ZBL inner cutoff must be a positive finite distance in Angstrom, got {inner}"
            )));
        }
        if !(outer.is_finite() && outer > inner) {
            return Err(Error::invalid(format!(
                "ZBL outer cutoff must be finite and larger than the inner cutoff {inner}, \
                 got {outer}"
            )));
        }
        Ok(Zbl { inner, outer })
    }

    pub fn inner(&self) -> f64 {
        self.inner
    }

    pub fn outer(&self) -> f64 {
        self.outer
    }

    /// Energy (eV) and dE/dr (eV/Angstrom) of one pair of elements at distance r > 0.
    pub fn pair(&self, zi: u32, zj: u32, r: f64) -> (f64, f64) {
        if r >= self.outer {
            return (0.0, 0.0);
        }
        PairTerms::new(zi, zj, self.inner, self.outer).energy(r, self.inner)
    }

    /// Energies, forces and virials of every atom of `structure`.
    pub fn compute(&self, structure: &Structure) -> Result<ZblOutput> {
        let list = neighbor_list(
            structure,
            &Cutoff::Uniform(self.outer),
            ListOptions::default(),
        )?;
        self.compute_with_list(structure, &list)
    }

    /// Same as `compute` with a full neighbor list of cutoff >= outer built by the caller.
    pub fn compute_with_list(
        &self,
        structure: &Structure,
        list: &NeighborList,
    ) -> Result<ZblOutput> {
        let n = structure.len();
        if list.n_atoms() != n {
            return Err(Error::invalid(format!(
                "the neighbor list has {} atoms, the structure {n}",
                list.n_atoms()
            )));
        }
        let (species, table) = self.pair_table(structure.numbers());
        let n_species = table.len().isqrt();
        // Each atom sums over its own row of the full list, so nothing is scattered and the
        // result does not depend on the thread count. Every pair is visited from both ends:
        // each visit carries half the pair's energy and virial and the whole force on the atom.
        let per_atom: Vec<(f64, [f64; 3], [f64; 6])> = (0..n)
            .into_par_iter()
            .map(|i| {
                let mut energy = 0.0;
                let mut force = [0.0; 3];
                let mut virial = [0.0; 6];
                for p in list.pairs_of(i) {
                    let r = list.distances[p];
                    if r >= self.outer {
                        continue;
                    }
                    let j = list.neighbors[p];
                    if r == 0.0 {
                        return Err(Error::invalid(format!(
                            "atoms {i} and {j} are at the same position: the ZBL repulsion \
                             is infinite"
                        )));
                    }
                    let terms = &table[species[i] * n_species + species[j]];
                    let (e, de) = terms.energy(r, self.inner);
                    let d = list.vectors[p];
                    let f = de / r;
                    energy += 0.5 * e;
                    for k in 0..3 {
                        force[k] += f * d[k];
                    }
                    let w = -0.5 * f;
                    virial[0] += w * d[0] * d[0];
                    virial[1] += w * d[1] * d[1];
                    virial[2] += w * d[2] * d[2];
                    virial[3] += w * d[1] * d[2];
                    virial[4] += w * d[0] * d[2];
                    virial[5] += w * d[0] * d[1];
                }
                Ok((energy, force, virial))
            })
            .collect::<Result<_>>()?;
        let mut out = ZblOutput {
            energies: Vec::with_capacity(n),
            forces: Vec::with_capacity(n),
            virials: Vec::with_capacity(n),
        };
        for (e, f, w) in per_atom {
            out.energies.push(e);
            out.forces.push(f);
            out.virials.push(w);
        }
        Ok(out)
    }

    /// The species index of each atom and the pair terms of every pair of species present.
    fn pair_table(&self, numbers: &[u32]) -> (Vec<usize>, Vec<PairTerms>) {
        let mut present = [false; MAX_ATOMIC_NUMBER as usize + 1];
        for &z in numbers {
            present[z as usize] = true;
        }
        let elements: Vec<u32> = (0..=MAX_ATOMIC_NUMBER)
            .filter(|&z| present[z as usize])
            .collect();
        let mut index = [0usize; MAX_ATOMIC_NUMBER as usize + 1];
        for (k, &z) in elements.iter().enumerate() {
            index[z as usize] = k;
        }
        let table = elements
            .iter()
            .flat_map(|&zi| {
                elements
                    .iter()
                    .map(move |&zj| PairTerms::new(zi, zj, self.inner, self.outer))
            })
            .collect();
        (numbers.iter().map(|&z| index[z as usize]).collect(), table)
    }
}

/// ZBL as a model term with no weights: a fixed baseline, from the model's shared list.
impl crate::models::Term for Zbl {
    fn pair_cutoff(&self, _: u32, _: u32) -> f64 {
        self.outer
    }

    fn n_columns(&self) -> usize {
        0
    }

    fn rows(&self, _: &Structure, _: &NeighborList) -> Result<crate::models::Rows> {
        Ok(crate::models::Rows {
            n_columns: 0,
            energy: Vec::new(),
            forces: Vec::new(),
            virial: Vec::new(),
        })
    }

    fn predict(
        &self,
        structure: &Structure,
        list: &NeighborList,
        weights: &[f64],
        per_atom_rows: bool,
    ) -> Result<crate::models::TermPrediction> {
        crate::models::check_weights(weights, 0, "ZBL has none")?;
        let out = self.compute_with_list(structure, list)?;
        let mut virial = [0.0; 6];
        for w in &out.virials {
            for v in 0..6 {
                virial[v] += w[v];
            }
        }
        Ok(crate::models::TermPrediction {
            prediction: crate::models::Prediction {
                energies: out.energies,
                forces: out.forces,
                virial,
            },
            per_atom_rows: per_atom_rows.then(Vec::new),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dimer(zi: u32, zj: u32, r: f64) -> Structure {
        Structure::new(
            vec![[0.0; 3], [r, 0.0, 0.0]],
            [[0.0; 3]; 3],
            [false; 3],
            vec![zi, zj],
        )
        .unwrap()
    }

    #[test]
    fn rejects_bad_cutoffs() {
        for (inner, outer) in [
            (0.0, 1.0),
            (-1.0, 1.0),
            (2.0, 2.0),
            (2.0, 1.0),
            (f64::NAN, 1.0),
            (1.0, f64::NAN),
            (1.0, f64::INFINITY),
        ] {
            assert!(Zbl::new(inner, outer).is_err(), "{inner} {outer}");
        }
    }

    #[test]
    fn switching_brings_energy_force_and_curvature_to_zero_at_outer() {
        let zbl = Zbl::new(1.5, 2.5).unwrap();
        let terms = PairTerms::new(73, 1, 1.5, 2.5);
        let r = 2.5;
        let (e, de, d2e) = terms.screened(r);
        let t = r - 1.5;
        let s = terms.c + t * t * t * (terms.a / 3.0 + terms.b / 4.0 * t);
        let ds = t * t * (terms.a + terms.b * t);
        let d2s = 2.0 * terms.a * t + 3.0 * terms.b * t * t;
        let scale = e.abs() + de.abs() + d2e.abs();
        assert!((e + s).abs() < 1e-14 * scale);
        assert!((de + ds).abs() < 1e-14 * scale);
        assert!((d2e + d2s).abs() < 1e-14 * scale);
        assert_eq!(zbl.pair(73, 1, 2.5), (0.0, 0.0));
    }

    #[test]
    fn dimer_forces_are_minus_the_energy_derivative() {
        let zbl = Zbl::new(1.0, 2.0).unwrap();
        for r in [0.3, 0.9, 1.2, 1.7, 1.99] {
            let out = zbl.compute(&dimer(8, 29, r)).unwrap();
            let h = 1e-6;
            let e = |r| {
                let o = zbl.compute(&dimer(8, 29, r)).unwrap();
                o.energies[0] + o.energies[1]
            };
            let fd = -(e(r + h) - e(r - h)) / (2.0 * h);
            // force on atom 1 (at +r along x) is -dE/dr
            assert!((out.forces[1][0] - fd).abs() < 1e-6 * fd.abs().max(1e-3));
            assert_eq!(out.forces[0][0], -out.forces[1][0]);
            assert_eq!(out.energies[0], out.energies[1]);
        }
    }

    #[test]
    fn overlapping_atoms_are_an_error() {
        let zbl = Zbl::new(1.0, 2.0).unwrap();
        assert!(zbl.compute(&dimer(1, 1, 0.0)).is_err());
    }
}
