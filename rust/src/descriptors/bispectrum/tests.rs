use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::descriptors::DescriptorExt;
use crate::structure::Structure;
use crate::test_support::{moved, rattled_cell};

fn params(twojmax: usize, species: Vec<u32>) -> BispectrumParams {
    let n = species.len();
    BispectrumParams {
        twojmax,
        rcutfac: 4.1,
        rfac0: 0.99363,
        rmin0: 0.0,
        radelem: (0..n).map(|k| 0.5 + 0.07 * k as f64).collect(),
        wj: (0..n).map(|k| 1.0 - 0.2 * k as f64).collect(),
        species,
        switchflag: true,
        bzeroflag: false,
        chemflag: false,
        bnormflag: false,
        wselfallflag: false,
    }
}

/// A rattled simple-cubic periodic cell of 8 atoms with elements drawn from `species`.
fn structure(seed: u64, species: &[u32]) -> Structure {
    rattled_cell(seed, species, 2.6, [2, 2, 2], 0.25, true)
}

/// Every combination of the flags that change the values.
fn flag_variants(base: &BispectrumParams) -> Vec<BispectrumParams> {
    let mut out = Vec::new();
    for bits in 0..32u32 {
        let mut p = base.clone();
        p.switchflag = bits & 1 != 0;
        p.bzeroflag = bits & 2 != 0;
        p.chemflag = bits & 4 != 0;
        p.bnormflag = bits & 8 != 0;
        p.wselfallflag = bits & 16 != 0;
        out.push(p);
    }
    out
}

#[test]
fn isolated_atom_with_bzero_is_zero() {
    // an atom without neighbors has U = identity, whose B is exactly what bzeroflag subtracts
    for p in flag_variants(&params(6, vec![28, 13])) {
        let mut p = p;
        p.bzeroflag = true;
        let bs = Bispectrum::new(p.clone()).unwrap();
        let s = Structure::new(vec![[0.0; 3]], [[0.0; 3]; 3], [false; 3], vec![13]).unwrap();
        let b = bs.compute(&s).unwrap();
        let n_b = bs.indices.n_b();
        for (k, v) in b.iter().enumerate() {
            // triples without the self term are zero already; those with it are cancelled,
            // except that without wselfallflag only the atom's own triple is shifted
            assert!(
                v.abs() < 1e-12,
                "{p:?}: feature {k} (triple {}) = {v}",
                k / n_b
            );
        }
    }
}

#[test]
fn gradients_match_finite_differences() {
    let species = vec![28, 13];
    let s = structure(7, &species);
    for p in flag_variants(&params(4, species.clone())) {
        let bs = Bispectrum::new(p.clone()).unwrap();
        let g = bs.compute_with_gradients(&s).unwrap();
        let nf = bs.n_features();
        let h = 1e-5;
        for (row, (&i, &j)) in g.centers.iter().zip(&g.atoms).enumerate().step_by(3) {
            for c in 0..3 {
                let plus = bs.compute(&moved(&s, j, c, h)).unwrap();
                let minus = bs.compute(&moved(&s, j, c, -h)).unwrap();
                for f in 0..nf {
                    let fd = (plus[i * nf + f] - minus[i * nf + f]) / (2.0 * h);
                    let an = g.values[(row * 3 + c) * nf + f];
                    assert!(
                        (fd - an).abs() < 1e-6 * (1.0 + fd.abs()),
                        "{p:?} dB_{i}[{f}]/dr_{j}[{c}]: {fd} vs {an}"
                    );
                }
            }
        }
    }
}

#[test]
fn adjoint_matches_gradients_and_energy_differences() {
    let species = vec![28, 13, 8];
    let s = structure(11, &species);
    let mut rng = SmallRng::seed_from_u64(3);
    for p in flag_variants(&params(4, species.clone())) {
        let bs = Bispectrum::new(p.clone()).unwrap();
        let nf = bs.n_features();
        let beta: Vec<f64> = (0..s.len() * nf)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let adj = bs.backprop(&s, &beta).unwrap();
        let g = bs.compute_with_gradients(&s).unwrap();
        assert_eq!(adj.descriptors, g.descriptors);
        // forces from the explicit gradients: F_j = -sum_i beta_i . dB_i/dr_j
        let mut forces = vec![[0.0; 3]; s.len()];
        for (row, (&i, &j)) in g.centers.iter().zip(&g.atoms).enumerate() {
            for c in 0..3 {
                for f in 0..nf {
                    forces[j][c] -= beta[i * nf + f] * g.values[(row * 3 + c) * nf + f];
                }
            }
        }
        let mut virial = [0.0; 6];
        for i in 0..s.len() {
            for v in 0..6 {
                for f in 0..nf {
                    virial[v] += beta[i * nf + f] * g.virial[(i * 6 + v) * nf + f];
                }
            }
        }
        for k in 0..s.len() {
            for c in 0..3 {
                let d = (forces[k][c] - adj.forces[k][c]).abs();
                assert!(
                    d < 1e-10 * (1.0 + forces[k][c].abs()),
                    "{p:?} atom {k}: {forces:?} vs {:?}",
                    adj.forces
                );
            }
        }
        for v in 0..6 {
            assert!(
                (virial[v] - adj.virial[v]).abs() < 1e-10 * (1.0 + virial[v].abs()),
                "{p:?}"
            );
        }
        // and against the energy itself
        let energy = |st: &Structure| -> f64 {
            bs.compute(st)
                .unwrap()
                .iter()
                .zip(&beta)
                .map(|(b, w)| b * w)
                .sum()
        };
        let h = 1e-5;
        for k in [0, 5] {
            for c in 0..3 {
                let fd = -(energy(&moved(&s, k, c, h)) - energy(&moved(&s, k, c, -h))) / (2.0 * h);
                assert!(
                    (fd - adj.forces[k][c]).abs() < 1e-6 * (1.0 + fd.abs()),
                    "{p:?}: {fd} vs {:?}",
                    adj.forces[k]
                );
            }
        }
    }
}

#[test]
fn rotation_invariant() {
    let species = vec![28, 13];
    let s = structure(5, &species);
    let mut p = params(6, species);
    p.chemflag = true;
    let bs = Bispectrum::new(p).unwrap();
    let (ca, sa) = (0.3f64.cos(), 0.3f64.sin());
    let rot = |v: [f64; 3]| [ca * v[0] - sa * v[1], sa * v[0] + ca * v[1], v[2]];
    let cell = s.cell().map(rot);
    let positions = s.positions().iter().map(|&v| rot(v)).collect();
    let r = Structure::new(positions, cell, [true; 3], s.numbers().to_vec()).unwrap();
    let (b0, b1) = (bs.compute(&s).unwrap(), bs.compute(&r).unwrap());
    for (x, y) in b0.iter().zip(&b1) {
        assert!((x - y).abs() < 1e-10 * (1.0 + x.abs()));
    }
}

#[test]
fn large_twojmax_is_rotation_invariant_and_consistent() {
    // 2J = 14 runs Z rows of more than three column vectors and the longest recursions, which
    // the oracle tests (2J <= 8) do not reach
    let species = vec![28, 13];
    let s = structure(17, &species);
    let mut p = params(14, species);
    p.chemflag = true;
    let bs = Bispectrum::new(p).unwrap();
    let (ca, sa) = (0.7f64.cos(), 0.7f64.sin());
    let rot = |v: [f64; 3]| [v[0], ca * v[1] - sa * v[2], sa * v[1] + ca * v[2]];
    let positions = s.positions().iter().map(|&v| rot(v)).collect();
    let r = Structure::new(
        positions,
        s.cell().map(rot),
        [true; 3],
        s.numbers().to_vec(),
    )
    .unwrap();
    let (b0, b1) = (bs.compute(&s).unwrap(), bs.compute(&r).unwrap());
    let scale = b0.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    for (x, y) in b0.iter().zip(&b1) {
        assert!((x - y).abs() < 1e-10 * scale, "{x} vs {y}");
    }
    let nf = bs.n_features();
    let beta: Vec<f64> = (0..s.len() * nf).map(|k| (k as f64 * 0.61).cos()).collect();
    let adj = bs.backprop(&s, &beta).unwrap();
    let g = bs.compute_with_gradients(&s).unwrap();
    let mut forces = vec![[0.0; 3]; s.len()];
    for (row, (&i, &j)) in g.centers.iter().zip(&g.atoms).enumerate() {
        for c in 0..3 {
            for f in 0..nf {
                forces[j][c] -= beta[i * nf + f] * g.values[(row * 3 + c) * nf + f];
            }
        }
    }
    let fscale = forces.iter().flatten().fold(0.0f64, |m, x| m.max(x.abs()));
    for (a, b) in forces.iter().flatten().zip(adj.forces.iter().flatten()) {
        assert!((a - b).abs() < 1e-10 * fscale, "{a} vs {b}");
    }
    let energy = |st: &Structure| -> f64 {
        bs.compute(st)
            .unwrap()
            .iter()
            .zip(&beta)
            .map(|(b, w)| b * w)
            .sum()
    };
    let h = 1e-5;
    for c in 0..3 {
        let fd = -(energy(&moved(&s, 3, c, h)) - energy(&moved(&s, 3, c, -h))) / (2.0 * h);
        assert!(
            (fd - adj.forces[3][c]).abs() < 1e-6 * (1.0 + fscale),
            "{fd} vs {:?}",
            adj.forces[3]
        );
    }
}

#[test]
fn same_result_for_any_thread_count() {
    let species = vec![28, 13];
    let s = structure(9, &species);
    let bs = Bispectrum::new(params(6, species)).unwrap();
    let beta: Vec<f64> = (0..s.len() * bs.n_features())
        .map(|k| (k as f64).sin())
        .collect();
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            (
                bs.compute_with_gradients(&s).unwrap(),
                bs.backprop(&s, &beta).unwrap(),
            )
        })
    };
    let ((g1, a1), (g3, a3)) = (run(1), run(3));
    assert_eq!(g1.values, g3.values);
    assert_eq!(g1.virial, g3.virial);
    assert_eq!(a1.forces, a3.forces);
    assert_eq!(a1.virial, a3.virial);
}

#[test]
fn portable_kernels_match_the_vector_kernels() {
    // where the CPU has AVX2+FMA this compares the two kernel sets (fused multiply-adds
    // round differently); elsewhere both runs take the portable path
    let species = vec![28, 13];
    let s = structure(13, &species);
    let mut rng = SmallRng::seed_from_u64(5);
    for p in flag_variants(&params(6, species.clone()))
        .into_iter()
        .step_by(3)
    {
        let fast = Bispectrum::new(p.clone()).unwrap();
        let mut portable = fast.clone();
        portable.portable_only = true;
        let beta: Vec<f64> = (0..s.len() * fast.n_features())
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let close = |a: &[f64], b: &[f64]| {
            let scale = a.iter().fold(0.0f64, |m, x| m.max(x.abs()));
            for (x, y) in a.iter().zip(b) {
                assert!((x - y).abs() <= 1e-12 * scale, "{p:?}: {x} vs {y}");
            }
        };
        let (g1, g2) = (
            fast.compute_with_gradients(&s).unwrap(),
            portable.compute_with_gradients(&s).unwrap(),
        );
        close(&g1.descriptors, &g2.descriptors);
        close(&g1.values, &g2.values);
        close(&g1.virial, &g2.virial);
        let (a1, a2) = (
            fast.backprop(&s, &beta).unwrap(),
            portable.backprop(&s, &beta).unwrap(),
        );
        close(a1.forces.as_flattened(), a2.forces.as_flattened());
        close(&a1.virial, &a2.virial);
    }
}

#[test]
fn rejects_bad_parameters() {
    let base = params(6, vec![28]);
    let cases: Vec<(Box<dyn Fn(&mut BispectrumParams)>, &str)> = vec![
        (Box::new(|p| p.twojmax = 5), "twojmax"),
        (Box::new(|p| p.rfac0 = 0.0), "rfac0"),
        (Box::new(|p| p.rfac0 = 1.5), "rfac0"),
        (Box::new(|p| p.rfac0 = f64::NAN), "rfac0"),
        (Box::new(|p| p.rcutfac = f64::NAN), "rcutfac"),
        (Box::new(|p| p.rmin0 = 4.1), "rmin0"),
        (Box::new(|p| p.radelem = vec![-1.0]), "radelem"),
        (Box::new(|p| p.wj = vec![f64::INFINITY]), "wj"),
        (Box::new(|p| p.species = vec![]), "element"),
        (Box::new(|p| p.twojmax = MAX_TWOJMAX + 2), "twojmax"),
        (Box::new(|p| p.species = vec![0]), "atomic number 0"),
    ];
    for (change, word) in cases {
        let mut p = base.clone();
        change(&mut p);
        match Bispectrum::new(p) {
            Err(Error::InvalidInput(m)) => assert!(m.contains(word), "{m}"),
            other => panic!("expected an error about {word}, got {other:?}"),
        }
    }
    let bs = Bispectrum::new(base).unwrap();
    let s = structure(1, &[29]);
    assert!(
        matches!(bs.compute(&s), Err(Error::InvalidInput(m)) if m.contains("atomic number 29"))
    );
}

/// Not a test: the workload for instruction counts (valgrind --tool=callgrind on the test
/// binary, `-- --ignored workload`), 108 atoms of rattled fcc Ni as in benches/bispectrum.py.
/// MLPOT_WORKLOAD="<twojmax> <descriptors|adjoint>" picks the case (default "8 adjoint").
#[test]
#[ignore]
fn workload() {
    let spec = std::env::var("MLPOT_WORKLOAD").unwrap_or_else(|_| "8 adjoint".into());
    let mut words = spec.split_whitespace();
    let twojmax: usize = words.next().unwrap().parse().unwrap();
    let task = words.next().unwrap_or("adjoint").to_string();
    let mut rng = SmallRng::seed_from_u64(0);
    let a = 3.52;
    let basis = [
        [0.0, 0.0, 0.0],
        [0.0, 0.5, 0.5],
        [0.5, 0.0, 0.5],
        [0.5, 0.5, 0.0],
    ];
    let n = 3;
    let mut positions = Vec::new();
    for x in 0..n {
        for y in 0..n {
            for z in 0..n {
                for b in &basis {
                    let cell = [x as f64, y as f64, z as f64];
                    positions.push(std::array::from_fn(|k| {
                        (cell[k] + b[k]) * a + rng.random_range(-0.08..0.08)
                    }));
                }
            }
        }
    }
    let l = a * n as f64;
    let count = positions.len();
    let s = Structure::new(
        positions,
        [[l, 0.0, 0.0], [0.0, l, 0.0], [0.0, 0.0, l]],
        [true; 3],
        vec![28; count],
    )
    .unwrap();
    let mut p = params(twojmax, vec![28]);
    p.radelem = vec![0.5];
    p.wj = vec![1.0];
    let bs = Bispectrum::new(p).unwrap();
    let beta: Vec<f64> = (0..count * bs.n_features())
        .map(|k| ((k % bs.n_features()) as f64 * 0.37).sin())
        .collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    pool.install(|| match task.as_str() {
        "descriptors" => {
            std::hint::black_box(bs.compute(&s).unwrap());
        }
        _ => {
            std::hint::black_box(bs.backprop(&s, &beta).unwrap());
        }
    });
}
