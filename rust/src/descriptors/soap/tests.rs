//! Each stage against an independent computation: quadrature for the basis and the radial
//! integral, the addition theorem for the spherical harmonics, finite differences for every
//! derivative. Values against featomic are tested from Python (tests/test_soap_featomic.py).

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::radial::{
    ln_gamma_half_integer, scaled_hyp1f1, scaled_hyp1f1_series, GtoBasis, RadialIntegral,
};
use super::spherical_harmonics::SphericalHarmonics;
use super::*;
use crate::descriptors::DescriptorExt;
use crate::structure::Structure;
use crate::test_support::{moved, rattled_cell};

fn params(species: Vec<u32>) -> SoapParams {
    SoapParams {
        cutoff: 3.6,
        n_max: 4,
        l_max: 3,
        atom_sigma: 0.45,
        cutoff_transition_width: 0.7,
        species,
        center_atom_weight: 1.0,
        normalize: false,
    }
}

/// Composite Simpson rule of f on [a, b] with n (even) intervals.
fn simpson(f: impl Fn(f64) -> f64, a: f64, b: f64, n: usize) -> f64 {
    let h = (b - a) / n as f64;
    let mut s = f(a) + f(b);
    for k in 1..n {
        s += if k % 2 == 1 { 4.0 } else { 2.0 } * f(a + k as f64 * h);
    }
    s * h / 3.0
}

#[test]
fn gamma_of_half_integers() {
    let pi = std::f64::consts::PI;
    assert!((ln_gamma_half_integer(0.5) - 0.5 * pi.ln()).abs() < 1e-15);
    assert!((ln_gamma_half_integer(5.0) - 24f64.ln()).abs() < 1e-14);
    // Gamma(7/2) = 15 sqrt(pi) / 8
    assert!((ln_gamma_half_integer(3.5) - (15.0 * pi.sqrt() / 8.0).ln()).abs() < 1e-14);
}

#[test]
fn hypergeometric_closed_forms() {
    for z in [0.0, 0.3, 7.0, 80.0, 900.0, 4000.0] {
        // 1F1(a; a; z) = e^z
        let v = scaled_hyp1f1(2.5, 2.5, z).unwrap();
        // rounding grows with the ~z terms summed
        assert!((v - 1.0).abs() < 1e-12, "z = {z}: {v}");
        // 1F1(1; 2; z) = (e^z - 1) / z
        if z > 0.0 {
            let v = scaled_hyp1f1(1.0, 2.0, z).unwrap();
            let exact = -(-z).exp_m1() / z;
            assert!((v - exact).abs() < 1e-12 * exact, "z = {z}: {v} vs {exact}");
        }
    }
}

#[test]
fn asymptotic_and_series_hypergeometric_agree() {
    // scaled_hyp1f1 switches to the asymptotic expansion at large z where it converges
    for (a, b) in [
        (1.5, 1.5),
        (4.0, 2.5),
        (7.5, 6.5),
        (9.0, 13.5),
        (15.5, 20.5),
        (3.5, 9.5),
    ] {
        for z in [41.0, 60.0, 150.0, 700.0, 3000.0] {
            let series = scaled_hyp1f1_series(a, b, z).unwrap();
            let used = scaled_hyp1f1(a, b, z).unwrap();
            assert!(
                (used - series).abs() <= 1e-12 * series,
                "1F1({a}, {b}, {z}): {used} vs {series}"
            );
        }
    }
}

#[test]
fn gto_basis_is_orthonormal() {
    let (cutoff, n_max) = (4.5, 7);
    let basis = GtoBasis::new(cutoff, n_max).unwrap();
    let radial = |k: usize, r: f64| -> f64 {
        (0..n_max)
            .map(|n| {
                basis.transform[k * n_max + n]
                    * r.powi(n as i32)
                    * (-basis.exponents[n] * r * r).exp()
            })
            .sum()
    };
    for k in 0..n_max {
        for q in 0..n_max {
            let s = simpson(
                |r| radial(k, r) * radial(q, r) * r * r,
                0.0,
                4.0 * cutoff,
                20000,
            );
            let expected = if k == q { 1.0 } else { 0.0 };
            assert!((s - expected).abs() < 1e-9, "<{k}|{q}> = {s}");
        }
    }
}

/// exp(-y) i_l(y), the scaled modified spherical Bessel function, for l <= 2.
fn scaled_bessel(l: usize, y: f64) -> f64 {
    let e = (-2.0 * y).exp();
    let (sinh, cosh) = ((1.0 - e) / 2.0, (1.0 + e) / 2.0);
    match l {
        0 => sinh / y,
        1 => (y * cosh - sinh) / (y * y),
        2 => ((y * y + 3.0) * sinh - 3.0 * y * cosh) / (y * y * y),
        _ => unreachable!(),
    }
}

#[test]
fn radial_integral_matches_quadrature() {
    let (cutoff, n_max, l_max, sigma) = (4.0, 5, 2, 0.5);
    let integral = RadialIntegral::new(cutoff, n_max, l_max, sigma).unwrap();
    let basis = GtoBasis::new(cutoff, n_max).unwrap();
    let c = 0.5 / (sigma * sigma);
    let norm = (std::f64::consts::PI * sigma * sigma).powf(-0.75);
    let size = integral.size();
    let (mut v, mut d1, mut d2) = (vec![0.0; size], vec![0.0; size], vec![0.0; size]);
    for r in [0.37, 1.9, 3.3] {
        integral.compute(r, &mut v, &mut d1, &mut d2).unwrap();
        for l in 0..=l_max {
            for k in 0..n_max {
                let f = |x: f64| -> f64 {
                    let radial: f64 = (0..n_max)
                        .map(|n| {
                            basis.transform[k * n_max + n]
                                * x.powi(n as i32)
                                * (-basis.exponents[n] * x * x).exp()
                        })
                        .sum();
                    // exp(-c (x^2 + r^2)) i_l(2 c x r) = exp(-c (x - r)^2) [exp(-y) i_l(y)]
                    let y = 2.0 * c * x * r;
                    radial * x * x * (-c * (x - r) * (x - r)).exp() * scaled_bessel(l, y)
                };
                let expected = 4.0 * std::f64::consts::PI * norm * simpson(f, 1e-9, 16.0, 40000);
                let got = v[l * n_max + k];
                assert!(
                    (got - expected).abs() < 1e-9,
                    "I_{l}{k}({r}) = {got} vs {expected}"
                );
            }
        }
    }
}

#[test]
fn radial_derivatives_match_finite_differences() {
    let integral = RadialIntegral::new(5.0, 6, 5, 0.4).unwrap();
    let size = integral.size();
    let buf = || vec![0.0; size];
    let (mut v, mut d1, mut d2) = (buf(), buf(), buf());
    let (mut vp, mut d1p, mut d2p) = (buf(), buf(), buf());
    let (mut vm, mut d1m, mut d2m) = (buf(), buf(), buf());
    let h = 1e-5;
    for r in [0.0, 1e-3, 0.8, 2.7, 4.9] {
        integral.compute(r, &mut v, &mut d1, &mut d2).unwrap();
        // central differences, one-sided second-order ones at r = 0
        let (step, left, centre) = if r == 0.0 {
            (h, 2.0 * h, -3.0)
        } else {
            (h, -h, 0.0)
        };
        integral
            .compute(r + step, &mut vp, &mut d1p, &mut d2p)
            .unwrap();
        integral
            .compute(r + left, &mut vm, &mut d1m, &mut d2m)
            .unwrap();
        for k in 0..size {
            let (fd1, fd2) = if r == 0.0 {
                (
                    (centre * v[k] + 4.0 * vp[k] - vm[k]) / (2.0 * h),
                    (centre * d1[k] + 4.0 * d1p[k] - d1m[k]) / (2.0 * h),
                )
            } else {
                ((vp[k] - vm[k]) / (2.0 * h), (d1p[k] - d1m[k]) / (2.0 * h))
            };
            assert!(
                (fd1 - d1[k]).abs() < 1e-7,
                "I' at {r}, {k}: {} vs {fd1}",
                d1[k]
            );
            assert!(
                (fd2 - d2[k]).abs() < 1e-6,
                "I'' at {r}, {k}: {} vs {fd2}",
                d2[k]
            );
        }
    }
}

#[test]
fn spline_matches_exact_integral_everywhere() {
    let (cutoff, sigma) = (5.0, 0.5);
    let integral = RadialIntegral::new(cutoff, 8, 6, sigma).unwrap();
    let spline = RadialSpline::new(&integral, cutoff, sigma).unwrap();
    let size = integral.size();
    let (mut v, mut d1, mut d2) = (vec![0.0; size], vec![0.0; size], vec![0.0; size]);
    let (mut sv, mut sd) = (vec![0.0; size], vec![0.0; size]);
    let mut rng = SmallRng::seed_from_u64(3);
    for _ in 0..300 {
        let r = rng.random_range(0.0..cutoff);
        integral.compute(r, &mut v, &mut d1, &mut d2).unwrap();
        spline.evaluate(r, &mut sv, Some(&mut sd));
        for k in 0..size {
            assert!(
                (sv[k] - v[k]).abs() < 2.0 * spline::VALUE_TOLERANCE,
                "I at {r}"
            );
            assert!(
                (sd[k] - d1[k]).abs() < 2.0 * spline::DERIVATIVE_TOLERANCE,
                "I' at {r}"
            );
        }
    }
}

fn random_unit(rng: &mut SmallRng) -> [f64; 3] {
    loop {
        let v: [f64; 3] = [(); 3].map(|_| rng.random_range(-1.0..1.0));
        let n = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
        if n > 0.1 && n < 1.0 {
            return v.map(|x| x / n);
        }
    }
}

/// Legendre polynomial P_l(x) by Bonnet's recurrence.
fn legendre(l: usize, x: f64) -> f64 {
    let (mut p0, mut p1) = (1.0, x);
    if l == 0 {
        return 1.0;
    }
    for k in 1..l {
        let p2 = ((2 * k + 1) as f64 * x * p1 - k as f64 * p0) / (k + 1) as f64;
        p0 = p1;
        p1 = p2;
    }
    p1
}

#[test]
fn spherical_harmonics_obey_the_addition_theorem() {
    // sum_m Y_lm(u) Y_lm(v) = (2l + 1) / (4 pi) P_l(u . v): normalisation and orthogonality
    let l_max = 12;
    let mut sh = SphericalHarmonics::new(l_max);
    let (mut yu, mut yv) = (vec![0.0; sh.size()], vec![0.0; sh.size()]);
    let mut rng = SmallRng::seed_from_u64(5);
    for _ in 0..50 {
        let (u, v) = (random_unit(&mut rng), random_unit(&mut rng));
        sh.compute(u, &mut yu, None);
        sh.compute(v, &mut yv, None);
        let cos = u[0] * v[0] + u[1] * v[1] + u[2] * v[2];
        for l in 0..=l_max {
            let sum: f64 = (l * l..(l + 1) * (l + 1)).map(|k| yu[k] * yv[k]).sum();
            let expected = (2 * l + 1) as f64 / (4.0 * std::f64::consts::PI) * legendre(l, cos);
            assert!(
                (sum - expected).abs() < 1e-12,
                "l = {l}: {sum} vs {expected}"
            );
        }
    }
}

#[test]
fn spherical_harmonic_gradients_match_finite_differences() {
    let l_max = 8;
    let mut sh = SphericalHarmonics::new(l_max);
    let size = sh.size();
    let (mut y, mut g) = (vec![0.0; size], vec![0.0; 3 * size]);
    let (mut yp, mut ym) = (vec![0.0; size], vec![0.0; size]);
    let mut rng = SmallRng::seed_from_u64(7);
    let h = 1e-6;
    for _ in 0..20 {
        let len = rng.random_range(0.5..3.0);
        let r = random_unit(&mut rng).map(|x| x * len);
        let unit = |r: [f64; 3]| {
            let n = (r[0] * r[0] + r[1] * r[1] + r[2] * r[2]).sqrt();
            r.map(|x| x / n)
        };
        sh.compute(unit(r), &mut y, Some((&mut g, 1.0 / len)));
        for a in 0..3 {
            let (mut rp, mut rm) = (r, r);
            rp[a] += h;
            rm[a] -= h;
            sh.compute(unit(rp), &mut yp, None);
            sh.compute(unit(rm), &mut ym, None);
            for k in 0..size {
                let fd = (yp[k] - ym[k]) / (2.0 * h);
                assert!((fd - g[a * size + k]).abs() < 1e-7, "dY_{k}/dr_{a}");
            }
        }
    }
}

/// A rattled simple-cubic periodic cell of 8 atoms with elements drawn from `species`.
fn structure(seed: u64, species: &[u32]) -> Structure {
    rattled_cell(seed, species, 2.4, [2, 2, 2], 0.3, true)
}

#[test]
fn position_gradients_match_finite_differences() {
    for normalize in [false, true] {
        let soap = Soap::new(SoapParams {
            normalize,
            ..params(vec![8, 1])
        })
        .unwrap();
        let s = structure(11, &[1, 8]);
        let nf = soap.n_features();
        let g = soap.compute_with_gradients(&s).unwrap();
        assert_eq!(g.descriptors, soap.compute(&s).unwrap());
        let h = 1e-5;
        for k in 0..s.len() {
            for c in 0..3 {
                let plus = soap.compute(&moved(&s, k, c, h)).unwrap();
                let minus = soap.compute(&moved(&s, k, c, -h)).unwrap();
                for i in 0..s.len() {
                    let row = (0..g.centers.len()).find(|&r| g.centers[r] == i && g.atoms[r] == k);
                    for f in 0..nf {
                        let fd = (plus[i * nf + f] - minus[i * nf + f]) / (2.0 * h);
                        let analytic = row.map_or(0.0, |r| g.values[(r * 3 + c) * nf + f]);
                        assert!(
                            (fd - analytic).abs() < 1e-7,
                            "dP_{i}[{f}]/dr_{k}{c}: {analytic} vs {fd} (normalize {normalize})"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn results_do_not_depend_on_thread_count() {
    let soap = Soap::new(params(vec![1, 8])).unwrap();
    let s = structure(4, &[1, 8]);
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let three = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .unwrap();
    let a = one.install(|| soap.compute_with_gradients(&s).unwrap());
    let b = three.install(|| soap.compute_with_gradients(&s).unwrap());
    assert_eq!(a.values, b.values);
    assert_eq!(a.virial, b.virial);
    assert_eq!(a.descriptors, b.descriptors);
}

#[test]
fn bad_parameters_are_errors() {
    let ok = params(vec![14]);
    let cases = [
        SoapParams {
            n_max: 0,
            ..ok.clone()
        },
        SoapParams {
            cutoff: 0.0,
            ..ok.clone()
        },
        SoapParams {
            cutoff: f64::NAN,
            ..ok.clone()
        },
        SoapParams {
            atom_sigma: -0.1,
            ..ok.clone()
        },
        SoapParams {
            cutoff_transition_width: 3.6,
            ..ok.clone()
        },
        SoapParams {
            cutoff_transition_width: -0.1,
            ..ok.clone()
        },
        SoapParams {
            l_max: MAX_L_MAX + 1,
            ..ok.clone()
        },
        SoapParams {
            species: vec![],
            ..ok.clone()
        },
        SoapParams {
            species: vec![14, 14],
            ..ok.clone()
        },
        SoapParams {
            n_max: 40,
            ..ok.clone()
        },
        SoapParams {
            n_max: MAX_N_MAX + 1,
            ..ok.clone()
        },
        SoapParams {
            atom_sigma: ok.cutoff / MAX_CUTOFF_OVER_SIGMA / 2.0,
            ..ok.clone()
        },
        SoapParams {
            species: vec![14, 119],
            ..ok.clone()
        },
    ];
    for p in cases {
        assert!(Soap::new(p.clone()).is_err(), "{p:?} was accepted");
    }
    let soap = Soap::new(ok).unwrap();
    assert!(soap.compute(&structure(1, &[6])).is_err());
}
