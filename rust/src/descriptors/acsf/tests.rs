//! ACSF against the formulas evaluated directly on tiny clusters, symmetry of the neighbour
//! elements, the padding of elements with fewer functions, and bad parameters.

use serde_json::{json, Value};

use crate::descriptors::{from_json, DescriptorExt};
use crate::structure::Structure;

fn cluster(positions: &[[f64; 3]], numbers: &[u32]) -> Structure {
    let cell = [[20.0, 0.0, 0.0], [0.0, 20.0, 0.0], [0.0, 0.0, 20.0]];
    Structure::new(positions.to_vec(), cell, [false; 3], numbers.to_vec()).unwrap()
}

fn acsf(params: Value) -> std::sync::Arc<dyn crate::descriptors::Descriptor> {
    from_json("acsf", &params.to_string()).unwrap()
}

fn dist(a: [f64; 3], b: [f64; 3]) -> f64 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
}

/// n2p2's cosine cutoff with inner cutoff alpha r_c, written out.
fn fc(r: f64, rc: f64, alpha: f64) -> f64 {
    let rci = alpha * rc;
    if r >= rc {
        0.0
    } else if r < rci {
        1.0
    } else {
        0.5 * ((std::f64::consts::PI * (r - rci) / (rc - rci)).cos() + 1.0)
    }
}

#[test]
fn a_trimer_matches_the_formulas() {
    let p = [
        [0.0, 0.0, 0.0],
        [1.9, 0.3, -0.2],
        [-0.4, 2.1, 0.5],
        [0.2, -0.6, 2.6],
    ];
    let z = [14u32, 8, 8, 14];
    let s = cluster(&p, &z);
    let (rc, alpha) = (4.2, 0.25);
    let (eta, rs, lambda, zeta) = (0.3, 0.4, -1.0, 2.0);
    let d = acsf(json!({
        "species": [14, 8], "cutoff_function": "cos", "cutoff_alpha": alpha,
        "functions": [
            {"center": 14, "type": 2, "neighbors": [8], "eta": eta, "r_s": rs, "cutoff": rc},
            {"center": 14, "type": 3, "neighbors": [8, 14], "eta": eta, "r_s": rs, "cutoff": rc,
             "lambda": lambda, "zeta": zeta},
            {"center": 14, "type": 9, "neighbors": [8, 8], "eta": eta, "r_s": rs, "cutoff": rc,
             "lambda": 1.0, "zeta": 1.0},
            {"center": 14, "type": 12, "eta": eta, "r_s": rs, "cutoff": rc},
            {"center": 14, "type": 13, "eta": eta, "r_s": rs, "cutoff": rc,
             "lambda": 1.0, "zeta": 3.0},
        ]
    }));
    let x = d.compute(&s).unwrap();
    let e = |r: f64| (-eta * (r - rs) * (r - rs)).exp() * fc(r, rc, alpha);
    let angle = |i: usize, j: usize, k: usize| {
        let u: Vec<f64> = (0..3).map(|a| p[j][a] - p[i][a]).collect();
        let v: Vec<f64> = (0..3).map(|a| p[k][a] - p[i][a]).collect();
        (u[0] * v[0] + u[1] * v[1] + u[2] * v[2]) / dist(p[i], p[j]) / dist(p[i], p[k])
    };
    let ang = |l: f64, zt: f64, c: f64| {
        let b = 1.0 + l * c;
        if b <= 0.0 {
            0.0
        } else {
            b.powf(zt)
        }
    };
    for i in [0usize, 3] {
        let others: Vec<usize> = (0..4).filter(|&j| j != i).collect();
        let r = |j: usize| dist(p[i], p[j]);
        let (mut g2, mut g3, mut g9, mut g12, mut g13) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for &j in &others {
            if r(j) < rc {
                if z[j] == 8 {
                    g2 += e(r(j));
                }
                g12 += z[j] as f64 * e(r(j));
            }
        }
        for (a, &j) in others.iter().enumerate() {
            for &k in &others[a + 1..] {
                let rjk = dist(p[j], p[k]);
                if r(j) >= rc || r(k) >= rc {
                    continue;
                }
                let c = angle(i, j, k);
                let (zj, zk) = (z[j], z[k]);
                if rjk < rc {
                    let radial = e(r(j)) * e(r(k)) * e(rjk);
                    if (zj, zk) == (8, 14) || (zj, zk) == (14, 8) {
                        g3 += 2f64.powf(1.0 - zeta) * ang(lambda, zeta, c) * radial;
                    }
                    g13 += 2f64.powf(-2.0) * ang(1.0, 3.0, c) * radial * (zj * zk) as f64;
                }
                if (zj, zk) == (8, 8) {
                    g9 += ang(1.0, 1.0, c) * e(r(j)) * e(r(k));
                }
            }
        }
        let expected = [g2, g3, g9, g12, g13];
        for (f, (a, b)) in x[i * 5..(i + 1) * 5].iter().zip(&expected).enumerate() {
            assert!(
                *b != 0.0,
                "atom {i} feature {f}: the test should see every term"
            );
            assert!(
                (a - b).abs() <= 1e-14 * b.abs(),
                "atom {i} feature {f}: {a} against {b}"
            );
        }
    }
    // oxygen is the centre of no function: all zeros
    assert!(x[5..15].iter().all(|&v| v == 0.0));
}

#[test]
fn neighbor_order_of_an_angular_function_does_not_matter() {
    let s = crate::test_support::rattled_cell(4, &[28, 13], 2.3, [2, 2, 3], 0.25, true);
    assert!(s.numbers().contains(&28) && s.numbers().contains(&13));
    let params = |neighbors: [u32; 2], kind: u32| {
        json!({
            "species": [28, 13], "cutoff_function": "poly3", "cutoff_alpha": 0.1,
            "functions": [{"center": 28, "type": kind, "neighbors": neighbors, "eta": 0.2,
                           "cutoff": 4.0, "lambda": 1.0, "zeta": 2.0},
                          {"center": 13, "type": kind, "neighbors": neighbors, "eta": 0.2,
                           "cutoff": 4.0, "lambda": -1.0, "zeta": 1.0}]
        })
    };
    for kind in [3, 9] {
        let a = acsf(params([28, 13], kind)).compute(&s).unwrap();
        let b = acsf(params([13, 28], kind)).compute(&s).unwrap();
        assert!(a.iter().any(|&v| v != 0.0));
        assert_eq!(a, b, "type {kind}");
    }
}

#[test]
fn elements_with_fewer_functions_get_zeros() {
    let s = crate::test_support::rattled_cell(6, &[28, 13], 2.3, [2, 2, 3], 0.25, true);
    assert!(s.numbers().contains(&28) && s.numbers().contains(&13));
    let d = acsf(json!({
        "species": [28, 13], "cutoff_function": "cos",
        "functions": [
            {"center": 28, "type": 2, "neighbors": [13], "eta": 0.5, "cutoff": 4.0},
            {"center": 28, "type": 12, "eta": 0.5, "cutoff": 4.0},
            {"center": 13, "type": 2, "neighbors": [28], "eta": 0.5, "cutoff": 4.0},
        ]
    }));
    assert_eq!(d.n_features(), 2);
    let x = d.compute(&s).unwrap();
    for (i, z) in s.numbers().iter().enumerate() {
        if *z == 13 {
            assert!(x[2 * i] > 0.0 && x[2 * i + 1] == 0.0);
        }
    }
    // the list is symmetric: Al sees Ni at 4.0, Ni sees Al at 4.0
    assert_eq!(d.pair_cutoff(0, 1), 4.0);
    assert_eq!(d.pair_cutoff(1, 1), 0.0);
}

#[test]
fn bad_parameters_are_errors() {
    let good = json!({
        "species": [14, 8], "cutoff_function": "cos", "cutoff_alpha": 0.0,
        "functions": [
            {"center": 14, "type": 2, "neighbors": [14], "eta": 0.5, "r_s": 0.0, "cutoff": 5.5},
            {"center": 14, "type": 3, "neighbors": [14, 8], "eta": 0.01, "lambda": -1.0, "zeta": 4.0, "cutoff": 5.5},
            {"center": 8, "type": 12, "eta": 0.5, "cutoff": 5.5},
        ]
    });
    assert!(from_json("acsf", &good.to_string()).is_ok());
    let cases: Vec<(&str, Value, &str)> = vec![
        ("/species", json!([]), "species"),
        ("/species", json!([14, 14]), "twice"),
        ("/cutoff_function", json!("cosine"), "unknown variant"),
        ("/cutoff_alpha", json!(1.0), "cutoff_alpha"),
        ("/cutoff_alpha", json!(-0.1), "cutoff_alpha"),
        ("/functions", json!([]), "at least one"),
        (
            "/functions/0/type",
            json!(4),
            "functions[0] (type 4): type must be",
        ),
        (
            "/functions/0/center",
            json!(6),
            "functions[0] (type 2): center 6",
        ),
        (
            "/functions/0/neighbors",
            json!([14, 8]),
            "functions[0] (type 2): neighbors must name 1",
        ),
        ("/functions/0/neighbors", json!([26]), "neighbor 26"),
        (
            "/functions/0/eta",
            json!(-1.0),
            "functions[0] (type 2): eta",
        ),
        ("/functions/0/cutoff", json!(0.0), "cutoff must be"),
        (
            "/functions/0/lambda",
            json!(1.0),
            "lambda and zeta are parameters",
        ),
        ("/functions/0/unknown", json!(1.0), "unknown field"),
        (
            "/functions/1/lambda",
            json!(1.5),
            "functions[1] (type 3): lambda",
        ),
        (
            "/functions/1/zeta",
            json!(0.5),
            "functions[1] (type 3): zeta must be",
        ),
        (
            "/functions/1/neighbors",
            json!([14]),
            "neighbors must name 2",
        ),
        (
            "/functions/2/neighbors",
            json!([14]),
            "functions[2] (type 12): neighbors is not",
        ),
        (
            "/functions/2/zeta",
            json!(2.0),
            "lambda and zeta are parameters",
        ),
    ];
    for (path, value, expected) in cases {
        let mut params = good.clone();
        let (parent, key) = path.rsplit_once('/').unwrap();
        let target = params.pointer_mut(parent).unwrap();
        target[key] = value.clone();
        match from_json("acsf", &params.to_string()) {
            Ok(_) => panic!("{path} = {value} was accepted"),
            Err(e) => assert!(e.to_string().contains(expected), "{path} = {value}: {e}"),
        }
    }
    // required fields of an angular type
    let mut params = good.clone();
    params["functions"][1]
        .as_object_mut()
        .unwrap()
        .remove("zeta");
    let m = from_json("acsf", &params.to_string())
        .err()
        .unwrap()
        .to_string();
    assert!(m.contains("zeta is required"), "{m}");
    // non-finite numbers cannot come through JSON; through the struct they are errors
    let mut p: super::AcsfParams = serde_json::from_value(good).unwrap();
    p.functions[0].r_s = f64::NAN;
    assert!(super::Acsf::new(p)
        .unwrap_err()
        .to_string()
        .contains("r_s must be finite"));
}

/// A cell thinner than the cutoffs: an atom's own periodic images are its neighbours (as in
/// n2p2 v2.3.0), and the forces of the adjoint and the gradients still match finite
/// differences of E = sum_i de_i . X_i.
#[test]
fn own_periodic_images_count_and_their_forces_are_right() {
    let d = acsf(json!({
        "species": [14], "cutoff_function": "poly1", "cutoff_alpha": 0.2,
        "functions": [
            {"center": 14, "type": 2, "neighbors": [14], "eta": 0.5, "cutoff": 4.0},
            {"center": 14, "type": 3, "neighbors": [14, 14], "eta": 0.1, "cutoff": 4.0,
             "lambda": -1.0, "zeta": 2.0},
            {"center": 14, "type": 9, "neighbors": [14, 14], "eta": 0.1, "cutoff": 3.5,
             "lambda": 1.0, "zeta": 1.0},
        ]
    }));
    let s = crate::test_support::rattled_cell(7, &[14], 2.3, [2, 1, 1], 0.2, true);
    let n = s.len();
    let de = crate::test_support::random_vector(3, n * d.n_features());
    let energy = |s: &Structure| -> f64 {
        let x = d.compute(s).unwrap();
        x.iter().zip(&de).map(|(a, b)| a * b).sum()
    };
    let b = d.backprop(&s, &de).unwrap();
    let h = 1e-5;
    for k in 0..n {
        for a in 0..3 {
            let plus = energy(&crate::test_support::moved(&s, k, a, h));
            let minus = energy(&crate::test_support::moved(&s, k, a, -h));
            let numeric = -(plus - minus) / (2.0 * h);
            assert!((b.forces[k][a] - numeric).abs() < 1e-6, "{k} {a}: {} {numeric}", b.forces[k][a]);
        }
    }
    // a single atom in the cell sees only its own images: non-zero features
    let one = crate::test_support::rattled_cell(7, &[14], 2.3, [1, 1, 1], 0.1, true);
    assert!(d.compute(&one).unwrap().iter().all(|&x| x > 0.0));
}
