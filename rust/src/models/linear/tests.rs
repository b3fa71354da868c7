use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use std::sync::Arc;

use super::*;
use crate::descriptors::bispectrum::{Bispectrum, BispectrumParams};
use crate::descriptors::DescriptorExt;
use crate::models::shared_list;

/// SNAP as a model: the linear term with its coefficients.
struct Snap {
    term: LinearTerm,
    coefficients: Vec<f64>,
}

impl Snap {
    fn new(bs: Bispectrum, quadratic: bool, coefficients: Vec<f64>) -> Result<Self> {
        let term = LinearTerm::new(Arc::new(bs), quadratic)?;
        term.check_coefficients(&coefficients)?;
        Ok(Snap { term, coefficients })
    }

    fn predict(&self, s: &Structure) -> Result<Prediction> {
        let list = shared_list(s, &[&self.term])?;
        Ok(self.term.predict(s, &list, &self.coefficients, false)?.prediction)
    }
}

fn rows_of(bs: &Bispectrum, s: &Structure, quadratic: bool) -> Result<Rows> {
    let term = LinearTerm::new(Arc::new(bs.clone()), quadratic)?;
    term.rows(s, &shared_list(s, &[&term])?)
}

fn descriptor(twojmax: usize, chemflag: bool) -> Bispectrum {
    Bispectrum::new(BispectrumParams {
        twojmax,
        rcutfac: 4.1,
        rfac0: 0.99363,
        rmin0: 0.0,
        species: vec![28, 13],
        radelem: vec![0.5, 0.57],
        wj: vec![1.0, 0.8],
        switchflag: true,
        bzeroflag: true,
        chemflag,
        bnormflag: chemflag,
        wselfallflag: false,
    })
    .unwrap()
}

/// A rattled bcc cell of 2 x 2 x 1 conventional cells (8 atoms) of two elements.
fn structure(seed: u64) -> Structure {
    let mut rng = SmallRng::seed_from_u64(seed);
    let a = 3.0;
    let (positions, numbers): (Vec<[f64; 3]>, Vec<u32>) = (0..8)
        .map(|k| {
            let corner = [(k >> 1) & 1, (k >> 2) & 1, 0].map(|c| c as f64 * a);
            let shift = if k & 1 == 1 { 0.5 * a } else { 0.0 };
            let p = corner.map(|c| c + shift + rng.random_range(-0.2..0.2));
            (p, if rng.random_bool(0.5) { 28 } else { 13 })
        })
        .unzip();
    let cell = [[2.0 * a, 0.0, 0.0], [0.3, 2.0 * a, 0.0], [0.0, -0.2, a]];
    Structure::new(positions, cell, [true; 3], numbers).unwrap()
}

fn random_coefficients(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = SmallRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(-0.1..0.1)).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn assert_close(a: f64, b: f64, tol: f64, what: &str) {
    assert!((a - b).abs() <= tol * (1.0 + b.abs()), "{what}: {a} vs {b}");
}

#[test]
fn design_rows_times_coefficients_give_the_prediction() {
    // the rows (through dB/dr) and the prediction (through the adjoint) are independent paths
    for (quadratic, chemflag) in [(false, false), (true, false), (false, true), (true, true)] {
        let bs = descriptor(4, chemflag);
        let s = structure(7);
        let rows = rows_of(&bs, &s, quadratic).unwrap();
        let c = random_coefficients(rows.n_columns, 3);
        let model = Snap::new(bs, quadratic, c.clone()).unwrap();
        let p = model.predict(&s).unwrap();
        let what = format!("quadratic={quadratic} chemflag={chemflag}");
        assert_close(dot(&rows.energy, &c), p.energies.iter().sum(), 1e-12, &what);
        for (r, row) in rows.forces.chunks(rows.n_columns).enumerate() {
            assert_close(dot(row, &c), p.forces[r / 3][r % 3], 1e-11, &what);
        }
        for (v, row) in rows.virial.chunks(rows.n_columns).enumerate() {
            assert_close(dot(row, &c), p.virial[v], 1e-11, &what);
        }
    }
}

#[test]
fn forces_are_minus_the_energy_gradient() {
    let bs = descriptor(4, false);
    let s = structure(11);
    let per = columns_per_element(bs.n_features(), true);
    let model = Snap::new(bs, true, random_coefficients(2 * per, 5)).unwrap();
    let p = model.predict(&s).unwrap();
    let h = 1e-5;
    for atom in [0, 5] {
        for c in 0..3 {
            let energy = |d: f64| {
                let mut positions = s.positions().to_vec();
                positions[atom][c] += d;
                let moved =
                    Structure::new(positions, *s.cell(), s.pbc(), s.numbers().to_vec()).unwrap();
                model.predict(&moved).unwrap().energies.iter().sum::<f64>()
            };
            let numeric = -(energy(h) - energy(-h)) / (2.0 * h);
            assert_close(p.forces[atom][c], numeric, 1e-7, "force");
        }
    }
}

#[test]
fn quadratic_features_follow_lammps_order_and_scaling() {
    // E_i = c0 + sum_k c_k B_k + sum_k c_kk B_k^2 / 2 + sum_{k<l} c_kl B_k B_l
    let bs = descriptor(2, false);
    let s = structure(3);
    let k = bs.n_features();
    let per = columns_per_element(k, true);
    let c = random_coefficients(2 * per, 9);
    let b = bs.compute(&s).unwrap();
    let model = Snap::new(bs, true, c.clone()).unwrap();
    let p = model.predict(&s).unwrap();
    for (i, &z) in s.numbers().iter().enumerate() {
        let block = &c[if z == 28 { 0 } else { per }..][..per];
        let bi = &b[i * k..(i + 1) * k];
        let mut e = block[0] + dot(&block[1..=k], bi);
        let mut q = 1 + k;
        for a in 0..k {
            for l in a..k {
                let scale = if a == l { 0.5 } else { 1.0 };
                e += scale * block[q] * bi[a] * bi[l];
                q += 1;
            }
        }
        assert_close(p.energies[i], e, 1e-13, "energy");
    }
}

#[test]
fn bad_coefficients_and_unknown_elements_are_errors() {
    let bs = descriptor(2, false);
    let per = columns_per_element(bs.n_features(), false);
    assert!(Snap::new(bs.clone(), false, vec![0.0; per]).is_err());
    let mut c = vec![0.0; 2 * per];
    c[3] = f64::NAN;
    assert!(Snap::new(bs.clone(), false, c).is_err());
    let model = Snap::new(bs.clone(), false, vec![0.0; 2 * per]).unwrap();
    let s = Structure::new(vec![[0.0; 3]], [[0.0; 3]; 3], [false; 3], vec![26]).unwrap();
    assert!(model.predict(&s).is_err());
    assert!(rows_of(&bs, &s, false).is_err());
}
