use super::*;
use crate::models::network::tests::{bispectrum, central, random_network, scaling, term};
use crate::models::network::{Activation, NetworkTerm};
use crate::models::{shared_list, Term};
use crate::test_support::{assert_close, random_vector, rattled_cell};

fn structures() -> Vec<Structure> {
    vec![
        rattled_cell(3, &[28, 13], 2.6, [2, 2, 2], 0.3, true),
        rattled_cell(4, &[28, 13], 2.5, [3, 2, 1], 0.3, false),
        rattled_cell(5, &[28], 2.7, [2, 2, 1], 0.2, true),
    ]
}

fn setup() -> (NetworkTerm, Vec<Network>, TrainingSet, Vec<Structure>) {
    let t = term(bispectrum());
    let nets = t.training_networks().unwrap();
    let n_inputs = nets.iter().map(|n| n.n_in()).collect();
    let s = structures();
    let set = TrainingSet::new(t.descriptor.clone(), n_inputs, &s, &[true, false, true]).unwrap();
    (t, nets, set, s)
}

fn set_theta(nets: &[Network], theta: &[f64]) -> Vec<Network> {
    let (offsets, _) = TrainingSet::parameter_offsets(nets);
    nets.iter()
        .zip(&offsets)
        .map(|(n, &o)| {
            let mut n = n.clone();
            n.set_parameters(&theta[o..o + n.n_parameters()]).unwrap();
            n
        })
        .collect()
}

#[test]
fn parameters_round_trip() {
    let (_, nets, _, _) = setup();
    for n in &nets {
        let mut m = n.clone();
        let theta: Vec<f64> = n.parameters().iter().map(|x| x * 2.0).collect();
        m.set_parameters(&theta).unwrap();
        assert_eq!(m.parameters(), theta);
        assert!(m.set_parameters(&theta[1..]).is_err());
        let mut bad = theta.clone();
        bad[3] = f64::NAN;
        assert!(m.set_parameters(&bad).is_err());
    }
}

#[test]
fn directional_gradient_matches_finite_differences() {
    use Activation::*;
    let stacks = [
        vec![Tanh, Logistic, Linear],
        vec![Softplus, Gaussian, Tanh],
        vec![Cos, ReverseLogistic, Harmonic],
        vec![Exp, Tanh, Linear],
    ];
    for (k, acts) in stacks.iter().enumerate() {
        for normalize in [false, true] {
            let n_in = 4;
            let net = random_network(
                k as u64 + 1,
                &[n_in, 3, 3, 1],
                acts,
                0.8,
                scaling(n_in, 7),
                normalize,
            );
            let x = random_vector(50 + k as u64, n_in);
            let u = random_vector(60 + k as u64, n_in);
            let alpha = 0.7;
            let objective = |n: &Network| {
                let mut ws = crate::models::network::NetworkWorkspace::default();
                let mut g = vec![0.0; n_in];
                let e = n.evaluate(&x, &mut ws, Some(&mut g));
                (e, crate::linalg::dot(&u, &g))
            };
            let mut grad = vec![0.0; net.n_parameters()];
            let (e, du) =
                net.directional_gradient(&x, &u, alpha, &mut DualWorkspace::default(), &mut grad);
            let (e0, du0) = objective(&net);
            assert_close(e, e0, 1e-14, 1.0, "energy");
            assert_close(du, du0, 1e-13, 1.0, "directional derivative");
            let theta = net.parameters();
            for p in 0..theta.len() {
                let numeric = central(
                    |h| {
                        let mut t = theta.clone();
                        t[p] += h;
                        let mut m = net.clone();
                        m.set_parameters(&t).unwrap();
                        let (e, du) = objective(&m);
                        alpha * e + du
                    },
                    0.0,
                    1e-6,
                );
                assert_close(
                    grad[p],
                    numeric,
                    1e-7,
                    1.0,
                    &format!("{acts:?} {normalize} parameter {p}"),
                );
            }
        }
    }
}

#[test]
fn the_cached_set_predicts_what_the_term_predicts() {
    let (t, nets, set, s) = setup();
    let p = set.predict(&nets, &[0, 1, 2]).unwrap();
    for (f, structure) in s.iter().enumerate() {
        let list = shared_list(structure, &[&t]).unwrap();
        let q = t.predict(structure, &list, &[], false).unwrap().prediction;
        let e: f64 = q.energies.iter().sum();
        assert_close(p[f].energy, e, 1e-12, 1.0, "energy");
        for (a, b) in p[f].forces.iter().zip(&q.forces) {
            for c in 0..3 {
                assert_close(a[c], b[c], 1e-11, 1.0, "force");
            }
        }
        if f != 1 {
            for v in 0..6 {
                assert_close(p[f].virial[v], q.virial[v], 1e-11, 1.0, "virial");
            }
        } else {
            assert_eq!(p[f].virial, [0.0; 6], "no virial cached for frame 1");
        }
    }
}

/// h of frame f computed from the predictions: alpha E - d . F + c . W.
fn functional_value(set: &TrainingSet, nets: &[Network], f: usize, h: &Functional) -> f64 {
    let p = &set.predict(nets, &[f]).unwrap()[0];
    let mut v = h.alpha * p.energy;
    for (d, force) in h.displacement.iter().zip(&p.forces) {
        v -= (0..3).map(|a| d[a] * force[a]).sum::<f64>();
    }
    v + (0..6).map(|k| h.virial[k] * p.virial[k]).sum::<f64>()
}

fn functionals(set: &TrainingSet) -> Vec<(Vec<[f64; 3]>, f64, [f64; 6])> {
    (0..set.n_frames())
        .map(|f| {
            let n = set.n_atoms(f);
            let r = random_vector(200 + f as u64, 3 * n);
            let d = (0..n)
                .map(|i| [r[3 * i], r[3 * i + 1], r[3 * i + 2]])
                .collect();
            let c = random_vector(300 + f as u64, 6);
            let virial = if f == 1 {
                [0.0; 6]
            } else {
                std::array::from_fn(|k| c[k])
            };
            (d, 0.3 + f as f64, virial)
        })
        .collect()
}

#[test]
fn loss_gradients_match_finite_differences() {
    let (_, nets, set, _) = setup();
    let parts = functionals(&set);
    // the energy, force and stress parts separately, then together
    let cases: [(bool, bool, bool); 4] = [
        (true, false, false),
        (false, true, false),
        (false, false, true),
        (true, true, true),
    ];
    let (_, total) = TrainingSet::parameter_offsets(&nets);
    let theta: Vec<f64> = nets.iter().flat_map(|n| n.parameters()).collect();
    for (energy, force, stress) in cases {
        let hs: Vec<Functional> = parts
            .iter()
            .map(|(d, alpha, c)| Functional {
                alpha: if energy { *alpha } else { 0.0 },
                displacement: if force { d } else { &[] },
                virial: if stress { *c } else { [0.0; 6] },
            })
            .collect();
        let frames = [0, 1, 2];
        let (value, grad) = set.gradient(&nets, &frames, &hs).unwrap();
        let expected: f64 = frames
            .iter()
            .map(|&f| functional_value(&set, &nets, f, &hs[f]))
            .sum();
        assert_close(value, expected, 1e-10, 1.0, "value");
        for p in (0..total).step_by(7) {
            let numeric = central(
                |h| {
                    let mut t = theta.clone();
                    t[p] += h;
                    let m = set_theta(&nets, &t);
                    frames
                        .iter()
                        .map(|&f| functional_value(&set, &m, f, &hs[f]))
                        .sum()
                },
                0.0,
                1e-6,
            );
            assert_close(
                grad[p],
                numeric,
                1e-6,
                1.0,
                &format!("E {energy} F {force} S {stress}: parameter {p}"),
            );
        }
    }
}

#[test]
fn gradients_are_the_same_for_any_thread_count() {
    let (_, nets, set, _) = setup();
    let parts = functionals(&set);
    let hs: Vec<Functional> = parts
        .iter()
        .map(|(d, alpha, c)| Functional {
            alpha: *alpha,
            displacement: d,
            virial: *c,
        })
        .collect();
    let frames: Vec<usize> = (0..12).map(|k| k % 3).collect();
    let hs: Vec<Functional> = frames.iter().map(|&f| hs[f]).collect();
    let run = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| set.gradient(&nets, &frames, &hs).unwrap())
    };
    let one = run(1);
    for threads in [2, 3, 5] {
        let other = run(threads);
        assert_eq!(one.0.to_bits(), other.0.to_bits());
        assert!(one
            .1
            .iter()
            .zip(&other.1)
            .all(|(a, b)| a.to_bits() == b.to_bits()));
    }
}

#[test]
fn bad_training_input_is_an_error() {
    let (t, nets, set, s) = setup();
    let d = t.descriptor.clone();
    assert!(TrainingSet::new(d.clone(), vec![3], &s, &[false; 3]).is_err());
    assert!(TrainingSet::new(d.clone(), vec![0, 3], &s, &[false; 3]).is_err());
    assert!(TrainingSet::new(d.clone(), vec![3, 3], &s, &[false; 2]).is_err());
    assert!(set.predict(&nets, &[3]).is_err());
    assert!(set.predict(&nets[..1], &[0]).is_err());
    let h = Functional {
        alpha: 1.0,
        displacement: &[[0.0; 3]; 2],
        virial: [0.0; 6],
    };
    assert!(
        set.gradient(&nets, &[0], &[h]).is_err(),
        "wrong displacement length"
    );
    let h = Functional {
        alpha: 1.0,
        displacement: &[],
        virial: [1.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    };
    assert!(set.gradient(&nets, &[1], &[h]).is_err(), "no virial cached");
    let h = Functional {
        alpha: f64::NAN,
        displacement: &[],
        virial: [0.0; 6],
    };
    assert!(set.gradient(&nets, &[0], &[h]).is_err(), "NaN");
    assert!(set.gradient(&nets, &[0, 1], &[h]).is_err(), "count");
}
