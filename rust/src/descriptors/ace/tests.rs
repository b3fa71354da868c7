//! ACE against its definitions on a small cluster (rank 1 and rank-2 couplings written
//! out), and bad parameters. The contract suite covers derivatives and invariances;
//! tests/test_ace_pyace.py compares with python-ace.

use serde_json::{json, Value};

use crate::descriptors::{from_json, DescriptorExt};
use crate::structure::Structure;

fn cluster(positions: &[[f64; 3]], numbers: &[u32]) -> Structure {
    let cell = [[20.0, 0.0, 0.0], [0.0, 20.0, 0.0], [0.0, 0.0, 20.0]];
    Structure::new(positions.to_vec(), cell, [false; 3], numbers.to_vec()).unwrap()
}

fn bond(nradbase: usize, nradmax: usize, lmax: usize) -> Value {
    json!({"radbase": "ChebExpCos", "rcut": 4.0, "dcut": 0.2, "lambda": 5.25,
           "nradbase": nradbase, "nradmax": nradmax, "lmax": lmax})
}

#[test]
fn rank_one_and_two_are_sums_over_neighbours() {
    let p = [
        [0.0, 0.0, 0.0],
        [1.9, 0.3, -0.2],
        [-0.4, 2.1, 0.5],
        [0.2, -0.6, 2.6],
    ];
    let s = cluster(&p, &[14; 4]);
    let d = from_json(
        "ace",
        &json!({
        "species": [14], "bonds": [bond(3, 2, 2)],
        "functions": [
            {"center": 0, "mus": [0], "ns": [2], "ls": [0]},
            {"center": 0, "mus": [0, 0], "ns": [1, 2], "ls": [0, 0]},
            {"center": 0, "mus": [0, 0], "ns": [2, 2], "ls": [1, 1]},
        ]})
        .to_string(),
    )
    .unwrap();
    let x = d.compute(&s).unwrap();
    // the basis written out: ChebExpCos g_1 and g_0 (= f_c) of atom 0's neighbours
    let (rc, dc, lam) = (4.0f64, 0.2f64, 5.25f64);
    let pi = std::f64::consts::PI;
    let g = |k: usize, r: f64| {
        let x = 1.0 - 2.0 * ((-lam * r / rc).exp() - (-lam).exp()) / (1.0 - (-lam).exp());
        let t = [1.0, x, 2.0 * x * x - 1.0];
        let mut f = 0.5 * (1.0 + (pi * r / rc).cos());
        if r > rc - dc {
            f *= 0.5 * (1.0 + (pi * (r - rc + dc) / dc).cos());
        }
        if k == 0 {
            f
        } else {
            0.5 * (1.0 - t[k]) * f
        }
    };
    let vecs: Vec<[f64; 3]> = p[1..].to_vec();
    let r: Vec<f64> = vecs
        .iter()
        .map(|v| (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt())
        .collect();
    let b1: f64 = r.iter().map(|&r| g(1, r)).sum();
    assert!((x[0] - b1).abs() < 1e-14, "{} {b1}", x[0]);
    let b2 = r.iter().map(|&r| g(0, r)).sum::<f64>() * b1;
    assert!((x[1] - b2).abs() < 1e-14, "{} {b2}", x[1]);
    // l = 1: <1 m 1 -m | 0 0> summed = -(1/sqrt 3) sum_m (-1)^m A_1m A_1-m = -(1/sqrt 3)
    // |A_1|^2 ... with Y normalised to Y_00 = 1: sum_m |A_1m|^2 = 3 sum_jk g g cos(theta_jk)
    let mut dot = 0.0;
    for (a, ra) in vecs.iter().zip(&r) {
        for (b, rb) in vecs.iter().zip(&r) {
            let cos = (a[0] * b[0] + a[1] * b[1] + a[2] * b[2]) / (ra * rb);
            dot += g(1, *ra) * g(1, *rb) * 3.0 * cos;
        }
    }
    // <1 m 1 -m|0 0> = (-1)^(1-m) / sqrt 3 and A_1-m = (-1)^m conj A_1m
    let want = -dot / 3f64.sqrt();
    assert!((x[2] - want).abs() < 1e-13, "{} {want}", x[2]);
}

#[test]
fn bad_parameters_are_errors() {
    let bad = |functions: Value, bonds: Value| {
        from_json(
            "ace",
            &json!({"species": [14], "bonds": bonds, "functions": functions}).to_string(),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default()
    };
    let ok = json!([bond(3, 2, 2)]);
    assert!(bad(
        json!([{"center": 0, "mus": [0], "ns": [4], "ls": [0]}]),
        ok.clone()
    )
    .contains("ns[0]"));
    assert!(bad(
        json!([{"center": 0, "mus": [0, 0], "ns": [1, 1], "ls": [1, 2]}]),
        ok.clone()
    )
    .contains("even"));
    assert!(bad(
        json!([{"center": 0, "mus": [0, 0], "ns": [1, 1], "ls": [3, 3]}]),
        ok.clone()
    )
    .contains("lmax"));
    assert!(bad(
        json!([{"center": 0, "mus": [0, 0, 0], "ns": [1, 1, 1], "ls": [1, 1, 2]}]),
        ok.clone()
    )
    .contains("lint"));
    let e = bad(
        json!([{"center": 0, "mus": [0, 0, 0], "ns": [1, 1, 1], "ls": [2, 2, 2], "lint": [0]}]),
        json!([bond(3, 2, 2)]),
    );
    assert!(e.contains("couple to no invariant"), "{e}");
    assert!(bad(
        json!([{"center": 0, "mus": [0, 0, 0], "ns": [1, 1, 1], "ls": [2, 2, 2], "lint": [0]}]),
        json!([bond(3, 2, 2)])
    )
    .contains("couple to no invariant"));
    assert!(bad(
        json!([{"center": 0, "mus": [0], "ns": [1], "ls": [0]}]),
        json!([])
    )
    .contains("bonds"));
    let mut b = bond(3, 2, 2);
    b["rcut"] = json!(-1.0);
    assert!(bad(
        json!([{"center": 0, "mus": [0], "ns": [1], "ls": [0]}]),
        json!([b])
    )
    .contains("rcut"));
}
