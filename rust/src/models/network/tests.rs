use std::sync::Arc;

use super::*;
use crate::descriptors::soap::{Soap, SoapParams};
use crate::models::{predict_terms, shared_list};
use crate::test_support::{assert_close, moved, random_vector, rattled_cell, sheared};

/// Central finite difference of f at x with step h.
pub(crate) fn central(mut f: impl FnMut(f64) -> f64, x: f64, h: f64) -> f64 {
    (f(x + h) - f(x - h)) / (2.0 * h)
}

#[test]
fn activation_slopes_match_finite_differences() {
    let mut xs: Vec<f64> = (-400..=400).map(|k| k as f64 * 0.125 + 0.0371).collect();
    xs.extend([-1e3, -300.0, -40.0, -34.9, 34.9, 40.0, 300.0, 1e3]);
    for a in Activation::ALL {
        for &x in &xs {
            let (f, d) = a.eval(x);
            if a == Activation::Exp && x < -300.0 {
                continue; // e^1000 overflows
            }
            assert!(f.is_finite() && d.is_finite(), "{a:?} at {x}: {f}, {d}");
            let h = 1e-6 * (1.0 + x.abs());
            let numeric = central(|x| a.eval(x).0, x, h);
            let scale = 1.0 + f.abs() / (1.0 + x.abs());
            assert_close(d, numeric, 1e-6, scale, &format!("{a:?} at {x}"));
        }
    }
}

#[test]
fn activations_follow_n2p2() {
    let cases: [(&str, f64, f64, f64); 10] = [
        ("l", 0.3, 0.3, 1.0),
        ("t", 0.3, 0.3f64.tanh(), 1.0 - 0.3f64.tanh().powi(2)),
        ("s", 0.3, 1.0 / (1.0 + (-0.3f64).exp()), 0.0),
        (
            "p",
            0.3,
            (1.0 + 0.3f64.exp()).ln(),
            1.0 / (1.0 + (-0.3f64).exp()),
        ),
        ("r", -0.3, 0.0, 0.0),
        ("g", 0.3, (-0.045f64).exp(), -0.3 * (-0.045f64).exp()),
        ("c", 0.3, 0.3f64.cos(), -0.3f64.sin()),
        ("S", 0.3, 1.0 - 1.0 / (1.0 + (-0.3f64).exp()), 0.0),
        ("e", 0.3, (-0.3f64).exp(), -(-0.3f64).exp()),
        ("h", 0.3, 0.09, 0.6),
    ];
    for (letter, x, f, d) in cases {
        let a = Activation::from_letter(letter).unwrap();
        assert_eq!(a.letter(), letter);
        let (fa, da) = a.eval(x);
        assert_eq!(fa, f, "{letter}");
        if d != 0.0 {
            assert_close(da, d, 1e-15, 0.0, letter);
        }
    }
    // n2p2's cutoffs at |x| > 35
    assert_eq!(Activation::Logistic.eval(36.0), (1.0, 0.0));
    assert_eq!(Activation::Logistic.eval(-36.0), (0.0, 0.0));
    assert_eq!(Activation::Softplus.eval(36.0), (36.0, 1.0));
    assert_eq!(Activation::Softplus.eval(-36.0), (0.0, 0.0));
    assert_eq!(Activation::ReverseLogistic.eval(-1e4), (1.0, 0.0));
    let e = Activation::from_letter("x").unwrap_err().to_string();
    assert!(
        e.contains("\"x\"") && e.contains("\"S\" (ReverseLogistic)"),
        "{e}"
    );
}

/// A network of `sizes` (inputs, hidden..., 1) with random weights of magnitude `w`.
pub(crate) fn random_network(
    seed: u64,
    sizes: &[usize],
    activations: &[Activation],
    w: f64,
    scaling: InputScaling,
    normalize_nodes: bool,
) -> Network {
    let layers = sizes
        .windows(2)
        .zip(activations)
        .enumerate()
        .map(|(l, (s, &a))| {
            let weights = random_vector(seed * 100 + l as u64, s[0] * s[1]);
            let biases = random_vector(seed * 100 + 50 + l as u64, s[1]);
            Layer::new(
                s[0],
                weights.iter().map(|x| w * x).collect(),
                biases.iter().map(|x| w * x).collect(),
                a,
            )
            .unwrap()
        })
        .collect();
    Network::new(layers, scaling, 1.7, -0.4, normalize_nodes).unwrap()
}

pub(crate) fn scaling(n: usize, seed: u64) -> InputScaling {
    InputScaling {
        shift: random_vector(seed, n),
        factor: random_vector(seed + 1, n)
            .iter()
            .map(|x| 2.0 * x + 0.3)
            .collect(),
        offset: random_vector(seed + 2, n),
    }
}

#[test]
fn network_gradient_matches_finite_differences() {
    use Activation::*;
    let stacks = [
        vec![Tanh, Logistic, Linear],
        vec![Softplus, Gaussian, Tanh],
        vec![Cos, ReverseLogistic, Harmonic],
        vec![Exp, Relu, Linear],
    ];
    for (k, acts) in stacks.iter().enumerate() {
        for normalize in [false, true] {
            let n_in = 5;
            let net = random_network(
                k as u64 + 1,
                &[n_in, 4, 3, 1],
                acts,
                0.8,
                scaling(n_in, 7),
                normalize,
            );
            let mut ws = NetworkWorkspace::default();
            for t in 0..5 {
                let x = random_vector(100 + t, n_in);
                let mut g = vec![0.0; n_in];
                let e = net.evaluate(&x, &mut ws, Some(&mut g));
                assert_eq!(e, net.evaluate(&x, &mut ws, None));
                for c in 0..n_in {
                    let mut at = |h: f64| {
                        let mut y = x.clone();
                        y[c] += h;
                        net.evaluate(&y, &mut ws, None)
                    };
                    let numeric = central(&mut at, 0.0, 1e-6);
                    assert_close(
                        g[c],
                        numeric,
                        1e-7,
                        1.0,
                        &format!("{acts:?} {normalize} x{c}"),
                    );
                }
            }
        }
    }
}

#[test]
fn a_network_computes_what_n2p2_computes() {
    // 2 inputs -> 2 tanh -> 1 linear, normalized nodes: z = (w.a + b) / n_in
    let l1 = Layer::new(
        2,
        vec![0.1, -0.2, 0.3, 0.4],
        vec![0.05, -0.05],
        Activation::Tanh,
    )
    .unwrap();
    let l2 = Layer::new(2, vec![0.7, -0.6], vec![0.2], Activation::Linear).unwrap();
    let scale = InputScaling {
        shift: vec![1.0, 2.0],
        factor: vec![0.5, 2.0],
        offset: vec![0.1, 0.0],
    };
    for normalize in [false, true] {
        let net = Network::new(
            vec![l1.clone(), l2.clone()],
            scale.clone(),
            2.0,
            3.0,
            normalize,
        )
        .unwrap();
        let x = [1.5, 1.8];
        let xs: [f64; 2] = [0.1 + 0.5 * (1.5 - 1.0), 2.0 * (1.8 - 2.0)];
        let n: f64 = if normalize { 2.0 } else { 1.0 };
        let h0 = ((0.1 * xs[0] + -0.2 * xs[1] + 0.05) / n).tanh();
        let h1 = ((0.3 * xs[0] + 0.4 * xs[1] + -0.05) / n).tanh();
        let y = (0.7 * h0 + -0.6 * h1 + 0.2) / n;
        let e = net.evaluate(&x, &mut NetworkWorkspace::default(), None);
        assert_close(e, 2.0 * y + 3.0, 1e-15, 1.0, "energy");
    }
}

pub(crate) fn bispectrum() -> Arc<dyn Descriptor> {
    let params = r#"{"twojmax": 4, "rcutfac": 4.0, "rfac0": 0.99363, "rmin0": 0.0,
        "species": [28, 13], "radelem": [0.5, 0.57], "wj": [1.0, 0.8], "switchflag": true,
        "bzeroflag": true, "chemflag": false, "bnormflag": false, "wselfallflag": false}"#;
    crate::descriptors::from_json("bispectrum", params).unwrap()
}

fn soap() -> Arc<dyn Descriptor> {
    Arc::new(
        Soap::new(SoapParams {
            cutoff: 4.0,
            n_max: 3,
            l_max: 2,
            atom_sigma: 0.5,
            cutoff_transition_width: 0.5,
            species: vec![28, 13],
            center_atom_weight: 1.0,
            normalize: true,
        })
        .unwrap(),
    )
}

/// Two species: 28 reads every feature, 13 all but the last two.
pub(crate) fn term(d: Arc<dyn Descriptor>) -> NetworkTerm {
    use Activation::*;
    let nf = d.n_features();
    let a = random_network(
        1,
        &[nf, 6, 4, 1],
        &[Tanh, Softplus, Linear],
        0.5,
        scaling(nf, 3),
        false,
    );
    let b = random_network(
        2,
        &[nf - 2, 5, 1],
        &[Logistic, Linear],
        0.5,
        scaling(nf - 2, 4),
        true,
    );
    NetworkTerm::new(d, vec![(28, a), (13, b)]).unwrap()
}

fn predict(t: &NetworkTerm, s: &Structure) -> Prediction {
    let list = shared_list(s, &[t]).unwrap();
    t.predict(s, &list, &[], false).unwrap().prediction
}

fn total(t: &NetworkTerm, s: &Structure) -> f64 {
    predict(t, s).energies.iter().sum()
}

#[test]
fn forces_and_virial_are_derivatives_of_the_energy() {
    const H: f64 = 1e-5;
    for d in [bispectrum(), soap()] {
        let t = term(d.clone());
        let s = rattled_cell(3, &[28, 13], 2.3, [2, 2, 2], 0.25, true);
        let p = predict(&t, &s);
        let energy: f64 = p.energies.iter().sum();
        let scale = 1.0 + energy.abs() / s.len() as f64;
        let largest = p
            .forces
            .iter()
            .flatten()
            .fold(0.0f64, |m, f| m.max(f.abs()));
        assert!(
            largest > 1e-3 && p.virial.iter().any(|v| v.abs() > 1e-3),
            "{} {largest}",
            d.kind()
        );
        for i in 0..s.len() {
            for c in 0..3 {
                let numeric =
                    -(total(&t, &moved(&s, i, c, H)) - total(&t, &moved(&s, i, c, -H))) / (2.0 * H);
                assert_close(
                    p.forces[i][c],
                    numeric,
                    1e-6,
                    scale,
                    &format!("{} force {i} {c}", d.kind()),
                );
            }
        }
        for (v, &(a, b)) in crate::descriptors::VOIGT.iter().enumerate() {
            let numeric =
                -(total(&t, &sheared(&s, a, b, H)) - total(&t, &sheared(&s, a, b, -H))) / (2.0 * H);
            assert_close(
                p.virial[v],
                numeric,
                1e-6,
                scale,
                &format!("{} virial {v}", d.kind()),
            );
        }
        // the per-atom energies are the networks on the descriptor's values
        let x = driver::values(d.as_ref(), &s, &shared_list(&s, &[&t]).unwrap()).unwrap();
        let nf = d.n_features();
        for (i, &z) in s.numbers().iter().enumerate() {
            let n_in = t.network(z).unwrap().n_in();
            let (e, _) = t.network_outputs(z, &x[i * nf..i * nf + n_in]).unwrap();
            assert_eq!(e[0], p.energies[i]);
        }
    }
}

#[test]
fn same_result_for_any_thread_count() {
    let t = term(bispectrum());
    let s = rattled_cell(5, &[28, 13], 2.2, [3, 3, 2], 0.25, true);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| predict(&t, &s))
    };
    let (a, b) = (run(1), run(2));
    assert_eq!(a.energies, b.energies);
    assert_eq!(a.forces, b.forces);
    assert_eq!(a.virial, b.virial);
}

#[test]
fn the_term_works_in_a_model() {
    let t = term(bispectrum());
    let s = rattled_cell(3, &[28, 13], 2.3, [2, 2, 2], 0.25, true);
    let (p, rows) = predict_terms(&[&t], &s, &[&[]], false).unwrap();
    assert_eq!(p.energies, predict(&t, &s).energies);
    assert!(rows[0].is_none());
    assert_eq!(t.n_columns(), 0);
    assert!(t.pair_cutoff(28, 13) > 0.0);
    let list = shared_list(&s, &[&t]).unwrap();
    let e = t.rows(&s, &list).unwrap_err().to_string();
    assert!(e.contains("not linear"), "{e}");
    assert!(t.predict(&s, &list, &[], true).is_err());
    assert!(t.predict(&s, &list, &[1.0], false).is_err());
}

#[test]
fn an_atom_without_a_network_is_an_error() {
    let d = bispectrum();
    let nf = d.n_features();
    let net = random_network(
        1,
        &[nf, 3, 1],
        &[Activation::Tanh, Activation::Linear],
        0.5,
        InputScaling::identity(nf),
        false,
    );
    let t = NetworkTerm::new(d, vec![(28, net)]).unwrap();
    let s = rattled_cell(3, &[28, 13], 2.3, [2, 2, 2], 0.25, true);
    let list = shared_list(&s, &[&t]).unwrap();
    let e = t.predict(&s, &list, &[], false).unwrap_err().to_string();
    assert!(
        e.contains("atomic number 13") && e.contains("no network"),
        "{e}"
    );
    let nickel = rattled_cell(3, &[28], 2.3, [2, 2, 2], 0.25, true);
    assert_eq!(predict(&t, &nickel).energies.len(), 8);
}

/// The JSON of one network of `n_in` inputs -> 2 tanh -> 1 linear.
fn json_network(species: u32, n_in: usize) -> serde_json::Value {
    serde_json::json!({
        "species": species,
        "layers": [
            {"weights": vec![vec![0.1; n_in]; 2], "biases": [0.0, 0.1], "activation": "t"},
            {"weights": [[0.5, -0.5]], "biases": [0.2], "activation": "l"}
        ],
        "input_shift": vec![0.0; n_in],
        "input_factor": vec![1.0; n_in],
        "input_offset": vec![0.0; n_in],
        "energy_scale": 1.0,
        "energy_offset": 0.0,
        "normalize_nodes": false
    })
}

#[test]
fn json_builds_the_networks() {
    let d = bispectrum();
    let nf = d.n_features();
    let doc = serde_json::json!({"networks": [json_network(28, nf), json_network(13, 3)]});
    let t = NetworkTerm::from_json(d.clone(), &doc.to_string()).unwrap();
    assert_eq!(t.network(28).unwrap().n_in(), nf);
    assert_eq!(t.network(13).unwrap().n_in(), 3);
    let (e, g) = t
        .network_outputs(13, &[0.0, 0.0, 0.0, 1.0, 1.0, 1.0])
        .unwrap();
    assert_eq!(e.len(), 2);
    assert_eq!(g.len(), 6);
    let h = (0.1f64).tanh();
    assert_close(e[0], 0.5 * 0.0 - 0.5 * h + 0.2, 1e-15, 1.0, "output");
    // optional fields default to the identity maps
    let mut minimal = json_network(28, nf);
    for key in [
        "input_shift",
        "input_factor",
        "input_offset",
        "energy_scale",
        "energy_offset",
        "normalize_nodes",
    ] {
        minimal.as_object_mut().unwrap().remove(key);
    }
    let t2 =
        NetworkTerm::from_json(d, &serde_json::json!({"networks": [minimal]}).to_string()).unwrap();
    assert_eq!(t2.network(28), t.network(28));
}

#[test]
fn bad_networks_are_errors() {
    let d = bispectrum();
    let nf = d.n_features();
    let build = |doc: serde_json::Value| {
        NetworkTerm::from_json(d.clone(), &doc.to_string())
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    let with = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut n = json_network(28, nf);
        edit(&mut n);
        build(serde_json::json!({"networks": [n]}))
    };
    let cases: Vec<(String, &str)> = vec![
        (build(serde_json::json!({"nets": []})), "unknown field"),
        (with(&|n| n["extra"] = 1.into()), "unknown field"),
        (
            with(&|n| n["layers"][0]["activation"] = "q".into()),
            "unknown activation",
        ),
        (
            with(&|n| n["layers"][0]["biases"] = serde_json::json!([0.0])),
            "biases",
        ),
        (
            with(&|n| n["layers"][0]["weights"][1] = serde_json::json!([0.0])),
            "row 1",
        ),
        (
            with(&|n| n["layers"][1]["weights"] = serde_json::json!([[0.5, 0.5, 0.5]])),
            "layer 1 has 3 inputs",
        ),
        (
            with(&|n| n["layers"][1]["biases"] = serde_json::json!([0.1, 0.2])),
            "biases",
        ),
        (
            with(&|n| {
                n["layers"][1]["weights"] = serde_json::json!([[0.5, 0.5], [0.1, 0.1]]);
                n["layers"][1]["biases"] = serde_json::json!([0.1, 0.2]);
            }),
            "one neuron",
        ),
        (
            with(&|n| n["layers"] = serde_json::json!([])),
            "at least one layer",
        ),
        (
            with(&|n| n["input_factor"] = serde_json::json!([1.0])),
            "input_factor has 1 values",
        ),
        (
            NetworkTerm::from_json(
                d.clone(),
                &serde_json::json!({"networks": [json_network(28, nf)]})
                    .to_string()
                    .replacen("0.1", "1e400", 1),
            )
            .map(|_| ())
            .unwrap_err()
            .to_string(),
            "network parameters",
        ),
        (with(&|n| n["species"] = 14.into()), "not in the species"),
        (
            {
                let n = json_network(28, nf + 1);
                build(serde_json::json!({"networks": [n]}))
            },
            "features",
        ),
        (
            build(serde_json::json!({"networks": [json_network(28, nf), json_network(28, nf)]})),
            "two networks",
        ),
    ];
    for (message, expected) in cases {
        assert!(
            message.contains(expected),
            "expected {expected:?} in {message:?}"
        );
    }
    // non-finite numbers through the Rust API
    let e = Layer::new(1, vec![f64::NAN], vec![0.0], Activation::Tanh).unwrap_err();
    assert!(e.to_string().contains("not finite"), "{e}");
    let l = Layer::new(1, vec![1.0], vec![0.0], Activation::Tanh).unwrap();
    let mut bad = InputScaling::identity(1);
    bad.factor[0] = f64::INFINITY;
    let e = Network::new(vec![l.clone()], bad, 1.0, 0.0, false).unwrap_err();
    assert!(
        e.to_string().contains("input_factor[0] is not finite"),
        "{e}"
    );
    let e = Network::new(vec![l], InputScaling::identity(1), f64::NAN, 0.0, false).unwrap_err();
    assert!(e.to_string().contains("energy_scale"), "{e}");
    // batch input
    let t = term(d);
    assert!(t.network_outputs(13, &vec![0.0; nf - 1]).is_err());
    assert!(t.network_outputs(28, &vec![f64::NAN; nf]).is_err());
    assert!(t.network_outputs(14, &[0.0]).is_err());
}

/// A second set of networks of the shapes of `term`'s, with other weights.
fn other_member(t: &NetworkTerm, seed: u64) -> Vec<(u32, Network)> {
    t.training_networks()
        .unwrap()
        .into_iter()
        .zip(t.descriptor().species().to_vec())
        .map(|(n, z)| {
            let theta: Vec<f64> = random_vector(seed + z as u64, n.n_parameters())
                .iter()
                .map(|x| 0.5 * x)
                .collect();
            let mut m = n.clone();
            m.set_parameters(&theta).unwrap();
            (z, m)
        })
        .collect()
}

#[test]
fn a_committee_predicts_the_mean_of_its_members() {
    let single = term(bispectrum());
    let d = single.descriptor.clone();
    let first: Vec<(u32, Network)> = d
        .species()
        .iter()
        .map(|&z| (z, single.network(z).unwrap().clone()))
        .collect();
    let members = vec![first, other_member(&single, 10), other_member(&single, 20)];
    let committee = NetworkTerm::committee(d.clone(), members.clone()).unwrap();
    assert_eq!(committee.n_members(), 3);
    let s = rattled_cell(8, &[28, 13], 2.6, [2, 2, 2], 0.3, true);
    let list = shared_list(&s, &[&committee]).unwrap();
    let each = committee.predict_members(&s, &list).unwrap();
    let mean = predict(&committee, &s);
    for (k, m) in members.into_iter().enumerate() {
        let alone = predict(&NetworkTerm::new(d.clone(), m).unwrap(), &s);
        for i in 0..s.len() {
            assert_close(
                each[k].energies[i],
                alone.energies[i],
                1e-13,
                1.0,
                "member energy",
            );
            for a in 0..3 {
                assert_close(
                    each[k].forces[i][a],
                    alone.forces[i][a],
                    1e-12,
                    1.0,
                    "member force",
                );
            }
        }
        for v in 0..6 {
            assert_close(
                each[k].virial[v],
                alone.virial[v],
                1e-12,
                1.0,
                "member virial",
            );
        }
    }
    for i in 0..s.len() {
        let e: f64 = each.iter().map(|m| m.energies[i]).sum::<f64>() / 3.0;
        assert_close(mean.energies[i], e, 1e-13, 1.0, "mean energy");
        for a in 0..3 {
            let f: f64 = each.iter().map(|m| m.forces[i][a]).sum::<f64>() / 3.0;
            assert_close(mean.forces[i][a], f, 1e-12, 1.0, "mean force");
        }
    }
    // a member without the species of the first is an error
    let partial = vec![
        other_member(&single, 1),
        other_member(&single, 2)[..1].to_vec(),
    ];
    assert!(NetworkTerm::committee(d.clone(), partial).is_err());
    assert!(NetworkTerm::committee(d, vec![]).is_err());
}

#[test]
fn json_builds_a_committee() {
    let d = bispectrum();
    let nf = d.n_features();
    let doc = serde_json::json!({
        "networks": [json_network(28, nf), json_network(13, nf)],
        "committee": [[json_network(28, nf), json_network(13, nf)]],
    });
    let t = NetworkTerm::from_json(d.clone(), &doc.to_string()).unwrap();
    assert_eq!(t.n_members(), 2);
    let doc = serde_json::json!({
        "networks": [json_network(28, nf), json_network(13, nf)],
        "committee": [[json_network(28, nf)]],
    });
    let e = NetworkTerm::from_json(d, &doc.to_string()).err().unwrap();
    assert!(e.to_string().contains("committee member 1"), "{e}");
}
