//! The contract every descriptor keeps, run over every descriptor listed in `cases`:
//! gradients and virials against finite differences, the adjoint against the contracted
//! gradients (and the trait's default adjoint against a descriptor's own), the forward-mode
//! product against finite differences, and a neighbor list reaching further than the
//! descriptor's cutoff changing nothing.

use std::any::Any;
use std::sync::Arc;

use super::bispectrum::{Bispectrum, BispectrumParams};
use super::driver::{self, shared_list};
use super::soap::{Soap, SoapParams};
use super::{Descriptor, DescriptorExt, Env, Gradients, Need};
use crate::structure::Structure;
use crate::test_support::{assert_close, displaced, moved, random_vector, rattled_cell, sheared};

/// A new descriptor joins the contract by adding its configurations here.
fn cases() -> Vec<(&'static str, Arc<dyn Descriptor>)> {
    let bispectrum = |species: Vec<u32>, chemflag: bool, bzeroflag: bool| {
        let n = species.len();
        Bispectrum::new(BispectrumParams {
            twojmax: 4,
            rcutfac: 4.0,
            rfac0: 0.99363,
            rmin0: 0.0,
            radelem: (0..n).map(|k| 0.5 + 0.07 * k as f64).collect(),
            wj: (0..n).map(|k| 1.0 - 0.2 * k as f64).collect(),
            species,
            switchflag: true,
            bzeroflag,
            chemflag,
            bnormflag: chemflag,
            wselfallflag: false,
        })
        .unwrap()
    };
    let soap = |species: Vec<u32>, normalize: bool, width: f64| {
        Soap::new(SoapParams {
            cutoff: 4.0,
            n_max: 4,
            l_max: 3,
            atom_sigma: 0.5,
            cutoff_transition_width: width,
            species,
            center_atom_weight: 0.7,
            normalize,
        })
        .unwrap()
    };
    let acsf = |json: serde_json::Value| super::from_json("acsf", &json.to_string()).unwrap();
    let f = |center: u32, kind: u32, neighbors: &[u32], eta: f64, rs: f64, cutoff: f64, lz: Option<(f64, f64)>| {
        let mut v = serde_json::json!({"center": center, "type": kind, "eta": eta, "r_s": rs, "cutoff": cutoff});
        if !neighbors.is_empty() {
            v["neighbors"] = serde_json::json!(neighbors);
        }
        if let Some((lambda, zeta)) = lz {
            v["lambda"] = serde_json::json!(lambda);
            v["zeta"] = serde_json::json!(zeta);
        }
        v
    };
    // every type, two cutoffs, integer and non-integer zeta, shared radial groups
    let one_species = acsf(serde_json::json!({
        "species": [14], "cutoff_function": "cos", "cutoff_alpha": 0.0,
        "functions": [
            f(14, 2, &[14], 0.5, 0.0, 4.0, None),
            f(14, 2, &[14], 1.0, 2.4, 3.5, None),
            f(14, 3, &[14, 14], 0.1, 0.0, 4.0, Some((-1.0, 1.0))),
            f(14, 3, &[14, 14], 0.1, 0.0, 4.0, Some((1.0, 4.0))),
            f(14, 3, &[14, 14], 0.3, 0.5, 3.5, Some((0.7, 1.5))),
            f(14, 9, &[14, 14], 0.1, 0.0, 4.0, Some((1.0, 2.0))),
            f(14, 12, &[], 0.4, 0.0, 3.8, None),
            f(14, 13, &[], 0.2, 0.0, 3.8, Some((-1.0, 2.0))),
        ]
    }));
    // two species, an inner cutoff, element pairs in both orders, fewer functions for Al
    let two_species = |cutoff: &str, alpha: f64| acsf(serde_json::json!({
        "species": [28, 13], "cutoff_function": cutoff, "cutoff_alpha": alpha,
        "functions": [
            f(28, 2, &[28], 0.5, 0.0, 4.0, None),
            f(28, 2, &[13], 0.5, 0.0, 3.6, None),
            f(28, 3, &[28, 13], 0.1, 0.0, 4.0, Some((1.0, 2.0))),
            f(28, 3, &[13, 13], 0.1, 0.0, 4.0, Some((-1.0, 1.0))),
            f(28, 3, &[28, 28], 0.1, 0.0, 4.0, Some((1.0, 1.0))),
            f(28, 9, &[13, 28], 0.2, 0.3, 3.7, Some((-1.0, 3.0))),
            f(28, 12, &[], 0.4, 0.0, 3.8, None),
            f(28, 13, &[], 0.2, 0.0, 3.8, Some((1.0, 2.0))),
            f(13, 2, &[28], 0.5, 0.0, 3.0, None),
            f(13, 3, &[13, 28], 0.1, 0.0, 3.4, Some((1.0, 4.0))),
        ]
    }));
    // a species that is the centre of no function (all-zero features) but is seen by others
    let idle_species = acsf(serde_json::json!({
        "species": [28, 8], "cutoff_function": "tanh", "cutoff_alpha": 0.2,
        "functions": [
            f(28, 2, &[8], 0.5, 0.0, 3.9, None),
            f(28, 9, &[28, 8], 0.1, 0.0, 3.9, Some((1.0, 1.0))),
            f(28, 13, &[], 0.1, 0.0, 3.2, Some((-1.0, 1.0))),
        ]
    }));
    let ace = |json: serde_json::Value| super::from_json("ace", &json.to_string()).map_err(|e| e.to_string()).unwrap();
    let bond = |radbase: &str, rcut: f64, r_in: f64, crad: bool| {
        let (nb, nr, lmax) = (3, 2, 3);
        let c: Vec<f64> = if crad {
            (0..nr * (lmax + 1) * nb).map(|k| ((k * 7 % 11) as f64 - 5.0) / 6.0).collect()
        } else {
            Vec::new()
        };
        serde_json::json!({"radbase": radbase, "rcut": rcut, "dcut": 0.3, "lambda": 4.0,
            "r_in": r_in, "delta_in": if r_in > 0.0 { 0.4 } else { 0.0 },
            "nradbase": nb, "nradmax": nr, "lmax": lmax, "crad": c})
    };
    let g = |center: usize, mus: &[usize], ns: &[usize], ls: &[usize], lint: &[usize]| {
        serde_json::json!({"center": center, "mus": mus, "ns": ns, "ls": ls, "lint": lint})
    };
    // ranks 1 to 4, odd l pairs, intermediates, non-trivial radial coefficients
    let ace_one = ace(serde_json::json!({
        "species": [14], "bonds": [bond("ChebExpCos", 4.0, 0.0, true)],
        "functions": [
            g(0, &[0], &[1], &[0], &[]), g(0, &[0], &[3], &[0], &[]),
            g(0, &[0, 0], &[1, 2], &[1, 1], &[]), g(0, &[0, 0], &[2, 2], &[3, 3], &[]),
            g(0, &[0, 0, 0], &[1, 1, 2], &[1, 1, 2], &[2]), g(0, &[0, 0, 0], &[1, 2, 2], &[2, 3, 3], &[3]),
            g(0, &[0, 0, 0, 0], &[1, 1, 1, 2], &[1, 1, 2, 2], &[2, 2]),
            g(0, &[0, 0, 0, 0], &[1, 1, 2, 2], &[1, 1, 1, 1], &[0, 0]),
        ]
    }));
    // two species: other radial bases per bond, an inner cutoff, fewer functions for Al
    let ace_two = ace(serde_json::json!({
        "species": [28, 13],
        "bonds": [bond("SBessel", 4.0, 0.0, false), bond("ChebPow", 3.6, 1.6, false),
                  bond("ChebPow", 3.6, 1.6, false), bond("ChebExpCos", 3.8, 0.0, true)],
        "functions": [
            g(0, &[0], &[1], &[0], &[]), g(0, &[1], &[2], &[0], &[]),
            g(0, &[0, 1], &[1, 2], &[2, 2], &[]), g(0, &[1, 1], &[1, 1], &[1, 1], &[]),
            g(0, &[0, 0, 1], &[1, 2, 1], &[1, 2, 1], &[1]),
            g(0, &[0, 1, 1, 1], &[1, 1, 2, 2], &[1, 1, 2, 2], &[2, 2]),
            g(1, &[0], &[3], &[0], &[]), g(1, &[0, 1], &[2, 1], &[3, 3], &[]),
        ]
    }));
    vec![
        ("ace", ace_one),
        ("ace two species inner cutoff", ace_two),
        ("acsf", one_species),
        ("acsf two species poly2 alpha 0.3", two_species("poly2", 0.3)),
        ("acsf two species exp alpha 0.5", two_species("exp", 0.5)),
        ("acsf idle species tanh", idle_species),
        ("bispectrum", Arc::new(bispectrum(vec![14], false, false))),
        ("bispectrum two radii", Arc::new(bispectrum(vec![28, 13], false, true))),
        ("bispectrum chemflag", Arc::new(bispectrum(vec![28, 13], true, false))),
        ("soap", Arc::new(soap(vec![14], false, 0.5))),
        ("soap two species normalized", Arc::new(soap(vec![28, 13], true, 1.0))),
    ]
}

/// Periodic and open test structures with the case's species.
fn structures(d: &dyn Descriptor) -> Vec<Structure> {
    let species = d.species().to_vec();
    vec![
        rattled_cell(3, &species, 2.3, [2, 2, 2], 0.25, true),
        rattled_cell(5, &species, 2.1, [2, 2, 1], 0.25, false),
    ]
}

/// dX_i/dr_k of the gradient rows as a dense (n, 3, n, nf) array.
fn dense(g: &Gradients, n: usize, nf: usize) -> Vec<f64> {
    let mut out = vec![0.0; n * 3 * n * nf];
    for (r, (&i, &k)) in g.centers.iter().zip(&g.atoms).enumerate() {
        for a in 0..3 {
            for f in 0..nf {
                out[((k * 3 + a) * n + i) * nf + f] += g.values[(r * 3 + a) * nf + f];
            }
        }
    }
    out
}

fn scale_of(x: &[f64]) -> f64 {
    x.iter().fold(0.0, |m: f64, v| m.max(v.abs()))
}

const H: f64 = 1e-5;

#[test]
fn gradients_and_virials_match_finite_differences() {
    for (name, d) in cases() {
        for s in structures(d.as_ref()) {
            let (n, nf) = (s.len(), d.n_features());
            let g = d.compute_with_gradients(&s).unwrap();
            assert_eq!(g.descriptors, d.compute(&s).unwrap(), "{name}: values");
            let scale = scale_of(&g.descriptors);
            let dx = dense(&g, n, nf);
            for k in [0, n - 1] {
                for a in 0..3 {
                    let plus = d.compute(&moved(&s, k, a, H)).unwrap();
                    let minus = d.compute(&moved(&s, k, a, -H)).unwrap();
                    for (q, (p, m)) in plus.iter().zip(&minus).enumerate() {
                        let numeric = (p - m) / (2.0 * H);
                        let analytic = dx[(k * 3 + a) * n * nf + q];
                        assert_close(analytic, numeric, 1e-6, scale, name);
                    }
                }
            }
            // dX_i/de under r_a += e r_b is sum_j (dX_i/dr_ij)_a (r_ij)_b = -W_i[ab]
            if s.pbc() == [true; 3] {
                for (v, &(a, b)) in super::VOIGT.iter().enumerate() {
                    let plus = d.compute(&sheared(&s, a, b, H)).unwrap();
                    let minus = d.compute(&sheared(&s, a, b, -H)).unwrap();
                    for i in 0..n {
                        for f in 0..nf {
                            let q = i * nf + f;
                            let numeric = (plus[q] - minus[q]) / (2.0 * H);
                            let w = g.virial[(i * 6 + v) * nf + f];
                            assert_close(-w, numeric, 1e-6, scale, name);
                        }
                    }
                }
            }
        }
    }
}

/// A descriptor that delegates to another but for the adjoint, so that the trait's
/// default adjoint (through the gradients) runs.
struct DefaultAdjoint(Arc<dyn Descriptor>);

impl Descriptor for DefaultAdjoint {
    fn kind(&self) -> &'static str {
        self.0.kind()
    }
    fn species(&self) -> &[u32] {
        self.0.species()
    }
    fn n_features(&self) -> usize {
        self.0.n_features()
    }
    fn pair_cutoff(&self, a: usize, b: usize) -> f64 {
        self.0.pair_cutoff(a, b)
    }
    fn describe(&self, what: &str, n_atoms: usize) -> String {
        self.0.describe(what, n_atoms)
    }
    fn scratch_bytes(&self, max_neighbors: usize, need: Need) -> u128 {
        self.0.scratch_bytes(max_neighbors, need)
    }
    fn workspace(&self) -> Box<dyn Any + Send> {
        self.0.workspace()
    }
    fn atom_values(&self, env: &Env, i: usize, ws: &mut dyn Any, out: &mut [f64]) {
        self.0.atom_values(env, i, ws, out)
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
        self.0
            .atom_gradients(env, i, ws, rows, values, gradients, virial)
    }
}

#[test]
fn the_adjoint_is_the_contracted_gradients() {
    for (name, d) in cases() {
        for (seed, s) in structures(d.as_ref()).into_iter().enumerate() {
            let (n, nf) = (s.len(), d.n_features());
            let de = random_vector(seed as u64 + 11, n * nf);
            let g = d.compute_with_gradients(&s).unwrap();
            let dx = dense(&g, n, nf);
            let mut forces = vec![[0.0; 3]; n];
            for (k, fk) in forces.iter_mut().enumerate() {
                for (a, fka) in fk.iter_mut().enumerate() {
                    let block = &dx[(k * 3 + a) * n * nf..(k * 3 + a + 1) * n * nf];
                    *fka = -crate::linalg::dot(block, &de);
                }
            }
            let mut virial = [0.0; 6];
            for (i, de_i) in de.chunks(nf).enumerate() {
                for (v, w) in virial.iter_mut().enumerate() {
                    let row = &g.virial[(i * 6 + v) * nf..(i * 6 + v + 1) * nf];
                    *w += crate::linalg::dot(row, de_i);
                }
            }
            let own = d.backprop(&s, &de).unwrap();
            let default = DefaultAdjoint(d.clone()).backprop(&s, &de).unwrap();
            for b in [&own, &default] {
                assert_eq!(b.descriptors, g.descriptors, "{name}: values");
                let scale = forces.iter().flatten().fold(0.0, |m: f64, v| m.max(v.abs()));
                for (x, y) in b.forces.iter().flatten().zip(forces.iter().flatten()) {
                    assert_close(*x, *y, 1e-11, scale, name);
                }
                for (x, y) in b.virial.iter().zip(&virial) {
                    assert_close(*x, *y, 1e-11, scale, name);
                }
            }
        }
    }
}

#[test]
fn the_forward_product_matches_finite_differences() {
    for (name, d) in cases() {
        for (seed, s) in structures(d.as_ref()).into_iter().enumerate() {
            let n = s.len();
            let flat = random_vector(seed as u64 + 29, 3 * n);
            let u: Vec<[f64; 3]> = flat.chunks(3).map(|c| [c[0], c[1], c[2]]).collect();
            let dx = d.forward(&s, &u).unwrap();
            let plus = d.compute(&displaced(&s, &u, H)).unwrap();
            let minus = d.compute(&displaced(&s, &u, -H)).unwrap();
            let scale = scale_of(&plus);
            for (q, (p, m)) in plus.iter().zip(&minus).enumerate() {
                assert_close(dx[q], (p - m) / (2.0 * H), 1e-6, scale, name);
            }
            assert!(d.forward(&s, &u[1..]).is_err(), "{name}: wrong shape");
        }
    }
}

#[test]
fn a_list_reaching_further_changes_nothing() {
    for (name, d) in cases() {
        for s in structures(d.as_ref()) {
            let n = s.len();
            let own = driver::own_list(d.as_ref(), &s).unwrap();
            let far = shared_list(&s, &|_, _| 6.5).unwrap();
            if s.pbc() == [true; 3] {
                assert!(far.n_pairs() > own.n_pairs(), "{name}: the longer list has more pairs");
            }
            // the same pairs, perhaps in another order: equal to rounding
            let x = driver::values(d.as_ref(), &s, &own).unwrap();
            let x_far = driver::values(d.as_ref(), &s, &far).unwrap();
            for (a, b) in x.iter().zip(&x_far) {
                assert_close(*a, *b, 1e-13, scale_of(&x), name);
            }
            let g_own = driver::gradients(d.as_ref(), &s, &own).unwrap();
            let g_far = driver::gradients(d.as_ref(), &s, &far).unwrap();
            assert_eq!(g_own.atoms, g_far.atoms, "{name}: rows");
            let scale = scale_of(&g_own.values);
            for (a, b) in g_own.values.iter().zip(&g_far.values) {
                assert_close(*a, *b, 1e-13, scale, name);
            }
            let de = random_vector(7, n * d.n_features());
            let b_own = driver::backprop(d.as_ref(), &s, &own, &de).unwrap();
            let b_far = driver::backprop(d.as_ref(), &s, &far, &de).unwrap();
            for (a, b) in b_own.forces.iter().flatten().zip(b_far.forces.iter().flatten()) {
                assert_close(*a, *b, 1e-12, 1.0, name);
            }
        }
    }
}

#[test]
fn bad_input_is_an_error() {
    for (name, d) in cases() {
        let s = &structures(d.as_ref())[0];
        let nf = d.n_features();
        assert!(d.backprop(s, &vec![0.0; s.len() * nf + 1]).is_err(), "{name}");
        let mut de = vec![0.0; s.len() * nf];
        de[3] = f64::NAN;
        assert!(d.backprop(s, &de).is_err(), "{name}");
        let other = rattled_cell(1, &[26], 2.3, [2, 1, 1], 0.1, true);
        let m = d.compute(&other).unwrap_err().to_string();
        assert!(m.contains("atomic number 26"), "{name}: {m}");
        let short = shared_list(&other, &|_, _| 3.0).unwrap();
        assert!(driver::values(d.as_ref(), s, &short).is_err(), "{name}: a list of another structure");
    }
}
